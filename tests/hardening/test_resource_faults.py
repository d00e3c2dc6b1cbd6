"""Resource faults: out of memory, nothing to train on, cancelling at any moment.

CUDA out-of-memory is simulated on CPU by a model whose forward raises
``torch.OutOfMemoryError`` when a batch is larger than a budget: inference must retry
with smaller batches and then tiles; training must retry once with half the batch,
then stop with a clear message. Training refuses an empty train split and a single
class. Cancelling import, inference or training at random moments leaves the project
and the files on disk consistent.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.hardening import corpus
from workbench import masks
from workbench.atomic import TEMP_MARKER
from workbench.classes import ClassInfo, ClassSchema
from workbench.errors import CancelledError, WorkbenchError
from workbench.ml import checkpoint, models
from workbench.ml.inference import Predictor
from workbench.ml.training import TrainConfig, train
from workbench.progress import CancelToken, Progress
from workbench.project import Project, Status

SCHEMA = ClassSchema([ClassInfo(0, "background", (0, 0, 0)), ClassInfo(1, "square", (255, 0, 0))])
ENCODER = "tu-mobilenetv3_small_050"


class MemoryBudget:
    """Makes a model's forward raise CUDA-style OOM above ``max_pixels`` or ``max_batch`` per batch."""

    def __init__(self, max_pixels: int = 1 << 62, max_batch: int = 1 << 30) -> None:
        self.max_pixels = max_pixels
        self.max_batch = max_batch
        self.shapes: list[tuple[int, ...]] = []
        self.refused = 0

    def limit(self, model: torch.nn.Module) -> torch.nn.Module:
        inner = model.forward

        def forward(x: torch.Tensor) -> torch.Tensor:
            self.shapes.append(tuple(x.shape))
            if x.shape[0] * x.shape[2] * x.shape[3] > self.max_pixels or x.shape[0] > self.max_batch:
                self.refused += 1
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB "
                                             "(simulated by the hardening tests)")
            return inner(x)

        model.forward = forward  # instance attribute: state_dict and checkpoints unchanged
        return model


@pytest.fixture(scope="module")
def tiny() -> tuple[torch.nn.Module, checkpoint.CheckpointMeta]:
    torch.manual_seed(0)
    model = models.build_model(models.ModelConfig("unet", ENCODER), SCHEMA.num_classes).eval()
    meta = checkpoint.CheckpointMeta(arch="unet", encoder=ENCODER, num_classes=2, schema=SCHEMA.to_dict())
    return model, meta


def _images(n: int, hw: tuple[int, int], seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (*hw, 3), dtype=np.uint8) for _ in range(n)]


# ----- inference --------------------------------------------------------------------------------
def test_predict_oom_halves_the_batch(tiny: tuple) -> None:
    """Batch of 4 does not fit, 2 does: same masks as without the limit."""
    model, meta = tiny
    imgs = _images(4, (64, 64))
    reference = [p.mask for _, p in Predictor(model, meta, device="cpu", batch_size=4).predict_many(
        list(enumerate(imgs)))]
    # The forward sees each image with the predictor's context padding: learn its size
    # from one unlimited pass, then allow exactly two such images per batch.
    probe = MemoryBudget()
    Predictor(probe.limit(models.build_model(models.ModelConfig("unet", ENCODER), 2).eval()), meta,
              device="cpu", batch_size=1).predict(imgs[0])
    per_image = probe.shapes[0][2] * probe.shapes[0][3]
    budget = MemoryBudget(2 * per_image)
    limited = budget.limit(models.build_model(models.ModelConfig("unet", ENCODER), 2).eval())
    limited.load_state_dict(model.state_dict())
    got = [p.mask for _, p in Predictor(limited, meta, device="cpu", batch_size=4).predict_many(
        list(enumerate(imgs)))]
    assert budget.refused >= 1 and max(s[0] for s in budget.shapes[budget.refused:]) <= 2
    for a, b in zip(reference, got, strict=True):
        np.testing.assert_array_equal(a, b)


def test_predict_oom_then_tiles(tiny: tuple) -> None:
    """Even one whole image does not fit: it is predicted in smaller tiles instead."""
    model, meta = tiny
    budget = MemoryBudget(320 * 320)
    limited = budget.limit(models.build_model(models.ModelConfig("unet", ENCODER), 2).eval())
    limited.load_state_dict(model.state_dict())
    image = _images(1, (600, 500))[0]
    pred = Predictor(limited, meta, device="cpu", batch_size=2).predict(image)
    assert pred.mask.shape == (600, 500) and set(np.unique(pred.mask)) <= {0, 1}
    assert budget.refused >= 1
    accepted = budget.shapes[-1]
    assert accepted[2] * accepted[3] <= 320 * 320  # the last forwards were tiles


def test_predict_oom_gives_up_clearly(tiny: tuple) -> None:
    """Nothing fits at all: a WorkbenchError that says what to do, not a CUDA traceback."""
    model, meta = tiny
    limited = MemoryBudget(16 * 16).limit(models.build_model(models.ModelConfig("unet", ENCODER), 2).eval())
    with pytest.raises(WorkbenchError, match="out of memory .* even with batch 1"):
        Predictor(limited, meta, device="cpu", batch_size=2).predict(_images(1, (300, 300))[0])


def test_predict_cancel_at_random_moments(tiny: tuple) -> None:
    """Cancelling between batches stops with CancelledError; results so far are whole."""
    model, meta = tiny
    rng = random.Random(4)
    imgs = list(enumerate(_images(6, (48, 64))))
    for _ in range(3):
        stop_after = rng.randrange(0, 5)
        token = CancelToken()
        got = []
        with pytest.raises(CancelledError):
            for key, pred in Predictor(model, meta, device="cpu", batch_size=1).predict_many(
                    imgs, cancel=token):
                got.append(key)
                assert pred.mask.shape == (48, 64)
                if len(got) > stop_after:
                    token.cancel()
        assert got == list(range(len(got))) and len(got) <= stop_after + 2


# ----- training ---------------------------------------------------------------------------------
def _squares(folder: Path, n: int, seed: int, classes: tuple[int, ...] = (0, 1)) -> list[tuple[Path, Path]]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    pairs = []
    for i in range(n):
        image = rng.integers(0, 60, (64, 64, 3), dtype=np.uint8)
        mask = np.full((64, 64), classes[0], np.uint8)
        y, x = rng.integers(8, 40, 2)
        image[y:y + 20, x:x + 20] = 220
        mask[y:y + 20, x:x + 20] = classes[-1]
        Image.fromarray(image).save(folder / f"img{i}.png")
        masks.write_mask(folder / f"img{i}.mask.png", mask, SCHEMA)
        pairs.append((folder / f"img{i}.png", folder / f"img{i}.mask.png"))
    return pairs


def _config(**kw: object) -> TrainConfig:
    base = dict(encoder=ENCODER, batch_size=4, crop=32, scale=(1.0, 1.0), lr=3e-3, device="cpu",
                class_weights=False, workers=0, epochs=1)
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def squares(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, Path]]:
    return _squares(tmp_path_factory.mktemp("squares"), 8, 0)


def _limited_builds(monkeypatch: pytest.MonkeyPatch, budget: MemoryBudget) -> None:
    real = models.build_model

    def build(config: models.ModelConfig, num_classes: int) -> torch.nn.Module:
        return budget.limit(real(config, num_classes))

    monkeypatch.setattr(models, "build_model", build)


def test_train_oom_retries_with_half_batch(squares: list, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    budget = MemoryBudget(max_batch=2)
    _limited_builds(monkeypatch, budget)
    reports: list[Progress] = []
    result = train(_config(), SCHEMA, squares[:6], squares[6:], tmp_path / "m.safetensors",
                   on_progress=reports.append)
    assert budget.refused >= 1 and not result.cancelled and result.steps > 0
    assert any("out of memory: retrying with batch size 2" in r.message for r in reports)
    assert checkpoint.read_meta(result.checkpoint).train["batch_size"] == 2


def test_train_oom_twice_is_a_clear_error(squares: list, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    _limited_builds(monkeypatch, MemoryBudget(max_batch=1))
    with pytest.raises(WorkbenchError, match="out of CPU memory training with batch 2 .* smaller --batch-size"):
        train(_config(), SCHEMA, squares[:6], squares[6:], tmp_path / "m.safetensors")
    assert not (tmp_path / "m.safetensors").exists()
    assert not list(tmp_path.glob(f"{TEMP_MARKER}*"))


def test_train_refuses_empty_split(tmp_path: Path) -> None:
    with pytest.raises(WorkbenchError, match="no labelled images in the train split"):
        train(_config(), SCHEMA, [], [], tmp_path / "m.safetensors")


def test_train_refuses_single_class(tmp_path: Path) -> None:
    pairs = _squares(tmp_path / "one", 3, 1, classes=(1, 1))
    with pytest.raises(WorkbenchError, match="every labelled pixel .* is class 'square'.*two classes"):
        train(_config(), SCHEMA, pairs, [], tmp_path / "m.safetensors")


def test_train_refuses_all_unlabelled(tmp_path: Path) -> None:
    pairs = _squares(tmp_path / "none", 2, 1, classes=(255, 255))
    with pytest.raises(WorkbenchError, match="no labelled pixels"):
        train(_config(), SCHEMA, pairs, [], tmp_path / "m.safetensors")


def _cancel_after(n: int, token: CancelToken) -> Callable[[Progress], None]:
    seen = [0]

    def on_progress(p: Progress) -> None:
        seen[0] += 1
        if seen[0] >= n:
            token.cancel()

    return on_progress


# A 2-epoch run reports 17 times (checking, decoding, setup, epochs, validation, done).
@pytest.mark.parametrize("stop_at", sorted(random.Random(11).sample(range(1, 17), 4)))
def test_train_cancel_leaves_project_consistent(tmp_path: Path, stop_at: int) -> None:
    """Cancel after a random number of progress reports, in a real project."""
    folder = tmp_path / "images"
    pairs = _squares(tmp_path / "src", 6, 2)
    folder.mkdir()
    with Project.open(folder, schema=SCHEMA) as project:
        for img, _ in pairs:
            (folder / img.name).write_bytes(img.read_bytes())
        project.sync()
        for img, msk in pairs:
            rec = project.find(img.name)
            project.save_label(rec.id, masks.read_mask(msk, SCHEMA), status=Status.VERIFIED)
        before = corpus.tree_digest(project.state_dir / "labels")
        out = project.next_model_path()
        token = CancelToken()
        try:
            result = train(_config(epochs=2), SCHEMA, project.training_pairs("train"), [], out,
                           on_progress=_cancel_after(stop_at, token), cancel=token)
        except CancelledError:
            result = None
        if result is not None:
            # Cancelling after the last training step lets the run finish: nothing left to stop.
            assert result.cancelled or (result.epochs_done == 2 and stop_at >= 14), result
            if out.exists():
                model, meta = checkpoint.load_checkpoint(out)  # a usable, whole checkpoint
                project.register_model(out, metrics={"cancelled": result.cancelled})
        assert corpus.tree_digest(project.state_dir / "labels") == before
    assert not list((folder / ".workbench").rglob(f"{TEMP_MARKER}*"))
    with Project.open(folder) as project:
        assert len(project.images()) == 6 and all(r.has_label for r in project.images())
        for m in project.models():
            checkpoint.read_meta(m.path)


def test_import_cancel_leaves_labels_consistent(tmp_path: Path) -> None:
    """Cancel an import at random points: each image has a whole label and a matching record, or neither."""
    folder = tmp_path / "images"
    mask_dir = tmp_path / "masks"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        (folder / f"im{i}.png").write_bytes(corpus.good_image_bytes(24, 32, seed=i))
        masks.write_mask(mask_dir / f"im{i}.png", rng.integers(0, 2, (24, 32), dtype=np.uint8), SCHEMA)
    for trial, stop_at in enumerate(random.Random(5).sample(range(1, 9), 3)):
        state = tmp_path / f"state{trial}"
        token = CancelToken()
        with Project.open(folder, state_dir=state, schema=SCHEMA) as project:
            rep = project.import_masks(mask_dir, on_progress=_cancel_after(stop_at, token), cancel=token)
            assert rep.cancelled and rep.imported < 8
        with Project.open(folder, state_dir=state) as project:
            for rec in project.images():
                path = project.label_path(rec.id)
                assert rec.has_label == path.exists(), rec.name
                if rec.has_label:
                    assert rec.status == Status.VERIFIED
                    np.testing.assert_array_equal(project.read_label(rec.id),
                                                  masks.read_mask(mask_dir / rec.name, SCHEMA))
            assert sum(r.has_label for r in project.images()) == rep.imported

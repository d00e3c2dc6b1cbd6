"""The trainer on tiny synthetic data: learning, ignore, seeds, cancel, fine-tune, refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from workbench.classes import ClassSchema
from workbench.errors import InputError, WorkbenchError
from workbench.masks import write_mask
from workbench.ml.checkpoint import load_checkpoint, read_meta
from workbench.ml.losses import SegmentationLoss
from workbench.ml.training import TrainConfig, train
from workbench.progress import CancelToken, Progress

# A small, fast encoder keeps each run to seconds on 2 CPU cores.
ENCODER = "tu-mobilenetv3_small_050"
SCHEMA = ClassSchema.default(["background", "square"])


def _squares(folder: Path, n: int, seed: int, *, unlabelled_fraction: float = 0.0) -> list[tuple[Path, Path]]:
    """Bright squares on a dark noisy background, 64x64; optionally most pixels unlabelled."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pairs = []
    for i in range(n):
        image = rng.integers(0, 70, (64, 64, 3), dtype=np.uint8)
        mask = np.zeros((64, 64), np.uint8)
        y, x = rng.integers(4, 36, 2)
        s = int(rng.integers(14, 26))
        image[y:y + s, x:x + s] = rng.integers(170, 256, 3)
        mask[y:y + s, x:x + s] = 1
        if unlabelled_fraction:
            mask[rng.random((64, 64)) < unlabelled_fraction] = 255
        Image.fromarray(image).save(folder / f"img{i}.png")
        write_mask(folder / f"img{i}_mask.png", mask, SCHEMA)
        pairs.append((folder / f"img{i}.png", folder / f"img{i}_mask.png"))
    return pairs


def _config(**kw: object) -> TrainConfig:
    base = dict(encoder=ENCODER, batch_size=4, crop=64, scale=(1.0, 1.0), lr=3e-3, device="cpu",
                class_weights=False, workers=0)
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def squares(tmp_path_factory: pytest.TempPathFactory) -> tuple[list, list]:
    root = tmp_path_factory.mktemp("squares")
    return _squares(root / "train", 16, 0), _squares(root / "val", 4, 1)


@pytest.fixture(scope="module")
def trained(squares: tuple[list, list], tmp_path_factory: pytest.TempPathFactory) -> tuple:
    out = tmp_path_factory.mktemp("model") / "squares.safetensors"
    reports: list[Progress] = []
    result = train(_config(epochs=12), SCHEMA, squares[0], squares[1], out, on_progress=reports.append)
    return result, reports


def test_learns_squares_and_loss_falls(trained: tuple) -> None:
    result, reports = trained
    assert result.best_miou is not None and result.best_miou > 0.9
    losses = [h["loss"] for h in result.history]
    assert losses[-1] < 0.5 * losses[0]
    assert not result.cancelled and result.epochs_done == 12 and result.stopped_by == "epochs"
    meta = read_meta(result.checkpoint)
    assert meta.metrics["val_miou"] == pytest.approx(result.best_miou)
    assert len(meta.history) >= 1 and {"loss", "val_miou", "time_s"} <= set(meta.history[0])
    assert sorted(meta.trained_on) == sorted(f"img{i}.png" for i in range(16))
    assert meta.train["crop"] == 64 and meta.schema == SCHEMA.to_dict()
    train_reports = [r for r in reports if r.info.get("phase") == "train"]
    keys = {"epoch", "epochs", "step", "steps", "loss", "eta_s", "images_per_s"}
    assert keys <= set(train_reports[-1].info)
    val_reports = [r for r in reports if "val_miou" in r.info]
    assert len(val_reports) == 12 and "val_pixel_accuracy" in val_reports[0].info
    assert reports[-1].done == reports[-1].total == 12 * 4  # 16 images / batch 4 = 4 steps per epoch


def test_partly_labelled_masks_train(squares: tuple[list, list], tmp_path: Path) -> None:
    sparse = _squares(tmp_path / "sparse", 8, 5, unlabelled_fraction=0.9)
    result = train(_config(epochs=2), SCHEMA, sparse, squares[1], tmp_path / "m.safetensors")
    assert result.best_miou is not None and all(np.isfinite(h["loss"]) for h in result.history)


@pytest.mark.parametrize("dice", [False, True])
def test_ignored_pixels_do_not_affect_the_loss(dice: bool) -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 8, 8, requires_grad=True)
    target = torch.randint(0, 3, (2, 8, 8))
    target[:, :4] = 255
    loss_fn = SegmentationLoss(torch.tensor([1.0, 2.0, 0.5]), dice=dice)
    loss = loss_fn(logits, target)
    loss.backward()
    assert torch.all(logits.grad[:, :, :4] == 0)  # no gradient from ignored pixels
    changed = logits.detach().clone()
    changed[:, :, :4] = torch.randn(2, 3, 4, 8) * 10
    assert float(loss_fn(changed, target)) == pytest.approx(float(loss.detach()))
    all_ignored = torch.full((2, 8, 8), 255)
    assert float(loss_fn(logits, all_ignored).detach()) == 0.0


def test_same_seed_gives_identical_weights(squares: tuple[list, list], tmp_path: Path) -> None:
    a = train(_config(epochs=1, seed=3), SCHEMA, squares[0], squares[1], tmp_path / "a.safetensors")
    b = train(_config(epochs=1, seed=3), SCHEMA, squares[0], squares[1], tmp_path / "b.safetensors")
    c = train(_config(epochs=1, seed=4), SCHEMA, squares[0], squares[1], tmp_path / "c.safetensors")
    wa, wb, wc = (load_file(str(r.checkpoint)) for r in (a, b, c))
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)


def test_cancel_returns_a_usable_checkpoint(squares: tuple[list, list], tmp_path: Path) -> None:
    cancel = CancelToken()

    def on_progress(p: Progress) -> None:
        if p.info.get("phase") == "train" and p.info.get("step", 0) >= 2:
            cancel.cancel()

    out = tmp_path / "cancelled.safetensors"
    result = train(_config(epochs=50), SCHEMA, squares[0], squares[1], out,
                   on_progress=on_progress, cancel=cancel)
    assert result.cancelled and result.stopped_by == "cancel" and result.steps == 2
    assert result.epochs_done == 0 and result.best_miou is not None
    model, meta = load_checkpoint(out, schema=SCHEMA)
    assert meta.metrics["val_miou"] == pytest.approx(result.best_miou)
    assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 2, 64, 64)


def test_fine_tune_with_different_classes_adapts_the_head(trained: tuple, squares: tuple[list, list],
                                                          tmp_path: Path) -> None:
    result, _ = trained
    three = ClassSchema.default(["background", "square", "circle"])
    notes: list[str] = []
    out = tmp_path / "ft.safetensors"
    ft = train(_config(epochs=1, init=result.checkpoint), three, squares[0], squares[1], out,
               on_progress=lambda p: notes.append(p.message) if p.info.get("phase") == "setup" else None)
    assert any("new output head" in n for n in notes)
    meta = read_meta(ft.checkpoint)
    assert meta.num_classes == 3 and meta.parent == result.checkpoint.name
    # The encoder was carried over from the 2-class model, not re-initialised.
    old, new = load_file(str(result.checkpoint)), load_file(str(out))
    stem = next(k for k in old if k.startswith("encoder.") and k.endswith(".weight"))
    assert torch.allclose(old[stem], new[stem], atol=0.05)  # Adam moved it a few lr steps at most
    assert new["segmentation_head.0.weight"].shape[0] == 3


def test_refuses_no_pairs_and_a_single_class(tmp_path: Path) -> None:
    with pytest.raises(WorkbenchError, match="no labelled images in the train split"):
        train(_config(epochs=1), SCHEMA, [], [], tmp_path / "x.safetensors")
    folder = tmp_path / "bg"
    folder.mkdir()
    pairs = []
    for i in range(3):
        Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(folder / f"{i}.png")
        write_mask(folder / f"{i}_m.png", np.zeros((32, 32), np.uint8), SCHEMA)
        pairs.append((folder / f"{i}.png", folder / f"{i}_m.png"))
    with pytest.raises(WorkbenchError, match="class 'background': nothing to learn"):
        train(_config(epochs=1), SCHEMA, pairs, [], tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()


def test_refuses_bad_settings_and_bad_files_before_training(squares: tuple[list, list], tmp_path: Path) -> None:
    with pytest.raises(WorkbenchError, match="multiple of 32.*try 96"):
        train(_config(epochs=1, crop=100), SCHEMA, squares[0], [], tmp_path / "x.safetensors")
    with pytest.raises(WorkbenchError, match="smaller --batch-size or --crop"):
        train(_config(epochs=1, crop=4096, batch_size=4096), SCHEMA, squares[0], [], tmp_path / "x.safetensors")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(InputError, match="broken.png"):
        train(_config(epochs=1), SCHEMA, [*squares[0], (broken, squares[0][0][1])], [], tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()


def test_time_budget_stops_and_saves(squares: tuple[list, list], tmp_path: Path) -> None:
    out = tmp_path / "timed.safetensors"
    result = train(_config(minutes=0.05), SCHEMA, squares[0], [], out)
    assert result.stopped_by == "time" and not result.cancelled
    assert out.is_file() and read_meta(out).metrics["val_miou"] == pytest.approx(result.best_miou)


def test_holds_out_validation_images_when_none_given(squares: tuple[list, list], tmp_path: Path) -> None:
    notes: list[str] = []
    result = train(_config(epochs=1, val_fraction=0.25), SCHEMA, squares[0], [], tmp_path / "h.safetensors",
                   on_progress=lambda p: notes.append(p.message))
    assert any("holding out 4 of 16" in n for n in notes)
    assert len(read_meta(result.checkpoint).trained_on) == 12


# ----- options the loop needs: step budget, early stopping, schedule, loss (issue 14) -----------
def test_step_budget_stops_mid_epoch_and_saves(squares: tuple[list, list], tmp_path: Path) -> None:
    reports: list[Progress] = []
    out = tmp_path / "steps.safetensors"
    result = train(_config(steps=6), SCHEMA, squares[0], squares[1], out, on_progress=reports.append)
    # 16 images / batch 4 = 4 steps per epoch: one whole epoch and 2 steps of the next.
    assert result.steps == 6 and result.stopped_by == "steps" and not result.cancelled
    assert result.epochs_done == 1 and [h["steps"] for h in result.history] == [4, 2]
    assert reports[-1].total == 6
    # The checkpoint is the best validation's: after step 6 if it improved on step 4's.
    improved = result.history[1]["val_miou"] > result.history[0]["val_miou"]
    assert read_meta(out).train["steps"] == (6 if improved else 4)
    # With epochs as well, the first budget reached stops the run.
    both = train(_config(steps=100, epochs=1), SCHEMA, squares[0], squares[1], tmp_path / "b.safetensors")
    assert both.steps == 4 and both.stopped_by == "epochs"


def test_patience_stops_when_val_miou_stops_improving(squares: tuple[list, list], tmp_path: Path) -> None:
    # A learning rate too small to change a prediction: val mIoU stays put after epoch 1.
    cfg = _config(epochs=20, patience=2, lr=1e-12, freeze_bn=True)
    result = train(cfg, SCHEMA, squares[0], squares[1], tmp_path / "p.safetensors")
    assert result.stopped_by == "patience" and result.epochs_done == 3 and result.steps == 12


def test_one_cycle_rises_to_the_peak_then_anneals(squares: tuple[list, list], tmp_path: Path) -> None:
    lrs: list[float] = []
    train(_config(epochs=5, schedule="onecycle", lr=1e-2), SCHEMA, squares[0], squares[1],
          tmp_path / "oc.safetensors",
          on_progress=lambda p: lrs.append(p.info["lr"]) if p.info.get("phase") == "train" else None)
    assert len(lrs) == 20
    assert lrs[0] == pytest.approx(1e-2 / 25) and max(lrs) == pytest.approx(1e-2, rel=0.05)
    top = lrs.index(max(lrs))
    assert 1 <= top <= 3 and all(a >= b for a, b in zip(lrs[top:], lrs[top + 1:])) and lrs[-1] < 1e-3


def test_lovasz_of_hard_predictions_is_one_minus_iou() -> None:
    """On 0/1 probabilities the Lovasz extension equals the Jaccard loss (independent check)."""
    from workbench.ml.losses import lovasz_softmax_loss

    rng = np.random.default_rng(0)
    target = torch.from_numpy(rng.integers(0, 3, (2, 16, 16)))
    pred = torch.from_numpy(rng.integers(0, 3, (2, 16, 16)))
    target[0, :4] = 255  # ignored pixels count for neither side
    logits = torch.nn.functional.one_hot(pred, 3).permute(0, 3, 1, 2).float() * 100.0
    valid = target != 255
    ious = []
    for c in range(3):
        t, p = (target == c) & valid, (pred == c) & valid
        ious.append(float((t & p).sum()) / float((t | p).sum()))
    expected = 1.0 - float(np.mean(ious))
    assert float(lovasz_softmax_loss(logits, target)) == pytest.approx(expected, abs=1e-5)
    perfect = torch.nn.functional.one_hot(torch.where(valid, target, 0), 3).permute(0, 3, 1, 2).float() * 100
    assert float(lovasz_softmax_loss(perfect, target)) == pytest.approx(0.0, abs=1e-6)


def test_the_device_recipes_choose_the_loss_unless_set() -> None:
    import torch

    assert TrainConfig().resolved(torch.device("cpu")).loss == "lovasz"
    assert TrainConfig().resolved(torch.device("cuda")).loss == "ce"      # (no GPU needed to resolve)
    assert TrainConfig(loss="ce").resolved(torch.device("cpu")).loss == "ce"


def test_lovasz_loss_trains(squares: tuple[list, list], tmp_path: Path) -> None:
    result = train(_config(epochs=3, loss="lovasz"), SCHEMA, squares[0], squares[1], tmp_path / "l.safetensors")
    assert result.best_miou is not None and all(np.isfinite(h["loss"]) for h in result.history)
    assert read_meta(result.checkpoint).train["loss"] == "lovasz"


def test_hold_out_is_said_plainly_and_can_be_turned_off(squares: tuple[list, list], tmp_path: Path) -> None:
    result = train(_config(epochs=1), SCHEMA, squares[0], [], tmp_path / "h.safetensors")
    assert any("holding out 2 of 16 training images for validation" in n and "--val-fraction 0" in n
               for n in result.notes)
    off = train(_config(epochs=1, val_fraction=0.0), SCHEMA, squares[0], [], tmp_path / "o.safetensors")
    assert any("validating on the training images" in n for n in off.notes)
    assert len(read_meta(off.checkpoint).trained_on) == 16


@pytest.mark.parametrize("settings, message", [
    ({"steps": 0}, "--steps must be >= 1"),
    ({"schedule": "cosine"}, "--schedule must be one of poly, onecycle"),
    ({"loss": "focal"}, "--loss must be one of ce, lovasz"),
    ({"patience": 0}, "--patience must be >= 1"),
    ({"finetune_lr": float("nan")}, "--finetune-lr"),
    ({"encoder_weights": "/nowhere/enc.safetensors"}, "--encoder-weights: file not found"),
])
def test_new_options_are_checked_up_front(settings: dict, message: str) -> None:
    with pytest.raises(WorkbenchError, match=message):
        TrainConfig(**settings)


# ----- offline pretrained encoders --------------------------------------------------------------
def test_encoder_weights_from_a_local_safetensors_file(squares: tuple[list, list], tmp_path: Path) -> None:
    from safetensors.torch import save_file

    from workbench.ml.models import ModelConfig, build_model

    torch.manual_seed(123)
    donor = build_model(ModelConfig("unet", ENCODER), 2)
    path = tmp_path / "encoder.safetensors"
    save_file({k: v.contiguous() for k, v in donor.encoder.state_dict().items()}, str(path))
    model = build_model(ModelConfig("unet", ENCODER, str(path)), 2)
    ours, theirs = model.encoder.state_dict(), donor.encoder.state_dict()
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs)
    # A whole model's file works too (its encoder part is used).
    whole = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in donor.state_dict().items()}, str(whole))
    again = build_model(ModelConfig("unet", ENCODER, str(whole)), 2)
    assert all(torch.equal(again.encoder.state_dict()[k], theirs[k]) for k in theirs)
    # The trainer starts from them (step 0 = the donor's encoder, so after one tiny step: close).
    out = tmp_path / "t.safetensors"
    train(_config(steps=1, lr=1e-9, encoder_weights=str(path)), SCHEMA, squares[0], squares[1], out)
    trained = load_file(str(out))
    stem = next(k for k in theirs if k.endswith(".weight") and theirs[k].dim() == 4)
    assert torch.allclose(trained["encoder." + stem], theirs[stem], atol=1e-6)


def test_encoder_weights_for_another_encoder_are_refused(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    from workbench.ml.models import ModelConfig, build_model

    other = build_model(ModelConfig("unet", "resnet18"), 2)
    path = tmp_path / "resnet18.safetensors"
    save_file({k: v.contiguous() for k, v in other.encoder.state_dict().items()}, str(path))
    with pytest.raises(WorkbenchError, match="not weights for this encoder.*missing") as info:
        build_model(ModelConfig("unet", ENCODER, str(path)), 2)
    assert "resnet18.safetensors" in str(info.value)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not safetensors at all")
    with pytest.raises(WorkbenchError, match="not a readable safetensors file"):
        build_model(ModelConfig("unet", ENCODER, str(junk)), 2)


def test_offline_message_names_the_local_file_option() -> None:
    from workbench.ml.models import _offline_error

    assert "--encoder-weights PATH" in str(_offline_error("resnet18"))


def test_small_training_sets_get_smaller_crops(squares: tuple[list, list],
                                                                  tmp_path: Path) -> None:
    from workbench.ml.training import SMALL_SET_CROP

    result = train(_config(epochs=1, crop=None), SCHEMA, squares[0], squares[1], tmp_path / "s.safetensors")
    assert any(f"small training set (16 images): {SMALL_SET_CROP}-pixel crops" in n for n in result.notes)
    assert read_meta(result.checkpoint).decoder_channels is not None   # the CPU recipe's slim decoder
    assert read_meta(result.checkpoint).train["loss"] == "lovasz"       # ... and its loss (decision 0019)
    meta = read_meta(result.checkpoint)
    assert meta.train["crop"] == SMALL_SET_CROP and meta.train["patience"] is None  # no automatic early stop
    # What the user set stays.
    kept = train(_config(epochs=1, crop=64, patience=3, decoder="full"), SCHEMA, squares[0], squares[1], tmp_path / "k.safetensors")
    assert not any("small training set" in n for n in kept.notes)
    assert read_meta(kept.checkpoint).train["crop"] == 64
    assert read_meta(kept.checkpoint).decoder_channels is None
    # No budget given: 20 epochs instead of 30.
    from workbench.ml.training import SMALL_SET_EPOCHS

    few = train(_config(crop=64, batch_size=16), SCHEMA, squares[0], squares[1], tmp_path / "e.safetensors")
    assert few.epochs_done == SMALL_SET_EPOCHS and any(f"{SMALL_SET_EPOCHS} epochs" in n for n in few.notes)


# ----- slim U-Net decoder -----------------------------------------------------------------------
def test_slim_decoder_trains_and_round_trips(squares: tuple[list, list], tmp_path: Path) -> None:
    from workbench.ml.inference import Predictor
    from workbench.ml.models import SLIM_DECODER

    result = train(_config(epochs=2, decoder="slim"), SCHEMA, squares[0], squares[1], tmp_path / "d.safetensors")
    meta = read_meta(result.checkpoint)
    assert meta.decoder_channels == list(SLIM_DECODER) and meta.train["decoder"] == "slim"
    model, _ = load_checkpoint(result.checkpoint)
    widths = [m.out_channels for m in model.decoder.modules() if isinstance(m, torch.nn.Conv2d)]
    assert max(widths) == SLIM_DECODER[0] and model.segmentation_head[0].in_channels == SLIM_DECODER[-1]
    # Fine-tuning keeps the parent's widths whatever the recipe says.
    tuned = train(_config(epochs=1, init=result.checkpoint), SCHEMA, squares[0], squares[1],
                  tmp_path / "t.safetensors")
    assert read_meta(tuned.checkpoint).decoder_channels == list(SLIM_DECODER)
    pred = Predictor.from_checkpoint(tuned.checkpoint, device="cpu")
    image = np.asarray(Image.open(squares[1][0][0]))
    assert pred.predict(image).mask.shape == image.shape[:2]


def test_full_decoder_is_smp_default_and_slim_is_refused_for_other_archs(squares: tuple[list, list],
                                                                       tmp_path: Path) -> None:
    result = train(_config(epochs=1, decoder="full"), SCHEMA, squares[0], squares[1], tmp_path / "f.safetensors")
    assert read_meta(result.checkpoint).decoder_channels is None
    model, _ = load_checkpoint(result.checkpoint)
    assert model.segmentation_head[0].in_channels == 16
    with pytest.raises(WorkbenchError, match="--decoder slim applies to unet and unetplusplus, not fpn"):
        TrainConfig(arch="fpn", decoder="slim")
    with pytest.raises(WorkbenchError, match="--decoder must be one of full, slim"):
        TrainConfig(decoder="tiny")


def test_one_step_epochs_validate_every_few_steps_and_after_the_last(squares: tuple[list, list],
                                                                     tmp_path: Path) -> None:
    from workbench.ml.training import VAL_EVERY_STEPS

    # 16 images in batches of 16: one step per epoch.
    result = train(_config(epochs=10, batch_size=16), SCHEMA, squares[0], squares[1], tmp_path / "v.safetensors")
    epochs = [h["epoch"] for h in result.history]
    assert epochs == [1, *range(VAL_EVERY_STEPS, 10, VAL_EVERY_STEPS), 10]
    assert sum(h["steps"] for h in result.history) == result.steps == 10 and result.epochs_done == 10


def test_short_fresh_runs_speed_up_batchnorm_statistics(squares: tuple[list, list], tmp_path: Path) -> None:
    from workbench.ml.training import BN_FAST_MAX, _Trainer as Trainer

    seen: list[float] = []
    real = Trainer._fast_bn_statistics

    def spy(self, model):
        real(self, model)
        seen.extend(m.momentum for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))

    try:
        Trainer._fast_bn_statistics = spy
        train(_config(steps=40), SCHEMA, squares[0], squares[1], tmp_path / "a.safetensors")
        assert seen and set(seen) == {min(BN_FAST_MAX, 10 / 40)}
        seen.clear()
        train(_config(steps=4), SCHEMA, squares[0], squares[1], tmp_path / "b.safetensors")
        assert set(seen) == {BN_FAST_MAX}
        seen.clear()
        train(_config(steps=200, epochs=1), SCHEMA, squares[0], squares[1], tmp_path / "c.safetensors")
        assert set(seen) == {BN_FAST_MAX}   # the epoch budget ends it at 4 steps: 10 / 4 capped
    finally:
        Trainer._fast_bn_statistics = real


def test_long_epochs_skip_validations_that_would_cost_more_than_their_share(squares: tuple[list, list],
                                                                            tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import workbench.ml.training as T

    # 16 images in batches of 4: 4 steps per epoch, counted as "long" here.
    monkeypatch.setattr(T, "VAL_SHARE_MIN_STEPS", 4)
    monkeypatch.setattr(T, "VAL_MAX_SHARE", 0.0)        # any validation costs too much: first and last only
    few = train(_config(epochs=4), SCHEMA, squares[0], squares[1], tmp_path / "few.safetensors")
    assert [h["epoch"] for h in few.history] == [1, 4]
    assert [h["steps"] for h in few.history] == [4, 12] and few.epochs_done == 4
    monkeypatch.setattr(T, "VAL_MAX_SHARE", 1.0)        # never too much: every epoch
    every = train(_config(epochs=4), SCHEMA, squares[0], squares[1], tmp_path / "every.safetensors")
    assert [h["epoch"] for h in every.history] == [1, 2, 3, 4]
    monkeypatch.setattr(T, "VAL_MAX_SHARE", 0.0)
    monkeypatch.setattr(T, "VAL_SHARE_MIN_STEPS", 5)    # epochs shorter than that keep validating each epoch
    short = train(_config(epochs=3), SCHEMA, squares[0], squares[1], tmp_path / "short.safetensors")
    assert [h["epoch"] for h in short.history] == [1, 2, 3]


def test_cpu_training_runs_channels_last(squares: tuple[list, list], tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import workbench.ml.training as T

    layouts: list[bool] = []
    real = T._Trainer._step

    def spy(self, model, criterion, optimizer, images, targets, amp):
        conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
        layouts.append(conv.weight.is_contiguous(memory_format=torch.channels_last))
        return real(self, model, criterion, optimizer, images, targets, amp)

    monkeypatch.setattr(T._Trainer, "_step", spy)
    train(_config(steps=2), SCHEMA, squares[0], squares[1], tmp_path / "cl.safetensors")
    assert layouts == [True, True]


def test_weight_average_is_what_is_validated_and_saved(squares: tuple[list, list], tmp_path: Path) -> None:
    from workbench.ml.training import _WeightAverage

    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 1), torch.nn.BatchNorm2d(2))
    avg = _WeightAverage(net, 0.5)
    with torch.no_grad():
        net[0].weight.add_(1.0)
    before = avg.model[0].weight.clone()
    avg.update(net)                                   # decay warmed up: min(0.5, 2 / 11)
    d = 2 / 11
    assert torch.allclose(avg.model[0].weight, d * before + (1 - d) * net[0].weight)
    assert not avg.model[0].weight.requires_grad and net[0].weight.requires_grad
    # In a run: the note says so, and the checkpoint holds the average, not the last weights.
    notes: list[str] = []
    out = tmp_path / "ema.safetensors"
    result = train(_config(epochs=2, ema=0.9), SCHEMA, squares[0], squares[1], out,
                   on_progress=lambda p: notes.append(p.message))
    assert any("average of the weights (decay 0.9)" in n for n in notes)
    assert read_meta(out).train["ema"] == 0.9 and result.best_miou is not None
    plain = train(_config(epochs=2), SCHEMA, squares[0], squares[1], tmp_path / "plain.safetensors",
                  on_progress=lambda p: notes.append(p.message))
    assert plain.best_miou is not None
    assert sum("average of the weights" in n for n in notes) == 1   # off unless asked
    # Same seed, same steps: the run with the average saves other weights than the one without.
    one_avg = train(_config(epochs=1, ema=0.9), SCHEMA, squares[0], squares[1], tmp_path / "a1.safetensors")
    one_raw = train(_config(epochs=1, ema=0.0), SCHEMA, squares[0], squares[1], tmp_path / "r1.safetensors")
    wa, wr = load_file(one_avg.checkpoint), load_file(one_raw.checkpoint)
    assert wa.keys() == wr.keys() and any(not torch.equal(wa[k], wr[k]) for k in wa if wa[k].is_floating_point())
    with pytest.raises(WorkbenchError, match="ema"):
        TrainConfig(ema=1.5)

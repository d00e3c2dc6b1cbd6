"""Steady fine-tuning: a lower peak LR with warm-up, BatchNorm statistics kept from the parent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from workbench.classes import ClassSchema
from workbench.masks import write_mask
from workbench.ml.training import FINETUNE_LR_SCALE, TrainConfig, train
from workbench.progress import Progress

ENCODER = "tu-mobilenetv3_small_050"
SCHEMA = ClassSchema.default(["background", "square"])


def _squares(folder: Path, n: int, seed: int) -> list[tuple[Path, Path]]:
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
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[list, list, Path]:
    root = tmp_path_factory.mktemp("ft")
    train_pairs, val_pairs = _squares(root / "train", 8, 0), _squares(root / "val", 4, 1)
    parent = root / "parent.safetensors"
    train(_config(epochs=3), SCHEMA, train_pairs, val_pairs, parent)
    return train_pairs, val_pairs, parent


def _lrs(reports: list[Progress]) -> list[float]:
    return [r.info["lr"] for r in reports if r.info.get("phase") == "train"]


def _bn_stats(path: Path) -> dict[str, torch.Tensor]:
    return {k: v for k, v in load_file(str(path)).items() if k.endswith(("running_mean", "running_var"))}


def test_fine_tuning_starts_lower_and_warms_up(data: tuple, tmp_path: Path) -> None:
    train_pairs, val_pairs, parent = data
    reports: list[Progress] = []
    result = train(_config(epochs=5, init=parent), SCHEMA, train_pairs, val_pairs, tmp_path / "ft.safetensors",
                   on_progress=reports.append)
    lrs = _lrs(reports)
    peak = 3e-3 * FINETUNE_LR_SCALE
    assert len(lrs) == 10 and max(lrs) <= peak * (1 + 1e-9)
    warm = max(5, int(0.2 * 10))
    assert lrs[0] == pytest.approx(peak / warm * 1.0 * (1 - 0.0) ** 0.9)
    assert all(a < b for a, b in zip(lrs[:warm - 1], lrs[1:warm]))  # rising during the warm-up
    assert any(f"fine-tuning from learning rate {peak:g}" in n and "BatchNorm statistics kept" in n
               for n in result.notes)


def test_explicit_fine_tuning_rate(data: tuple, tmp_path: Path) -> None:
    train_pairs, val_pairs, parent = data
    reports: list[Progress] = []
    train(_config(epochs=1, init=parent, finetune_lr=1e-4), SCHEMA, train_pairs, val_pairs,
          tmp_path / "ft.safetensors", on_progress=reports.append)
    assert max(_lrs(reports)) <= 1e-4 * (1 + 1e-9)


def test_batchnorm_statistics_are_kept_when_fine_tuning(data: tuple, tmp_path: Path) -> None:
    train_pairs, val_pairs, parent = data
    kept = train(_config(epochs=2, init=parent), SCHEMA, train_pairs, val_pairs, tmp_path / "kept.safetensors")
    before, after = _bn_stats(parent), _bn_stats(kept.checkpoint)
    assert before and all(torch.equal(before[k], after[k]) for k in before)
    # Weights did move (it trained), and --train-bn updates the statistics again.
    w0, w1 = load_file(str(parent)), load_file(str(kept.checkpoint))
    assert any(not torch.equal(w0[k], w1[k]) for k in w0 if k.endswith(".weight"))
    moved = train(_config(epochs=2, init=parent, freeze_bn=False), SCHEMA, train_pairs, val_pairs,
                  tmp_path / "moved.safetensors")
    changed = _bn_stats(moved.checkpoint)
    assert any(not torch.equal(before[k], changed[k]) for k in before)


def test_fresh_runs_keep_the_full_rate_and_train_batchnorm(data: tuple, tmp_path: Path) -> None:
    train_pairs, val_pairs, _ = data
    reports: list[Progress] = []
    result = train(_config(epochs=2), SCHEMA, train_pairs, val_pairs, tmp_path / "fresh.safetensors",
                   on_progress=reports.append)
    assert max(_lrs(reports)) == pytest.approx(3e-3, rel=0.3)
    assert not any("fine-tuning" in n for n in result.notes)


def test_retrain_fine_tunes_with_the_gentle_recipe(tmp_path: Path) -> None:
    """The Retrain path (workflows.train_project) fine-tunes the current model gently."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from workflow_helpers import FAST_SETTINGS, tiny_project

    from workbench.project import Project
    from workbench.workflows import train_project
    from workbench.workflows.training import config_from_settings

    folder = tiny_project(tmp_path)
    with Project.open(folder) as project:
        config, _ = config_from_settings(project, dict(FAST_SETTINGS))
        first = train_project(project, config)
        assert first.parent is None
        second = train_project(project, config)
        assert second.parent == first.version
        assert any("fine-tuning from learning rate" in n for n in second.result.notes)


def test_retrain_without_val_images_says_where_its_score_comes_from(tmp_path: Path) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from workflow_helpers import FAST_SETTINGS, tiny_project

    from workbench.project import Project
    from workbench.workflows import train_project
    from workbench.workflows.training import config_from_settings

    folder = tiny_project(tmp_path, n_train=7, n_val=0)
    with Project.open(folder) as project:
        config, _ = config_from_settings(project, dict(FAST_SETTINGS))
        outcome = train_project(project, config)
    assert "no val images: holding out 1 of 7 training images for validation" in outcome.message
    assert "holding out 1 of 7" in outcome.app_message

"""The quick model: learns two textures from two scribbles, stores safely, follows the promotion rule."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workbench.classes import UNLABELLED, ClassSchema
from workbench.errors import InputError, WorkbenchError
from workbench.ml.quick_model import (QuickModel, QuickSettings, feature_count, fit_quick_model,
                                      is_quick_model, open_predictor, pixel_features)
from workbench.project import Project, Split

SCHEMA = ClassSchema.default(["smooth", "stripes"])


def two_textures(seed: int = 0, h: int = 96, w: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Left half: flat grey with faint noise; right half: fine vertical stripes of the same mean."""
    rng = np.random.default_rng(seed)
    image = np.full((h, w, 3), 128, np.int16) + rng.integers(-4, 5, (h, w, 3))
    cols = np.arange(w // 2, w)
    image[:, w // 2:, :] = np.where((cols // 2) % 2 == 0, 200, 56)[None, :, None] + rng.integers(-4, 5, (h, w // 2, 3))
    truth = np.zeros((h, w), np.uint8)
    truth[:, w // 2:] = 1
    return np.clip(image, 0, 255).astype(np.uint8), truth


def two_scribbles(h: int = 96, w: int = 128) -> np.ndarray:
    """One short stroke in each half; everything else not labelled."""
    mask = np.full((h, w), UNLABELLED, np.uint8)
    mask[40:44, 10:40] = 0
    mask[50:54, 80:110] = 1
    return mask


def test_features_have_the_documented_count_and_respond_to_texture():
    image, truth = two_textures()
    f = pixel_features(image)
    assert f.shape == (96, 128, feature_count(3)) and f.dtype == np.float32
    assert np.isfinite(f).all()
    # gradient magnitude at the finest scale is higher on the stripes than on the flat half
    grad = f[:, :, 2]
    assert grad[:, 70:120].mean() > 5 * grad[:, 5:55].mean()


def test_a_quick_model_learns_a_two_texture_image_from_two_scribbles():
    image, truth = two_textures()
    model = fit_quick_model([(image, two_scribbles(), "a.png")], SCHEMA, QuickSettings(trees=20))
    # a second image the model never saw, with other noise
    other, other_truth = two_textures(seed=5)
    pred = model.predict(other)
    # borders of the half-planes are ambiguous for the larger filters: judge the inner parts
    inner = np.zeros_like(other_truth, bool)
    inner[:, 8:56] = inner[:, 72:120] = True
    accuracy = (pred.mask[inner] == other_truth[inner]).mean()
    assert accuracy > 0.97, accuracy
    assert pred.confidence.shape == other_truth.shape and pred.entropy.max() <= 1.0
    assert model.classes_seen == [0, 1]


def test_the_file_holds_samples_not_pickles_and_refits_the_same_forest(tmp_path: Path):
    image, _ = two_textures()
    model = fit_quick_model([(image, two_scribbles(), "a.png")], SCHEMA, QuickSettings(trees=10, seed=3))
    path = tmp_path / "v0001.safetensors"
    model.save(path, metrics={"registered": {"kind": "quick"}})
    raw = path.read_bytes()
    assert not raw.startswith((b"PK\x03\x04", b"\x80"))   # no torch zip, no pickle
    header = json.loads(raw[8:8 + int.from_bytes(raw[:8], "little")])
    assert set(header) - {"__metadata__"} == {"features", "labels"}
    assert is_quick_model(path)
    assert QuickModel.load(path, schema=SCHEMA) is model       # this process fitted it: no refit
    again = QuickModel.load(path, schema=SCHEMA, cached=False)
    a, b = model.predict(image), again.predict(image)
    assert np.array_equal(a.mask, b.mask) and np.allclose(a.confidence, b.confidence)
    predictor = open_predictor(path, schema=SCHEMA)
    assert np.array_equal(predictor.predict(image).mask, a.mask)


def test_a_damaged_or_foreign_file_is_named(tmp_path: Path):
    image, _ = two_textures()
    model = fit_quick_model([(image, two_scribbles(), "a.png")], SCHEMA, QuickSettings(trees=5))
    path = tmp_path / "q.safetensors"
    model.save(path)
    with pytest.raises(WorkbenchError, match="predicts the classes"):
        QuickModel.load(path, schema=ClassSchema.default(["a", "b", "c"]))
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x80\x04not a model")
    with pytest.raises(InputError, match="bad.safetensors"):
        QuickModel.load(bad)


def test_no_labelled_pixels_is_a_clear_message():
    image, _ = two_textures()
    with pytest.raises(WorkbenchError, match="paint a few strokes"):
        fit_quick_model([(image, np.full(image.shape[:2], UNLABELLED, np.uint8), "a.png")], SCHEMA)


# ----- the project workflow ------------------------------------------------------------------
def texture_project(root: Path, n_train: int = 2, n_val: int = 2) -> Path:
    """Images of two textures; train images carry two scribbles, val images full ground truth."""
    folder = root / "images"
    folder.mkdir(parents=True)
    for i in range(n_train + n_val):
        Image.fromarray(two_textures(seed=i)[0]).save(folder / f"f{i:02d}.png")
    with Project.open(folder, schema=SCHEMA) as project:
        for i in range(n_train + n_val):
            rec = project.find(f"f{i:02d}")
            if i < n_train:
                project.save_label(rec.id, two_scribbles(), status="edited")
            else:
                project.set_split(rec.id, Split.VAL)
                project.save_ground_truth(rec.id, two_textures(seed=i)[1])
    return folder


def test_train_quick_project_registers_a_current_quick_version_the_app_and_cli_can_use(tmp_path: Path):
    from workbench.workflows import model_summaries, predict_project
    from workbench.workflows.model_kinds import is_quick, kind_label
    from workbench.workflows.quick import train_quick_project

    folder = texture_project(tmp_path)
    with Project.open(folder) as project:
        out = train_quick_project(project)
        assert out.promoted and out.version == 1
        assert out.val_miou is not None and out.val_miou > 0.8
        rec = project.current_model()
        assert rec.version == 1 and is_quick(rec) and kind_label(rec) == "quick model"
        assert rec.metrics["kind"] == "quick" and rec.metrics["trained_on"] == 2
        summary = model_summaries(project)[0]
        assert summary.problem is None and summary.val_miou == out.val_miou
        # the ordinary prediction path (Predict all, the canvas) uses it
        outcome = predict_project(project, only="all", device="cpu")
        assert not outcome.problems and len(outcome.predicted) == 4
        # a second quick run replaces the quick model, whatever its score (the person's strokes)
        again = train_quick_project(project, replace=1, live=True)
        assert again.promoted and project.current_model().version == 2
        assert again.val_miou is None and "not scored on val while you paint" in again.message
        assert [m.version for m in project.models()] == [2]


def test_a_unet_must_beat_the_quick_model_on_val_and_never_starts_from_its_file(tmp_path: Path):
    from workbench.workflows import train_project
    from workbench.workflows.quick import train_quick_project
    from workflow_helpers import FAST_SETTINGS, settings_with

    folder = texture_project(tmp_path)
    settings_with(folder, FAST_SETTINGS)
    with Project.open(folder) as project:
        quick = train_quick_project(project)
        assert quick.promoted
        out = train_project(project)
        # a 1-epoch U-Net on two scribbles does not beat the forest: the quick model stays current
        assert out.previous_version == 1 and out.previous_val_miou == pytest.approx(quick.val_miou, abs=1e-6)
        assert out.parent is None                      # not fine-tuned from the quick model's file
        assert out.promoted == (out.val_miou >= out.previous_val_miou)
        assert project.current_model().version == (2 if out.promoted else 1)


def test_cli_train_quick(tmp_path: Path, capsys):
    from workbench.cli import main

    folder = texture_project(tmp_path)
    assert main(["train", str(folder), "--quick"]) == 0
    out = capsys.readouterr().out
    assert "quick model" in out and "version 1" in out
    with Project.open(folder) as project:
        assert project.current_model().metrics["kind"] == "quick"
    empty = tmp_path / "empty"
    empty.mkdir()
    Image.fromarray(two_textures()[0]).save(empty / "a.png")
    assert main(["train", str(empty), "--quick"]) == 2
    assert "nothing to train on" in capsys.readouterr().err

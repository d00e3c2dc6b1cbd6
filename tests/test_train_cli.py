"""``workbench train`` end to end on a few downscaled CamVid images: folder and project forms."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image

from workbench.classes import ClassSchema
from workbench.cli import main
from workbench.ml.checkpoint import read_meta
from workbench.project import Project, Split

ENCODER = "tu-mobilenetv3_small_050"
FAST = ["--encoder", ENCODER, "--crop", "64", "--batch-size", "2", "--device", "cpu", "--workers", "0"]


@pytest.fixture(scope="module")
def small_camvid(camvid: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 train + 2 val CamVid images and masks at 96x128 (masks resized with nearest)."""
    root = tmp_path_factory.mktemp("camvid_small")
    for split, n in (("train", 4), ("val", 2)):
        for sub, resample in ((split, Image.BILINEAR), (f"{split}annot", Image.NEAREST)):
            (root / sub).mkdir()
            for p in sorted((camvid / sub).iterdir())[:n]:
                with Image.open(p) as im:
                    im.resize((128, 96), resample).save(root / sub / p.name)
    shutil.copy(camvid / "classes.json", root / "classes.json")
    return root


def test_folder_form_trains_one_epoch(small_camvid: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "model.safetensors"
    code = main(["train", str(small_camvid / "train"), "--masks", str(small_camvid / "trainannot"),
                 "--val-images", str(small_camvid / "val"), "--val-masks", str(small_camvid / "valannot"),
                 "--classes", str(small_camvid / "classes.json"), "--out", str(out), "--epochs", "1", *FAST])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "finished: 1 epoch(s)" in captured.out and str(out) in captured.out
    meta = read_meta(out)
    assert meta.num_classes == 11 and meta.encoder == ENCODER
    assert sorted(meta.trained_on) == sorted(p.name for p in (small_camvid / "train").iterdir())
    assert meta.metrics["val_images"] == 2


def test_folder_form_errors(small_camvid: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    train_dir = str(small_camvid / "train")
    assert main(["train", train_dir, "--masks", str(small_camvid / "trainannot"),
                 "--out", str(tmp_path / "m.safetensors")]) == 2
    assert "needs --masks DIR, --classes FILE and --out CKPT" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["train", train_dir, "--masks", str(empty), "--classes", str(small_camvid / "classes.json"),
                 "--out", str(tmp_path / "m.safetensors"), *FAST]) == 2
    assert "has a mask with the same stem" in capsys.readouterr().err
    assert main(["train", train_dir, "--masks", str(small_camvid / "trainannot"), "--classes",
                 str(small_camvid / "classes.json"), "--out", str(tmp_path / "m.safetensors"),
                 "--crop", "100", "--epochs", "1"]) == 2
    assert "multiple of 32" in capsys.readouterr().err
    assert not (tmp_path / "m.safetensors").exists()


def test_project_form_registers_versions_and_fine_tunes(small_camvid: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    images = tmp_path / "images"
    images.mkdir()
    for sub in ("train", "val"):
        for p in (small_camvid / sub).iterdir():
            shutil.copy(p, images / p.name)
    masks = tmp_path / "masks"
    shutil.copytree(small_camvid / "trainannot", masks)
    for p in (small_camvid / "valannot").iterdir():
        shutil.copy(p, masks / p.name)
    state = tmp_path / "state"
    schema = ClassSchema.load(small_camvid / "classes.json")
    with Project.open(images, state_dir=state, schema=schema) as project:
        project.import_masks(masks, as_="labels")
        val_ids = [r.id for r in project.images() if (small_camvid / "val" / r.name).exists()]
        train_ids = [r.id for r in project.images() if r.id not in val_ids]
        project.set_split(val_ids, Split.VAL)
        project.set_split(train_ids, Split.TRAIN)

    assert main(["train", str(images), "--state-dir", str(state), "--epochs", "1", *FAST]) == 0
    out = capsys.readouterr()
    assert "registered model version 1" in out.out
    assert main(["train", str(images), "--state-dir", str(state), "--epochs", "1", *FAST]) == 0
    out = capsys.readouterr()
    assert "registered model version 2" in out.out and "fine-tuning v0001" in out.err
    with Project.open(images, state_dir=state) as project:
        models = project.models()
        assert [m.version for m in models] == [1, 2] and models[1].parent == 1
        meta = read_meta(models[1].path)
        assert meta.metrics["val_images"] == 2 and len(meta.trained_on) == 4

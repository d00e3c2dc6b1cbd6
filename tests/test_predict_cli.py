"""`workbench predict` end to end, and evaluate_model against the mask-folder path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from workbench.classes import ClassSchema
from workbench.cli import main
from workbench.errors import WorkbenchError
from workbench.masks import read_mask
from workbench.metrics import evaluate_folders
from workbench.ml.checkpoint import CheckpointMeta, save_checkpoint
from workbench.ml.evaluation import evaluate_model
from workbench.ml.models import ModelConfig, build_model


@pytest.fixture(scope="module")
def setup(tmp_path_factory, camvid):
    """Three downscaled CamVid frames (png, png, jpg), their masks and a tiny random checkpoint."""
    root = tmp_path_factory.mktemp("predict")
    images, gt = root / "images", root / "gt"
    images.mkdir()
    gt.mkdir()
    schema = ClassSchema.load(camvid / "classes.json")
    names = sorted(p.name for p in (camvid / "val").iterdir())[:3]
    for i, name in enumerate(names):
        stem = name.rsplit(".", 1)[0]
        img = Image.open(camvid / "val" / name).convert("RGB").resize((96, 72), Image.BILINEAR)
        img.save(images / (f"{stem}.jpg" if i == 2 else f"{stem}.png"))
        Image.open(camvid / "valannot" / name).resize((96, 72), Image.NEAREST).save(gt / f"{stem}.png")
    torch.manual_seed(0)
    model = build_model(ModelConfig("unet", "resnet18"), schema.num_classes)
    ckpt = root / "tiny.safetensors"
    save_checkpoint(ckpt, model, CheckpointMeta("unet", "resnet18", schema.num_classes, schema.to_dict()))
    return {"images": images, "gt": gt, "ckpt": ckpt, "schema": schema,
            "stems": [n.rsplit(".", 1)[0] for n in names]}


def test_predict_folder_writes_palette_masks_and_confidence(setup, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["predict", str(setup["images"]), "--model", str(setup["ckpt"]), "--out", str(out),
               "--device", "cpu", "--batch-size", "2", "--confidence"])
    assert rc == 0
    err = capsys.readouterr().err
    assert "device: CPU" in err
    schema = setup["schema"]
    for stem in setup["stems"]:
        with Image.open(out / f"{stem}.png") as im:
            assert im.mode == "P" and im.size == (96, 72)
            assert im.getpalette()[:3] == list(schema.classes[0].color)
        mask = read_mask(out / f"{stem}.png", schema, expected_hw=(72, 96))
        assert mask.max() < schema.num_classes
        with Image.open(out / f"{stem}.conf.png") as conf:
            assert conf.mode == "L" and conf.size == (96, 72)
            # max softmax over 11 classes is at least 1/11 -> at least 23 of 255
            assert np.asarray(conf).min() >= 23
    assert len(list(out.iterdir())) == 6


def test_bad_image_is_named_skipped_and_exit_1(setup, tmp_path, capsys):
    folder = tmp_path / "imgs"
    folder.mkdir()
    src = next(setup["images"].glob("*.png"))
    (folder / "good.png").write_bytes(src.read_bytes())
    (folder / "broken.png").write_bytes(b"not a png at all")
    out = tmp_path / "out"
    rc = main(["predict", str(folder), "--model", str(setup["ckpt"]), "--out", str(out), "--device", "cpu"])
    assert rc == 1
    err = capsys.readouterr().err
    assert "broken.png" in err
    assert sorted(p.name for p in out.iterdir()) == ["good.png"]


def test_single_file_input(setup, tmp_path):
    src = next(setup["images"].glob("*.jpg"))
    out = tmp_path / "one"
    assert main(["predict", str(src), "--model", str(setup["ckpt"]), "--out", str(out)]) == 0
    assert [p.name for p in out.iterdir()] == [f"{src.stem}.png"]


def test_refuses_to_overwrite_source_images(setup, capsys):
    images = setup["images"]
    before = {p.name: p.read_bytes() for p in images.iterdir()}
    rc = main(["predict", str(images), "--model", str(setup["ckpt"]), "--out", str(images)])
    assert rc == 2 and "would overwrite the source image" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in images.iterdir()} == before


def test_pickle_model_is_refused_without_traceback(setup, tmp_path, capsys):
    bad = tmp_path / "model.pt"
    torch.save({"w": torch.zeros(1)}, bad)
    rc = main(["predict", str(setup["images"]), "--model", str(bad), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and "not a safetensors checkpoint" in err and "Traceback" not in err


def test_evaluate_model_matches_scoring_the_written_masks(setup, tmp_path):
    out = tmp_path / "preds"
    assert main(["predict", str(setup["images"]), "--model", str(setup["ckpt"]), "--out", str(out),
                 "--device", "cpu"]) == 0
    expected = evaluate_folders(out, setup["gt"], setup["schema"])
    progress = []
    got = evaluate_model(setup["images"], setup["ckpt"], setup["gt"], device="cpu", batch_size=2,
                         on_progress=progress.append)
    assert got.images == expected.images == 3
    np.testing.assert_array_equal(got.confusion, expected.confusion)
    assert got.scores == expected.scores and got.per_image == expected.per_image
    assert got.class_names == setup["schema"].names
    assert progress[-1].done == progress[-1].total == 3


def test_evaluate_model_reports_missing_and_unreadable(setup, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    first, second, third = setup["stems"]
    for stem in (first, second):
        src = next(setup["images"].glob(f"{stem}.*"))
        (images / src.name).write_bytes(src.read_bytes())
    (images / f"{second}.png").write_bytes(b"garbage")  # replaces the good one if it was a png
    got = evaluate_model(images, setup["ckpt"], setup["gt"], device="cpu")
    assert got.missing == [f"{third}.png"]
    assert got.images == 1 and list(got.per_image) == [first]
    assert len(got.problems) == 1 and second in got.problems[0]


def test_evaluate_model_without_masks(setup, tmp_path):
    with pytest.raises(WorkbenchError, match="no ground-truth masks"):
        evaluate_model(setup["images"], setup["ckpt"], tmp_path, device="cpu")

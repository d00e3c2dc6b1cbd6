"""``workbench evaluate``: both forms through cli.main, and once through the console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from workbench.classes import ClassSchema
from workbench.cli import main
from workbench.masks import read_mask, write_mask
from workbench.metrics import ConfusionMatrix, evaluate_folders

STEMS = ["0016E5_07959", "0016E5_08009", "0016E5_08059", "0016E5_08109", "0016E5_08159"]


@pytest.fixture(scope="module")
def folders(camvid, tmp_path_factory):
    """gt/ with 5 half-size CamVid val masks, pred/ with a shifted, noisy copy of 4 of them
    (void predictions kept: they count as wrong), and the in-memory pairs."""
    root = tmp_path_factory.mktemp("evaluate")
    schema = ClassSchema.load(camvid / "classes.json")
    rng = np.random.default_rng(3)
    pairs = []
    for stem in STEMS:
        gt = read_mask(camvid / "valannot" / f"{stem}.png", schema)[::2, ::2].copy()
        pred = np.roll(gt, 4, axis=1)
        noisy = rng.random(gt.shape) < 0.05
        pred[noisy] = rng.integers(0, 12, int(noisy.sum()))
        write_mask(root / "gt" / f"{stem}.png", gt, schema)
        if stem != STEMS[-1]:
            write_mask(root / "pred" / f"{stem}.png", pred, schema)
            pairs.append((pred, gt))
    return root, schema, pairs


def _run_json(capsys, argv) -> dict:
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1  # exactly one JSON object on stdout
    return json.loads(out)


def test_pred_form_json_matches_the_metrics_module(folders, camvid, capsys):
    root, schema, pairs = folders
    data = _run_json(capsys, ["evaluate", "--pred", str(root / "pred"), "--gt", str(root / "gt"),
                              "--classes", str(camvid / "classes.json"), "--json"])
    cm = ConfusionMatrix(11)
    for pred, gt in pairs:
        cm.update(pred, gt, schema.ignore_values)
    s = cm.scores()
    assert data["miou"] == pytest.approx(s.miou) and 0.4 < data["miou"] < 0.95
    assert data["pixel_accuracy"] == pytest.approx(s.pixel_accuracy)
    assert data["per_class_iou"] == pytest.approx(s.per_class_iou)
    assert data["images"] == 4
    assert data["missing"] == [f"{STEMS[-1]}.png"]
    assert set(data["per_image"]) == set(STEMS[:-1])
    assert data["class_names"] == schema.names
    assert data["problems"] == []


def test_pred_form_human_output(folders, camvid, capsys):
    root, schema, _ = folders
    report = evaluate_folders(root / "pred", root / "gt", schema)
    assert main(["evaluate", "--pred", str(root / "pred"), "--gt", str(root / "gt"),
                 "--classes", str(camvid / "classes.json")]) == 0
    out = capsys.readouterr().out
    assert f"mIoU            {report.scores.miou:.4f}" in out
    assert f"pixel accuracy  {report.scores.pixel_accuracy:.4f}" in out
    assert "images scored   4" in out
    for name, iou in zip(schema.names, report.scores.per_class_iou):
        assert f"{name}" in out and f"{iou:.4f}" in out
    assert "ground truth without a prediction (1):" in out and f"{STEMS[-1]}.png" in out
    assert "lowest per-image mIoU:" in out


def test_identical_folders_score_one(camvid, capsys):
    data = _run_json(capsys, ["evaluate", "--pred", str(camvid / "valannot"), "--gt",
                              str(camvid / "valannot"), "--classes", str(camvid / "classes.json"),
                              "--json"])
    assert data["miou"] == 1.0 and data["pixel_accuracy"] == 1.0
    assert data["images"] == 101 and data["missing"] == [] and data["problems"] == []


def test_problems_and_absent_classes_in_output(tmp_path, capsys):
    schema = ClassSchema.default(["bg", "cell", "junk"])
    schema.save(tmp_path / "classes.json")
    gt = np.zeros((6, 6), np.uint8)
    gt[:3] = 1
    write_mask(tmp_path / "gt" / "a.png", gt, schema)
    write_mask(tmp_path / "gt" / "b.png", gt, schema)
    write_mask(tmp_path / "pred" / "a.png", gt, schema)
    write_mask(tmp_path / "pred" / "b.png", gt[:, :4].copy(), schema)
    assert main(["evaluate", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"),
                 "--classes", str(tmp_path / "classes.json")]) == 0
    out = capsys.readouterr().out
    assert "junk" in out and "absent from ground truth and prediction" in out
    assert "problems (1), not scored:" in out and "b.png: mask is 4x6 pixels" in out
    assert "mean over 2 of 3 classes" in out


def test_per_image_lists_every_image_lowest_first(folders, camvid, capsys):
    root, schema, _ = folders
    report = evaluate_folders(root / "pred", root / "gt", schema)
    assert main(["evaluate", "--pred", str(root / "pred"), "--gt", str(root / "gt"),
                 "--classes", str(camvid / "classes.json"), "--per-image"]) == 0
    out = capsys.readouterr().out
    listed = out.split("per-image mIoU, lowest first:\n")[1].split("\n\n")[0].split("\n")
    expected = sorted(report.per_image.items(), key=lambda kv: kv[1])
    assert listed == [f"  {k}  {v:.4f}" for k, v in expected]


@pytest.mark.parametrize("argv, message", [
    (["--gt", "GT"], "give --pred DIR"),
    (["--pred", "GT", "--gt", "GT"], "--pred needs --classes"),
    (["IMAGES", "--pred", "GT", "--gt", "GT", "--classes", "C"], "not both"),
    (["--model", "m.safetensors", "--gt", "GT"], "--model needs IMAGES"),
    (["--pred", "GT", "--gt", "GT", "--classes", "nowhere.json"], "class file not found"),
    (["--pred", "GT", "--gt", "EMPTY", "--classes", "C"], "no ground-truth masks found"),
])
def test_bad_usage_exits_2_with_a_message(tmp_path, capsys, argv, message):
    ClassSchema.default(2).save(tmp_path / "c.json")
    write_mask(tmp_path / "gt" / "a.png", np.zeros((2, 2), np.uint8), ClassSchema.default(2))
    (tmp_path / "empty").mkdir()
    subst = {"GT": str(tmp_path / "gt"), "EMPTY": str(tmp_path / "empty"), "C": str(tmp_path / "c.json"),
             "IMAGES": str(tmp_path), "nowhere.json": str(tmp_path / "nowhere.json")}
    assert main(["evaluate", *[subst.get(a, a) for a in argv]]) == 2
    err = capsys.readouterr().err
    assert err.startswith("workbench: error:") and message in err


def test_nothing_scored_exits_2_after_printing_the_report(tmp_path, capsys):
    schema = ClassSchema.default(2)
    schema.save(tmp_path / "c.json")
    write_mask(tmp_path / "gt" / "a.png", np.zeros((2, 2), np.uint8), schema)
    (tmp_path / "pred").mkdir()
    assert main(["evaluate", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"),
                 "--classes", str(tmp_path / "c.json"), "--json"]) == 2
    captured = capsys.readouterr()
    assert json.loads(captured.out)["missing"] == ["a.png"]
    assert "no image could be scored" in captured.err


def test_model_form_calls_evaluate_model(folders, tmp_path, monkeypatch, capsys):
    root, schema, _ = folders
    calls = []

    def fake_evaluate_model(images_dir, checkpoint, gt_dir, *, device, batch_size, on_progress, cancel):
        calls.append((Path(images_dir), Path(checkpoint), Path(gt_dir), device, batch_size, cancel))
        assert callable(on_progress)
        return evaluate_folders(root / "pred", gt_dir, schema)

    fake = types.ModuleType("workbench.ml.evaluation")
    fake.evaluate_model = fake_evaluate_model
    monkeypatch.setitem(sys.modules, "workbench.ml.evaluation", fake)
    data = _run_json(capsys, ["evaluate", str(tmp_path), "--model", str(tmp_path / "m.safetensors"),
                              "--gt", str(root / "gt"), "--device", "cpu", "--batch-size", "2", "--json"])
    assert calls == [(tmp_path, tmp_path / "m.safetensors", root / "gt", "cpu", 2, None)]
    assert data["images"] == 4 and data["class_names"] == schema.names
    assert main(["evaluate", str(tmp_path), "--model", str(tmp_path / "m.safetensors"),
                 "--gt", str(root / "gt")]) == 0
    assert "ground truth without an image (1):" in capsys.readouterr().out


def test_model_form_refuses_classes_that_differ_from_the_checkpoint(folders, tmp_path, monkeypatch, capsys):
    root, schema, _ = folders
    import workbench.ml.checkpoint as checkpoint

    meta = types.SimpleNamespace(class_schema=lambda: schema)
    monkeypatch.setattr(checkpoint, "read_meta", lambda path: meta)
    fake = types.ModuleType("workbench.ml.evaluation")
    fake.evaluate_model = lambda *a, **k: pytest.fail("must not evaluate with mismatched classes")
    monkeypatch.setitem(sys.modules, "workbench.ml.evaluation", fake)
    ClassSchema.default(["bg", "cell"]).save(tmp_path / "other.json")
    assert main(["evaluate", str(tmp_path), "--model", str(tmp_path / "m.safetensors"),
                 "--gt", str(root / "gt"), "--classes", str(tmp_path / "other.json")]) == 2
    assert "differ from the model's classes" in capsys.readouterr().err


def test_console_script_without_torch(folders, camvid):
    """The real ``workbench`` executable; the --pred form must not import torch or Qt."""
    root, _, _ = folders
    script = Path(sys.executable).with_name("workbench")
    assert script.is_file(), f"console script not installed at {script}"
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.run(
        [str(script), "evaluate", "--pred", str(root / "pred"), "--gt", str(root / "gt"),
         "--classes", str(camvid / "classes.json"), "--json"],
        capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["images"] == 4 and data["missing"] == [f"{STEMS[-1]}.png"]
    probe = subprocess.run(
        [sys.executable, "-c",
         "import sys; from workbench.cli import main; "
         f"rc = main(['evaluate', '--pred', {str(root / 'pred')!r}, '--gt', {str(root / 'gt')!r}, "
         f"'--classes', {str(camvid / 'classes.json')!r}, '--json']); "
         "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'PySide6')]; "
         "print(rc, bad, file=sys.stderr)"],
        capture_output=True, text=True, timeout=120, env=env)
    assert probe.stderr.strip().endswith("0 []"), probe.stderr

"""The annotation-effort benchmark runs as the issue specifies, on tiny synthetic images."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workbench.classes import ClassSchema
from workbench.masks import write_mask

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_annotation_effort.py"
KEYS = {"images", "scratch", "model_manual", "model_assisted", "ratio_assisted", "ratio_manual", "reached_target"}


def _load_bench():
    if "bench_annotation_effort" in sys.modules:
        return sys.modules["bench_annotation_effort"]
    spec = importlib.util.spec_from_file_location("bench_annotation_effort", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_annotation_effort"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _scene(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A 64 x 64 image: background (0), a disc (1) and a bar (2), with noise; mask + void rim."""
    rng = np.random.default_rng(seed)
    h = w = 64
    yy, xx = np.mgrid[:h, :w]
    mask = np.zeros((h, w), np.uint8)
    mask[(yy - 24 - seed * 4) ** 2 + (xx - 22) ** 2 < 12 ** 2] = 1
    mask[44:52, 8:56] = 2
    mask[:2] = 3                       # void class
    colours = np.array([(40, 120, 40), (200, 60, 50), (50, 60, 200), (0, 0, 0)], np.float64)
    img = colours[mask] + rng.normal(0, 8, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8), mask


@pytest.fixture()
def data(tmp_path: Path) -> dict[str, Path]:
    import torch

    from workbench.ml.checkpoint import CheckpointMeta, save_checkpoint
    from workbench.ml.models import ModelConfig, build_model

    schema = ClassSchema.from_dict({"name": "synthetic", "ignore_index": 3, "classes": [
        {"index": 0, "name": "ground", "color": [40, 120, 40]},
        {"index": 1, "name": "disc", "color": [200, 60, 50]},
        {"index": 2, "name": "bar", "color": [50, 60, 200]},
        {"index": 3, "name": "void", "color": [0, 0, 0], "void": True}]})
    classes = tmp_path / "classes.json"
    classes.write_text(json.dumps(schema.to_dict()))
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    for i in range(2):
        img, mask = _scene(i)
        Image.fromarray(img).save(images / f"scene{i}.png")
        write_mask(masks / f"scene{i}.png", mask, schema)
    torch.manual_seed(0)
    encoder = "tu-mobilenetv3_small_050"
    model = build_model(ModelConfig("unet", encoder), 3)
    ckpt = tmp_path / "tiny.safetensors"
    save_checkpoint(ckpt, model, CheckpointMeta("unet", encoder, 3, schema.to_dict()))
    return {"images": images, "masks": masks, "classes": classes, "model": ckpt}


def test_benchmark_runs_three_arms_and_ends_with_the_json_line(data, capsys):
    bench = _load_bench()
    rc = bench.main(["--images", str(data["images"]), "--masks", str(data["masks"]),
                     "--classes", str(data["classes"]), "--model", str(data["model"]),
                     "--target", "0.9", "--max-actions", "60"])
    assert rc == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert any(line.startswith("scene0") for line in lines) and any(line.startswith("scene1") for line in lines)
    summary = json.loads(lines[-1])
    assert KEYS <= summary.keys()
    assert summary["images"] == 2
    for arm in ("scratch", "model_manual", "model_assisted"):
        assert 1 <= summary[arm] <= 60
    assert summary["ratio_assisted"] == pytest.approx(summary["scratch"] / summary["model_assisted"], rel=1e-3)
    assert 0.0 <= summary["reached_target"] <= 1.0
    # Easy scenes: the scratch annotator reaches the target (every action went through the editor).
    assert summary["reached"]["scratch"] == 1.0


def test_benchmark_json_flag_and_bad_input(data, capsys, tmp_path):
    bench = _load_bench()
    rc = bench.main(["--images", str(data["images"]), "--masks", str(data["masks"]),
                     "--classes", str(data["classes"]), "--limit", "1", "--json"])
    assert rc == 0
    out = capsys.readouterr()
    summary = json.loads(out.out.strip())      # stdout holds only the JSON line
    assert summary["images"] == 1 and summary["model_assisted"] is None and summary["scratch"] >= 1
    assert "scene0" in out.err
    # A mask of the wrong size is reported by name and skipped; the other image still runs.
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(data["masks"] / "scene1.png")
    rc = bench.main(["--images", str(data["images"]), "--masks", str(data["masks"]),
                     "--classes", str(data["classes"]), "--json", "--max-actions", "20"])
    out = capsys.readouterr()
    assert rc == 0 and json.loads(out.out.strip())["images"] == 1
    assert "scene1.png" in out.err and "skipped" in out.err
    empty = tmp_path / "nothing"
    empty.mkdir()
    rc = bench.main(["--images", str(empty), "--masks", str(data["masks"]), "--classes", str(data["classes"])])
    assert rc == 2
    assert "no image" in capsys.readouterr().err


def test_annotator_polygon_counts_vertices_of_approx_poly():
    bench = _load_bench()
    gt = np.zeros((40, 40), np.uint8)
    gt[10:30, 5:35] = 1                # a rectangle: 4 vertices
    valid = np.ones_like(gt, bool)
    img = np.zeros((40, 40, 3), np.uint8)
    ann = bench.Annotator(img, gt, valid, assisted=False)
    cand = ann._polygon(gt == 1, 1)
    assert cand.cost == 4
    from workbench.editing import LabelEditor

    mask = np.zeros_like(gt)
    ed = LabelEditor(mask)
    assert ann.gain(ed, cand) == 20 * 30 and (mask == 0).all()   # tried, then undone
    res = ann.run(mask, target=0.99, max_actions=30)
    assert res.reached and res.tools["polygon"] + res.tools["brush"] + res.tools["fill"] == res.actions


def test_smart_iou_mode_measures_before_and_after_with_and_without_prior(data, capsys):
    bench = _load_bench()
    args = ["--images", str(data["images"]), "--masks", str(data["masks"]),
            "--classes", str(data["classes"]), "--model", str(data["model"])]
    assert bench.main([*args, "--smart-iou", "3", "--objects", "disc,bar"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert "over 3 objects" in lines[1]
    rows = [line.split("|")[1:-1] for line in lines if line.startswith("| ") and "IoU" not in line]
    rows = [r for r in rows if not r[0].strip().startswith("---")]
    assert [(r[0].split()[0], r[1].strip()) for r in rows] == [
        ("before", "none"), ("before", "model"), ("upscale", "model"), ("after", "none"), ("after", "model")]
    # Distinct-coloured discs and bars: the box alone finds them after the fix.
    assert float(rows[3][2]) > 0.8
    assert bench.main([*args, "--smart-iou", "3", "--objects", "disc+nope"]) == 2
    assert "no class named nope" in capsys.readouterr().err

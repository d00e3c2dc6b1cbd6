"""labelme JSON: files as labelme 5.x writes them, labelme's own rasterisation as the oracle."""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workbench.formats import labelme, raster
from workbench.formats.base import NOT_LABELLED, ExportClass, ExportItem

CAMVID = Path(__file__).resolve().parents[2].parent / "shared" / "camvid"


def shape(label, points, shape_type="polygon", **extra):
    # the keys labelme 5.5 writes for every shape, in its order
    return {"label": label, "points": points, "group_id": None, "description": "",
            "shape_type": shape_type, "flags": {}, "mask": None, **extra}


def labelme_file(path: Path, shapes, *, image="img.png", h=40, w=50, image_data=None):
    doc = {"version": "5.5.0", "flags": {}, "shapes": shapes, "imagePath": image,
           "imageData": image_data, "imageHeight": h, "imageWidth": w}
    path.write_text(json.dumps(doc, indent=2))
    return path


def b64_png(arr: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(arr.astype(np.uint8) * 255 if arr.dtype == bool else arr).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def read_one(src: Path, **kw):
    result = labelme.read(src, image_size=kw.pop("image_size", lambda name: None), **kw)
    items = list(result.items)
    return result, items


def test_detects_labelme_files_and_folders(tmp_path):
    f = labelme_file(tmp_path / "img.json", [shape("cat", [[1, 1], [9, 1], [9, 9]])])
    assert labelme.detect(f) and labelme.detect(tmp_path)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "coco.json").write_text(json.dumps({"images": [], "annotations": []}))
    assert not labelme.detect(tmp_path / "other")


def test_shapes_later_over_earlier_ignore_and_classes_found(tmp_path):
    labelme_file(tmp_path / "img.json", [
        shape("road", [[0, 0], [49, 0], [49, 39], [0, 39]]),
        shape("car", [[10, 10], [30, 20]], "rectangle"),
        shape("__ignore__", [[12, 12], [14, 12], [14, 14], [12, 14]]),
    ])
    result, (item,) = read_one(tmp_path)
    names = {c.name: c.value for c in result.classes}
    assert sorted(names) == ["car", "road"]
    m = item.mask
    assert item.image == "img.png" and m.shape == (40, 50)
    assert m[0, 0] == names["road"] and m[39, 49] == names["road"]
    assert m[15, 20] == names["car"] and m[10, 10] == names["car"] and m[20, 30] == names["car"]
    assert m[13, 13] == NOT_LABELLED
    assert not result.problems


def test_labels_txt_gives_order_and_background(tmp_path):
    (tmp_path / "labels.txt").write_text("__ignore__\n_background_\ncat\ndog\n")
    labelme_file(tmp_path / "img.json", [shape("dog", [[5, 5], [20, 5], [20, 20]]),
                                         shape("bird", [[30, 30], [35, 30], [35, 35]])])
    result, (item,) = read_one(tmp_path)
    assert [(c.name, c.value) for c in result.classes] == [("background", 0), ("cat", 1), ("dog", 2)]
    assert item.mask[0, 49] == 0            # unpainted = _background_, as labelme2voc
    assert item.mask[6, 15] == 2
    assert item.mask[32, 32] == 0           # the unknown label's shape is skipped ...
    assert any("bird" in p.reason for p in result.problems)   # ... and listed


def test_circle_line_point_and_mask_shapes(tmp_path):
    stencil = np.zeros((5, 6), bool)
    stencil[1:4, 2:5] = True
    labelme_file(tmp_path / "img.json", [
        shape("a", [[10, 10], [14, 10]], "circle"),
        shape("b", [[6, 30], [43, 30]], "line"),
        shape("c", [[40, 5]], "point"),
        shape("d", [[20, 2], [25, 6]], "mask", mask=b64_png(stencil)),
        shape("e", [[30, 14], [32, 16], [34, 14]], "linestrip"),
    ])
    result, (item,) = read_one(tmp_path)
    v = {c.name: c.value for c in result.classes}
    m = item.mask
    assert m[10, 10] == v["a"] and m[10, 14] == v["a"] and m[10, 16] == NOT_LABELLED
    assert (m[26:35, 25] == v["b"]).sum() >= 9                 # 10 px wide
    assert m[5, 40] == v["c"] and m[5, 45] == v["c"] and m[5, 46] == NOT_LABELLED
    assert m[3, 23] == v["d"] and m[2, 20] == NOT_LABELLED and (m == v["d"]).sum() == 9
    assert m[16, 32] == v["e"]
    assert not result.problems


def test_outside_clipped_and_malformed_are_problems_naming_the_file(tmp_path):
    labelme_file(tmp_path / "a.json", [
        shape("x", [[40, 30], [70, 30], [70, 60]]),        # partly outside: clipped
        shape("x", [[100, 100], [120, 100], [120, 120]]),  # wholly outside: skipped
        shape("x", [[1, 1], [2, 2]]),                       # a polygon of two points
        shape("x", [[1, 1], ["a", 2], [3, 3]]),             # not numbers
        shape("x", [[1, 1], [1e30, 2], [3, 1e30]]),         # absurd coordinates
        "nonsense",
    ], image="a.png")
    (tmp_path / "b.json").write_text('{"version": "5.5.0", "flags": {}, "shapes": [{"label": "x", ')  # cut short
    (tmp_path / "classes.json").write_text('{"classes": []}')   # not labelme: left alone
    (tmp_path / "c.json").write_text(json.dumps({"shapes": "no"}))
    result, items = read_one(tmp_path)
    assert [i.image for i in items] == ["a.png"]
    reasons = [(Path(p.file).name, p.reason) for p in result.problems]
    assert any(f == "b.json" and "not valid JSON" in r for f, r in reasons)
    assert any(f == "c.json" and "shapes" in r for f, r in reasons)
    assert any(f == "a.json" and "outside" in r for f, r in reasons)
    assert any(f == "a.json" and "clipped" in r for f, r in reasons)
    assert any(f == "a.json" and "needs at least 3 points" in r for f, r in reasons)
    assert any(f == "a.json" and "beyond" in r for f, r in reasons)
    assert sum(f == "a.json" for f, _ in reasons) >= 6
    assert not any(f == "classes.json" for f, _ in reasons)
    assert items[0].mask[39, 49] == 0  # the clipped shape is there


def test_image_size_from_project_wins_and_mismatch_is_refused(tmp_path):
    labelme_file(tmp_path / "img.json", [shape("x", [[1, 1], [9, 1], [9, 9]])], h=40, w=50)
    result, items = read_one(tmp_path, image_size=lambda name: (80, 100))
    assert items == [] and "100x80" in result.problems[0].reason
    result, items = read_one(tmp_path, image_size=lambda name: (40, 50))
    assert items[0].mask.shape == (40, 50)


def test_size_from_embedded_image_data_when_no_size(tmp_path):
    img = np.zeros((12, 16, 3), np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    data = base64.b64encode(buf.getvalue()).decode()
    doc = {"version": "4.5.6", "flags": {}, "shapes": [shape("x", [[1, 1], [9, 1], [9, 9]])],
           "imagePath": "..\\images\\pic.jpg", "imageData": data}
    (tmp_path / "pic.json").write_text(json.dumps(doc))
    result, (item,) = read_one(tmp_path)
    assert item.mask.shape == (12, 16)
    assert item.image == "pic.jpg"   # a Windows path out of the folder: its file name


def project_mask() -> np.ndarray:
    m = np.full((40, 50), NOT_LABELLED, np.uint8)
    m[:, :] = 0
    m[5:30, 5:40] = 1
    m[10:20, 10:20] = NOT_LABELLED    # a not-labelled hole
    m[12:16, 12:16] = 2               # with an island
    m[25:35, 30:45] = 2               # overlapping two regions
    m[38, :] = 1
    return m


CLASSES = [ExportClass("background", 0, (0, 0, 0)), ExportClass("road", 1, (128, 64, 128)),
           ExportClass("car", 2, (64, 0, 128))]


def test_write_then_read_gives_the_same_mask(tmp_path):
    src_img = tmp_path / "src" / "frame.png"
    src_img.parent.mkdir()
    Image.fromarray(np.zeros((40, 50, 3), np.uint8)).save(src_img)
    m = project_mask()
    out = tmp_path / "out"
    rep = labelme.write(out, [ExportItem("frame.png", src_img, m)], CLASSES, images="copy")
    assert rep.written == 1 and (out / "frame.png").is_file() and (out / "labels.txt").is_file()
    doc = json.loads((out / "frame.json").read_text())
    assert doc["imageData"] is None and doc["imagePath"] == "frame.png"
    assert doc["imageHeight"] == 40 and doc["imageWidth"] == 50
    assert any(s["label"] == "__ignore__" for s in doc["shapes"])
    assert all(s["shape_type"] == "polygon" and len(s["points"]) >= 3 for s in doc["shapes"])
    assert labelme.detect(out)
    result, (item,) = read_one(out, image_size=lambda name: (40, 50))
    back = {c.value: c.name for c in result.classes}
    names = {c.value: c.name for c in CLASSES}
    as_names = np.vectorize(lambda v: names.get(v, "-"))(m)
    got = np.vectorize(lambda v: back.get(v, "-"))(item.mask)
    assert (as_names == got).all()


@pytest.mark.skipif(not (CAMVID / "trainannot").is_dir(), reason="../shared/camvid not present")
def test_camvid_round_trip_keeps_99_percent(tmp_path):
    for path in sorted((CAMVID / "trainannot").glob("*.png"))[:2]:
        m = np.asarray(Image.open(path)).astype(np.uint8)
        m = np.where(m == 11, NOT_LABELLED, m).astype(np.uint8)
        classes = [ExportClass(f"c{i}", i, (i, i, i)) for i in range(11)]
        out = tmp_path / path.stem
        labelme.write(out, [ExportItem(path.name, path, m)], classes, images="none")
        result, (item,) = read_one(out)
        lut = np.full(256, NOT_LABELLED, np.uint8)
        for c in result.classes:
            lut[c.value] = int(c.name[1:])
        assert raster.agreement(m, lut[item.mask]) >= 0.99


# ----- oracle: labelme's own shape_to_mask ----------------------------------------------
def _labelme_shape_module():
    """labelme/utils/shape.py from an installed labelme (or LABELME_SRC), loaded on its own.

    The labelme package imports PyQt5 (and onnxruntime) on import, which this project does
    not install beside PySide6; its rasteriser needs only numpy and PIL, so the file is
    loaded without the package (its one package import is a type used in annotations).
    """
    root = os.environ.get("LABELME_SRC")
    if root:
        path = Path(root) / "labelme" / "utils" / "shape.py"
    else:
        spec = importlib.util.find_spec("labelme")
        if spec is None or not spec.submodule_search_locations:
            return None
        path = Path(list(spec.submodule_search_locations)[0]) / "utils" / "shape.py"
    if not path.is_file():
        return None
    source = path.read_text().replace("from labelme._label_file import ShapeDict",
                                      "ShapeDict = dict")
    namespace: dict = {"__name__": "labelme_shape_oracle"}
    exec(compile(source, str(path), "exec"), namespace)  # noqa: S102 - test oracle only
    return namespace


ORACLE = _labelme_shape_module()


@pytest.mark.skipif(ORACLE is None, reason="labelme is not installed (it needs PyQt5); "
                                           "set LABELME_SRC to a labelme source tree to run")
@pytest.mark.parametrize("seed", [3, 4, 5])
def test_reader_agrees_with_labelme_shape_to_mask(tmp_path, seed):
    rng = np.random.default_rng(seed)
    shapes = []
    for i in range(40):
        kind = ["polygon", "rectangle", "circle", "line", "linestrip", "point"][i % 6]
        n = {"polygon": int(rng.integers(3, 8)), "linestrip": 4, "point": 1}.get(kind, 2)
        pts = np.round(rng.uniform(-5, 55, (n, 2)), 2).tolist()
        shapes.append(shape(f"c{i % 5}", pts, kind))
    labelme_file(tmp_path / "img.json", shapes, h=40, w=50)
    result, (item,) = read_one(tmp_path)
    values = {c.name: c.value for c in result.classes}
    expected = np.full((40, 50), NOT_LABELLED, np.uint8)
    for s in shapes:
        expected[ORACLE["shape_to_mask"]((40, 50), s["points"], s["shape_type"])] = values[s["label"]]
    assert (item.mask == expected).all()


def test_labelme_3_file_without_shape_type_or_size(tmp_path):
    # labelme 3.x: no shape_type (a polygon), line_color / fill_color keys, no image size
    Image.fromarray(np.zeros((30, 44, 3), np.uint8)).save(tmp_path / "old.jpg")
    doc = {"shapes": [{"label": "bus", "line_color": None, "fill_color": None,
                       "points": [[2.5, 3.25], [20.75, 3.5], [20.5, 18.0]]}],
           "lineColor": [0, 255, 0, 128], "fillColor": [255, 0, 0, 128],
           "imagePath": "old.jpg", "imageData": None}
    (tmp_path / "old.json").write_text(json.dumps(doc, indent=2))
    assert labelme.detect(tmp_path)
    result, (item,) = read_one(tmp_path)
    assert item.image == "old.jpg" and item.mask.shape == (30, 44)
    assert item.mask[5, 18] == 0 and item.mask[15, 5] == NOT_LABELLED
    assert not result.problems


def test_background_first_is_written_for_labelme2voc_and_reads_back(tmp_path):
    m = project_mask()
    m[0:3, :] = NOT_LABELLED                       # not labelled along the top, uncovered
    out = tmp_path / "out"
    labelme.write(out, [ExportItem("frame.png", tmp_path / "none.png", m)], CLASSES, images="none")
    lines = (out / "labels.txt").read_text().splitlines()
    assert lines[:2] == ["__ignore__", "_background_"] and lines[2:] == ["road", "car"]
    doc = json.loads((out / "frame.json").read_text())
    used = {s["label"] for s in doc["shapes"]}
    assert used <= set(lines) and "_background_" in used       # labelme2voc finds every label
    result, (item,) = read_one(out)
    back = {c.value: c.name for c in result.classes}
    assert back[0] == "background"
    assert (item.mask[0:3] == NOT_LABELLED).all()                # not made background
    names = {0: "background", 1: "road", 2: "car"}
    same = np.vectorize(lambda v: names.get(v, "-"))(m) == np.vectorize(lambda v: back.get(v, "-"))(item.mask)
    assert same.all()


def test_hidden_folders_are_not_searched(tmp_path):
    labelme_file(tmp_path / "img.json", [shape("cat", [[1, 1], [9, 1], [9, 9]])])
    (tmp_path / ".workbench").mkdir()
    labelme_file(tmp_path / ".workbench" / "stale.json", [shape("dog", [[1, 1], [9, 1], [9, 9]])])
    result, items = read_one(tmp_path)
    assert [i.image for i in items] == ["img.png"] and [c.name for c in result.classes] == ["cat"]

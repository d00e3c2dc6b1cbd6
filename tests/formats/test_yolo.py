"""YOLO segmentation: Ultralytics and Roboflow layouts, data.yaml names, our export read back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workbench.errors import InputError
from workbench.formats import raster, yolo
from workbench.formats.base import NOT_LABELLED, ExportClass, ExportItem

CAMVID = Path(__file__).resolve().parents[2].parent / "shared" / "camvid"


def image(path: Path, w=50, h=40) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(path)
    return path


def ultralytics(root: Path, names_yaml: str) -> Path:
    """A dataset laid out as Ultralytics documents it (coco8-seg style)."""
    (root / "data.yaml").parent.mkdir(parents=True, exist_ok=True)
    (root / "data.yaml").write_text(
        "# Ultralytics YOLO, coco8-seg style\n"
        f"path: {root / 'nowhere-on-this-machine'}\n"
        "train: images/train\n"
        "val: images/val\n"
        "test:  # optional\n\n"
        f"{names_yaml}")
    image(root / "images" / "train" / "a.jpg")
    image(root / "images" / "val" / "b.png")
    lab = root / "labels"
    (lab / "train").mkdir(parents=True)
    (lab / "val").mkdir(parents=True)
    # a big road polygon, a smaller car on it written first (drawn on top: smaller), a box line
    (lab / "train" / "a.txt").write_text(
        "1 0.2 0.5 0.4 0.5 0.4 0.75 0.2 0.75\n"
        "0 0.0 0.5 1.0 0.5 1.0 1.0 0.0 1.0\n"
        "1 0.1 0.1 0.1 0.1\n")
    (lab / "val" / "b.txt").write_text(
        "0 0.8 0.8 1.3 0.8 1.3 1.3\n"        # partly outside: clipped
        "0 1.5 1.5 1.7 1.5 1.7 1.7\n"        # wholly outside
        "0 0.1 0.1 0.2\n"                    # odd
        "7 0.1 0.1 0.2 0.1 0.2 0.2\n"        # unknown class
        "x 0.1 0.1 0.2 0.1 0.2 0.2\n")       # not a number
    return root


def test_names_as_mapping_and_list():
    assert [(c.name, c.value) for c in yolo.parse_names({0: "road", 1: "car"}, Path("d.yaml"))] == [
        ("road", 0), ("car", 1)]
    assert [(c.name, c.value) for c in yolo.parse_names(["road", "car"], Path("d.yaml"))] == [
        ("road", 0), ("car", 1)]
    with pytest.raises(InputError):
        yolo.parse_names("road car", Path("d.yaml"))


@pytest.mark.parametrize("names", ["names:\n  0: road\n  1: car\n", "names: ['road', 'car']\nnc: 2\n"])
def test_reads_ultralytics_layout(tmp_path, names):
    root = ultralytics(tmp_path / "ds", names)
    assert yolo.detect(root) and yolo.detect(root / "data.yaml")
    result = yolo.read(root, image_size=lambda name: None)
    assert [(c.name, c.value) for c in result.classes] == [("road", 0), ("car", 1)]
    items = {i.image: i for i in result.items}
    a, b = items["a.jpg"], items["b.png"]
    assert a.split == "train" and b.split == "val"
    assert a.mask.shape == (40, 50)
    assert a.mask[39, 0] == 0 and a.mask[19, 0] == NOT_LABELLED
    assert (a.mask[20:30, 10:20] == 1).all() and a.mask[25, 20] == 0     # the car on the road
    assert (a.mask[2:6, 3:7] == 1).all() and a.mask[6, 3] == NOT_LABELLED  # box cx cy w h
    assert b.mask[39, 49] == 0
    reasons = " | ".join(p.reason for p in result.problems if p.file.endswith("b.txt"))
    for bit in ("clipped", "outside", "neither a polygon", "7", "not a class index"):
        assert bit in reasons


def test_reads_roboflow_layout(tmp_path):
    root = tmp_path / "rf"
    root.mkdir()
    (root / "data.yaml").write_text("train: ../train/images\nval: ../valid/images\n\nnc: 1\nnames: ['crack']\n")
    image(root / "train" / "images" / "x_jpg.rf.1234.jpg")
    (root / "train" / "labels").mkdir(parents=True)
    (root / "train" / "labels" / "x_jpg.rf.1234.txt").write_text("0 0.1 0.1 0.9 0.1 0.9 0.9 0.1 0.9\n")
    image(root / "valid" / "images" / "y.jpg")
    (root / "valid" / "labels").mkdir(parents=True)
    (root / "valid" / "labels" / "y.txt").write_text("")
    result = yolo.read(root, image_size=lambda name: None)
    items = {i.image: i for i in result.items}
    assert items["x_jpg.rf.1234.jpg"].split == "train" and items["y.jpg"].split == "val"
    assert items["x_jpg.rf.1234.jpg"].mask[20, 25] == 0
    assert (items["y.jpg"].mask == NOT_LABELLED).all()
    assert not result.problems


def test_no_yaml_and_no_image_size(tmp_path):
    root = tmp_path / "bare"
    (root / "labels").mkdir(parents=True)
    (root / "labels" / "c.txt").write_text("3 0.1 0.1 0.9 0.1 0.9 0.9\n")
    assert yolo.detect(root)
    result = yolo.read(root, image_size=lambda name: None)
    assert list(result.items) == [] and result.classes is None
    assert any("give the size" in p.reason for p in result.problems)
    result = yolo.read(root, image_size=lambda name: (10, 20) if name == "c" else None)
    (item,) = list(result.items)
    assert item.mask.shape == (10, 20) and item.mask[5, 15] == 3


def test_bad_yaml_is_an_input_error(tmp_path):
    (tmp_path / "data.yaml").write_text("names: [a, b\ntrain: x\n")
    with pytest.raises(InputError) as info:
        yolo.read(tmp_path, image_size=lambda name: None)
    assert "not valid YAML" in info.value.problem


CLASSES = [ExportClass("background", 0, (0, 0, 0)), ExportClass("road", 3, (128, 64, 128)),
           ExportClass("car", 7, (64, 0, 128))]


def project_mask() -> np.ndarray:
    m = np.zeros((40, 50), np.uint8)
    m[5:30, 5:40] = 3
    m[12:16, 12:16] = 7
    m[25:35, 30:45] = 7
    m[38, :] = 3
    m[0, 0] = 7
    m[2:4, 45:48] = NOT_LABELLED
    m[18:22, 20:26] = NOT_LABELLED    # a not-labelled hole in the road
    return m


def test_write_then_read(tmp_path):
    src = image(tmp_path / "src" / "f1.png")
    m = project_mask()
    out = tmp_path / "out"
    rep = yolo.write(out, [ExportItem("f1.png", src, m, split="val"), ExportItem("f2.png", src, m)],
                     CLASSES, images="copy")
    assert rep.written == 2
    assert (out / "images" / "val" / "f1.png").is_file() and (out / "labels" / "train" / "f2.txt").is_file()
    text = (out / "data.yaml").read_text()
    assert "train: images/train" in text and "val: images/val" in text
    assert yolo.detect(out)
    result = yolo.read(out, image_size=lambda name: None)
    assert [(c.name, c.value) for c in result.classes] == [("background", 0), ("road", 1), ("car", 2)]
    items = {i.image: i for i in result.items}
    assert items["f1.png"].split == "val" and items["f2.png"].split == "train"
    lut = np.full(256, NOT_LABELLED, np.uint8)
    lut[[0, 1, 2]] = [0, 3, 7]
    for item in items.values():
        assert (lut[item.mask] == m).all()   # the not-labelled hole too: keyhole polygons
    for line in (out / "labels" / "train" / "f2.txt").read_text().splitlines():
        coords = [float(v) for v in line.split()[1:]]
        assert len(coords) >= 6 and len(coords) % 2 == 0 and all(0 <= v <= 1 for v in coords)


def test_labels_only_export_reads_back_by_stem(tmp_path):
    src = image(tmp_path / "src" / "f1.png")
    out = tmp_path / "out"
    yolo.write(out, [ExportItem("f1.png", src, project_mask())], CLASSES, images="none")
    assert not (out / "images").exists()
    result = yolo.read(out, image_size=lambda name: (40, 50) if name == "f1" else None)
    (item,) = list(result.items)
    assert item.image == "f1" and item.split == "train"


@pytest.mark.skipif(not (CAMVID / "trainannot").is_dir(), reason="../shared/camvid not present")
def test_camvid_round_trip_keeps_99_percent(tmp_path):
    paths = sorted((CAMVID / "trainannot").glob("*.png"))[:2]
    masks = {p.name: np.asarray(Image.open(p)).astype(np.uint8) for p in paths}
    classes = [ExportClass(f"c{i}", i, (i, i, i), void=i == 11) for i in range(12)]
    out = tmp_path / "out"
    yolo.write(out, [ExportItem(n, CAMVID / "train" / n, m) for n, m in masks.items()], classes,
               images="none")
    result = yolo.read(out, image_size=lambda name: (360, 480))
    for item in result.items:
        assert raster.agreement(masks[item.image + ".png"], item.mask) >= 0.99


def test_absurd_coordinates_are_a_problem(tmp_path):
    root = tmp_path / "bare"
    (root / "labels").mkdir(parents=True)
    (root / "labels" / "c.txt").write_text("0 0.1 0.1 1e9 0.1 0.9 0.9\n0 0.1 0.1 0.9 0.1 0.9 0.9\n")
    result = yolo.read(root, image_size=lambda name: (10, 20))
    (item,) = list(result.items)
    assert (item.mask == 0).sum() > 0
    assert any("line 1" in p.reason and "beyond" in p.reason for p in result.problems)

"""Index PNG folder + classes.json (CamVid / SegNet layout)."""

from __future__ import annotations

import json
import shutil

import numpy as np
from PIL import Image

from workbench.formats import index
from workbench.formats.base import NOT_LABELLED

from fmt_helpers import export_classes3, export_items, make_images, synthetic_mask


def test_write_then_read_is_exact_with_splits_and_void(tmp_path):
    folder = tmp_path / "images"
    names = make_images(folder, 3)
    masks = {n: synthetic_mask(24, 32, i) for i, n in enumerate(names)}
    out = tmp_path / "out"
    rep = index.write(out, export_items(folder, masks), export_classes3(), images="copy")
    assert rep.written == 3 and not rep.problems
    assert sorted(p.name for p in out.iterdir()) == ["classes.json", "test", "testannot", "train", "trainannot",
                                                     "val", "valannot"]
    assert (out / "train" / "img00.png").read_bytes() == (folder / "img00.png").read_bytes()
    stored = Image.open(out / "trainannot" / "img00.png")
    assert stored.mode == "L"                       # grayscale, as CamVid's
    assert json.loads((out / "classes.json").read_text())["ignore_index"] == 3
    result = index.read(out)
    items = {it.image: it for it in result.items}
    assert not result.problems
    assert [c.name for c in result.classes] == ["sky", "road", "car", "Unlabelled"] and result.classes[3].void
    for n, m in masks.items():
        assert np.array_equal(items[n].mask, m)
    assert {items[n].split for n in names} == {"train", "val", "test"}


def test_reads_the_camvid_layout(camvid, tmp_path):
    root = tmp_path / "camvid"
    (root / "trainannot").mkdir(parents=True)
    (root / "valannot").mkdir()
    shutil.copy(camvid / "classes.json", root)
    shutil.copy(camvid / "trainannot" / "0001TP_006690.png", root / "trainannot")
    shutil.copy(camvid / "valannot" / sorted(p.name for p in (camvid / "valannot").iterdir())[0], root / "valannot")
    result = index.read(root)
    items = list(result.items)
    assert [it.split for it in items] == ["train", "val"]
    assert result.classes[11].name == "Unlabelled" and result.classes[11].void
    src = np.array(Image.open(camvid / "trainannot" / "0001TP_006690.png"))
    assert np.array_equal(items[0].mask, src)
    # the mask folder alone finds classes.json in its parent and its split in its name
    only = index.read(root / "trainannot")
    assert only.classes is not None and [it.split for it in only.items] == ["train"]


def test_rgb_masks_decode_by_colour_and_bad_files_are_named(tmp_path):
    root = tmp_path / "masks"
    root.mkdir()
    (root / "classes.json").write_text(json.dumps({"classes": [
        {"index": 0, "name": "a", "color": [10, 20, 30]}, {"index": 1, "name": "b", "color": [200, 0, 0]}]}))
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[:] = (10, 20, 30)
    rgb[2:, :] = (200, 0, 0)
    rgb[0, 0] = (255, 255, 255)
    Image.fromarray(rgb).save(root / "x.png")
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    bad = rgb.copy()
    bad[1, 1] = (1, 2, 3)
    Image.fromarray(bad).save(root / "y.png")
    result = index.read(root)
    items = {it.image: it.mask for it in result.items}
    assert list(items) == ["x.png"]
    expect = np.zeros((4, 5), np.uint8)
    expect[2:] = 1
    expect[0, 0] = NOT_LABELLED
    assert np.array_equal(items["x.png"], expect)
    problems = {p.file.split("/")[-1]: p.reason for p in result.problems}
    assert set(problems) == {"broken.png", "y.png"} and "(1, 2, 3)" in problems["y.png"]


def test_original_camvid_colour_labels(tmp_path):
    """The original CamVid: label_colors.txt and <stem>_L.png colour masks."""
    from workbench.project import Project
    from workbench.workflows.interchange import import_labels

    labels = tmp_path / "LabeledApproved_full"
    labels.mkdir()
    (tmp_path / "label_colors.txt").write_text("64 128 64\tAnimal\n192 0 128\tArchway\n0 0 0\tVoid\n")
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[:2] = (64, 128, 64)
    rgb[2:, :3] = (192, 0, 128)
    Image.fromarray(rgb).save(labels / "0001TP_006690_L.png")
    result = index.read(labels)
    assert [(c.name, c.void) for c in result.classes] == [("Animal", False), ("Archway", False), ("Void", True)]
    (item,) = list(result.items)
    assert item.mask.tolist() == [[0] * 6, [0] * 6, [1, 1, 1, 2, 2, 2], [1, 1, 1, 2, 2, 2]]
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(images / "0001TP_006690.png")
    with Project.open(images, state_dir=tmp_path / "state") as project:
        rep = import_labels(project, labels)
        assert rep.imported == 1 and project.schema.names == ["Animal", "Archway"]
        label = project.read_label(project.find("0001TP_006690.png").id)
        assert project.schema.by_index(int(label[3, 5])).void

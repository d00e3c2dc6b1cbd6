"""Pascal VOC segmentation: palette PNGs, 255 border, ImageSets splits, class names."""

from __future__ import annotations

import numpy as np
from PIL import Image

from workbench.formats import voc
from workbench.formats.base import NOT_LABELLED

from fmt_helpers import export_classes3, export_items, make_images, synthetic_mask


def test_voc_colour_map_matches_the_devkit():
    # values from the VOC devkit's labelcolormap (VOCdevkit/VOCcode/VOClabelcolormap.m)
    assert voc.voc_color(0) == (0, 0, 0)
    assert voc.voc_color(1) == (128, 0, 0)
    assert voc.voc_color(15) == (192, 128, 128)     # person
    assert voc.voc_color(20) == (0, 64, 128)        # tvmonitor
    assert voc.voc_palette()[255 * 3:] == [224, 224, 192]


def _voc_dataset(root, names_file: str | None = None):
    seg = root / "VOC2012" / "SegmentationClass"
    seg.mkdir(parents=True)
    m = np.zeros((6, 8), np.uint8)
    m[2:4, 2:6] = 15
    m[1, :] = 255                                    # object border
    img = Image.new("P", (8, 6))
    img.putpalette(voc.voc_palette())
    img.frombytes(m.tobytes())
    img.save(seg / "2007_000032.png")
    sets = root / "VOC2012" / "ImageSets" / "Segmentation"
    sets.mkdir(parents=True)
    (sets / "val.txt").write_text("2007_000032\n")
    if names_file:
        (root / "VOC2012" / "class_names.txt").write_text(names_file)
    return m


def test_reads_a_voc_devkit_with_the_21_names(tmp_path):
    m = _voc_dataset(tmp_path)
    result = voc.read(tmp_path)               # VOCdevkit-like folder above VOC2012/
    assert [c.name for c in result.classes] == voc.VOC_NAMES
    assert result.classes[15].name == "person" and result.classes[15].color == (192, 128, 128)
    (item,) = list(result.items)
    assert item.split == "val" and item.image == "2007_000032.jpg"
    assert np.array_equal(item.mask, m) and (item.mask == NOT_LABELLED).sum() == 8


def test_class_names_txt_wins(tmp_path):
    _voc_dataset(tmp_path, "_background_\n" + "\n".join(f"c{i}" for i in range(1, 21)) + "\n")
    result = voc.read(tmp_path / "VOC2012")
    assert result.classes[0].name == "background" and result.classes[15].name == "c15"


def test_write_then_read_is_exact(tmp_path):
    folder = tmp_path / "images"
    names = make_images(folder, 3)
    masks = {n: synthetic_mask(24, 32, i) for i, n in enumerate(names)}
    out = tmp_path / "voc"
    rep = voc.write(out, export_items(folder, masks), export_classes3(), images="copy")
    assert rep.written == 3
    assert (out / "class_names.txt").read_text() == "sky\nroad\ncar\n"
    assert (out / "ImageSets" / "Segmentation" / "val.txt").read_text() == "img01\n"
    assert "img00" in (out / "ImageSets" / "Segmentation" / "trainval.txt").read_text()
    png = Image.open(out / "SegmentationClass" / "img00.png")
    assert png.mode == "P" and png.getpalette()[3:6] == [128, 0, 0]
    result = voc.read(out)
    got = {it.image: it for it in result.items}
    for n, m in masks.items():
        expect = m.copy()
        expect[expect == 3] = NOT_LABELLED          # VOC's only void is 255
        assert np.array_equal(got[n].mask, expect)
    assert [got[n].split for n in names] == ["train", "val", "test"]


def test_cvat_segmentation_mask_export_with_labelmap_and_rgb_masks(tmp_path):
    # CVAT's "Segmentation mask 1.1": labelmap.txt, RGB colour masks, ImageSets/Segmentation/default.txt
    root = tmp_path / "cvat-masks"
    (root / "SegmentationClass").mkdir(parents=True)
    (root / "labelmap.txt").write_text("# label:color_rgb:parts:actions\nbackground:0,0,0::\n"
                                       "car:250,50,83::\nroad:61,245,61::\n")
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[1:3, 1:3] = (250, 50, 83)
    rgb[3, :] = (61, 245, 61)
    rgb[0, 5] = (224, 224, 192)                      # a border pixel
    Image.fromarray(rgb).save(root / "SegmentationClass" / "frame_000001.png")
    (root / "ImageSets" / "Segmentation").mkdir(parents=True)
    (root / "ImageSets" / "Segmentation" / "default.txt").write_text("frame_000001\n")
    result = voc.read(root)
    assert [(c.name, c.value, c.color) for c in result.classes] == [
        ("background", 0, (0, 0, 0)), ("car", 1, (250, 50, 83)), ("road", 2, (61, 245, 61))]
    (item,) = list(result.items)
    assert item.split is None and item.mask[1, 1] == 1 and item.mask[3, 0] == 2 and item.mask[0, 0] == 0
    assert item.mask[0, 5] == NOT_LABELLED


def test_labelme2voc_layout(tmp_path):
    # labelme's examples/semantic_segmentation/labelme2voc.py: class_names.txt, SegmentationClass/*.npy
    root = tmp_path / "data_dataset_voc"
    (root / "SegmentationClass").mkdir(parents=True)
    (root / "class_names.txt").write_text("_background_\nperson\nbottle\n")
    arr = np.zeros((3, 4), np.int32)
    arr[0, 0] = -1
    arr[1:, 2:] = 2
    np.save(root / "SegmentationClass" / "2011_000003.npy", arr)
    result = voc.read(root)
    (item,) = list(result.items)
    assert [c.name for c in result.classes] == ["background", "person", "bottle"]
    assert item.mask.tolist() == [[255, 0, 0, 0], [0, 0, 2, 2], [0, 0, 2, 2]]
    # ... and its SegmentationClassPNG/ palette PNGs when they are there
    png = root / "SegmentationClassPNG"
    png.mkdir()
    img = Image.new("P", (4, 3))
    img.putpalette(voc.voc_palette())
    img.frombytes(np.where(arr < 0, 255, arr).astype(np.uint8).tobytes())
    img.save(png / "2011_000003.png")
    (item,) = list(voc.read(root).items)
    assert item.source.endswith(".png") and item.mask.tolist()[1] == [0, 0, 2, 2]

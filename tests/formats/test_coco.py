"""COCO JSON: polygons, RLE (compressed and uncompressed), overlaps, iscrowd; pycocotools as the oracle."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from workbench.errors import InputError
from workbench.formats import coco
from workbench.formats.base import NOT_LABELLED

from fmt_helpers import export_classes3, export_items, make_images, synthetic_mask

H, W = 20, 30


def _doc(anns, cats=None, images=None):
    return {"images": images or [{"id": 1, "file_name": "a.jpg", "height": H, "width": W}],
            "annotations": anns,
            "categories": cats or [{"id": 1, "name": "cat"}, {"id": 5, "name": "dog"}]}


def _read_one(tmp_path, doc, name="instances_val.json"):
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    result = coco.read(path)
    items = list(result.items)
    return result, items


def test_polygon_rle_and_uncompressed_rle(tmp_path):
    box = np.zeros((H, W), np.uint8)
    box[5:10, 20:28] = 1
    rle = mask_utils.encode(np.asfortranarray(box))
    compressed = {"size": [H, W], "counts": rle["counts"].decode()}
    # uncompressed RLE: column-major run lengths, starting with zeros
    flat = box.T.ravel()
    runs, cur, n = [], 0, 0
    for v in flat:
        if v != cur:
            runs.append(n)
            cur, n = v, 0
        n += 1
    runs.append(n)
    uncompressed = {"size": [H, W], "counts": runs}
    doc = _doc([
        {"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0,
         "segmentation": [[2, 2, 12, 2, 12, 12, 2, 12]]},
        {"id": 2, "image_id": 1, "category_id": 5, "iscrowd": 0, "segmentation": compressed},
        {"id": 3, "image_id": 1, "category_id": 1, "iscrowd": 1, "segmentation": uncompressed},
    ])
    result, (item,) = _read_one(tmp_path, doc)
    assert [(c.name, c.value) for c in result.classes] == [("cat", 0), ("dog", 1)]
    assert item.split == "val" and item.image == "a.jpg" and not result.problems
    oracle = COCO(str(tmp_path / "instances_val.json"))
    poly = oracle.annToMask(oracle.anns[1]).astype(bool)
    assert np.array_equal(item.mask == 0, poly | box.astype(bool))   # the crowd RLE painted last, as cat
    assert not (item.mask == 1).any()                                # covered by the later crowd region
    assert (item.mask[~(poly | box.astype(bool))] == NOT_LABELLED).all()


def test_later_annotation_covers_earlier(tmp_path):
    doc = _doc([
        {"id": 1, "image_id": 1, "category_id": 5, "segmentation": [[0, 0, 20, 0, 20, 20, 0, 20]]},
        {"id": 2, "image_id": 1, "category_id": 1, "segmentation": [[5, 5, 10, 5, 10, 10, 5, 10]]},
    ])
    _, (item,) = _read_one(tmp_path, doc)
    assert item.mask[7, 7] == 0 and item.mask[2, 2] == 1


def test_problems_name_the_file_and_the_annotation(tmp_path):
    doc = _doc([
        {"id": 7, "image_id": 1, "category_id": 99, "segmentation": [[0, 0, 5, 0, 5, 5]]},
        {"id": 8, "image_id": 1, "category_id": 1, "segmentation": [[-5, 0, 50, 0, 50, 5]]},
        {"id": 9, "image_id": 1, "category_id": 1, "segmentation": [], "bbox": [0, 0, 2, 2]},
        {"id": 10, "image_id": 1, "category_id": 1, "segmentation": {"size": [3, 3], "counts": "abc"}},
    ])
    result, (item,) = _read_one(tmp_path, doc)
    reasons = " | ".join(f"{p.file}: {p.reason}" for p in result.problems)
    assert "instances_val.json: a.jpg" in reasons
    assert "annotation 7: unknown category_id 99" in reasons
    assert "outside the image" in reasons
    assert "annotation 9: no segmentation" in reasons
    assert "annotation 10: RLE size [3, 3]" in reasons
    assert (item.mask == 0).any()


def test_export_is_decoded_exactly_by_pycocotools(tmp_path):
    folder = tmp_path / "images"
    names = make_images(folder, 3)
    masks = {n: synthetic_mask(24, 32, i) for i, n in enumerate(names)}
    out = tmp_path / "coco"
    rep = coco.write(out, export_items(folder, masks), export_classes3(), images="copy")
    assert rep.written == 3 and (out / "images" / "val" / "img01.png").is_file()
    for split in ("train", "val", "test"):
        path = out / "annotations" / f"instances_{split}.json"
        oracle = COCO(str(path))                                   # the reference implementation
        assert {c["name"] for c in oracle.loadCats(oracle.getCatIds())} == {"sky", "road", "car"}
        for img in oracle.dataset["images"]:
            got = np.full((img["height"], img["width"]), NOT_LABELLED, np.uint8)
            for ann in oracle.loadAnns(oracle.getAnnIds(imgIds=[img["id"]])):
                got[oracle.annToMask(ann).astype(bool)] = ann["category_id"] - 1
                assert ann["area"] == oracle.annToMask(ann).sum()
            expect = masks[img["file_name"]].copy()
            expect[expect == 3] = NOT_LABELLED                     # void: no annotation
            assert np.array_equal(got, expect)
    back = {it.image: it for it in coco.read(out).items}           # and our reader agrees
    assert sorted(back) == sorted(names) and back["img02.png"].split == "test"


def test_roboflow_supercategory_heading_is_not_a_class(tmp_path):
    doc = _doc([{"id": 1, "image_id": 1, "category_id": 1, "segmentation": [[0, 0, 5, 0, 5, 5]]}],
               cats=[{"id": 0, "name": "cells", "supercategory": "none"},
                     {"id": 1, "name": "cell", "supercategory": "cells"},
                     {"id": 2, "name": "debris", "supercategory": "cells"}])
    result, (item,) = _read_one(tmp_path, doc, "_annotations.coco.json")
    assert [c.name for c in result.classes] == ["cell", "debris"] and item.split is None
    assert item.mask[1, 3] == 0


def test_roboflow_folder_layout_gives_splits(tmp_path):
    for split in ("train", "valid"):
        folder = tmp_path / "rf" / split
        folder.mkdir(parents=True)
        doc = _doc([{"id": 1, "image_id": 1, "category_id": 1, "segmentation": [[0, 0, 5, 0, 5, 5]]}],
                   images=[{"id": 1, "file_name": f"{split}.jpg", "height": H, "width": W}])
        (folder / "_annotations.coco.json").write_text(json.dumps(doc))
    from workbench.formats import registry

    assert registry.detect(tmp_path / "rf").name == "coco"
    items = list(coco.read(tmp_path / "rf").items)
    assert sorted((it.image, it.split) for it in items) == [("train.jpg", "train"), ("valid.jpg", "val")]


def test_noise_masks_survive_the_rle_round_trip(tmp_path):
    from workbench.formats.base import ExportClass, ExportItem

    rng = np.random.default_rng(3)
    classes = [ExportClass(f"c{i}", i, (i, i, i)) for i in range(6)]
    masks = {f"n{i}.png": rng.choice(np.array([0, 1, 2, 3, 4, 5, 255], np.uint8), size=(37, 53))
             for i in range(3)}
    items = [ExportItem(n, tmp_path / n, m, "val") for n, m in masks.items()]
    coco.write(tmp_path / "out", items, classes, images="none")
    oracle = COCO(str(tmp_path / "out" / "annotations" / "instances_val.json"))
    for img in oracle.dataset["images"]:
        got = np.full((37, 53), NOT_LABELLED, np.uint8)
        for ann in oracle.loadAnns(oracle.getAnnIds(imgIds=[img["id"]])):
            got[oracle.annToMask(ann).astype(bool)] = ann["category_id"] - 1
        assert np.array_equal(got, masks[img["file_name"]])


def test_polygon_export_is_decoded_by_pycocotools(tmp_path):
    """Polygons (keyhole rings for holes): pycocotools paints the project's pixels back."""
    from workbench.formats import raster

    folder = tmp_path / "images"
    names = make_images(folder, 3)
    masks = {n: synthetic_mask(24, 32, i) for i, n in enumerate(names)}
    out = tmp_path / "coco"
    coco.write(out, export_items(folder, masks), export_classes3(), images="none", segmentation="polygons")
    for split in ("train", "val", "test"):
        oracle = COCO(str(out / "annotations" / f"instances_{split}.json"))
        for img in oracle.dataset["images"]:
            anns = oracle.loadAnns(oracle.getAnnIds(imgIds=[img["id"]]))
            assert anns and all(isinstance(a["segmentation"], list) for a in anns)
            got = np.full((img["height"], img["width"]), NOT_LABELLED, np.uint8)
            for ann in anns:                                       # in file order, as our reader paints
                got[oracle.annToMask(ann).astype(bool)] = ann["category_id"] - 1
            expect = masks[img["file_name"]].copy()
            expect[expect == 3] = NOT_LABELLED
            assert raster.agreement(expect, got) >= 0.99
            assert np.array_equal(got, expect)                     # exact on these masks
    with pytest.raises(InputError, match="rle or polygons"):
        coco.write(out, [], export_classes3(), segmentation="lines")

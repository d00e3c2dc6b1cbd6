"""Cityscapes: labelIds, polygons (json2labelImg's rule), the built-in label table."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from workbench.formats import cityscapes
from workbench.formats.base import NOT_LABELLED, ExportClass, ExportItem

from fmt_helpers import export_classes3, export_items, make_images, synthetic_mask


def test_label_table_matches_cityscapesscripts():
    labels = pytest.importorskip("cityscapesscripts.helpers.labels")
    ours = [(lab.name, lab.id, lab.train_id, lab.category, lab.ignore_in_eval, lab.color)
            for lab in cityscapes.LABELS]
    theirs = [(lab.name, lab.id, lab.trainId, lab.category, lab.ignoreInEval, lab.color) for lab in labels.labels]
    assert ours == theirs


def _polygons(path, objects, h=40, w=60):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"imgHeight": h, "imgWidth": w, "objects": objects}))


OBJECTS = [
    {"label": "road", "polygon": [[0, 20], [59, 20], [59, 39], [0, 39]]},
    {"label": "cargroup", "polygon": [[10, 15], [30, 15], [30, 30], [10, 30]]},
    {"label": "person", "polygon": [[20.5, 5], [25.2, 5], [25, 35.7], [20, 35]]},
    {"label": "license plate", "polygon": [[12, 25], [16, 25], [16, 27], [12, 27]]},
    {"label": "sky", "polygon": [[0, 0], [5, 0], [5, 5]], "deleted": 1},
]


def test_polygons_rasterise_as_json2labelimg(tmp_path):
    path = tmp_path / "gtFine" / "val" / "aachen" / "aachen_000001_000019_gtFine_polygons.json"
    _polygons(path, OBJECTS)
    result = cityscapes.read(tmp_path)
    (item,) = list(result.items)
    assert item.image == "aachen_000001_000019_leftImg8bit.png" and item.split == "val"
    ids = item.mask.copy()
    ids[ids == NOT_LABELLED] = 0
    assert ids[30, 5] == 7 and ids[18, 12] == 26 and ids[10, 22] == 24 and ids[0, 0] == 0
    pytest.importorskip("pyquaternion")
    j2l = pytest.importorskip("cityscapesscripts.preparation.json2labelImg")
    from cityscapesscripts.helpers.annotation import Annotation

    annotation = Annotation()
    annotation.fromJsonFile(str(path))
    oracle = np.asarray(j2l.createLabelImage(annotation, "ids"))
    assert np.array_equal(ids, oracle)


def test_labelids_win_and_unlabeled_is_not_labelled(tmp_path):
    folder = tmp_path / "gtFine" / "train" / "bremen"
    folder.mkdir(parents=True)
    ids = np.zeros((4, 6), np.uint8)
    ids[2:] = 7
    ids[0, 0] = 1                                        # ego vehicle: a void class
    Image.fromarray(ids).save(folder / "bremen_000000_000019_gtFine_labelIds.png")
    _polygons(folder / "bremen_000000_000019_gtFine_polygons.json", OBJECTS)
    result = cityscapes.read(tmp_path / "gtFine")
    (item,) = list(result.items)
    assert item.mask[3, 3] == 7 and item.mask[1, 1] == NOT_LABELLED and item.mask[0, 0] == 1
    names = {c.value: c for c in result.classes}
    assert names[7].name == "road" and not names[7].void and names[1].void and 0 not in names


def test_export_round_trip_with_classes_outside_the_table(tmp_path):
    folder = tmp_path / "images"
    names = make_images(folder, 3)
    masks = {n: synthetic_mask(24, 32, i) for i, n in enumerate(names)}
    out = tmp_path / "cs"
    rep = cityscapes.write(out, export_items(folder, masks), export_classes3(), images="link")
    assert rep.written == 3 and not rep.notes           # sky, road, car: all in the table
    gt = out / "gtFine" / "val" / "workbench" / "img01_gtFine_labelIds.png"
    ids = np.array(Image.open(gt))
    assert set(np.unique(ids)) <= {0, 23, 7, 26} and (ids == 26).any()     # sky, road, car by the table
    train_ids = np.array(Image.open(gt.with_name("img01_gtFine_labelTrainIds.png")))
    assert np.array_equal(train_ids, np.vectorize({0: 255, 23: 10, 7: 0, 26: 13}.get)(ids))
    color = np.array(Image.open(gt.with_name("img01_gtFine_color.png")))
    assert tuple(color[ids == 26][0]) == (0, 0, 142)
    poly = json.loads(gt.with_name("img01_gtFine_polygons.json").read_text())
    assert poly["imgHeight"] == 24 and {o["label"] for o in poly["objects"]} >= {"road", "car"}
    link = out / "leftImg8bit" / "val" / "workbench" / "img01_leftImg8bit.png"
    assert link.is_symlink() and link.resolve() == (folder / "img01.png").resolve()
    back = {it.image: it for it in cityscapes.read(out).items}
    for n, m in masks.items():
        expect = m.copy()
        expect[expect == 3] = NOT_LABELLED
        got = back[n.replace(".png", "_leftImg8bit.png")].mask
        lut = {0: 23, 1: 7, 2: 26, NOT_LABELLED: NOT_LABELLED}
        assert np.array_equal(got, np.vectorize(lut.get)(expect))


def test_extra_classes_get_free_ids_and_come_back(tmp_path):
    classes = [ExportClass("Road", 0, (1, 1, 1)), ExportClass("lane marking", 1, (9, 9, 9))]
    m = np.array([[0, 1], [1, 255]], np.uint8)
    (tmp_path / "a.png").write_bytes(b"")
    out = tmp_path / "cs"
    cityscapes.write(out, [ExportItem("a.png", tmp_path / "a.png", m, "train")], classes, images="none")
    result = cityscapes.read(out)
    assert [(c.name, c.value) for c in result.classes] == [("Road", 7), ("lane marking", 34)]
    (item,) = list(result.items)
    assert item.mask.tolist() == [[7, 34], [34, NOT_LABELLED]]

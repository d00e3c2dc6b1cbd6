"""The format registry: names, lookup and detection of a source's format."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from workbench.errors import WorkbenchError
from workbench.formats import registry


def _png(path, value=1):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((4, 4), value, np.uint8)).save(path)


def test_my_formats_are_registered_and_listed_in_order():
    names = registry.names()
    for n in ("index", "voc", "coco", "cityscapes"):
        assert n in names
    assert names == [n for n in registry.NAMES if n in names]
    assert registry.get("VOC").name == "voc"


def test_unknown_format_lists_the_valid_ones():
    with pytest.raises(WorkbenchError) as err:
        registry.get("pascal")
    assert "unknown format 'pascal'" in str(err.value) and "voc" in str(err.value)


def test_detects_each_layout(tmp_path):
    voc = tmp_path / "VOCdevkit" / "VOC2012"
    _png(voc / "SegmentationClass" / "a.png")
    assert registry.detect(tmp_path / "VOCdevkit").name == "voc"
    assert registry.detect(voc / "SegmentationClass").name == "voc"

    city = tmp_path / "city"
    _png(city / "gtFine" / "val" / "aachen" / "aachen_000000_000019_gtFine_labelIds.png", 7)
    assert registry.detect(city).name == "cityscapes"
    assert registry.detect(city / "gtFine").name == "cityscapes"

    coco = tmp_path / "coco.json"
    coco.write_text(json.dumps({"images": [], "annotations": [], "categories": []}))
    assert registry.detect(coco).name == "coco"

    cam = tmp_path / "camvid"
    _png(cam / "trainannot" / "a.png")
    assert registry.detect(cam).name == "index"
    assert registry.detect(cam / "trainannot").name == "index"


def test_nothing_and_several_get_clear_messages(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert registry.detect(empty) is None
    with pytest.raises(WorkbenchError) as err:
        registry.detect_or_explain(empty)
    assert str(empty) in str(err.value) and "--format" in str(err.value)

    both = tmp_path / "both"
    _png(both / "SegmentationClass" / "a.png")
    _png(both / "gtFine" / "train" / "x" / "x_000000_000000_gtFine_labelIds.png")
    with pytest.raises(WorkbenchError) as err:
        registry.detect(both)
    assert "voc" in str(err.value) and "cityscapes" in str(err.value) and str(both) in str(err.value)

    with pytest.raises(WorkbenchError, match="not found"):
        registry.detect(tmp_path / "missing")
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    with pytest.raises(WorkbenchError, match="this file"):
        registry.detect_or_explain(notes)

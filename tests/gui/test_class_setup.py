"""Class setup in the app (issue 10): load classes from a classes.json or a names file, mark a
class void, and choose classes past the number keys by name (key C)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt, QTimer
from PySide6.QtTest import QTest

from workbench.classes import UNLABELLED, ClassSchema
from workbench.gui.class_setup import schema_from_file, with_void
from workbench.gui.palette_panel import PalettePanel
from workbench.project import Project

H, W = 12, 15
CAMVID = ["Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car",
          "Pedestrian", "Bicyclist", "Unlabelled"]


def _images(folder: Path, n: int = 2) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(np.full((H, W, 3), 40 * i, np.uint8)).save(folder / f"0001TP_00{i}.png")
    return folder


@pytest.fixture
def blank(tmp_path: Path):
    """A new CamVid-like folder: images, no labels, the default classes."""
    p = Project.open(_images(tmp_path / "camvid"))
    yield p
    p.close()


@pytest.fixture
def panel(qtbot):
    widget = PalettePanel()
    qtbot.addWidget(widget)
    widget.asked = []
    widget.confirm = lambda title, text: widget.asked.append(f"{title}: {text}") or True
    return widget


def _names_file(tmp_path: Path, names: list[str], name: str = "class_names.txt") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(names) + "\n", encoding="utf-8")
    return path


def test_a_camvid_user_loads_a_names_file_and_marks_unlabelled_void(panel, blank, tmp_path, qtbot):
    panel.set_project(blank)
    errors = []
    panel.failed.connect(errors.append)
    assert panel.load_classes(str(_names_file(tmp_path, CAMVID)))
    assert blank.schema.names == CAMVID and blank.schema.num_classes == 12
    assert "Use the 12 classes of class_names.txt?" in panel.asked[-1]
    panel.select_class(11)
    QTest.mouseClick(panel.void_button, Qt.MouseButton.LeftButton)      # a real click
    assert blank.schema.num_classes == 11
    unlabelled = blank.schema.by_name("Unlabelled")
    assert unlabelled.void and unlabelled.index == 11
    assert 11 in blank.schema.ignore_values
    assert "(void, not trained)" in panel.list.item(panel.list.count() - 1).text()
    assert "Mark 'Unlabelled' void?" in panel.asked[-1]
    assert not errors
    # classes.json on disk says so (what a person made is in files)
    data = json.loads(blank.classes_path.read_text())
    assert [c.get("void", False) for c in data["classes"]][-1] is True


def test_a_classes_json_brings_its_void_class_and_colours(panel, blank, tmp_path):
    schema = ClassSchema.default(CAMVID[:3])
    data = schema.to_dict()
    data["classes"].append({"index": 3, "name": "Unlabelled", "color": [0, 0, 0], "void": True})
    data["classes"][0]["color"] = [128, 128, 128]
    path = tmp_path / "classes.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    panel.set_project(blank)
    assert panel.load_classes(str(path))
    assert blank.schema.num_classes == 3 and blank.schema.by_name("Unlabelled").void
    assert blank.schema.by_name("Sky").color == (128, 128, 128)


def test_loading_keeps_pixels_of_classes_matched_by_name_and_refuses_dropping_used_ones(panel, tmp_path):
    p = Project.open(_images(tmp_path / "imgs", 1), schema=ClassSchema.default(["Sky", "Road", "Car"]))
    try:
        image = p.images()[0].id
        mask = np.tile(np.array([0, 1, 2], np.uint8), (H, W // 3))
        p.save_label(image, mask)
        panel.set_project(p)
        errors = []
        panel.failed.connect(errors.append)
        # Same names in another order plus a new class: every pixel keeps its class.
        assert panel.load_classes(str(_names_file(tmp_path, ["Road", "Car", "Sky", "Tree"])))
        assert p.schema.names == ["Road", "Car", "Sky", "Tree"]
        saved = p.read_label(image)
        assert (saved[mask == 0] == p.schema.by_name("Sky").index).all()
        assert (saved[mask == 1] == p.schema.by_name("Road").index).all()
        assert "Kept by name" in panel.asked[-1]
        # A file without "Car", which the label uses: refused, nothing changes.
        before = p.schema.names
        assert not panel.load_classes(str(_names_file(tmp_path, ["Road", "Sky", "Tree"], "other.txt")))
        assert p.schema.names == before and errors and "Could not" in errors[-1]
        assert (p.read_label(image) == saved).all()
    finally:
        p.close()


def test_a_bad_class_file_names_the_file(panel, blank, tmp_path):
    panel.set_project(blank)
    before = blank.schema.names
    errors = []
    panel.failed.connect(errors.append)
    bad = tmp_path / "classes.json"
    bad.write_text("{not json", encoding="utf-8")
    assert not panel.load_classes(str(bad))
    assert "classes.json" in errors[-1] and "JSON" in errors[-1]
    assert blank.schema.names == before


def test_marking_a_middle_class_void_moves_it_last_and_keeps_every_pixel(panel, tmp_path):
    p = Project.open(_images(tmp_path / "imgs", 1), schema=ClassSchema.default(["Sky", "Road", "Car"]))
    try:
        image = p.images()[0].id
        mask = np.tile(np.array([0, 1, 2, UNLABELLED, 1], np.uint8), (H, W // 5))
        p.save_label(image, mask)
        panel.set_project(p)
        panel.select_class(1)                                          # Road
        panel.toggle_void_current()
        assert "first moves to index 2" in panel.asked[-1]
        road = p.schema.by_name("Road")
        assert road.void and road.index == 2 and p.schema.num_classes == 2
        saved = p.read_label(image)
        for old, name in ((0, "Sky"), (1, "Road"), (2, "Car")):
            assert (saved[mask == old] == p.schema.by_name(name).index).all()
        assert (saved[mask == UNLABELLED] == UNLABELLED).all()
        panel.select_class(2)
        panel.toggle_void_current()                                    # and trained again
        assert not p.schema.by_name("Road").void and p.schema.num_classes == 3
    finally:
        p.close()


def test_void_rules_are_explained():
    schema = ClassSchema.default(["a", "b", "c"])
    with pytest.raises(ValueError, match="only the last trained class"):
        with_void(schema, 0, True)
    one = ClassSchema.default(["a"])
    with pytest.raises(ValueError, match="at least one class"):
        with_void(one, 0, True)


def test_schema_from_file_reads_labelme_labels_txt(tmp_path):
    path = _names_file(tmp_path, ["__ignore__", "_background_", "person", "car"], "labels.txt")
    schema = schema_from_file(path, ClassSchema.default(["background", "x"]))
    assert schema.names == ["background", "person", "car"]
    assert schema.by_name("background").id == ClassSchema.default(["background", "x"]).by_name("background").id


def test_load_and_void_are_refused_while_a_retrain_runs(panel, blank, tmp_path):
    panel.set_project(blank)
    panel.set_locked("a Retrain is running")
    assert not panel.load_button.isEnabled() and not panel.void_button.isEnabled()
    assert panel.pick_button.isEnabled()                               # choosing a class stays possible
    errors = []
    panel.failed.connect(errors.append)
    assert not panel.load_classes(str(_names_file(tmp_path, CAMVID)))
    assert "a Retrain is running" in errors[-1]


def test_key_k_opens_a_picker_that_finds_class_ten_and_above_by_name(make_window, tmp_path, qtbot):
    folder = _images(tmp_path / "camvid")
    Project.open(folder, schema=ClassSchema.default(CAMVID)).close()
    window = make_window(folder)
    typed = []

    def answer() -> None:
        picker = window.palette.picker
        if picker is None or not picker.isVisible():
            QTimer.singleShot(20, answer)
            return
        QTest.keyClicks(picker.search, "bicy")
        typed.append([picker.list.item(r).text() for r in range(picker.list.count())
                      if not picker.list.item(r).isHidden()])
        QTest.keyClick(picker.search, Qt.Key.Key_Return)

    QTimer.singleShot(0, answer)
    QTest.keyClick(window, Qt.Key.Key_K)
    assert typed == [["10: Bicyclist"]]
    assert window.palette.current_class() == 10
    assert window.canvas.current_class == 10
    from workbench.gui.shortcuts import rows_for_help

    assert any(keys == "K" and "Choose class" in cmd for _g, cmd, keys in rows_for_help())   # shown in Help

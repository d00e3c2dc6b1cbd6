"""File > Import labels… and File > Export…: the dialogs run the interchange workflow in a worker,
show the detected format and the class mapping, and keep their summary on screen (issue 10)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from workbench.classes import UNLABELLED, ClassSchema
from workbench.project import Project, Status

H, W = 12, 16
CLASSES = {"name": "mini CamVid", "ignore_index": 3, "classes": [
    {"index": 0, "name": "Sky", "color": [128, 128, 128]},
    {"index": 1, "name": "Road", "color": [128, 64, 128]},
    {"index": 2, "name": "Car", "color": [64, 0, 128]},
    {"index": 3, "name": "Unlabelled", "color": [0, 0, 0], "void": True}]}


def _mask(i: int) -> np.ndarray:
    m = np.zeros((H, W), np.uint8)
    m[H // 2:] = 1
    m[:3, :3 + i] = 2
    m[-1, -1] = 3
    return m


@pytest.fixture
def dataset(tmp_path: Path) -> tuple[Path, Path]:
    """(image folder, CamVid-style label root with trainannot/ + classes.json) for 3 images."""
    images, root = tmp_path / "images", tmp_path / "labels"
    images.mkdir()
    (root / "trainannot").mkdir(parents=True)
    for i in range(3):
        name = f"0001TP_00{i}690.png"
        Image.fromarray(np.full((H, W, 3), 60 * i, np.uint8)).save(images / name)
        Image.fromarray(_mask(i)).save(root / "trainannot" / name)
    (root / "classes.json").write_text(json.dumps(CLASSES), encoding="utf-8")
    return images, root


def _mapping(dialog) -> dict[str, str]:
    """{dataset class: what it becomes} as the dialog's table shows it."""
    return {dialog.mapping.item(r, 0).text(): dialog.mapping.item(r, 2).text() for r in range(dialog.mapping.rowCount())}


def _click(button) -> None:
    QTest.mouseClick(button, Qt.MouseButton.LeftButton)


def _import(dialog, qtbot) -> None:
    """Click Import and wait until the worker is done (its report shown, the dialog usable again)."""
    with qtbot.waitSignals([dialog.imported, dialog.progress.busyChanged], timeout=60000,
                           check_params_cbs=[None, lambda busy: not busy]):
        _click(dialog.import_button)


def _open_import(window, qtbot, source: Path):
    window.actions_by_id["import_labels"].trigger()           # File > Import labels…
    dialog = window.import_dialog
    assert dialog.isVisible()
    with qtbot.waitSignal(dialog.progress.busyChanged, timeout=60000, check_params_cb=lambda busy: not busy):
        dialog.set_source(source)
    return dialog


def test_import_detects_the_format_shows_the_mapping_and_keeps_the_summary(make_window, dataset, qtbot):
    images, root = dataset
    window = make_window(images)
    dialog = _open_import(window, qtbot, root)
    assert "Index PNG" in dialog.detected_label.text() and "3 mask(s)" in dialog.detected_label.text()
    assert "detected" in dialog.detected_label.text()
    rows = [[dialog.mapping.item(r, c).text() for c in range(3)] for r in range(dialog.mapping.rowCount())]
    assert rows[0] == ["Sky", "0", "new class 0"] and rows[3][0] == "Unlabelled" and "(void)" in rows[3][2]
    _import(dialog, qtbot)
    project = window.project
    assert [c.name for c in project.schema.classes] == ["Sky", "Road", "Car", "Unlabelled"]
    assert project.schema.by_name("Unlabelled").void
    assert all(r.status == Status.VERIFIED and r.has_label for r in project.images())
    rec = project.find("0001TP_001690")
    assert (project.read_label(rec.id) == _mask(1)).all()
    text = dialog.summary.toPlainText()
    assert "imported 3 of 3" in text and "classes taken from the dataset" in text
    qtbot.wait(50)
    assert dialog.isVisible() and "imported 3 of 3" in dialog.summary.toPlainText()   # stays on screen
    assert window.palette.list.count() == 4                                           # the app follows
    assert window.list_panel.proxy.index(0, 1).data() == "verified"
    _click(dialog.close_button)
    assert not dialog.isVisible()


def test_a_class_the_project_lacks_is_named_with_its_files_and_a_persons_label_is_kept(make_window, dataset,
                                                                                        qtbot):
    images, root = dataset
    project = Project.open(images, schema=ClassSchema.default(["Sky", "Road"]))
    person = np.full((H, W), UNLABELLED, np.uint8)
    person[0, 0] = 1
    project.save_label(project.find("0001TP_000690").id, person, status=Status.EDITED, source="person")
    project.close()
    window = make_window(images)
    dialog = _open_import(window, qtbot, root)
    rows = _mapping(dialog)
    assert rows["Road"] == "1: Road" and rows["Car"].startswith("NOT IN THE PROJECT")
    _import(dialog, qtbot)
    text = dialog.summary.toPlainText()
    assert "Car: 3 file(s)" in text and "kept 1 label(s) made or changed by a person" in text
    assert "0001TP_000690" in text
    assert (window.project.read_label(window.project.find("0001TP_000690").id) == person).all()
    # The source's class the project lacks can be added from the dialog, then imported.
    assert dialog.add_missing_button.isVisible() and "1 missing" in dialog.add_missing_button.text()
    _click(dialog.add_missing_button)
    project = window.project
    car = project.schema.by_name("Car")
    assert car is not None and not car.void, dialog.summary.toPlainText()
    assert any("Car" in window.palette.list.item(r).text() for r in range(window.palette.list.count()))
    assert not dialog.add_missing_button.isVisible()
    rows = _mapping(dialog)
    assert rows["Car"] == f"{car.index}: Car"
    _import(dialog, qtbot)
    again = project.read_label(project.find("0001TP_001690").id)
    assert (again[_mask(1) == 2] == car.index).all()


def test_the_metrics_panel_button_opens_the_dialog_preset_to_ground_truth(make_window, dataset, qtbot):
    images, root = dataset
    window = make_window(images)
    _click(window.metrics_panel.import_button)
    dialog = window.import_dialog
    assert dialog.isVisible() and dialog.as_combo.currentData() == "ground-truth"
    with qtbot.waitSignal(dialog.progress.busyChanged, timeout=60000, check_params_cb=lambda busy: not busy):
        dialog.set_source(root / "trainannot")
    _import(dialog, qtbot)
    project = window.project
    assert all(r.has_ground_truth and not r.has_label for r in project.images())
    assert "ground-truth masks" in dialog.summary.toPlainText()


def test_an_unreadable_source_is_explained_in_the_dialog(make_window, dataset, qtbot, tmp_path):
    images, _root = dataset
    window = make_window(images)
    empty = tmp_path / "nothing here"
    empty.mkdir()
    dialog = _open_import(window, qtbot, empty)
    assert "Cannot read it" in dialog.detected_label.text()
    assert "nothing here" in dialog.summary.toPlainText()


def test_cancel_stops_the_import_and_says_so(make_window, dataset, qtbot):
    images, root = dataset
    window = make_window(images)
    dialog = _open_import(window, qtbot, root)
    gate = threading.Event()
    from workbench.gui.workers import Job

    dialog.progress.runner.start(Job(lambda: gate.wait(60), progress=False))   # holds the worker thread
    _click(dialog.import_button)                                               # queued behind it
    assert dialog.progress.cancel_button.isEnabled()
    _click(dialog.progress.cancel_button)
    with qtbot.waitSignals([dialog.imported, dialog.progress.busyChanged], timeout=60000):
        gate.set()
    assert "cancelled" in dialog.summary.toPlainText()
    assert not any(r.has_label for r in window.project.images())
    assert dialog.import_button.isEnabled()


def test_export_writes_the_format_and_refuses_a_foreign_folder(make_window, dataset, qtbot, tmp_path):
    images, root = dataset
    window = make_window(images)
    dialog = _open_import(window, qtbot, root)
    _import(dialog, qtbot)
    dialog.close()
    window.actions_by_id["export_labels"].trigger()                     # File > Export…
    export = window.export_dialog
    assert export.isVisible() and export.count_label.text() == "3 image(s) match"
    export.format.setCurrentIndex(export.format.findData("index"))
    export.images.setCurrentIndex(export.images.findData("none"))
    out = tmp_path / "export"
    QTest.keyClicks(export.out, str(out))
    with qtbot.waitSignal(export.progress.busyChanged, timeout=60000, check_params_cb=lambda busy: not busy):
        _click(export.export_button)
    assert "exported 3 of 3" in export.summary.toPlainText()
    written = Path(out / "trainannot" / "0001TP_001690.png")
    assert written.exists() and (np.asarray(Image.open(written)) == _mask(1)).all()
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    export.out.setText(str(foreign))
    with qtbot.waitSignal(export.progress.busyChanged, timeout=60000, check_params_cb=lambda busy: not busy):
        _click(export.export_button)
    text = export.summary.toPlainText()
    assert "not empty" in text and "foreign" in text
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]

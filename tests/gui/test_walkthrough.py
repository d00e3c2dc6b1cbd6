"""Issue 12, the first hour of a new user: each walkthrough item the window can be checked for.

Real key presses and mouse clicks (qtbot, QTest) on the offscreen window; tiny models on
CPU. Items of the issue in the test names.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from gui_helpers import drag, tiny_checkpoint
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QApplication

from workbench.progress import Progress

TINY = {"arch": "unet", "encoder": "resnet18", "epochs": 1, "minutes": None, "lr": 1e-3, "batch_size": 2,
        "crop": 64, "device": "cpu", "fine_tune": True, "workers": 0}


def use_tiny_training(project, **changes) -> None:
    """Store tiny training settings in the project (what the Settings dialog writes)."""
    data = project.settings()
    data["training"] = {**TINY, **changes}
    project.save_settings(data)


def with_model(window, tmp_path: Path) -> int:
    """Register a tiny random model and make the window follow it; its version."""
    project = window.project
    rec = project.register_model(tiny_checkpoint(tmp_path / "tiny.safetensors", project.schema))
    project.set_current_model(rec.version)
    window.events.current_model(rec.version)
    return rec.version


def wait_prediction(window, qtbot) -> None:
    """Until the image on screen shows its prediction."""
    qtbot.waitUntil(lambda: window.workspace.prediction is not None, timeout=120000)


def stop_training(window, qtbot) -> None:
    """Cancel a running Retrain and wait for its outcome."""
    if window.training.running:
        with qtbot.waitSignal(window.training.finished, timeout=180000):
            window.training.cancel()


def shown(widget) -> bool:
    """Visible to the person (not hidden, not behind another tab)."""
    return widget.isVisible() and not widget.visibleRegion().isEmpty()


# ----- 1: cancelling Predict all gives the keys back to the canvas ---------------------------
def test_cancel_predict_all_leaves_focus_on_the_canvas(window, qtbot, tmp_path) -> None:
    with_model(window, tmp_path)
    window.canvas.setFocus()
    qtbot.keyClick(window, Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    cancel = window.status_fields.cancel
    assert window.predictions.batch_running and cancel.isVisible()
    with qtbot.waitSignal(window.predictions.batchFinished, timeout=180000):
        qtbot.mouseClick(cancel, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not cancel.isVisible())
    assert QApplication.focusWidget() is window.canvas
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_D)       # next image, not a "d" in the filter
    assert window.list_panel.search.text() == ""
    assert len(window.list_panel.visible_ids()) == len(window.project.images())


# ----- 3: opening a project resets every per-project view ------------------------------------
def test_opening_another_project_resets_banner_and_training_panel(make_window, project_dir, tmp_path, qtbot) -> None:
    other = tmp_path / "other"
    shutil.copytree(project_dir, other)
    window = make_window(project_dir)
    window.notifier.error("Cannot retrain: no labelled images in the train split")
    panel = window.training_panel
    panel.show_progress(Progress(1, 4, "epoch 1", {"epoch": 1, "epochs": 2, "step": 1, "steps": 2, "loss": 0.9}))
    panel.show_outcome("training cancelled")
    assert window.banner.isVisible() and panel.loss
    assert window.open_project(other)
    assert not window.banner.isVisible() and window.notifier.last_error is None
    assert panel.loss == [] and panel.miou == []
    xs = panel.loss_curve.getData()[0]
    assert xs is None or len(xs) == 0
    assert panel.status.text().startswith("Retrain makes a new model version")


def test_a_run_of_the_closed_project_never_reaches_the_next_one(make_window, project_dir, tmp_path, qtbot) -> None:
    from workbench.gui.training_dock import IDLE_TEXT

    other = tmp_path / "other"
    shutil.copytree(project_dir, other)
    window = make_window(project_dir)
    use_tiny_training(window.project, epochs=50)
    qtbot.keyClick(window, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    assert window.training.running
    # While the first model trains, the window says so, not "No model yet" (the sample has no model).
    assert window.first_steps.isVisible() and "Training the first model" in window.first_steps.text.text()
    job = window.training._job
    qtbot.waitUntil(lambda: bool(window.training_panel.loss) or job.done, timeout=180000)
    window.close_project(ask=False)                 # cancels and waits for the run
    assert job.done
    assert window.open_project(other)
    for _ in range(5):                              # deliver what the old run still had queued
        QApplication.processEvents()
    assert window.training_panel.status.text() == IDLE_TEXT
    assert window.training_panel.loss == []
    assert window.status_fields.training.isHidden()
    assert not window.candidate.isVisible() and not window.banner.isVisible()


# ----- 4: errors stay in the window, with the file and the reason ----------------------------
def test_failed_ground_truth_import_stays_until_dismissed(window, qtbot, tmp_path) -> None:
    bad = tmp_path / "gt"
    bad.mkdir()
    name = window.project.images()[0].stem
    (bad / f"{name}.png").write_bytes(b"this is not a PNG")
    with qtbot.waitSignal(window.metrics.imported, timeout=60000):
        window.metrics.import_ground_truth(bad)
    qtbot.waitUntil(lambda: window.metrics_panel.import_button.isEnabled())
    assert window.banner.isVisible()
    assert f"{name}.png" in window.banner.text.text()
    window.notifier.info("Saved.", 10)                # a later transient message does not hide it
    qtbot.waitUntil(lambda: window.statusBar().currentMessage() == "", timeout=10000)
    assert window.banner.isVisible()
    summary = window.metrics_panel.summary.text()
    assert "Failed" in summary and f"{name}.png" in summary and "status bar" not in summary
    qtbot.mouseClick(window.banner.close_button, Qt.MouseButton.LeftButton)
    assert not window.banner.isVisible()


# ----- 5: training chart ------------------------------------------------------------------
def test_training_chart_epoch_axis_own_miou_axis_and_bar_follows_eta(qtbot) -> None:
    from workbench.gui.training_dock import TrainingPanel, run_fraction

    panel = TrainingPanel()
    qtbot.addWidget(panel)
    panel.resize(400, 300)
    panel.show()
    panel.set_running(True)
    for step in range(1, 7):                        # the first epoch: x from 0.1 to 0.6
        panel.show_progress(Progress(step, 100, "", {"epoch": 1, "epochs": 10, "step": step, "steps": 10,
                                                     "loss": 2.0 - 0.1 * step}))
    panel.show_progress(Progress(10, 100, "", {"epoch": 1, "epochs": 10, "step": 10, "steps": 10,
                                               "loss": 1.2, "val_miou": 0.4}))
    bottom = panel.plot.getPlotItem().getAxis("bottom")
    assert "0.001" not in bottom.labelString() and bottom.autoSIPrefixScale == 1.0
    # mIoU lives on the right axis, 0..1, whatever the loss does
    assert panel.miou_curve in panel.miou_view.addedItems
    low, high = panel.miou_view.viewRange()[1]
    assert low <= 0.0 and high >= 1.0 and high < 1.2
    assert panel.plot.getPlotItem().getAxis("right").isVisible()
    # a minutes budget: 22 of 100 steps done, but 65 s gone and 35 s left -> 65 %
    assert run_fraction(22, 100, 35.0, 65.0) == pytest.approx(0.65)
    assert run_fraction(22, 100, None, None) == pytest.approx(0.22)
    panel._started = time.monotonic() - 65.0
    panel.show_progress(Progress(22, 100, "", {"epoch": 3, "epochs": 10, "step": 2, "steps": 10,
                                               "loss": 1.0, "eta_s": 35.0}))
    assert panel.bar.value() == pytest.approx(650, abs=10)
    assert panel.bar.text().startswith("65")


# ----- 8: labels solid, prediction hatched; ground-truth and error views -------------------
def test_labels_are_solid_and_the_prediction_hatched(qtbot) -> None:
    from PySide6.QtGui import QImage

    from workbench.classes import ClassSchema
    from workbench.editing import LabelEditor
    from workbench.gui.canvas import Canvas

    canvas = Canvas()
    qtbot.addWidget(canvas)
    canvas.resize(200, 200)
    canvas.show()
    canvas.set_schema(ClassSchema.default(["a", "b"]))
    canvas.set_image(np.full((50, 50, 3), 128, np.uint8))
    mask = np.full((50, 50), 255, np.uint8)
    mask[:, :25] = 1                                 # the left half labelled "b"
    canvas.set_editor(LabelEditor(mask))
    canvas.set_prediction(np.ones((50, 50), np.uint8))   # the model says "b" everywhere
    canvas.set_prediction_visible(True)
    canvas.set_labels_visible(True)
    img = canvas.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    arr = np.frombuffer(img.constBits(), np.uint8, img.sizeInBytes()).reshape(img.height(), -1, 4)

    def row_colours(x0: int, x1: int) -> int:
        y = int(canvas.image_to_widget(QPointF(0, 25)).y())
        return len({tuple(px) for px in arr[y, x0:x1, :3]})

    left = canvas.image_to_widget(QPointF(3, 0)).x()
    right = canvas.image_to_widget(QPointF(30, 0)).x()
    span = int(canvas.zoom * 15)
    assert row_colours(int(left), int(left) + span) == 1      # labelled: one solid colour, no stripes
    assert row_colours(int(right), int(right) + span) >= 2    # prediction only: stripes and gaps
    stripes = arr[:, int(right):int(right) + span, :3].reshape(-1, 3)
    assert (stripes == 128).all(axis=1).any()                 # the photograph shows between stripes
    # with the labels hidden (Ctrl+L) the prediction shows under them too
    canvas.set_labels_visible(False)
    img = canvas.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    arr = np.frombuffer(img.constBits(), np.uint8, img.sizeInBytes()).reshape(img.height(), -1, 4)
    assert row_colours(int(left), int(left) + span) >= 2


def test_ground_truth_and_error_views_from_the_view_menu(window, qtbot, tmp_path) -> None:
    from workbench.gui.overlay import error_mask

    project = window.project
    rec = next(r for r in project.images() if r.has_ground_truth)
    window.workspace.open_image(rec.id)
    with_model(window, tmp_path)
    wait_prediction(window, qtbot)
    assert window.status_fields.legend.text() == "your labels | prediction"
    qtbot.keyClick(window, Qt.Key.Key_G, Qt.KeyboardModifier.ControlModifier)
    assert window.canvas.view_mode == "ground_truth"
    assert window.actions_by_id["view_ground_truth"].isChecked()
    assert window.status_fields.legend.text().startswith("ground truth")
    qtbot.keyClick(window, Qt.Key.Key_G, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert window.canvas.view_mode == "errors" and not window.actions_by_id["view_ground_truth"].isChecked()
    gt = project.read_ground_truth(rec.id)
    pred = window.workspace.prediction.mask
    wrong = int(((gt != 255) & (pred != gt)).sum())          # by hand, independent of error_mask
    assert window.canvas.error_counts == (wrong, int((gt != 255).sum()))
    assert int(error_mask(pred, gt, (255,)).sum()) == wrong
    assert "vs ground truth" in window.status_fields.legend.text()
    # a brush stroke goes back to the labels (nobody paints into a view they cannot see)
    qtbot.keyClick(window, Qt.Key.Key_P)
    here = int(window.session.editor.mask[6, 6])
    qtbot.keyClick(window, Qt.Key.Key_1 if here != 0 else Qt.Key.Key_2)   # a class that changes pixels
    drag(window.canvas, [(5, 5), (8, 8)])
    assert window.canvas.view_mode == "labels" and not window.actions_by_id["view_errors"].isChecked()
    # help lists both views
    from workbench.gui.shortcuts import rows_for_help

    texts = [cmd for _group, cmd, _keys in rows_for_help()]
    assert any("ground truth" in t for t in texts) and any("errors" in t for t in texts)


def test_ground_truth_view_says_why_when_there_is_none(window, qtbot) -> None:
    rec = window.project.images()[-1]
    window.project.ground_truth_path(rec.id).unlink(missing_ok=True)
    window.workspace.open_image(rec.id)
    qtbot.keyClick(window, Qt.Key.Key_G, Qt.KeyboardModifier.ControlModifier)
    assert window.canvas.view_mode == "labels" and not window.actions_by_id["view_ground_truth"].isChecked()
    assert f"{rec.name} has no ground truth" in window.statusBar().currentMessage()


# ----- 11: Ctrl+R with the Metrics tab in front -----------------------------------------
def test_ctrl_r_with_metrics_in_front_shows_the_run(window, qtbot) -> None:
    use_tiny_training(window.project, epochs=50)
    window.docks["metrics"].raise_()
    qtbot.waitUntil(lambda: not shown(window.training_panel))
    qtbot.keyClick(window, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    try:
        assert window.training.running
        qtbot.waitUntil(lambda: shown(window.training_panel))
        assert window.status_fields.training.isVisible()
        assert window.status_fields.training.text().startswith("<b>Training:</b>")
    finally:
        stop_training(window, qtbot)
    assert window.status_fields.training.isHidden()


# ----- 13: the Classes menu lists the project's classes ------------------------------------
def class_menu_texts(window) -> list[str]:
    menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "Classes")
    # the class entries; the menu also holds "Choose class by name…" (key K) and separators
    return [a.text().replace("&", "") for a in menu.actions()
            if a.isVisible() and not a.isSeparator() and "Choose class" not in a.text()]


def test_classes_menu_lists_the_project_classes(window, qtbot) -> None:
    names = window.project.schema.names
    assert class_menu_texts(window) == [f"{i}  {n}" for i, n in enumerate(names, 1)]
    window.project.add_class("mitochondrion")
    window.events.schema()
    assert class_menu_texts(window)[-1] == f"{len(names) + 1}  mitochondrion"
    qtbot.keyClick(window, Qt.Key.Key_2)
    assert window.canvas.current_class == window.project.schema.by_name(names[1]).index
    # past nine classes (CamVid has 11) the menu still lists every class, without a number key
    for i in range(11 - len(names) - 1):
        window.project.add_class(f"extra {i}")
    window.palette.reload()
    window.events.schema()
    texts = class_menu_texts(window)
    assert len(texts) == 11 and texts[9] == "10  extra 4" and texts[10] == "11  extra 5"
    menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "Classes")
    eleventh = next(a for a in menu.actions() if a.isVisible() and a.text().startswith("11  "))
    eleventh.trigger()
    assert window.canvas.current_class == window.project.schema.by_name("extra 5").index


# ----- 14: a folder without labels says what to do first -----------------------------------
def test_folder_without_labels_shows_first_steps_until_a_model_exists(make_window, project_dir, tmp_path,
                                                                      qtbot) -> None:
    folder = tmp_path / "fresh"
    folder.mkdir()
    for jpg in sorted(project_dir.glob("*.jpg"))[:3]:
        shutil.copy(jpg, folder)
    window = make_window(folder)
    hint = window.first_steps
    assert shown(hint)
    assert "Retrain" in hint.text.text() and "No image of the train split is labelled" in hint.text.text()
    assert hint.retrain_button.isHidden()
    qtbot.keyClick(window, Qt.Key.Key_P)
    drag(window.canvas, [(5, 5), (12, 12)])
    window.workspace.save()
    qtbot.waitUntil(lambda: "1 image of the train split is labelled" in hint.text.text())
    assert not hint.retrain_button.isHidden()
    with_model(window, tmp_path)
    assert not hint.isVisible()


# ----- 15: the confusion matrix fits, has axis titles, colours by row share -------------------
def test_confusion_matrix_of_eleven_classes_fits_without_scrolling(qtbot) -> None:
    from workbench.gui.confusion_view import ConfusionView, cell_colour

    names = ["Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car",
             "Pedestrian", "Bicyclist"]
    matrix = np.ones((11, 12), np.int64)
    matrix[:11, :11] += np.eye(11, dtype=np.int64) * 1000
    matrix[2] = 0
    matrix[2, 2], matrix[2, 3] = 5, 5                 # a rare class: half right
    matrix[3, 3], matrix[3, 4] = 500000, 500000       # a frequent one: half right, too
    view = ConfusionView()
    qtbot.addWidget(view)
    view.resize(400, 420)
    view.show()
    view.show_matrix(names, matrix)
    qtbot.waitUntil(lambda: view.table.horizontalHeader().length() > 0)
    assert view.table.horizontalScrollBar().maximum() == 0
    assert view.table.horizontalHeader().length() <= view.table.viewport().width()
    assert "predicted" in view.predicted.text() and "ground truth" in view.truth.text()
    cell = view.table.item(2, 2).background().color()
    assert cell == view.table.item(3, 3).background().color() == cell_colour(0.5)
    assert view.table.item(2, 2).text() == "50"
    assert view.table.horizontalHeaderItem(3).toolTip() == "predicted: Road"

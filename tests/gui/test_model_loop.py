"""Predict, retrain, cancel and measure from the window, with tiny models on CPU."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from gui_helpers import canvas_point, tiny_checkpoint
from PySide6.QtCore import Qt

from workbench.errors import WorkbenchError
from workbench.project import Status

TINY = {"arch": "unet", "encoder": "resnet18", "epochs": 1, "minutes": None, "lr": 1e-3, "batch_size": 2,
        "crop": 64, "device": "cpu", "fine_tune": True, "workers": 0}


def use_tiny_training(project, **changes) -> None:
    """Store tiny training settings in the project (what the Settings dialog writes)."""
    data = project.settings()
    data["training"] = {**TINY, **changes}
    project.save_settings(data)


def canvas_pixels(window) -> np.ndarray:
    from PySide6.QtGui import QImage

    img = window.canvas.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    return np.frombuffer(img.constBits(), np.uint8, img.sizeInBytes()).copy()


def test_prediction_appears_and_is_cached(window, qtbot, tmp_path) -> None:
    project = window.project
    unlabelled = next(r for r in project.images() if not r.has_label)
    window.workspace.open_image(unlabelled.id)
    before = canvas_pixels(window)
    project.register_model(tiny_checkpoint(tmp_path / "tiny.safetensors", project.schema))
    with qtbot.waitSignal(window.predictions.ready, timeout=60000):
        window.workspace.model_changed()
    qtbot.waitUntil(lambda: window.workspace.prediction is not None, timeout=60000)
    res = window.workspace.prediction
    assert (res.image_id, res.version) == (unlabelled.id, 1)
    assert window.canvas.prediction is not None and window.canvas.prediction.shape == window.session.image.shape[:2]
    assert "model v1" in window.status_fields.model.text()
    assert not np.array_equal(before, canvas_pixels(window))        # the overlay changed the view
    assert project.read_prediction(unlabelled.id, 1) is not None     # cached on disk
    assert project.get(unlabelled.id).status == Status.PREDICTED
    assert project.get(unlabelled.id).uncertainty is not None
    with qtbot.waitSignal(window.canvas.cursorMoved, timeout=30000):
        qtbot.mouseMove(window.canvas, canvas_point(window.canvas, 4, 6).toPoint())
    predicted = project.schema.class_name(int(res.mask[6, 4]))
    assert window.status_fields.under.text() == f"label: not labelled | prediction: {predicted}"
    # accept one region by clicking it with the R tool, then the whole image
    qtbot.keyClick(window, Qt.Key.Key_R)
    qtbot.mouseClick(window.canvas, Qt.MouseButton.LeftButton, pos=canvas_point(window.canvas, 4, 6).toPoint())
    region = window.session.editor.mask != 255
    assert region[6, 4] and (window.session.editor.mask[region] == res.mask[6, 4]).all()
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    # accept it into the labels: one undo step
    qtbot.keyClick(window, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert np.array_equal(window.session.editor.mask, res.mask)
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert (window.session.editor.mask == 255).all()
    # stale results are dropped: a result tagged with another version never reaches the canvas
    from dataclasses import replace
    window.workspace._on_prediction(replace(res, version=99, mask=np.zeros_like(res.mask)))
    assert window.workspace.prediction is res


def test_predict_all_reports_progress(window, qtbot, tmp_path) -> None:
    project = window.project
    project.register_model(tiny_checkpoint(tmp_path / "tiny.safetensors", project.schema))
    window.workspace.model_changed()            # v1 starts predicting the image on screen...
    project.register_model(tiny_checkpoint(tmp_path / "tiny2.safetensors", project.schema))
    window.workspace.model_changed()            # ...and is superseded at once: its result is stale
    assert window.predictions.version == 2
    panel = window.list_panel
    panel.split_combo.setCurrentIndex(panel.split_combo.findData("val"))
    ids = panel.visible_ids()
    assert ids
    seen = []
    window.predictions.batchProgress.connect(lambda d, t: seen.append((d, t)))  # GUI-thread signal
    with qtbot.waitSignal(window.predictions.batchFinished, timeout=120000) as done:
        qtbot.keyClick(window, Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    outcome = done.args[0]
    assert not outcome.cancelled and sorted(outcome.predicted) == sorted(ids) and outcome.skipped == 0
    assert seen[-1] == (len(ids), len(ids))
    assert all(project.read_prediction(i, 2) is not None for i in ids)
    assert not window.status_fields.progress.isVisible()
    # val images have ground truth: per-image mIoU and uncertainty are known and sortable
    assert all(project.get(i).miou is not None and project.get(i).uncertainty is not None for i in ids)
    panel.sort_combo.setCurrentText("Most uncertain first")
    shown = [project.get(i).uncertainty for i in panel.visible_ids()]
    assert shown == sorted(shown, reverse=True)
    panel.sort_combo.setCurrentText("Worst mIoU first")
    shown = [project.get(i).miou for i in panel.visible_ids()]
    assert shown == sorted(shown)


def test_retrain_registers_versions_and_shows_metrics(window, qtbot) -> None:
    project = window.project
    use_tiny_training(project)
    assert project.training_pairs("train")
    with qtbot.waitSignal(window.training.finished, timeout=120000) as fin:
        qtbot.keyClick(window, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
        assert window.training.running and window.training_panel.cancel_button.isEnabled()
    assert fin.args[0].version == 1 and fin.args[0].promoted        # the first model is always current
    assert [m.version for m in project.models()] == [1]
    assert "model v1" in window.status_fields.model.text()
    assert window.training_panel.loss                      # the loss curve got points
    assert "v1" in window.metrics_panel.summary.text() and "mIoU" in window.metrics_panel.summary.text()
    assert window.metrics_panel.classes.rowCount() == project.schema.num_classes
    assert window.metrics_panel.confusion.rowCount() == project.schema.num_classes
    assert window.metrics_panel.per_image.rowCount() > 0
    history = project.metrics_history()
    assert history and history[-1]["version"] == 1 and history[-1]["split"] == "val"
    # a second run fine-tunes v1 and, with the policy "always", becomes current; the panel shows
    # before -> after
    combo = window.models_panel.policy
    combo.setCurrentIndex(combo.findData("always"))
    combo.activated.emit(combo.currentIndex())
    with qtbot.waitSignal(window.training.finished, timeout=120000) as fin:
        window.model_actions.retrain()
    assert fin.args[0].version == 2 and fin.args[0].promoted, fin.args[0].message
    assert [m.version for m in project.models()] == [1, 2]
    assert project.models()[1].parent == 1 and project.current_model().version == 2
    assert "v1:" in window.metrics_panel.summary.text() and "v2:" in window.metrics_panel.summary.text()
    assert window.metrics_panel.history.rowCount() == 2
    shot = os.environ.get("WORKBENCH_SCREENSHOT_DIR")
    if shot:                                              # for people to look at
        window.docks["metrics"].raise_()
        Path(shot).mkdir(parents=True, exist_ok=True)
        window.grab().save(str(Path(shot) / "after_retrain.png"))
    # clicking a per-image row opens that image
    name = window.metrics_panel.per_image.item(0, 0).text()
    window.metrics_panel._on_image_clicked(0, 0)
    assert project.get(window.workspace.image_id).name == name


def test_cancel_training(window, qtbot) -> None:
    project = window.project
    use_tiny_training(project, epochs=200)
    with qtbot.waitSignal(window.training.progress, timeout=60000):
        window.model_actions.retrain()
    with qtbot.waitSignal(window.training.finished, timeout=60000) as fin:
        window.training_panel.cancel_button.click()
    outcome = fin.args[0]
    assert outcome.cancelled and outcome.version is None
    assert project.models() == []
    assert not list((project.state_dir / "models").glob("*.safetensors"))
    assert window.training_panel.retrain_button.isEnabled()
    assert "cancelled" in window.training_panel.status.text()


def test_closing_while_training_asks_then_stops_the_run(window, qtbot, monkeypatch) -> None:
    from PySide6.QtWidgets import QMessageBox

    project = window.project
    use_tiny_training(project, epochs=200)
    with qtbot.waitSignal(window.training.progress, timeout=60000):
        window.model_actions.retrain()
    answers = [QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes]
    asked = []

    def question(*args, **kwargs):
        asked.append(args[1])
        return answers[len(asked) - 1]

    monkeypatch.setattr(QMessageBox, "question", question)
    assert window.close_project(ask=True) is False          # "No": keep working, the run goes on
    assert window.training.running and window.project is project
    assert window.close_project(ask=True) is True           # "Yes": cancel, wait, save, close
    assert asked == ["Jobs are running", "Jobs are running"]
    assert not window.training.running and window.project is None
    with pytest.raises(WorkbenchError):
        project.images()                                      # closed: the lock is released

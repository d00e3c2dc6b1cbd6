"""The desktop app end to end: open, browse, paint with real mouse events, save, errors."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from gui_helpers import canvas_point, drag, labelled
from PySide6.QtCore import Qt

from workbench.classes import UNLABELLED
from workbench.errors import WorkbenchError
from workbench.gui import shortcuts
from workbench.gui.help_dialog import ShortcutsDialog
from workbench.gui.tools import Tool
from workbench.project import Project, Status


def find_unlabelled(window) -> int:
    """Id of an image without a label (to paint on a blank mask)."""
    for rec in window.project.images():
        if not rec.has_label:
            return rec.id
    raise AssertionError("the sample project has no unlabelled image")


def test_opens_sample_project(window, project_dir: Path) -> None:
    project = window.project
    assert project.folder == project_dir.resolve()
    assert window.list_model.rowCount() == len(project.images()) == 24
    assert window.workspace.image_id is not None          # the first image is open
    assert window.canvas.editor is window.session.editor
    assert window.palette.list.count() == project.schema.num_classes == 4
    assert "no model yet" in window.status_fields.model.text()
    assert "CPU" in window.status_fields.device.text()
    # filter by split and by text, sort worst mIoU first
    window.list_panel.split_combo.setCurrentIndex(window.list_panel.split_combo.findData("val"))
    assert 0 < window.list_panel.proxy.rowCount() < 24
    assert all(project.get(i).split == "val" for i in window.list_panel.visible_ids())
    window.list_panel.split_combo.setCurrentIndex(0)
    window.list_panel.search.setText("cell_1")
    assert {project.get(i).name for i in window.list_panel.visible_ids()} == {f"cell_1{d}.jpg" for d in range(10)}


def test_paint_undo_redo_with_real_mouse_events(window, qtbot) -> None:
    window.workspace.open_image(find_unlabelled(window))
    canvas = window.canvas
    editor = window.session.editor
    assert labelled(editor.mask) == 0
    window.palette.select_nth(2)                          # cytoplasm, value 1
    qtbot.keyClick(window, Qt.Key.Key_P)                  # paint tool via its shortcut
    assert canvas.tool == Tool.BRUSH
    canvas.set_brush_radius(3)
    with qtbot.waitSignal(canvas.labelsEdited, timeout=30000):
        drag(canvas, [(20, 20), (30, 20), (40, 25)])
    assert editor.mask[20, 25] == 1 and editor.mask[25, 40] == 1
    assert editor.mask[60, 60] == UNLABELLED
    painted = labelled(editor.mask)
    assert window.session.dirty and "unsaved" in window.status_fields.saved.text()
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert labelled(editor.mask) == 0
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert labelled(editor.mask) == painted and editor.mask[20, 25] == 1


def test_status_bar_names_the_pixel_under_the_cursor(window, qtbot) -> None:
    labelled_rec = next(r for r in window.project.images() if r.has_label)
    window.workspace.open_image(labelled_rec.id)
    editor, canvas = window.session.editor, window.canvas
    ys, xs = np.nonzero(editor.mask != UNLABELLED)
    x, y = int(xs[0]), int(ys[0])
    with qtbot.waitSignal(canvas.cursorMoved, timeout=30000):
        qtbot.mouseMove(canvas, canvas_point(canvas, x, y).toPoint())
    assert window.status_fields.cursor.text() == f"x {x}, y {y}"
    name = window.project.schema.class_name(int(editor.mask[y, x]))
    assert window.status_fields.under.text() == f"label: {name}"     # no prediction without a model


def test_fill_and_pick(window, qtbot) -> None:
    window.workspace.open_image(find_unlabelled(window))
    canvas, editor = window.canvas, window.session.editor
    window.palette.select_nth(3)                          # nucleus, value 2
    qtbot.keyClick(window, Qt.Key.Key_F)
    assert canvas.tool == Tool.FILL
    qtbot.mouseClick(canvas, Qt.MouseButton.LeftButton, pos=canvas_point(canvas, 5, 5).toPoint())
    assert (editor.mask == 2).all()                       # the blank mask is one region
    qtbot.keyClick(window, Qt.Key.Key_L)                  # eyedropper
    window.palette.select_nth(1)
    with qtbot.waitSignal(canvas.classPicked, timeout=30000):
        qtbot.mouseClick(canvas, Qt.MouseButton.LeftButton, pos=canvas_point(canvas, 7, 7).toPoint())
    assert window.palette.current_class() == 2


def test_switching_images_autosaves_and_restores(window, qtbot) -> None:
    project = window.project
    target = find_unlabelled(window)
    window.workspace.open_image(target)
    window.palette.select_nth(4)                          # debris, value 3
    window.canvas.set_tool(Tool.BRUSH)
    drag(window.canvas, [(10, 10), (12, 30)])
    assert window.session.dirty
    qtbot.keyClick(window, Qt.Key.Key_D)                  # next image: saves the previous one
    assert window.workspace.image_id != target
    saved = project.read_label(target)
    assert saved is not None and saved[20, 11] == 3
    assert project.get(target).status == Status.EDITED
    qtbot.keyClick(window, Qt.Key.Key_A)                  # and back
    assert window.workspace.image_id == target
    assert window.session.editor.mask[20, 11] == 3


def test_autosave_timer_saves_after_the_last_edit(window, qtbot) -> None:
    window.session.autosave.setInterval(50)
    target = find_unlabelled(window)
    window.workspace.open_image(target)
    with qtbot.waitSignal(window.session.saved, timeout=30000) as blocker:
        drag(window.canvas, [(30, 30), (35, 35)])
    assert blocker.args == [target]
    assert window.project.read_label(target)[32, 32] != UNLABELLED
    assert "saved" == window.status_fields.saved.text()


def test_failed_save_keeps_edits_and_says_so(window, qtbot, monkeypatch) -> None:
    target = find_unlabelled(window)
    window.workspace.open_image(target)
    drag(window.canvas, [(5, 5), (9, 9)])

    def broken(*_a, **_k):
        raise WorkbenchError("disk full", window.project.state_dir / "labels")

    monkeypatch.setattr(window.project, "save_label", broken)
    qtbot.keyClick(window, Qt.Key.Key_D)
    assert "disk full" in window.notifier.last_error
    assert "NOT SAVED" in window.status_fields.saved.text()
    row = window.list_model.row_of(target)
    assert window.list_model.data(window.list_model.index(row, 1)) == "unsaved!"
    monkeypatch.undo()
    qtbot.keyClick(window, Qt.Key.Key_A)                  # back: the edits are still there
    assert window.session.editor.mask[7, 7] != UNLABELLED
    window.workspace.save()
    assert window.project.read_label(target)[7, 7] != UNLABELLED
    assert window.list_model.data(window.list_model.index(row, 1)) != "unsaved!"


def test_verify_and_next_and_split(window, qtbot) -> None:
    target = find_unlabelled(window)
    window.workspace.open_image(target)
    qtbot.keyClick(window, Qt.Key.Key_V)                  # nothing labelled: refused, message shown
    assert window.workspace.image_id == target and "nothing is labelled" in window.notifier.last_error
    window.canvas.set_tool(Tool.FILL)
    qtbot.mouseClick(window.canvas, Qt.MouseButton.LeftButton, pos=canvas_point(window.canvas, 3, 3).toPoint())
    qtbot.keyClick(window, Qt.Key.Key_2, Qt.KeyboardModifier.AltModifier)
    qtbot.keyClick(window, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    rec = window.project.get(target)
    assert rec.status == Status.VERIFIED and rec.split == "val"
    assert window.workspace.image_id != target


def test_unreadable_image_shows_an_error_and_keeps_running(make_window, project_dir, qtbot) -> None:
    (project_dir / "aaa_broken.jpg").write_bytes(b"this is not a jpeg")
    window = make_window(project_dir)
    broken = window.project.find("aaa_broken.jpg")
    assert broken is not None
    good = window.workspace.image_id
    assert good != broken.id                              # the first readable image was opened
    assert window.workspace.open_image(broken.id) is False
    assert "aaa_broken.jpg" in window.notifier.last_error
    assert window.workspace.image_id == good and window.canvas.editor is window.session.editor
    qtbot.keyClick(window, Qt.Key.Key_D)                  # still usable
    assert window.workspace.image_id != good


def test_retrain_without_labels_says_why(make_window, tmp_path, qtbot) -> None:
    from PIL import Image

    folder = tmp_path / "plain"
    folder.mkdir()
    for i in range(2):
        Image.fromarray(np.full((40, 50, 3), 60 * i, np.uint8)).save(folder / f"img{i}.png")
    window = make_window(folder)
    qtbot.keyClick(window, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    # the training workflow checks it (in the worker) and the window says it at once
    qtbot.waitUntil(lambda: "nothing to train on" in (window.notifier.last_error or ""), timeout=30000)
    qtbot.waitUntil(lambda: not window.training.running, timeout=30000)
    assert window.training_panel.retrain_button.isEnabled()
    window.model_actions.predict_all()
    assert "no model yet" in window.notifier.last_error


def test_close_and_reopen_restores_state(make_window, project_dir, qtbot) -> None:
    window = make_window(project_dir)
    ids = window.list_panel.visible_ids()
    window.workspace.open_image(ids[5])
    window.list_panel.sort_combo.setCurrentText("Status")
    window.canvas.set_tool(Tool.BRUSH)
    drag(window.canvas, [(15, 15), (16, 16)])
    window.close()
    assert window.project is None
    again = make_window(project_dir)
    assert again.workspace.image_id == ids[5]
    assert again.list_panel.sort_combo.currentText() == "Status"
    assert again.session.editor.mask[15, 15] != UNLABELLED   # saved on close
    with Project.open(project_dir) as p:  # noqa: F841 - the lock is held by `again`: read-only open works
        assert p.read_only


def test_classes_can_be_added_and_renamed(window) -> None:
    assert window.palette.apply(lambda s: s.add_class("mitosis"))
    assert window.project.schema.names[-1] == "mitosis"
    assert window.palette.list.count() == 5
    assert window.palette.apply(lambda s: s.rename_class(0, "bg"))
    assert window.project.schema.class_name(0) == "bg"
    assert window.palette.list.item(0).text().startswith("bg")


def test_shortcut_table_is_unique_and_fully_listed(window) -> None:
    shortcuts.check_unique()
    dialog = ShortcutsDialog(window)
    assert dialog.table.rowCount() == len(shortcuts.SHORTCUTS)
    texts = {dialog.table.item(r, 1).text() for r in range(dialog.table.rowCount())}
    assert "Undo" in texts and "Mark verified and next" in texts
    for s in shortcuts.SHORTCUTS:     # every command is a window action with its keys
        assert window.actions_by_id[s.id].shortcuts()


def test_screenshot(window, tmp_path, qtbot) -> None:
    window.resize(1400, 900)
    qtbot.waitUntil(lambda: window.list_model.thumbnails is not None
                    and window.list_model.thumbnails.get(window.list_panel.visible_ids()[0]) is not None,
                    timeout=60000)
    path = tmp_path / "main_window.png"
    assert window.grab().save(str(path))
    assert path.stat().st_size > 10_000
    out = os.environ.get("WORKBENCH_SCREENSHOT_DIR")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        window.grab().save(str(Path(out) / "main_window.png"))


@pytest.mark.parametrize("key", ["[", "]"])
def test_brush_size_keys(window, qtbot, key) -> None:
    window.canvas.set_brush_radius(8)
    qtbot.keyClick(window, key)
    assert window.canvas.brush_radius == (6 if key == "[" else 10)
    assert window.toolbars.brush.value() == 2 * window.canvas.brush_radius + 1   # shown as a diameter


def test_wrong_size_label_is_reported_in_the_window(window) -> None:
    from workbench.masks import write_mask

    project = window.project
    rec = next(r for r in project.images() if r.id != window.workspace.image_id)
    write_mask(project.state_dir / "labels" / f"{rec.stem}.png", np.zeros((7, 9), np.uint8), project.schema)
    current = window.workspace.image_id
    assert window.workspace.open_image(rec.id) is False
    assert rec.name in window.notifier.last_error and "9x7" in window.notifier.last_error
    assert window.banner.isVisible() and rec.name in window.banner.text.text()
    assert window.workspace.image_id == current


def test_overlay_controls(window, qtbot) -> None:
    canvas = window.canvas
    assert canvas.labels_visible and canvas.prediction_visible and not canvas.uncertainty_visible
    qtbot.keyClick(window, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    assert not canvas.labels_visible
    qtbot.keyClick(window, Qt.Key.Key_U, Qt.KeyboardModifier.ControlModifier)
    assert canvas.uncertainty_visible
    qtbot.keyClick(window, Qt.Key.Key_O)
    assert canvas.outline_mode
    window.toolbars.opacity.setValue(20)
    assert canvas.label_opacity == pytest.approx(0.2)
    canvas.set_zoom(4.0)
    qtbot.keyClick(window, Qt.Key.Key_Home)               # fit
    assert canvas.zoom < 4.0


def test_settings_dialog_stores_training_settings(window) -> None:
    window.model_actions.edit_settings()
    dialog = window.model_actions.dialog
    # automatic (the trainer's recipe for the device, e.g. "(automatic: 256; ...)") until set
    assert dialog.crop.value() == 0 and dialog.batch_size.value() == 0 and "256" in dialog.crop.text()
    dialog.epochs.setValue(3)
    dialog.crop.setValue(128)
    dialog.accept()
    stored = window.project.settings()["training"]
    assert stored["epochs"] == 3 and stored["crop"] == 128 and stored["arch"] == "unet"
    window.model_actions.edit_settings()
    assert window.model_actions.dialog.epochs.value() == 3
    window.model_actions.dialog.restore_defaults()
    assert window.model_actions.dialog.crop.value() == 0 and window.model_actions.dialog.values()["crop"] is None
    window.model_actions.dialog.reject()


def test_recent_projects_and_window_layout_persist(make_window, project_dir) -> None:
    from workbench.gui.preferences import recent_projects

    window = make_window(project_dir)
    window.resize(640, 480)           # within the offscreen screen (restoreGeometry clamps to it)
    window.docks["metrics"].raise_()
    window.close()
    assert recent_projects()[0] == str(project_dir.resolve())
    again = make_window(project_dir)
    assert (again.width(), again.height()) == (640, 480)


def test_import_ground_truth_folder(window, qtbot, tmp_path) -> None:
    import shutil

    project = window.project
    gt = tmp_path / "gt"
    shutil.copytree(project.folder / "groundtruth", gt)
    names = {p.stem for p in gt.glob("*.png")}
    with qtbot.waitSignal(window.metrics.imported, timeout=30000) as got:
        window.metrics.import_ground_truth(gt)
    assert got.args[0].imported == len(names)
    assert all(project.find(n).has_ground_truth for n in names)
    window.model_actions.evaluate()                        # no model yet: said in the window
    assert "no model yet" in window.notifier.last_error


def test_letter_keys_type_in_the_filter_but_navigate_from_the_list(window, qtbot) -> None:
    panel = window.list_panel
    start = window.workspace.image_id
    panel.search.setFocus()
    qtbot.waitUntil(panel.search.hasFocus, timeout=30000)
    qtbot.keyClicks(panel.search, "cell_2")              # 'e' and 'l' are tool keys elsewhere
    assert panel.search.text() == "cell_2" and window.canvas.tool == Tool.BRUSH
    assert window.workspace.image_id == start
    assert panel.current_id() is None                     # the open image is filtered out, not replaced
    panel.search.clear()
    assert panel.current_id() == start                    # and highlighted again once visible
    panel.table.setFocus()
    qtbot.waitUntil(panel.table.hasFocus, timeout=30000)
    qtbot.keyClick(panel.table, Qt.Key.Key_D)
    assert window.workspace.image_id == panel.neighbour(start, +1)


def test_an_image_leaving_the_status_filter_stays_open(window, qtbot) -> None:
    panel = window.list_panel
    panel.status_combo.setCurrentIndex(panel.status_combo.findData("unlabelled"))
    target = panel.visible_ids()[0]
    window.workspace.open_image(target)
    drag(window.canvas, [(5, 5), (8, 8)])
    qtbot.keyClick(window, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)   # now "edited"
    assert target not in panel.visible_ids()
    assert window.workspace.image_id == target and panel.current_id() is None
    panel.status_combo.setCurrentIndex(0)
    assert panel.current_id() == target



def test_run_app_in_a_fresh_process(project_dir, state_home) -> None:
    """run_app (what `workbench` calls) opens the project and returns 0 when the window closes."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from PySide6.QtCore import QTimer\n"
        "from PySide6.QtWidgets import QApplication\n"
        "app = QApplication(sys.argv[:1])\n"
        "from workbench.gui.app import run_app\n"
        "def close():\n"
        "    for w in QApplication.topLevelWidgets():\n"
        "        if w.isWindow() and w.isVisible():\n"
        "            print('OPEN', w.windowTitle(), w.workspace.image_id, flush=True)\n"
        "            w.close()\n"
        "QTimer.singleShot(1000, close)\n"
        "sys.exit(run_app(sys.argv[1]))\n")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "WORKBENCH_STATE_HOME": str(state_home)}
    out = subprocess.run([sys.executable, "-c", script, str(project_dir)], capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert f"OPEN {project_dir.name} - Segmentation Workbench 1" in out.stdout


def test_evaluate_brings_the_metrics_tab_forward(window, qtbot) -> None:
    # A tabified dock behind another tab stays isVisible(); its visible region is what shows.
    def metrics_shown() -> bool:
        return not window.metrics_panel.visibleRegion().isEmpty()

    window.docks["training"].raise_()
    qtbot.waitUntil(lambda: not metrics_shown(), timeout=30000)
    window.actions_by_id["evaluate"].trigger()              # Ctrl+E, no model yet
    qtbot.waitUntil(metrics_shown, timeout=30000)
    assert "no model yet" in window.notifier.last_error

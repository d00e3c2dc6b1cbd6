"""The Assist menu with real events: quick model (and its live update), propagation, suggestions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from gui_helpers import canvas_point, drag
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from workbench.project import Project, Split


def texture_folder(root: Path) -> Path:
    from test_quick_model import SCHEMA, two_textures

    folder = root / "textures"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(two_textures(seed=i)[0]).save(folder / f"f{i:02d}.png")
    with Project.open(folder, schema=SCHEMA) as project:
        rec = project.find("f02")
        project.set_split(rec.id, Split.VAL)
        project.save_ground_truth(rec.id, two_textures(seed=2)[1])
    return folder


def keys(window, sequence: str) -> None:
    """Press a shortcut on the window like a person (e.g. 'Ctrl+Shift+Q')."""
    *mods, key = sequence.split("+")
    flags = Qt.KeyboardModifier.NoModifier
    for m in mods:
        flags |= {"Ctrl": Qt.KeyboardModifier.ControlModifier, "Shift": Qt.KeyboardModifier.ShiftModifier}[m]
    QTest.keyClick(window, getattr(Qt.Key, f"Key_{key}"), flags)


def paint_two_scribbles(window) -> None:
    """Class 1 stroke on the flat half, class 2 on the stripes (keys 1 and 2 pick the class)."""
    canvas = window.canvas
    QTest.keyClick(canvas, Qt.Key.Key_1)
    drag(canvas, [(12, 42), (25, 42), (38, 42)])
    QTest.keyClick(canvas, Qt.Key.Key_2)
    drag(canvas, [(82, 52), (95, 52), (108, 52)])


def test_train_quick_model_from_two_scribbles_shows_its_prediction(make_window, qtbot, tmp_path):
    from test_quick_model import two_textures

    window = make_window(texture_folder(tmp_path))
    window.workspace.open_image(window.project.find("f00").id)
    qtbot.waitUntil(lambda: window.canvas.size().width() > 0)
    window.canvas.fit_to_window()
    paint_two_scribbles(window)
    assert int((window.session.editor.mask != 255).sum()) > 100
    with qtbot.waitSignal(window.assist.quick.finished, timeout=120000) as done:
        keys(window, "Ctrl+Shift+Q")
    outcome = done.args[0]
    assert outcome.promoted and window.project.current_model().metrics["kind"] == "quick"
    # the canvas gets the quick model's prediction through the ordinary prediction service
    qtbot.waitUntil(lambda: window.workspace.prediction is not None
                    and window.workspace.prediction.version == outcome.version, timeout=120000)
    truth = two_textures(seed=0)[1]
    pred = window.workspace.prediction.mask
    assert (pred[:, 8:56] == truth[:, 8:56]).mean() > 0.95 and (pred[:, 72:120] == truth[:, 72:120]).mean() > 0.95
    # the Models panel says what it is
    table = window.models_panel.table
    assert "quick model" in table.item(0, 0).text()


def test_live_quick_model_follows_the_strokes_and_keeps_one_live_version(make_window, qtbot, tmp_path):
    window = make_window(texture_folder(tmp_path))
    window.workspace.open_image(window.project.find("f00").id)
    window.canvas.fit_to_window()
    paint_two_scribbles(window)
    with qtbot.waitSignal(window.assist.quick.finished, timeout=120000) as first:
        keys(window, "Ctrl+Shift+L")
    assert window.assist.actions["live_quick"].isChecked()
    v1 = first.args[0].version
    # one more stroke: after the pause a new live version supersedes the first
    with qtbot.waitSignal(window.assist.quick.finished, timeout=120000) as second:
        QTest.keyClick(window.canvas, Qt.Key.Key_1)
        drag(window.canvas, [(12, 70), (30, 70)])
    v2 = second.args[0].version
    assert v2 > v1
    qtbot.waitUntil(lambda: not window.assist.quick.running, timeout=60000)
    assert [m.version for m in window.project.models()][-1] == v2
    assert v1 not in [m.version for m in window.project.models()]
    keys(window, "Ctrl+Shift+L")
    assert not window.assist.quick.live


def sequence_folder(root: Path) -> Path:
    from test_propagation import SCHEMA, textured_scene

    folder = root / "clip"
    folder.mkdir()
    for k in range(3):
        Image.fromarray(textured_scene(3 * k)[0]).save(folder / f"clip_{k:04d}.png")
    with Project.open(folder, schema=SCHEMA) as project:
        project.save_label(project.find("clip_0000").id, textured_scene(0)[1], status="verified")
    return folder


def test_propagate_from_previous_frame_is_one_undo_step(make_window, qtbot, tmp_path):
    from test_propagation import textured_scene

    window = make_window(sequence_folder(tmp_path))
    window.workspace.open_image(window.project.find("clip_0001").id)
    window.canvas.fit_to_window()
    editor = window.session.editor
    assert (editor.mask == 255).all()
    keys(window, "Ctrl+Shift+F")
    qtbot.waitUntil(lambda: (window.session.editor.mask != 255).mean() > 0.8, timeout=60000)
    truth = textured_scene(3)[1]
    got = window.session.editor.mask
    sure = got != 255
    assert (got[sure] == truth[sure]).mean() > 0.97
    assert window.session.dirty
    QTest.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert (window.session.editor.mask == 255).all()
    # the first frame has no previous one: a message, nothing changes
    window.workspace.open_image(window.project.find("clip_0000").id)
    before = window.session.editor.mask.copy()
    keys(window, "Ctrl+Shift+F")
    assert "no previous frame" in window.statusBar().currentMessage()
    assert np.array_equal(window.session.editor.mask, before)


def test_suggest_next_images_lists_them_and_opens_one(make_window, qtbot, tmp_path):
    from workbench.workflows.quick import train_quick_project

    folder = texture_folder(tmp_path)
    with Project.open(folder) as project:
        from test_quick_model import two_scribbles

        project.save_label(project.find("f00").id, two_scribbles(), status="edited")
        train_quick_project(project)
    window = make_window(folder)
    dialog = window.assist.propagation.dialog
    keys(window, "Ctrl+Shift+N")
    qtbot.waitUntil(lambda: (dialog.isVisible() and dialog.list.count() == 1) or bool(window.notifier.last_error),
                    timeout=120000)
    assert window.notifier.last_error is None, window.notifier.last_error
    assert "f01.png" in dialog.list.item(0).text()
    qtbot.waitExposed(dialog)
    rect = dialog.list.visualItemRect(dialog.list.item(0))
    assert rect.height() > 0
    # a press first: Qt 6's mouseDClick alone sends no press, and item views need one
    QTest.mouseClick(dialog.list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    QTest.mouseDClick(dialog.list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.waitUntil(lambda: window.session.image_id == window.project.find("f01").id, timeout=10000)

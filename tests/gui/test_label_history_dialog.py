"""Edit > Label history…: see an image's earlier labels and restore one as an undoable edit."""

from __future__ import annotations

import numpy as np
from gui_helpers import drag
from PySide6.QtCore import Qt

from workbench.gui.label_history_dialog import LabelHistoryDialog
from workbench.gui.tools import Tool


def _open_history(window, qtbot) -> LabelHistoryDialog:
    window.actions_by_id["label_history"].trigger()
    dialog = window.findChild(LabelHistoryDialog)
    assert dialog is not None
    qtbot.waitUntil(dialog.isVisible)
    return dialog


def _seeded_image(window) -> int:
    for rec in window.project.images():
        if rec.has_label and rec.source == "import":
            return rec.id
    raise AssertionError("the sample project has no imported label")


def test_the_menu_lists_label_history(window) -> None:
    edit = next(a.menu() for a in window.menuBar().actions() if a.text() == "Edit")
    assert "Label &history…" in [a.text() for a in edit.actions()]
    assert window.actions_by_id["label_history"].isEnabled()


def test_restore_an_imported_version_then_undo_it(window, qtbot) -> None:
    project, ws = window.project, window.workspace
    target = _seeded_image(window)
    assert ws.open_image(target)
    imported = project.read_label(target).copy()
    window.palette.select_nth(2)                              # value 1
    window.canvas.set_tool(Tool.BRUSH)
    window.canvas.set_brush_radius(40)
    drag(window.canvas, [(10, 10), (200, 10), (200, 150), (10, 150)])   # a large repaint
    qtbot.keyClick(window, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    painted = project.read_label(target).copy()
    assert not np.array_equal(painted, imported) and project.get(target).source == "person"

    dialog = _open_history(window, qtbot)
    assert dialog.list.count() == 2                           # the current label, then the import
    assert dialog.list.item(0).text().startswith("Current label · made by person")
    assert "made by import" in dialog.list.item(1).text() and "verified" in dialog.list.item(1).text()
    assert dialog.selected_version() == 1 and dialog.restore_button.isEnabled()
    assert dialog.preview.pixmap() is not None and not dialog.preview.pixmap().isNull()
    dialog.list.setCurrentRow(0)
    assert not dialog.restore_button.isEnabled()              # the current label is not a version
    dialog.select_version(1)
    with qtbot.waitSignal(window.session.saved, timeout=5000):
        qtbot.mouseClick(dialog.restore_button, Qt.MouseButton.LeftButton)
    np.testing.assert_array_equal(window.session.editor.mask, imported)
    np.testing.assert_array_equal(project.read_label(target), imported)      # saved the normal way
    assert project.get(target).source == "person"
    newest = project.label_history(target)[-1]
    assert (newest.source, newest.reason) == ("person", "restore")
    np.testing.assert_array_equal(project.read_label_version(target, newest.version), painted)

    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)   # one undo step back
    np.testing.assert_array_equal(window.session.editor.mask, painted)
    qtbot.keyClick(window, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    np.testing.assert_array_equal(project.read_label(target), painted)


def test_an_image_without_versions_says_so(window, qtbot) -> None:
    target = next(r.id for r in window.project.images() if not r.has_label)
    assert window.workspace.open_image(target)
    dialog = _open_history(window, qtbot)
    assert dialog.list.count() == 1 and dialog.selected_version() is None
    assert not dialog.restore_button.isEnabled() and "No earlier versions yet" in dialog.note.text()
    dialog.close()

"""The tool table drives the app: toolbar, shortcuts, Help, cursors and options come from it;
switching tools clears the old tool's outline (issue 12.2); Unlabel and the brush diameter (12.12)."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPointF, QRect, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from workbench.classes import ClassSchema
from workbench.editing import LabelEditor
from workbench.editing.tool_table import ACTIONS, TOOLS, Circle
from workbench.gui.canvas import Canvas
from workbench.gui.help_dialog import ShortcutsDialog
from workbench.gui.shortcuts import SHORTCUTS, check_unique
from workbench.gui.tools import Tool, check_resources, tool_cursor

TOOL_IDS = [t.id for t in TOOLS]


def test_tool_enum_shortcuts_and_icons_come_from_the_table():
    assert [str(t) for t in Tool] == TOOL_IDS
    check_unique()
    tool_shortcuts = [s for s in SHORTCUTS if s.id.startswith("tool_")]
    assert [s.id.removeprefix("tool_") for s in tool_shortcuts] == TOOL_IDS
    assert [s.keys[0] for s in tool_shortcuts] == [t.key for t in TOOLS]
    assert {a.id for a in ACTIONS} <= {s.id for s in SHORTCUTS}
    assert check_resources() == []


def test_every_tool_has_its_own_cursor(qtbot):
    canvas = Canvas()
    qtbot.addWidget(canvas)
    seen = {}
    for t in TOOLS:
        canvas.set_tool(t.id)
        cur = canvas.cursor()
        key = ("shape", cur.shape()) if cur.shape() != Qt.CursorShape.BitmapCursor else ("pixmap", cur.pixmap().cacheKey())
        assert key not in seen, f"{t.id} has the cursor of {seen.get(key)}"
        seen[key] = t.id
        assert cur.pixmap().cacheKey() == tool_cursor(t.cursor).pixmap().cacheKey()


@pytest.fixture
def canvas(qtbot):
    c = Canvas()
    qtbot.addWidget(c)
    c.resize(400, 300)
    c.set_schema(ClassSchema.default(3))
    c.set_image(np.full((60, 80, 3), 128, np.uint8))
    c.set_editor(LabelEditor(np.full((60, 80), 255, np.uint8)))
    c.set_view(4.0, 0, 0)
    with qtbot.waitExposed(c):
        c.show()
    return c


def move(canvas, pos):
    QApplication.sendEvent(canvas, QMouseEvent(QEvent.Type.MouseMove, pos, canvas.mapToGlobal(pos),
                                               Qt.MouseButton.NoButton, Qt.MouseButton.NoButton,
                                               Qt.KeyboardModifier.NoModifier))


@pytest.mark.parametrize("other", ["fill", "polygon", "pick", "wand"])
def test_switching_from_the_brush_repaints_where_its_outline_was(canvas, monkeypatch, other):
    canvas.set_tool("brush")
    canvas.set_brush_radius(5)
    move(canvas, QPointF(200, 120))
    (circle,) = canvas.previews
    assert isinstance(circle, Circle)
    outline = QRect(202 - 22, 122 - 22, 44, 44)        # radius 5.5 px x zoom 4 around pixel (50, 30)'s centre
    updates = []
    real = canvas.update
    monkeypatch.setattr(canvas, "update", lambda *a: (updates.append(a), real(*a)))
    canvas.set_tool(other)
    assert canvas.previews == []
    assert any(len(a) == 1 and isinstance(a[0], QRect) and a[0].contains(outline) for a in updates), updates
    updates.clear()
    move(canvas, QPointF(40, 40))                        # moving away draws no brush outline
    assert canvas.previews == [] or not isinstance(canvas.previews[0], Circle)


def test_window_toolbar_help_and_keys_list_exactly_the_tables_tools(window, qtbot):
    bars = window.toolbars
    assert bars.tool_ids() == TOOL_IDS
    for t in TOOLS:
        action = window.actions_by_id[f"tool_{t.id}"]
        assert not action.icon().isNull() and t.tooltip == action.toolTip()
    assert not window.actions_by_id["next_error"].icon().isNull()
    dialog = ShortcutsDialog(window)
    qtbot.addWidget(dialog)
    listed = [dialog.tools.item(r, 0).text() for r in range(dialog.tools.rowCount())]
    assert listed == [t.label for t in TOOLS] + [a.label for a in ACTIONS]
    for t in TOOLS:                                   # each tool's key selects it, through the window
        qtbot.keyClick(window, t.key)
        assert window.canvas.tool == t.id and window.actions_by_id[f"tool_{t.id}"].isChecked()


def test_options_bar_shows_the_active_tools_options_and_the_diameter(window, qtbot):
    opts = window.toolbars.options
    qtbot.keyClick(window, "P")
    assert opts.visible_options() == ["brush_size"]
    window.canvas.set_brush_radius(4)
    assert opts.size.value() == 9 and opts.size.suffix() == " px"   # a diameter, as napari shows it
    opts.size.setValue(21)
    assert window.canvas.brush_radius == 10
    qtbot.keyClick(window, "W")
    assert opts.visible_options() == ["tolerance", "contiguous"]
    opts.contiguous.setChecked(False)
    assert window.canvas.options.contiguous is False
    qtbot.keyClick(window, "C")
    assert opts.visible_options() == ["threshold"]
    opts.threshold.setValue(55)
    assert window.canvas.options.threshold == pytest.approx(0.55) and opts.threshold_value.text() == "0.55"
    qtbot.keyClick(window, "F")
    assert opts.visible_options() == []


def test_unlabel_is_named_for_what_it_does(window):
    texts = [a.text() for a in window.actions_by_id.values()]
    assert "Unlabel" in texts and not any("eras" in t.lower() for t in texts)


def test_a_new_tool_through_the_window_is_one_undo_step_and_marks_the_image_edited(window, qtbot):
    from gui_helpers import drag

    from workbench.project import Status

    project = window.project
    image_id = next(r.id for r in project.images() if not r.has_label)
    window.workspace.open_image(image_id)
    editor = window.session.editor
    window.palette.select_nth(2)
    qtbot.keyClick(window, "W")                              # magic wand by its key
    with qtbot.waitSignal(window.canvas.labelsEdited, timeout=30000):
        drag(window.canvas, [(30, 30)])                      # a click: press + release
    assert (editor.mask != 255).any() and len(editor.history) == 1
    window.workspace.save()                                  # the edit reached the session and the file
    assert project.get(image_id).status == Status.EDITED and project.get(image_id).has_label
    qtbot.keyClick(window, "z", Qt.KeyboardModifier.ControlModifier)
    assert (editor.mask == 255).all()

"""Toolbars generated from the tool table and the shortcut table's actions, with icons.

The Tools bar holds one checkable button per ``tool_table.TOOLS`` entry (exclusive),
the tool actions (Next error region), the active tool's options and the edit commands;
the View bar holds the overlay toggles and the model commands. Every button has an
SVG icon from ``resources/icons`` and a tooltip naming the command and its key.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QLabel, QMainWindow, QSlider, QToolBar

from workbench.editing.tool_table import ACTIONS as TOOL_ACTION_SPECS
from workbench.editing.tool_table import TOOLS
from workbench.gui.resources import style_sheet
from workbench.gui.shortcuts import tool_action_id
from workbench.gui.tool_options import ToolOptionsBar
from workbench.gui.tools import tool_icon

TOOL_ACTIONS = tuple(tool_action_id(t.id) for t in TOOLS)
EXTRA_TOOL_ACTIONS = tuple(a.id for a in TOOL_ACTION_SPECS)
EDIT_ACTIONS = ("undo", "redo", "accept_all", "verify_next")
VIEW_ACTIONS = ("toggle_labels", "toggle_prediction", "toggle_uncertainty", "toggle_outline")
MODEL_ACTIONS = ("fit", "predict_all", "retrain")
ICON_SIZE = QSize(20, 20)
BUTTON_TEXT = {"verify_next": "Verify + next", "accept_all": "Accept all"}
ICONS = {**{tool_action_id(t.id): t.icon for t in TOOLS}, **{a.id: a.icon for a in TOOL_ACTION_SPECS},
         **{name: name for name in (*EDIT_ACTIONS, *VIEW_ACTIONS, *MODEL_ACTIONS)}}
TOOLTIPS = {**{tool_action_id(t.id): t.tooltip for t in TOOLS}, **{a.id: a.tooltip for a in TOOL_ACTION_SPECS}}


def short_text(action: QAction) -> str:
    """Menu text without accelerators and hints, for toolbar buttons."""
    return action.text().replace("&", "").split(" (")[0].split(" in ")[0]


def decorate(action: QAction, name: str) -> None:
    """Give an action its icon, toolbar text and a tooltip with its key."""
    action.setIcon(tool_icon(ICONS[name]))
    text = BUTTON_TEXT.get(name, short_text(action).replace("Show ", "").replace(" heat map", ""))
    action.setIconText(text)
    keys = ", ".join(k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts())
    tip = TOOLTIPS.get(name, short_text(action) + (f" ({keys})" if keys else ""))
    action.setToolTip(tip)


class ToolBars:
    """The edit toolbar (exclusive tools, tool options, edit commands) and the view toolbar."""

    def __init__(self, window: QMainWindow, actions: dict[str, QAction], canvas) -> None:
        self.tools = QToolBar("Tools", window)
        self.tools.setObjectName("tools_toolbar")
        self.tools.setIconSize(ICON_SIZE)
        self.tools.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        self.group = QActionGroup(window)
        self.group.setExclusive(True)
        for name in TOOL_ACTIONS:
            a = actions[name]
            self.group.addAction(a)
            self.tools.addAction(a)
            decorate(a, name)
        self.tools.addSeparator()
        for name in EXTRA_TOOL_ACTIONS:
            self.tools.addAction(actions[name])
            decorate(actions[name], name)
        self.tools.addSeparator()
        self.options = ToolOptionsBar(canvas)
        self.tools.addWidget(self.options)
        self.brush = self.options.size   # the brush diameter box ([ and ] change it too)
        self.edit = QToolBar("Edit", window)
        self.edit.setObjectName("edit_toolbar")
        self.edit.setIconSize(ICON_SIZE)
        self.edit.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        for name in EDIT_ACTIONS:
            self.edit.addAction(actions[name])
            decorate(actions[name], name)
        self.view = QToolBar("View", window)
        self.view.setObjectName("view_toolbar")
        self.view.setIconSize(ICON_SIZE)
        self.view.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        for name in VIEW_ACTIONS:
            self.view.addAction(actions[name])
            decorate(actions[name], name)
        self.view.addWidget(QLabel(" Opacity "))
        self.opacity = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=100, value=50)
        self.opacity.setMaximumWidth(120)
        self.opacity.setToolTip("Opacity of the labels overlay")
        self.view.addWidget(self.opacity)
        self.view.addSeparator()
        for name in MODEL_ACTIONS:
            self.view.addAction(actions[name])
            decorate(actions[name], name)
        for bar in (self.tools, self.edit, self.view):
            bar.setStyleSheet(style_sheet())
        window.addToolBar(Qt.ToolBarArea.TopToolBarArea, self.tools)
        window.addToolBar(Qt.ToolBarArea.TopToolBarArea, self.edit)
        window.addToolBarBreak(Qt.ToolBarArea.TopToolBarArea)
        window.addToolBar(Qt.ToolBarArea.TopToolBarArea, self.view)

    def tool_ids(self) -> list[str]:
        """The tool ids of the Tools bar's tool buttons, in order (for tests and Help)."""
        return [a.objectName().removeprefix("tool_") for a in self.tools.actions() if a in self.group.actions()]

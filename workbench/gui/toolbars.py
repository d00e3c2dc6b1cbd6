"""Toolbars built from the shortcut table's actions: editing tools and overlay controls."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QLabel, QMainWindow, QSlider, QSpinBox, QToolBar

TOOL_ACTIONS = ("tool_paint", "tool_erase", "tool_fill", "tool_polygon", "tool_pick", "tool_accept", "tool_pan")
VIEW_ACTIONS = ("toggle_labels", "toggle_prediction", "toggle_uncertainty", "toggle_outline")


def short_text(action: QAction) -> str:
    """Menu text without accelerators and hints, for toolbar buttons."""
    return action.text().replace("&", "").split(" (")[0].split(" in ")[0]


class ToolBars:
    """The edit toolbar (exclusive tools, brush size) and view toolbar (overlays, opacity)."""

    def __init__(self, window: QMainWindow, actions: dict[str, QAction]) -> None:
        self.tools = QToolBar("Tools", window)
        self.tools.setObjectName("tools_toolbar")
        self.group = QActionGroup(window)
        self.group.setExclusive(True)
        for name in TOOL_ACTIONS:
            a = actions[name]
            self.group.addAction(a)
            self.tools.addAction(a)
            a.setIconText(short_text(a))
        self.tools.addSeparator()
        self.tools.addWidget(QLabel(" Brush "))
        self.brush = QSpinBox(minimum=1, maximum=200, value=8, suffix=" px")
        self.brush.setToolTip("Brush radius ([ and ] change it)")
        self.tools.addWidget(self.brush)
        self.tools.addSeparator()
        for name in ("undo", "redo", "accept_all", "verify_next"):
            self.tools.addAction(actions[name])
            actions[name].setIconText({"verify_next": "Verify + next", "accept_all": "Accept all"}.get(
                name, short_text(actions[name])))
        self.view = QToolBar("View", window)
        self.view.setObjectName("view_toolbar")
        for name in VIEW_ACTIONS:
            a = actions[name]
            self.view.addAction(a)
            a.setIconText(short_text(a).replace("Show ", "").replace(" heat map", ""))
        self.view.addWidget(QLabel(" Opacity "))
        self.opacity = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=100, value=50)
        self.opacity.setMaximumWidth(120)
        self.opacity.setToolTip("Opacity of the labels overlay")
        self.view.addWidget(self.opacity)
        self.view.addSeparator()
        for name in ("fit", "predict_all", "retrain"):
            self.view.addAction(actions[name])
            actions[name].setIconText(short_text(actions[name]))
        window.addToolBar(Qt.ToolBarArea.TopToolBarArea, self.tools)
        window.addToolBarBreak(Qt.ToolBarArea.TopToolBarArea)
        window.addToolBar(Qt.ToolBarArea.TopToolBarArea, self.view)

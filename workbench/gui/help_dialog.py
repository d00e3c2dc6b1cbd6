"""Help > Keyboard shortcuts: the tools (from the tool table) and every command with its keys.

Both tables are generated: tools from ``workbench.editing.tool_table`` (icon, key, what
the tool does), commands from ``shortcuts.SHORTCUTS``; nothing is written twice.
"""

from __future__ import annotations

from PySide6.QtWidgets import (QAbstractItemView, QDialog, QDialogButtonBox, QHeaderView, QLabel, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from workbench.editing.tool_table import ACTIONS, TOOLS
from workbench.gui.shortcuts import rows_for_help
from workbench.gui.tools import tool_icon

MOUSE_HELP = ("Mouse: the left button uses the active tool; the wheel zooms around the cursor, Ctrl+wheel "
              "changes the active tool's size, tolerance or threshold; middle-drag or Space+drag pans. "
              "Long operations (Smart region, superpixels) run in the background with the image locked "
              "until their result lands; every edit is one undo step.")


def tool_rows() -> list[tuple[str, str, str, str]]:
    """(icon, tool, key, what it does) for every tool and tool action, in table order."""
    return [(t.icon, t.label, t.key, t.help) for t in TOOLS] + [(a.icon, a.label, a.key, a.help) for a in ACTIONS]


class ShortcutsDialog(QDialog):
    """Every command with its keys, grouped as in the menus."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        tools = tool_rows()
        self.tools = QTableWidget(len(tools), 3)
        self.tools.setHorizontalHeaderLabels(["Tool", "Key", "What it does"])
        self.tools.verticalHeader().hide()
        self.tools.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.tools.setWordWrap(True)
        for r, (icon, label, key, text) in enumerate(tools):
            item = QTableWidgetItem(tool_icon(icon), label)
            self.tools.setItem(r, 0, item)
            self.tools.setItem(r, 1, QTableWidgetItem(key))
            self.tools.setItem(r, 2, QTableWidgetItem(text))
        self.tools.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.tools.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.tools.horizontalHeader().setStretchLastSection(True)
        self.tools.resizeRowsToContents()
        rows = rows_for_help()
        self.table = QTableWidget(len(rows), 3)
        self.table.setHorizontalHeaderLabels(["Group", "Command", "Keys"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        for r, row in enumerate(rows):
            for c, text in enumerate(row):
                self.table.setItem(r, c, QTableWidgetItem(text))
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        note = QLabel(MOUSE_HELP)
        note.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("<b>Tools</b>"))
        layout.addWidget(self.tools, 3)
        layout.addWidget(QLabel("<b>Keyboard shortcuts</b>"))
        layout.addWidget(self.table, 2)
        layout.addWidget(note)
        layout.addWidget(buttons)
        self.resize(760, 820)

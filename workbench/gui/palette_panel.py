"""The class palette: names and colours of the project's classes, the one being painted.

Changes (add, rename, recolour) edit a copy of the schema and ask the project to save
it (``project.save_schema``); the panel then re-reads ``project.schema``.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (QColorDialog, QHBoxLayout, QInputDialog, QListWidget, QListWidgetItem,
                               QPushButton, QVBoxLayout, QWidget)

from workbench.errors import WorkbenchError
from workbench.project import Project


def swatch(color: tuple[int, int, int], size: int = 16) -> QIcon:
    """A square icon of one colour."""
    pix = QPixmap(size, size)
    pix.fill(QColor(*color))
    return QIcon(pix)


class PalettePanel(QWidget):
    """List of trainable classes (1-9 select the first nine); Add / Rename / Colour buttons."""

    classSelected = Signal(int)      # class index to paint with
    schemaChanged = Signal()         # the project's schema was saved
    failed = Signal(str)             # a user-facing error message

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.project: Project | None = None
        self.list = QListWidget()
        self.list.setAccessibleName("classes")
        self.add_button = QPushButton("Add")
        self.rename_button = QPushButton("Rename")
        self.color_button = QPushButton("Colour")
        buttons = QHBoxLayout()
        for b in (self.add_button, self.rename_button, self.color_button):
            buttons.addWidget(b)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.list)
        layout.addLayout(buttons)
        self.list.currentRowChanged.connect(self._on_row)
        self.add_button.clicked.connect(self.add_class)
        self.rename_button.clicked.connect(self.rename_current)
        self.color_button.clicked.connect(self.recolor_current)

    def set_project(self, project: Project | None) -> None:
        """Show ``project``'s classes."""
        self.project = project
        self.reload()
        if self.list.count():
            self.list.setCurrentRow(0)

    def reload(self) -> None:
        """Re-read the classes from the project, keeping the selection."""
        row = self.list.currentRow()
        self.list.blockSignals(True)
        self.list.clear()
        if self.project is not None:
            for n, c in enumerate(self.project.schema.trainable):
                key = f"  [{n + 1}]" if n < 9 else ""
                item = QListWidgetItem(swatch(c.color), f"{c.name}{key}")
                item.setData(Qt.ItemDataRole.UserRole, c.index)
                self.list.addItem(item)
        self.list.blockSignals(False)
        if 0 <= row < self.list.count():
            self.list.setCurrentRow(row)
        editable = self.project is not None and not self.project.read_only
        for b in (self.add_button, self.rename_button, self.color_button):
            b.setEnabled(editable)

    def current_class(self) -> int | None:
        """Index of the selected class."""
        item = self.list.currentItem()
        return None if item is None else int(item.data(Qt.ItemDataRole.UserRole))

    def select_class(self, index: int) -> None:
        """Select the class with mask value ``index``."""
        for row in range(self.list.count()):
            if self.list.item(row).data(Qt.ItemDataRole.UserRole) == index:
                self.list.setCurrentRow(row)
                return

    def select_nth(self, n: int) -> None:
        """Select the n-th class (1-based, as the number keys)."""
        if 1 <= n <= self.list.count():
            self.list.setCurrentRow(n - 1)

    # ----- schema edits --------------------------------------------------------------------
    def add_class(self) -> None:
        """Ask for a name and append a class."""
        if self.project is None:
            return
        name, ok = QInputDialog.getText(self, "Add class", "Name of the new class:")
        if ok and name.strip():
            self._edit(lambda s: s.add_class(name.strip()))

    def rename_current(self) -> None:
        """Ask for a new name for the selected class."""
        index = self.current_class()
        if self.project is None or index is None:
            return
        old = self.project.schema.class_name(index)
        name, ok = QInputDialog.getText(self, "Rename class", "New name:", text=old)
        if ok and name.strip():
            self._edit(lambda s: s.rename_class(index, name.strip()))

    def recolor_current(self) -> None:
        """Pick a new colour for the selected class."""
        index = self.current_class()
        if self.project is None or index is None:
            return
        info = self.project.schema.by_index(index)
        color = QColorDialog.getColor(QColor(*info.color), self, f"Colour of {info.name}")
        if color.isValid():
            self._edit(lambda s: s.recolor_class(index, (color.red(), color.green(), color.blue())))

    def apply(self, change) -> bool:
        """Apply ``change(schema_copy)`` and save it through the project; False on failure."""
        return self._edit(change)

    def _edit(self, change) -> bool:
        schema = self.project.schema.copy()
        try:
            change(schema)
            self.project.save_schema(schema)
        except (WorkbenchError, ValueError, KeyError) as exc:
            self.failed.emit(f"Could not change the classes: {exc}")
            return False
        self.reload()
        self.schemaChanged.emit()
        return True

    def _on_row(self, row: int) -> None:
        index = self.current_class()
        if index is not None:
            self.classSelected.emit(index)

"""Class setup beyond add / rename / delete: load the classes from a file, mark a class void,
and a searchable picker for classes past the number keys (issue 10).

The schema changes go through the project (``save_schema``, ``move_class``), which
pairs classes by id and refuses a change that would alter what stored pixels mean; the
functions here only build the new schema. The picker is a small dialog.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QApplication, QDialog, QDialogButtonBox, QLabel, QLineEdit, QListWidget,
                               QListWidgetItem, QVBoxLayout, QWidget)

from workbench.classes import ClassSchema, name_key
from workbench.formats.class_files import read_class_file, schema_from_classes

CLASS_FILE_FILTER = "Class files (*.json *.txt *.names *.yaml);;All files (*)"


def schema_from_file(path: str | Path, current: ClassSchema) -> ClassSchema:
    """The classes of a classes.json or names file (VOC class_names.txt, labelme labels.txt).

    A class whose name the project already has keeps its identity (id), so that its
    pixels keep their meaning: the project renumbers them if its index changes. Raises
    InputError naming the file when it cannot be read.
    """
    loaded = schema_from_classes(read_class_file(path), name=current.name)
    old_by_name = {name_key(c.name): c for c in current.classes if not c.retired}
    taken = {c.id for c in loaded.classes}
    infos = []
    for c in loaded.classes:
        old = old_by_name.get(name_key(c.name))
        if old is not None and (old.id == c.id or old.id not in taken):
            c = replace(c, id=old.id)
        infos.append(c)
    return ClassSchema(infos, loaded.ignore_index, loaded.name, dict(current.extra))


def with_void(schema: ClassSchema, index: int, void: bool) -> ClassSchema:
    """``schema`` with class ``index`` marked void (or trainable again); ValueError says why not.

    Trainable classes must use 0..K-1: only the last trainable class can become void
    (the panel moves another one there first), and only the void class right after the
    trainable ones can become trainable.
    """
    c = schema.by_index(index)
    if c is None:
        raise ValueError(f"no class with value {index}")
    if c.retired:
        raise ValueError(f"{c.name!r} is a retired value, not a class")
    if c.void == void:
        return schema.copy()
    if void and index != schema.num_classes - 1:
        raise ValueError(f"only the last trained class (index {schema.num_classes - 1}) can become void")
    if void and schema.num_classes == 1:
        raise ValueError("the project needs at least one class that is not void")
    if not void and index != schema.num_classes:
        raise ValueError(f"{c.name!r} has value {index}; only a void class with value {schema.num_classes} "
                         "(right after the trained classes) can be trained")
    ignore = None if (not void and schema.ignore_index == index) else schema.ignore_index
    infos = [replace(x, void=void) if x.index == index else x for x in schema.classes]
    return ClassSchema(infos, ignore, schema.name, dict(schema.extra))


class ClassPicker(QDialog):
    """Type to filter the classes, Enter to choose: for classes 10 and above (key K)."""

    def __init__(self, schema: ClassSchema, current: int | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Choose a class")
        self.chosen: int | None = None
        self.search = QLineEdit(placeholderText="Type part of a class name…")
        self.search.setAccessibleName("class search")
        self.list = QListWidget()
        self.list.setAccessibleName("class choices")
        from workbench.gui.palette_panel import swatch

        listed = [(c, f"   key {n + 1}" if n < 9 else "") for n, c in enumerate(schema.trainable)]
        listed += [(c, "   (void)") for c in schema.classes if c.void and not c.retired]
        for c, key in listed:
            item = QListWidgetItem(swatch(c.color), f"{c.index}: {c.name}{key}")
            item.setData(Qt.ItemDataRole.UserRole, c.index)
            self.list.addItem(item)
            if c.index == current:
                self.list.setCurrentItem(item)
        if self.list.currentItem() is None and self.list.count():
            self.list.setCurrentRow(0)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Paint with:"))
        layout.addWidget(self.search)
        layout.addWidget(self.list)
        layout.addWidget(buttons)
        self.search.textChanged.connect(self._filter)
        self.search.returnPressed.connect(self.accept)
        self.list.itemActivated.connect(lambda _item: self.accept())
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.resize(320, 420)

    def keyPressEvent(self, event) -> None:  # noqa: N802 (Qt override)
        """Up / Down in the search box move through the list."""
        if event.key() in (Qt.Key.Key_Up, Qt.Key.Key_Down) and self.search.hasFocus():
            QApplication.sendEvent(self.list, event)
            return
        super().keyPressEvent(event)

    def _filter(self, text: str) -> None:
        needle = text.strip().lower()
        first = None
        for row in range(self.list.count()):
            item = self.list.item(row)
            hidden = bool(needle) and needle not in item.text().split(": ", 1)[1].lower()
            item.setHidden(hidden)
            if not hidden and first is None:
                first = item
        if first is not None and (self.list.currentItem() is None or self.list.currentItem().isHidden()):
            self.list.setCurrentItem(first)

    def accept(self) -> None:
        """Choose the highlighted class (if it is shown)."""
        item = self.list.currentItem()
        if item is None or item.isHidden():
            return
        self.chosen = int(item.data(Qt.ItemDataRole.UserRole))
        super().accept()


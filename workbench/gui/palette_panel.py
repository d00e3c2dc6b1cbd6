"""The class palette: names and colours of the project's classes, the one being painted.

Changes edit a copy of the schema and ask the project to save it
(``project.save_schema``, which pairs classes by id: a rename never moves a pixel); the
panel then re-reads ``project.schema``. Changes that rewrite stored labels (Delete,
Move) are explicit project operations (``delete_class``, ``move_class``) and ask the
person first, saying how many label files and pixels change. While a Retrain runs the
panel is locked (``set_locked``): the run trains on the classes it started with.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (QColorDialog, QFileDialog, QHBoxLayout, QInputDialog, QLabel, QListWidget,
                               QListWidgetItem, QMessageBox, QPushButton, QVBoxLayout, QWidget)

from workbench.errors import WorkbenchError
from workbench.project import Project

NOT_LABELLED = "not labelled (clear those pixels)"


def swatch(color: tuple[int, int, int], size: int = 16) -> QIcon:
    """A square icon of one colour."""
    pix = QPixmap(size, size)
    pix.fill(QColor(*color))
    return QIcon(pix)


def _count(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


class PalettePanel(QWidget):
    """Trainable classes (keys 1-9 pick the first nine), then void ones; edit buttons below."""

    classSelected = Signal(int)      # class index to paint with
    schemaChanged = Signal()         # the project's schema was saved
    masksRemapped = Signal()         # stored labels were rewritten (delete / move): reload the open image
    failed = Signal(str)             # a user-facing error message

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.project: Project | None = None
        self.locked_reason: str | None = None
        # Called before a change that rewrites stored labels; False cancels it (the window
        # saves the open image's edits here: they must be on disk to be remapped too).
        self.before_remap: Callable[[], bool] = lambda: True
        self.list = QListWidget()
        self.list.setAccessibleName("classes")
        self.list.setMinimumHeight(20)  # three rows of buttons below must not force a taller window
        self.add_button = QPushButton("Add")
        self.rename_button = QPushButton("Rename")
        self.color_button = QPushButton("Colour")
        self.delete_button = QPushButton("Delete")
        self.up_button = QPushButton("Up")
        self.down_button = QPushButton("Down")
        # Class setup (issue 10): load from a file, void on / off, a picker past key 9.
        self.load_button = QPushButton("Load…")
        self.void_button = QPushButton("Void")
        self.pick_button = QPushButton("Find…")
        self.load_button.setToolTip("Load the classes from a classes.json or a names file (one a line: VOC "
                                    "class_names.txt, labelme labels.txt); classes are matched by name")
        self.void_button.setToolTip("Mark the class void (not trained, not scored) or trained again")
        self.pick_button.setToolTip("Find a class by name (key K): for classes past the number keys 1-9")
        self.delete_button.setToolTip("Delete the class: its pixels become not labelled, or another class")
        self.up_button.setToolTip("Move the class up one index (stored labels are renumbered)")
        self.down_button.setToolTip("Move the class down one index (stored labels are renumbered)")
        self.lock_label = QLabel()
        self.lock_label.setWordWrap(True)
        self.lock_label.hide()
        self._buttons = (self.add_button, self.rename_button, self.color_button, self.delete_button,
                         self.up_button, self.down_button, self.load_button, self.void_button)
        row1, row2, row3 = QHBoxLayout(), QHBoxLayout(), QHBoxLayout()
        for b in self._buttons[:3]:
            row1.addWidget(b)
        for b in self._buttons[3:6]:
            row2.addWidget(b)
        for b in (self.load_button, self.void_button, self.pick_button):
            row3.addWidget(b)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.list)
        layout.addWidget(self.lock_label)
        layout.addLayout(row1)
        layout.addLayout(row2)
        layout.addLayout(row3)
        self.list.currentRowChanged.connect(self._on_row)
        self.add_button.clicked.connect(self.add_class)
        self.rename_button.clicked.connect(self.rename_current)
        self.color_button.clicked.connect(self.recolor_current)
        self.delete_button.clicked.connect(self.delete_current)
        self.up_button.clicked.connect(lambda: self.move_current(-1))
        self.down_button.clicked.connect(lambda: self.move_current(+1))
        self.load_button.clicked.connect(lambda: self.load_classes())
        self.void_button.clicked.connect(self.toggle_void_current)
        self.pick_button.clicked.connect(self.pick_class)

    def set_project(self, project: Project | None) -> None:
        """Show ``project``'s classes (and say so if classes.json was renumbered by hand)."""
        self.project = project
        self.reload()
        if self.list.count():
            self.list.setCurrentRow(0)
        changes = project.class_file_changes() if project is not None else []
        if changes:
            self.failed.emit("; ".join(changes))

    def set_locked(self, reason: str | None) -> None:
        """Refuse class edits while ``reason`` holds (e.g. a Retrain runs); None unlocks.

        Selecting a class to paint with stays possible.
        """
        self.locked_reason = reason
        self.lock_label.setText(f"Classes cannot be changed now: {reason}" if reason else "")
        self.lock_label.setVisible(bool(reason))
        self._update_buttons()

    def reload(self) -> None:
        """Re-read the classes from the project, keeping the selection."""
        row = self.list.currentRow()
        self.list.blockSignals(True)
        self.list.clear()
        if self.project is not None:
            schema = self.project.schema
            for n, c in enumerate(schema.trainable):
                key = f"  [{n + 1}]" if n < 9 else ""
                item = QListWidgetItem(swatch(c.color), f"{c.name}{key}")
                item.setData(Qt.ItemDataRole.UserRole, c.index)
                self.list.addItem(item)
            # Void classes come last (no number key): listed so they can be deleted or merged.
            for c in (c for c in schema.classes if c.void):
                kind = "retired value, ignored" if c.retired else "void, not trained"
                item = QListWidgetItem(swatch(c.color), f"{c.name}  ({kind})")
                item.setData(Qt.ItemDataRole.UserRole, c.index)
                item.setForeground(QColor(120, 120, 120))
                self.list.addItem(item)
        self.list.blockSignals(False)
        if 0 <= row < self.list.count():
            self.list.setCurrentRow(row)
        self._update_buttons()

    def _update_buttons(self) -> None:
        editable = self.project is not None and not self.project.read_only and self.locked_reason is None
        for b in self._buttons:
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
        """Select the n-th trainable class (1-based, as the number keys)."""
        trainable = self.project.schema.num_classes if self.project is not None else 0
        if 1 <= n <= min(trainable, self.list.count()):
            self.list.setCurrentRow(n - 1)

    # ----- dialogs (one place, so tests can answer them) ------------------------------------
    def ask_text(self, title: str, label: str, text: str = "") -> str | None:
        """A line of text from the person, or None if they cancelled."""
        value, ok = QInputDialog.getText(self, title, label, text=text)
        return value if ok else None

    def ask_choice(self, title: str, label: str, choices: list[str]) -> str | None:
        """One of ``choices``, or None if cancelled."""
        value, ok = QInputDialog.getItem(self, title, label, choices, 0, False)
        return value if ok else None

    def ask_file(self) -> str | None:
        """A class file chosen by the person, or None."""
        from workbench.gui.class_setup import CLASS_FILE_FILTER

        path, _ = QFileDialog.getOpenFileName(self, "Load classes", "", CLASS_FILE_FILTER)
        return path or None

    def ask_class(self) -> int | None:
        """A class chosen in the searchable picker, or None."""
        from workbench.gui.class_setup import ClassPicker

        picker = ClassPicker(self.project.schema, self.current_class(), self)
        self.picker = picker                     # reachable by tests while it is open
        try:
            return picker.chosen if picker.exec() else None
        finally:
            self.picker = None
            picker.deleteLater()

    def confirm(self, title: str, text: str) -> bool:
        """Yes / No; No is the default."""
        answer = QMessageBox.question(self, title, text,
                                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                      QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    # ----- schema edits --------------------------------------------------------------------
    def _refused(self) -> bool:
        if self.project is None:
            return True
        if self.locked_reason is not None:
            self.failed.emit(f"Classes cannot be changed now: {self.locked_reason}")
            return True
        return False

    def add_class(self) -> None:
        """Ask for a name and append a class."""
        if self._refused():
            return
        name = self.ask_text("Add class", "Name of the new class:")
        if name is None or not name.strip():
            return
        before = list(self.project.problems)
        try:
            info = self.project.add_class(name.strip())
        except WorkbenchError as exc:
            self.failed.emit(f"Could not add the class: {exc}")
            return
        self._changed()
        self.select_class(info.index)
        found = [p for p in self.project.problems if p not in before]
        if found:  # values in the labels that classes.json lacked: say what was done with them
            self.failed.emit("; ".join(found))

    def rename_current(self) -> None:
        """Ask for a new name for the selected class (refused if another class has it)."""
        index = self.current_class()
        if self._refused() or index is None:
            return
        old = self.project.schema.class_name(index)
        name = self.ask_text("Rename class", "New name:", old)
        if name is not None and name.strip():
            self._edit(lambda s: s.rename_class(index, name.strip()))

    def recolor_current(self) -> None:
        """Pick a new colour for the selected class."""
        index = self.current_class()
        if self._refused() or index is None:
            return
        info = self.project.schema.by_index(index)
        color = QColorDialog.getColor(QColor(*info.color), self, f"Colour of {info.name}")
        if color.isValid():
            self._edit(lambda s: s.recolor_class(index, (color.red(), color.green(), color.blue())))

    def delete_current(self) -> None:
        """Delete the selected class after asking what its pixels become and confirming."""
        index = self.current_class()
        if self._refused() or index is None:
            return
        schema = self.project.schema
        gone = schema.by_index(index)
        others = [c for c in schema.classes if c.id != gone.id]
        if not any(not c.void for c in others):
            self.failed.emit(f"Could not delete {gone.name!r}: it is the only class")
            return
        try:
            files, pixels = self.project.class_usage(gone.id)
        except WorkbenchError as exc:
            self.failed.emit(f"Could not delete the class: {exc}")
            return
        merge_id = None
        if pixels:
            question = (f"{_count(pixels, 'pixel')} in {_count(len(files), 'label file')} are "
                        f"{gone.name!r}. They become:")
            options = [NOT_LABELLED] + [c.name for c in others]
            choice = self.ask_choice(f"Delete {gone.name}", question, options)
            if choice is None:
                return
            target = None if choice == NOT_LABELLED else schema.by_name(choice)
            merge_id = None if target is None else target.id
            fate = "not labelled" if target is None else repr(target.name)
        above = [c.name for c in schema.trainable if c.index > gone.index] if not gone.void else []
        text = f"Delete the class {gone.name!r}?"
        if pixels:
            text += (f"\n\n{_count(len(files), 'label file')} ({_count(pixels, 'pixel')}) change: "
                     f"those pixels become {fate}.")
        else:
            text += "\n\nNo stored label uses it."
        if above:
            text += (f"\n{', '.join(above)} move down one index; their pixels are renumbered in the "
                     "stored labels (their meaning is kept).")
        text += "\nModels trained before no longer match the classes (retrain)."
        if not self.confirm("Delete class", text):
            return
        self._remap(lambda: self.project.delete_class(gone.id, merge_into=merge_id))

    def move_current(self, delta: int) -> None:
        """Move the selected class up (-1) or down (+1) one index, after confirming."""
        index = self.current_class()
        if self._refused() or index is None:
            return
        schema = self.project.schema
        dest = index + delta
        if schema.by_index(index).void:
            self.failed.emit(f"{schema.class_name(index)!r} is void: only trained classes have an order")
            return
        if not 0 <= dest < schema.num_classes:
            return
        c, other = schema.by_index(index), schema.by_index(dest)
        files_a, _ = self.project.class_usage(c.id)
        files_b, _ = self.project.class_usage(other.id)
        changed = len(set(files_a) | set(files_b))
        text = (f"Swap the indices of {c.name!r} ({index} → {dest}) and "
                f"{other.name!r} ({dest} → {index})?"
                f"\n\n{_count(changed, 'label file')} are renumbered; every pixel keeps its class.")
        if not self.confirm("Move class", text):
            return
        if self._remap(lambda: self.project.move_class(c.id, dest)):
            self.select_class(dest)

    # ----- class setup (class_setup.py) --------------------------------------------------------
    def pick_class(self) -> None:
        """Choose the class to paint with by name (key K)."""
        if self.project is None:
            return
        index = self.ask_class()
        if index is not None:
            self.select_class(index)

    def load_classes(self, path: str | None = None) -> bool:
        """Replace the classes by those of a classes.json or names file, after confirming."""
        from workbench.gui.class_setup import schema_from_file

        if self._refused():
            return False
        path = path or self.ask_file()
        if not path:
            return False
        try:
            new = schema_from_file(path, self.project.schema)
        except (WorkbenchError, ValueError) as exc:
            self.failed.emit(f"Could not load the classes: {exc}")
            return False
        old = self.project.schema
        kept = [c.name for c in new.classes if old.by_id(c.id) is not None]
        dropped = [c.name for c in old.classes if new.by_id(c.id) is None and not c.retired]
        void = [c.name for c in new.classes if c.void]
        text = (f"Use the {len(new.classes)} classes of {Path(path).name}?\n\n"
                + ", ".join(f"{c.index}: {c.name}" for c in new.classes)
                + (f"\n\nVoid (not trained, not scored): {', '.join(void)}" if void else "")
                + (f"\n\nKept by name (their pixels keep their class): {', '.join(kept)}" if kept else "")
                + (f"\n\nRemoved: {', '.join(dropped)} (refused if stored labels use them)" if dropped else ""))
        if not self.confirm("Load classes", text):
            return False
        if not self._remap(lambda: self.project.save_schema(new)):
            return False
        if self.list.count():
            self.list.setCurrentRow(0)
        return True

    def toggle_void_current(self) -> None:
        """Mark the selected class void (not trained, not scored), or trained again, after confirming."""
        from workbench.gui.class_setup import with_void

        index = self.current_class()
        if self._refused() or index is None:
            return
        schema = self.project.schema
        c = schema.by_index(index)
        if c.retired:
            self.failed.emit(f"{c.name!r} is a retired value, not a class: delete it or merge it instead")
            return
        files, pixels = self.project.class_usage(c.id)
        last = schema.num_classes - 1
        if c.void:
            text = (f"Train {c.name!r} again?\n\nIts {_count(pixels, 'pixel')} in "
                    f"{_count(len(files), 'label file')} are trained on and scored from the next Retrain.")
        else:
            text = (f"Mark {c.name!r} void?\n\nIts {_count(pixels, 'pixel')} in {_count(len(files), 'label file')} "
                    "keep their value but are no longer trained on or scored (like 'not labelled').")
            if index != last:
                text += (f"\nIt first moves to index {last} (after the other trained classes): the classes "
                         "after it move down one index and stored labels are renumbered (every pixel keeps its class).")
        text += "\nModels trained before no longer match the classes (retrain)."
        if not self.confirm("Void class", text):
            return
        if not c.void and index != last:
            if not self._remap(lambda: self.project.move_class(c.id, last)):
                return
            index = last
        try:
            new = with_void(self.project.schema, index, not c.void)
        except ValueError as exc:
            self.failed.emit(f"Could not change the classes: {exc}")
            return
        if self._edit(lambda s: None, new):
            self.select_class(index)

    def apply(self, change) -> bool:
        """Apply ``change(schema_copy)`` and save it through the project; False on failure."""
        if self._refused():
            return False
        return self._edit(change)

    def _edit(self, change, schema=None) -> bool:
        try:
            schema = self.project.schema.copy() if schema is None else schema
            change(schema)
            self.project.save_schema(schema)
        except (WorkbenchError, ValueError, KeyError) as exc:
            self.failed.emit(f"Could not change the classes: {exc}")
            return False
        self._changed()
        return True

    def _remap(self, operation) -> bool:
        if not self.before_remap():
            self.failed.emit("Could not change the classes: the open image has edits that could not be "
                             "saved; save them (or undo them) first")
            return False
        try:
            operation()
        except WorkbenchError as exc:
            self.failed.emit(f"Could not change the classes: {exc}")
            return False
        self._changed()
        self.masksRemapped.emit()
        return True

    def _changed(self) -> None:
        self.reload()
        self.schemaChanged.emit()

    def _on_row(self, row: int) -> None:
        index = self.current_class()
        if index is not None:
            self.classSelected.emit(index)

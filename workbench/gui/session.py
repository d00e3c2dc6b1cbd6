"""The image being edited: its pixels, its LabelEditor, and saving (autosave included).

Saves go through ``project.save_label`` (atomic) when switching images and ~3 s after
the last edit (a single-shot timer restarted on every edit). A failed save keeps the
edits (the editor, with its undo history) in memory, marks the image unsaved and
reports the error; the next save attempt retries.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from workbench.classes import UNLABELLED
from workbench.editing.label_editor import LabelEditor
from workbench.errors import WorkbenchError
from workbench.project import Project, Status

AUTOSAVE_MS = 3000


class EditSession(QObject):
    """Owns the current image and its editor; the project stays the source of truth on disk."""

    opened = Signal(int)            # image id now shown
    saved = Signal(int)             # image id whose label was written
    saveFailed = Signal(int, str)   # image id, message; its edits are kept in memory
    dirtyChanged = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.project: Project | None = None
        self.image_id: int | None = None
        self.image: np.ndarray | None = None
        self.editor: LabelEditor | None = None
        # Editors of images whose last save failed: their edits and undo history survive.
        self.kept: dict[int, LabelEditor] = {}
        self.autosave = QTimer(self)
        self.autosave.setSingleShot(True)
        self.autosave.setInterval(AUTOSAVE_MS)
        self.autosave.timeout.connect(self.save_quietly)

    def set_project(self, project: Project | None) -> None:
        """Forget the current image (the caller saved it first)."""
        self.autosave.stop()
        self.project, self.image_id, self.image, self.editor = project, None, None, None
        self.kept.clear()

    # ----- opening --------------------------------------------------------------------------
    def open(self, image_id: int) -> None:
        """Save the current image, then load ``image_id``; raises WorkbenchError if unreadable.

        On a read error the previous image stays open.
        """
        if self.project is None:
            return
        if image_id == self.image_id:
            return
        image = self.project.read_image(image_id)          # may raise InputError
        editor = self.kept.get(image_id)
        if editor is None:
            label = self.project.read_label(image_id)     # may raise InputError (bad size...)
            if label is None:
                label = np.full(image.shape[:2], UNLABELLED, np.uint8)
            editor = LabelEditor(np.ascontiguousarray(label))
        self.save_quietly()
        self.image_id, self.image, self.editor = image_id, image, editor
        self.opened.emit(image_id)
        self.dirtyChanged.emit(self.dirty)

    @property
    def dirty(self) -> bool:
        """True when the current image has edits not on disk."""
        return self.editor is not None and self.editor.dirty

    # ----- edits and saving -----------------------------------------------------------------
    def edited(self) -> None:
        """Call after every edit: restarts the autosave countdown."""
        self.autosave.start()
        self.dirtyChanged.emit(self.dirty)

    def save_quietly(self) -> bool:
        """Save if dirty; a failure is reported through ``saveFailed`` (never raised)."""
        try:
            return self.save()
        except WorkbenchError:
            return False

    def save(self, status: Status | None = None) -> bool:
        """Write the current label if dirty (or ``status`` given); raises WorkbenchError on failure."""
        self.autosave.stop()
        if self.project is None or self.editor is None or self.image_id is None:
            return True
        if self.editor.stroke_active:       # never save half a drag; try again shortly
            self.autosave.start()
            return False
        if not self.editor.dirty and status is None:
            return True
        image_id = self.image_id
        if status is None:
            current = self.project.get(image_id).status
            status = Status.VERIFIED if current == Status.VERIFIED else Status.EDITED
        try:
            self.project.save_label(image_id, self.editor.mask.copy(), status=status, source="person")
        except WorkbenchError as exc:
            self.kept[image_id] = self.editor
            self.saveFailed.emit(image_id, str(exc))
            raise
        self.editor.mark_saved()
        self.kept.pop(image_id, None)
        self.saved.emit(image_id)
        self.dirtyChanged.emit(False)
        return True

    def verify(self) -> None:
        """Save the current label as verified; raises WorkbenchError when nothing is labelled."""
        if self.editor is None:
            return
        if not (self.editor.mask != UNLABELLED).any():
            raise WorkbenchError("nothing is labelled on this image yet: paint or accept the "
                                 "prediction before marking it verified")
        self.save(status=Status.VERIFIED)

    def unsaved_ids(self) -> list[int]:
        """Images whose edits are only in memory (the current one if dirty, and failed saves)."""
        ids = set(self.kept)
        if self.dirty and self.image_id is not None:
            ids.add(self.image_id)
        return sorted(ids)

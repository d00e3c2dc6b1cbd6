"""Edit > Label history…: the kept versions of the open image's label, previewed over the image.

The list reads ``Project.label_history`` (newest first, the current label on top); the
preview draws the selected version in class colours over the image. Restore asks the
workspace to apply the version to the editor as one undo step and save it through the
normal save path (``Workspace.restore_label_version``), so Ctrl+Z brings back the label
it replaced.
"""

from __future__ import annotations

import time

import cv2
import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QHBoxLayout, QLabel, QListWidget, QListWidgetItem,
                               QPushButton, QVBoxLayout, QWidget)

from workbench.classes import ClassSchema
from workbench.errors import WorkbenchError
from workbench.project.label_history import LabelVersion

PREVIEW_SIZE = 480      # longest side of the preview, logical pixels
PREVIEW_ALPHA = 0.6     # label colours over the image
CURRENT = -1            # list row data of the current label


def _when(t: float | None) -> str:
    return "unknown time" if t is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(t))


def _made_by(source: str | None) -> str:
    if source is None:
        return "unknown"
    return f"model v{source.split(':', 1)[1]}" if source.startswith("model:") else source


def version_text(v: LabelVersion) -> str:
    """One list row: number, who made it and when, its status, what replaced it, how much is labelled."""
    share = "" if v.labelled is None or not v.pixels else f" · {100.0 * v.labelled / v.pixels:.0f}% labelled"
    return (f"Version {v.version} · made by {v.describe_source()}, {_when(v.made)} · {v.status or 'unknown'}"
            f" · replaced by {v.reason or 'unknown'}, {_when(v.replaced)}{share}")


def blend(image: np.ndarray | None, mask: np.ndarray, schema: ClassSchema, size: int = PREVIEW_SIZE) -> np.ndarray:
    """(h, w, 3) uint8 preview: ``mask`` in class colours over ``image`` (grey when no image), downscaled."""
    h, w = mask.shape
    scale = min(1.0, size / max(h, w))
    dw, dh = max(1, round(w * scale)), max(1, round(h * scale))
    small = cv2.resize(mask, (dw, dh), interpolation=cv2.INTER_NEAREST)
    if image is not None and image.shape[:2] == mask.shape:
        base = cv2.resize(image, (dw, dh), interpolation=cv2.INTER_AREA).astype(np.float32)
    else:
        base = np.full((dh, dw, 3), 96, np.float32)
    lut = schema.lut_rgba()
    rgba = lut[small].astype(np.float32)
    a = rgba[..., 3:4] / 255.0 * PREVIEW_ALPHA
    out = base * (1.0 - a) + rgba[..., :3] * a
    return np.ascontiguousarray(np.clip(out + 0.5, 0, 255).astype(np.uint8))


class LabelHistoryDialog(QDialog):
    """The versions of one image's label; Restore emits ``restoreRequested(version)``."""

    restoreRequested = Signal(int)

    def __init__(self, project, image_id: int, image: np.ndarray | None, current: np.ndarray | None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.project, self.image_id, self.image, self.current = project, image_id, image, current
        self._preview_array: np.ndarray | None = None   # the QImage below views this buffer
        name = project.get(image_id).name
        self.setWindowTitle(f"Label history: {name}")
        self.list = QListWidget()
        self.list.setObjectName("label_history_list")
        self.preview = QLabel()
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setMinimumSize(PREVIEW_SIZE // 2, PREVIEW_SIZE // 2)
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.restore_button = QPushButton("&Restore this version")
        self.restore_button.setObjectName("restore_version")
        self.restore_button.clicked.connect(self._restore)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.addButton(self.restore_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        row = QHBoxLayout()
        row.addWidget(self.list, 1)
        row.addWidget(self.preview, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(row, 1)
        layout.addWidget(self.note)
        layout.addWidget(buttons)
        self.list.currentRowChanged.connect(self._show)
        self.reload()
        self.resize(1000, 560)

    def reload(self) -> None:
        """Re-read the versions (after a restore added one)."""
        self.list.clear()
        rec = self.project.get(self.image_id)
        top = (f"Current label · made by {_made_by(rec.source)}, {_when(rec.updated)} · {rec.status.value}"
               if rec.has_label else "Current label · not saved yet")
        item = QListWidgetItem(top)
        item.setData(Qt.ItemDataRole.UserRole, CURRENT)
        self.list.addItem(item)
        try:
            versions = self.project.label_history(self.image_id)
        except WorkbenchError as exc:
            versions = []
            self.note.setText(f"Cannot read the label history: {exc}")
        for v in reversed(versions):
            item = QListWidgetItem(version_text(v))
            item.setData(Qt.ItemDataRole.UserRole, v.version)
            self.list.addItem(item)
        if not versions:
            self.note.setText("No earlier versions yet: every save, import, clear or class change that "
                              "replaces this label keeps the version it replaced here.")
        self.list.setCurrentRow(0 if not versions else 1)

    def selected_version(self) -> int | None:
        """The version selected in the list (None: the current label or nothing)."""
        item = self.list.currentItem()
        if item is None:
            return None
        value = int(item.data(Qt.ItemDataRole.UserRole))
        return None if value == CURRENT else value

    def select_version(self, version: int) -> None:
        """Select ``version`` in the list."""
        for row in range(self.list.count()):
            if self.list.item(row).data(Qt.ItemDataRole.UserRole) == version:
                self.list.setCurrentRow(row)
                return
        raise KeyError(f"no version {version} in the list")

    def _show(self, _row: int) -> None:
        version = self.selected_version()
        self.restore_button.setEnabled(version is not None)
        mask = self.current
        if version is not None:
            try:
                mask = self.project.read_label_version(self.image_id, version)
            except WorkbenchError as exc:
                self.restore_button.setEnabled(False)
                self.note.setText(f"Cannot read version {version}: {exc}")
                self.preview.clear()
                return
        if mask is None:
            self.preview.setText("no label")
            return
        arr = blend(self.image, mask, self.project.schema)
        self._preview_array = arr
        h, w = arr.shape[:2]
        qimg = QImage(arr.data, w, h, 3 * w, QImage.Format.Format_RGB888)
        self.preview.setPixmap(QPixmap.fromImage(qimg))

    def _restore(self) -> None:
        version = self.selected_version()
        if version is None:
            return
        self.restoreRequested.emit(version)
        self.accept()


def show_label_history(workspace, parent: QWidget | None = None) -> LabelHistoryDialog | None:
    """Open the history of the image on screen (non-blocking); Restore goes to the workspace."""
    project, image_id = workspace.project, workspace.image_id
    if project is None or image_id is None or workspace.session.editor is None:
        workspace.notifier.info("Open an image first: the history is per image.", 4000)
        return None
    dialog = LabelHistoryDialog(project, image_id, workspace.session.image,
                                workspace.session.editor.mask.copy(), parent)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.restoreRequested.connect(workspace.restore_label_version)
    dialog.setWindowModality(Qt.WindowModality.WindowModal)
    dialog.show()
    return dialog

"""Errors and notices shown in the window: a status-bar line plus a non-blocking dialog.

Every action's WorkbenchError and every worker's unexpected exception ends here; the
app keeps running.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QMessageBox, QStatusBar, QWidget


class Notifier(QObject):
    """Shows messages; keeps the last error for tests and the Help menu."""

    errorShown = Signal(str)

    def __init__(self, window: QWidget, status: QStatusBar, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._window = window
        self._status = status
        self.last_error: str | None = None
        self._box: QMessageBox | None = None

    def info(self, message: str, msecs: int = 6000) -> None:
        """A transient status-bar message."""
        self._status.showMessage(message, msecs)

    def error(self, message: str, details: str = "", dialog: bool = True) -> None:
        """Status-bar line (kept until replaced) and, unless ``dialog`` is False, a non-modal box."""
        first, _, rest = message.partition("\n\n")
        details = details or rest.strip()
        self.last_error = first
        self._status.showMessage(f"Error: {first}")
        if dialog:
            if self._box is None:
                self._box = QMessageBox(QMessageBox.Icon.Warning, "Segmentation Workbench", "", parent=self._window)
                self._box.setModal(False)
            self._box.setText(first)
            self._box.setDetailedText(details)
            self._box.show()
        self.errorShown.emit(first)

"""Errors and notices shown in the window: a status-bar line plus an in-window banner.

Every action's WorkbenchError and every worker's unexpected exception ends here; the
app keeps running. The banner sits above the canvas instead of a pop-up, so it never
takes the keyboard focus (and the window's shortcuts) away from the person working;
a traceback, when there is one, is one click away (Details).
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QMessageBox, QPushButton, QStatusBar, QWidget


class Strip(QFrame):
    """A dismissable coloured strip above the canvas: a wrapped message, one action button, Dismiss.

    Never a pop-up: it takes no keyboard focus away from the person working.
    """

    def __init__(self, name: str, background: str, border: str, text_color: str, action: str,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(name)
        self.setStyleSheet(f"#{name} {{ background: {background}; border: 1px solid {border}; }}"
                           f"#{name} QLabel {{ color: {text_color}; }}")
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.action_button = QPushButton(action)
        self.close_button = QPushButton("Dismiss")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 3, 6, 3)
        layout.addWidget(self.text, 1)
        layout.addWidget(self.action_button)
        layout.addWidget(self.close_button)
        self.close_button.clicked.connect(self.hide)
        self.hide()


class MessageBanner(Strip):
    """A dismissable red strip with the last error and an optional Details button."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("message_banner", "#fde2e1", "#d62828", "#7a0b0b", "Details…", parent)
        self.details_button = self.action_button
        self.details = ""
        self.details_button.clicked.connect(self.show_details)

    def show_message(self, message: str, details: str = "") -> None:
        """Show ``message`` (replacing the previous one)."""
        self.text.setText(message)
        self.details = details
        self.details_button.setVisible(bool(details))
        self.show()

    def show_details(self) -> None:
        """The traceback of an unexpected error, in a dialog the person asked for."""
        box = QMessageBox(QMessageBox.Icon.Warning, "Error details", self.text.text(), parent=self)
        box.setDetailedText(self.details)
        box.open()


class Notifier(QObject):
    """Shows messages; keeps the last error for tests and bug reports."""

    errorShown = Signal(str)

    def __init__(self, banner: MessageBanner, status: QStatusBar, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.banner = banner
        self._status = status
        self.last_error: str | None = None

    def set_project(self, _project: object = None) -> None:
        """Another project is open: the previous project's error is no longer about anything here."""
        self.clear()

    def clear(self) -> None:
        """Hide the banner and forget the last error."""
        self.banner.hide()
        self.last_error = None
        self._status.clearMessage()

    def info(self, message: str, msecs: int = 6000) -> None:
        """A transient status-bar message."""
        self._status.showMessage(message, msecs)

    def error(self, message: str, details: str = "", banner: bool = True) -> None:
        """Status-bar line (kept until replaced) and, unless ``banner`` is False, the banner."""
        first, _, rest = message.partition("\n\n")
        details = details or rest.strip()
        self.last_error = first
        self._status.showMessage(f"Error: {first}")
        if banner:
            self.banner.show_message(first, details)
        self.errorShown.emit(first)

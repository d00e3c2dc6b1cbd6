"""Errors meant for the person using the tool.

A ``WorkbenchError`` carries a message that names the file and the problem; the CLI
prints it without a traceback and the GUI shows it in the window.
"""

from __future__ import annotations

from pathlib import Path


class WorkbenchError(Exception):
    """A failure the user can act on; ``str(err)`` is the whole message."""

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.problem = message
        super().__init__(f"{self.path}: {message}" if self.path is not None else message)


class InputError(WorkbenchError):
    """A file (image, mask, schema, checkpoint) that cannot be used as it is."""


class CancelledError(WorkbenchError):
    """Raised inside long work when the user asked it to stop."""

    def __init__(self, message: str = "cancelled") -> None:
        super().__init__(message)

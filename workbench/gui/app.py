"""Starting the desktop app: QApplication, the main window on a project, the event loop."""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtWidgets import QApplication

from workbench.gui.main_window import MainWindow


def create_window(path: str | Path, state_dir: str | Path | None = None, device: str = "auto") -> MainWindow:
    """A shown main window on ``path`` (errors opening it are shown in the window)."""
    window = MainWindow(device=device)
    window.show()
    # Take the keyboard focus even without a window manager (e.g. a bare X server), so
    # the window's shortcuts work from the first key.
    window.raise_()
    window.activateWindow()
    window.open_project(path, state_dir=state_dir)
    return window


def run_app(path: str | Path, state_dir: str | Path | None = None) -> int:
    """Open the main window on ``path`` and run the Qt event loop; returns the exit status."""
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Segmentation Workbench")
    app.setOrganizationName("segmentation-workbench")
    window = create_window(path, state_dir)
    code = app.exec()
    del window
    return int(code)

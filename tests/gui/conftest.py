"""Fixtures for the desktop-app tests: a private copy of the sample project, a window on it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample_data"


@pytest.fixture(autouse=True)
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Per-test home for GUI preferences (window layout, recent projects)."""
    home = tmp_path / "state-home"
    monkeypatch.setenv("WORKBENCH_STATE_HOME", str(home))
    return home


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    """A writable copy of the bundled sample project, without any state from the repo checkout."""
    dest = tmp_path / "sample"
    shutil.copytree(SAMPLE, dest, ignore=shutil.ignore_patterns(".workbench"))
    return dest


@pytest.fixture
def make_window(qtbot):
    """Factory: a shown MainWindow on a folder; closed (jobs stopped, saved) at teardown."""
    from PySide6.QtWidgets import QApplication

    from workbench.gui.main_window import MainWindow

    windows = []

    def make(folder: Path, **kwargs):
        window = MainWindow(device="cpu")
        # pytest-qt closes its widgets before fixtures finalise: stop jobs first, without asking.
        qtbot.addWidget(window, before_close_func=lambda w: w.close_project(ask=False))
        window.show()
        assert window.open_project(folder, **kwargs), window.notifier.last_error
        # Window shortcuts only fire in the active window: wait for activation like a person would.
        window.activateWindow()
        qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=10000)
        windows.append(window)
        return window

    yield make
    for w in windows:
        w.close_project(ask=False)
        w.close()


@pytest.fixture
def window(make_window, project_dir: Path):
    """A main window on a fresh copy of the sample project."""
    return make_window(project_dir)

"""Per-user GUI preferences (window layout, recent projects) in a QSettings INI file.

The file lives in the per-user state home (``$WORKBENCH_STATE_HOME`` when set), so tests
and several checkouts never share or overwrite a person's layout.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings

from workbench.project.location import user_state_home

MAX_RECENT = 10


def app_settings() -> QSettings:
    """The preferences store (INI format, one file per user)."""
    return QSettings(str(user_state_home() / "gui.ini"), QSettings.Format.IniFormat)


def recent_projects() -> list[str]:
    """Recently opened folders, newest first, those that still exist."""
    value = app_settings().value("recent", [])
    if isinstance(value, str):
        value = [value]
    return [p for p in (value or []) if isinstance(p, str) and Path(p).is_dir()]


def add_recent_project(folder: str | Path) -> None:
    """Put ``folder`` first in the recent list."""
    folder = str(Path(folder).resolve())
    items = [folder] + [p for p in recent_projects() if p != folder]
    settings = app_settings()
    settings.setValue("recent", items[:MAX_RECENT])
    settings.sync()

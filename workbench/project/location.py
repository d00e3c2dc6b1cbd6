"""Where a project's state lives: ``FOLDER/.workbench`` or a per-user folder.

Source images are never written to. When the image folder cannot take a
``.workbench`` folder (not writable, or its permission bits deny writing even to
root, as on a read-only shared data set), state goes to a per-user folder named
after the image folder plus a hash of its absolute path, so two folders called
``train`` never share state.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

STATE_DIRNAME = ".workbench"
DB_NAME = "project.sqlite"
SNAPSHOT_NAME = "images.json"
"""Splits and statuses of every image, rewritten when they change (recovery.py)."""
STATE_HOME_ENV = "WORKBENCH_STATE_HOME"
APP_NAME = "segmentation-workbench"


def is_state_dir(path: str | Path) -> bool:
    """True when ``path`` is a project state folder (it holds the project database)."""
    return (Path(path) / DB_NAME).is_file()


def folder_is_writable(folder: str | Path) -> bool:
    """True when we may create ``.workbench`` inside ``folder``.

    Root passes ``os.access`` everywhere, so permission bits that deny writing to
    everyone (``chmod a-w``) are read as the owner's wish to keep the folder untouched.
    """
    folder = Path(folder)
    try:
        mode = folder.stat().st_mode
    except OSError:
        return False
    return os.access(folder, os.W_OK) and stat.S_IMODE(mode) & 0o222 != 0


def user_state_home() -> Path:
    """The per-user base folder (``$WORKBENCH_STATE_HOME`` if set)."""
    env = os.environ.get(STATE_HOME_ENV)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP_NAME, appauthor=False))


def fallback_state_dir(folder: str | Path) -> Path:
    """The per-user state folder for a read-only image folder."""
    folder = Path(folder).resolve()
    digest = hashlib.sha1(os.fsencode(str(folder))).hexdigest()[:10]
    return user_state_home() / "projects" / f"{folder.name or 'root'}-{digest}"


def has_state(state: str | Path) -> bool:
    """True when ``state`` holds anything of a project (database, classes, labels, models)."""
    state = Path(state)
    return any((state / name).exists() for name in (DB_NAME, "classes.json", "labels",
                                                    "groundtruth", "models", SNAPSHOT_NAME))


def _read_only_mount(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):  # no statvfs on Windows
        return False


def write_problem(state: str | Path) -> str | None:
    """Why an existing state folder cannot be written, or None when it can."""
    state = Path(state)
    if _read_only_mount(state):
        return "the state folder is on a read-only file system"
    if not folder_is_writable(state):
        return "the state folder is not writable (permissions)"
    return None


def default_state_dir(folder: str | Path) -> Path:
    """``FOLDER/.workbench`` if it holds state or can be made, else the per-user fallback.

    An existing ``.workbench`` with project state is used even when it cannot be
    written: the project then opens read-only and says why. Swapping it for a new,
    empty per-user folder would hide every label. The fallback is only for a folder
    where no state exists yet.
    """
    folder = Path(folder)
    inside = folder / STATE_DIRNAME
    if inside.is_dir() and (folder_is_writable(inside) or has_state(inside)):
        return inside
    if not inside.exists() and folder_is_writable(folder):
        return inside
    return fallback_state_dir(folder)

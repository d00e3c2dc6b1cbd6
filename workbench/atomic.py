"""Atomic file writes: a temp file in the same folder, flushed, then ``os.replace``.

A crash or a failed write leaves either the old file or the new one, never a torn
one. Temp files carry ``TEMP_MARKER`` in their name so a later open can remove the
leftovers of a crash (``clean_stale_temps``).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from workbench.errors import WorkbenchError

TEMP_MARKER = ".wbtmp-"


def _fsync_dir(folder: Path) -> None:
    # Make the rename itself durable; not possible on every platform (Windows).
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


NAME_MAX = 255
"""Longest file name, in bytes, on the file systems we write to (ext4, APFS, NTFS)."""


def temp_name(name: str) -> str:
    """A unique temp-file name for ``name``, never longer than ``NAME_MAX`` bytes.

    The target's name is kept (shortened from the front when needed) so a leftover
    says what it was; a 244-byte label name must not fail only because of the prefix.
    """
    prefix = f"{TEMP_MARKER}{secrets.token_hex(4)}-"
    room = NAME_MAX - len(prefix.encode())
    # os.fsencode: a name that is not valid UTF-8 (Latin-1 bytes arrive as surrogate
    # escapes) is measured and kept byte for byte, instead of failing to encode.
    encoded = os.fsencode(name)
    if len(encoded) > room:
        tail = encoded[-room:]
        while tail and 0x80 <= tail[0] < 0xC0:  # do not start inside a UTF-8 character
            tail = tail[1:]
        name = os.fsdecode(tail)
    return prefix + name


def _make_folder(path: Path) -> None:
    # "File exists" / "Not a directory" from mkdir do not say what is wrong: name the
    # file that stands where a folder is needed (e.g. --out pointing at a file).
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        blocker = next((p for p in (path.parent, *path.parent.parents) if p.exists() and not p.is_dir()),
                       path.parent)
        raise WorkbenchError(f"could not save: {blocker} is a file, not a folder", path) from exc
    except OSError as exc:
        raise WorkbenchError(f"could not save: {exc.strerror or exc}", path) from exc


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "wb", encoding: str | None = None) -> Iterator[IO]:
    """Open a temp file beside ``path``; on clean exit it replaces ``path`` atomically.

    On any exception the temp file is removed, the old file is untouched, and an
    ``OSError`` is turned into a ``WorkbenchError`` naming the file.
    """
    path = Path(path)
    if "b" not in mode and encoding is None:
        encoding = "utf-8"
    tmp = path.with_name(temp_name(path.name))
    _make_folder(path)
    try:
        with open(tmp, mode, encoding=encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as exc:
        _remove_quietly(tmp)
        raise WorkbenchError(f"could not save: {exc.strerror or exc}", path) from exc
    except BaseException:
        _remove_quietly(tmp)
        raise


def read_regular_bytes(path: str | Path) -> bytes:
    """The bytes of a regular file; ``OSError`` for anything else (never blocks on a pipe).

    A named pipe or device where a state file should be (a label, a history version)
    would block ``read_bytes()`` forever. The file is opened without blocking, checked
    with ``fstat`` on that very descriptor, and only then read.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "Is a directory", str(path))
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, "not a regular file (a pipe, socket or device)", str(path))
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read()
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb") as fh:
        fh.write(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def _remove_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def is_temp_file(path: str | Path) -> bool:
    """True for temp files made by ``atomic_open`` (leftovers of a crash)."""
    return Path(path).name.startswith(TEMP_MARKER)


def clean_stale_temps(folder: str | Path, recursive: bool = True) -> int:
    """Remove temp files left by a crashed save under ``folder``; returns how many."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    pattern = f"**/{TEMP_MARKER}*" if recursive else f"{TEMP_MARKER}*"
    removed = 0
    for tmp in folder.glob(pattern):
        if tmp.is_file():
            _remove_quietly(tmp)
            removed += 1
    return removed

"""Placing a project's images beside an export: copied, linked, or left out.

The source image is only ever read. A link is a symlink to the absolute source path;
where the file system refuses links (Windows without the privilege, some mounts) the
image is copied instead and the writer says so once.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from typing import TYPE_CHECKING

from workbench.atomic import atomic_open
from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from workbench.formats.base import WriteReport

MODES = ("copy", "link", "none")


def check_mode(mode: str) -> str:
    """``mode`` if it is one of copy / link / none; WorkbenchError listing them otherwise."""
    if mode not in MODES:
        raise WorkbenchError(f"unknown images mode {mode!r}; choose one of {', '.join(MODES)}")
    return mode


def place_image(src: Path, dst: Path, mode: str) -> bool:
    """Put ``src`` at ``dst`` as ``mode`` says; False when a link fell back to a copy."""
    check_mode(mode)
    if mode == "none":
        return True
    dst.parent.mkdir(parents=True, exist_ok=True)
    if mode == "link":
        tmp = dst.with_name(f".{dst.name}.link-tmp")
        try:
            if os.path.lexists(tmp):
                tmp.unlink()
            os.symlink(os.path.abspath(src), tmp)
            os.replace(tmp, dst)
            return True
        except (OSError, NotImplementedError):
            if os.path.lexists(tmp):
                tmp.unlink()
    if os.path.islink(dst):
        dst.unlink()  # never write through an earlier export's link into the image folder
    with open(src, "rb") as fin, atomic_open(dst, "wb") as fout:
        shutil.copyfileobj(fin, fout, 1 << 20)
    return mode == "copy"


LINK_NOTE = "links are refused here: images were copied instead"


def place_into(report: "WriteReport", src: Path, dst: Path, mode: str) -> None:
    """``place_image`` for a writer: records ``dst`` in ``report.files`` and a link fallback once."""
    if mode == "none":
        return
    if not place_image(src, dst, mode) and mode == "link" and LINK_NOTE not in report.notes:
        report.notes.append(LINK_NOTE)
    report.files.append(dst)

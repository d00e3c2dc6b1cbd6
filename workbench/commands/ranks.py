"""Opening a project under ``torchrun``: rank 0 first (it takes the write lock), then the others.

Used by the project forms of ``workbench train`` and ``workbench predict`` so a failure to
open (no such project, read-only, damaged) is raised on every rank with rank 0's message
instead of leaving the other ranks waiting at their first collective.
"""

from __future__ import annotations

from typing import Any

from workbench.errors import WorkbenchError


def open_on_ranks(ctx: Any, folder: str, *, state_dir: str | None, create: bool = True,
                  others_open: bool = False) -> Any:
    """The project on rank 0 (and, with ``others_open``, read-only on the others after it), else None.

    Without DDP (``ctx.enabled`` false) this is ``Project.open`` and its error as it is.
    """
    from workbench.project import Project

    project = None
    error = None
    if ctx.is_main:
        try:
            project = Project.open(folder, state_dir=state_dir, create=create)
        except WorkbenchError as exc:
            if not ctx.enabled:
                raise
            error = str(exc)
    if ctx.enabled:
        error = ctx.broadcast(error)
        if error is None and others_open and not ctx.is_main:
            # rank 0 holds the lock: these open read-only (they write cache files only)
            project = Project.open(folder, state_dir=state_dir, create=create)
    if error is not None:
        raise WorkbenchError(error)
    return project

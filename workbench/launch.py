"""Starting the desktop app from the command line, with a clear message when it cannot.

Kept outside ``workbench.gui`` so the check for a display happens before Qt is imported
(Qt aborts the process with a C-level message when no display can be opened).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from workbench.errors import WorkbenchError


def default_project_path() -> Path:
    """The bundled sample project: ``sample_data/`` of the source checkout, or a copy
    generated once into the user's data folder when the package was installed without it."""
    bundled = Path(__file__).resolve().parent.parent / "sample_data"
    if (bundled / "workbench.json").is_file():
        return bundled
    from workbench.project.location import user_state_home
    from workbench.sample_data import generate

    generated = user_state_home() / "sample_data"
    if not (generated / "workbench.json").is_file():
        generate(generated, seed=0, overwrite=True)
    return generated


def display_problem() -> str | None:
    """Why no window can be shown here, or None when one can."""
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if platform.startswith(("offscreen", "minimal", "vnc", "eglfs", "linuxfb")):
        return None
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return ("no display found (DISPLAY and WAYLAND_DISPLAY are unset). The desktop app needs a "
                "screen; run it in a desktop session or with X forwarding, or use the headless "
                "commands (workbench --help).")
    return None


def launch_gui(path: str | None, state_dir: str | None = None) -> int:
    """Open the main window on ``path`` (default: the sample project) and run Qt."""
    problem = display_problem()
    if problem:
        raise WorkbenchError(problem)
    target = Path(path) if path else default_project_path()
    if not target.exists():
        raise WorkbenchError("no such folder", target)
    from workbench.gui.app import run_app

    return run_app(target, state_dir=Path(state_dir) if state_dir else None)

"""Where the app's resources (icons, palette, style sheet) are, installed or from a checkout.

The top-level ``resources/`` folder of the repository ships inside the wheel as the
package ``workbench.resources`` (pyproject maps the folder to that package). A checkout
run without installing (PYTHONPATH pointing at the worktree) finds the folder beside
the package instead.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path


@cache
def resources_dir() -> Path:
    """The folder holding icons/, palette.json and style.qss."""
    package = Path(__file__).resolve().parents[1]        # .../workbench
    installed = package / "resources"                    # a wheel: workbench/resources/
    if (installed / "icons").is_dir():
        return installed
    return package.parent / "resources"                  # a checkout: <repo>/resources/


def icon_path(name: str) -> Path | None:
    """``icons/<name>.svg``, or None when there is no such icon."""
    path = resources_dir() / "icons" / f"{name}.svg"
    return path if path.is_file() else None


def style_sheet() -> str:
    """The app's style sheet (empty when the file is missing: Qt's default look)."""
    path = resources_dir() / "style.qss"
    return path.read_text(encoding="utf-8") if path.is_file() else ""


def default_palette() -> list[tuple[int, int, int]]:
    """The default class colours, in order, from palette.json."""
    data = json.loads((resources_dir() / "palette.json").read_text(encoding="utf-8"))
    return [tuple(int(v) for v in c) for c in data["colors"]]

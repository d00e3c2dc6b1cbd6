"""resources/: every icon the toolbars use exists and loads; palette and style sheet; the wheel ships them."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from workbench.classes import DEFAULT_COLORS
from workbench.gui import toolbars
from workbench.gui.resources import default_palette, icon_path, resources_dir, style_sheet
from workbench.gui.tools import tool_icon

REPO = Path(__file__).resolve().parents[2]


def test_every_toolbar_icon_exists_and_renders(qapp):
    assert resources_dir() == REPO / "resources"
    for name in toolbars.ICONS.values():
        assert icon_path(name) is not None, name
        img = tool_icon(name).pixmap(22, 22).toImage()
        assert not img.isNull(), name
        drawn = sum(img.pixelColor(x, y).alpha() > 0 for x in range(22) for y in range(22))
        assert drawn > 20, f"{name}.svg rendered almost nothing"


def test_palette_matches_the_default_class_colours_and_the_style_sheet_loads():
    assert default_palette() == [tuple(c) for c in DEFAULT_COLORS]
    assert "QToolButton" in style_sheet()


@pytest.mark.slow
def test_the_wheel_contains_the_resources(tmp_path):
    out = tmp_path / "whl"
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "-w", str(out), "--no-deps",
                    "--no-build-isolation", "-q"], check=True, cwd=tmp_path)
    (wheel,) = out.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for p in (REPO / "resources").rglob("*"):
        if p.is_file():
            assert f"workbench/resources/{p.relative_to(REPO / 'resources').as_posix()}" in names, p

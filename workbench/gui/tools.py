"""The tools as Qt sees them: the ``Tool`` enum, cursors and icons, all from the tool table.

``workbench.editing.tool_table`` is the one list of tools; this module only maps its
cursor and icon names to Qt objects. Each tool gets a cursor of its own: a crosshair
with a precise hot spot and the tool's icon beside it (pan keeps Qt's open hand).
"""

from __future__ import annotations

from enum import StrEnum
from functools import cache

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QCursor, QIcon, QPainter, QPen, QPixmap

from workbench.editing.tool_table import ACTIONS, TOOLS
from workbench.gui.resources import icon_path

# What a left click or drag on the canvas does: one member per tool table entry.
Tool = StrEnum("Tool", {t.id.upper(): t.id for t in TOOLS})
Tool.__doc__ = "The canvas's editing tools, generated from tool_table.TOOLS."

CURSOR_SIZE = 32
HOTSPOT = 8    # the crosshair's centre, pixels from the cursor image's top-left corner


@cache
def tool_icon(name: str) -> QIcon:
    """The toolbar icon ``resources/icons/<name>.svg`` (an empty icon when missing)."""
    path = icon_path(name)
    return QIcon(str(path)) if path is not None else QIcon()


@cache
def tool_cursor(name: str) -> QCursor:
    """The canvas cursor of a tool: a small crosshair at the hot spot plus the tool's icon."""
    if name == "pan":
        return QCursor(Qt.CursorShape.OpenHandCursor)
    pix = QPixmap(CURSOR_SIZE, CURSOR_SIZE)
    pix.fill(Qt.GlobalColor.transparent)
    p = QPainter(pix)
    p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    h = HOTSPOT + 0.5
    for colour, width in ((QColor(0, 0, 0, 220), 3.0), (QColor(255, 255, 255), 1.0)):
        p.setPen(QPen(colour, width))
        p.drawLine(QPointF(h - 7, h), QPointF(h - 2, h))
        p.drawLine(QPointF(h + 2, h), QPointF(h + 7, h))
        p.drawLine(QPointF(h, h - 7), QPointF(h, h - 2))
        p.drawLine(QPointF(h, h + 2), QPointF(h, h + 7))
    icon = tool_icon(name)
    if not icon.isNull():
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(255, 255, 255, 230))
        p.drawRoundedRect(QRectF(13, 13, 19, 19), 4, 4)   # a light plate keeps the icon readable
        icon.paint(p, 14, 14, 17, 17)
    p.end()
    return QCursor(pix, HOTSPOT, HOTSPOT)


def check_resources() -> list[str]:
    """Names of tool and action icons missing from resources/icons (empty when complete)."""
    return [e.icon for e in (*TOOLS, *ACTIONS) if icon_path(e.icon) is None]

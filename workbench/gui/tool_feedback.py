"""Painting the tool table's preview shapes (circle, box, polyline, region) and the busy badge.

The shapes are in continuous image coordinates (``workbench.editing.tool_table``);
the canvas passes itself for the view transform and the class colours. A region
preview is turned into a small QImage over its bounding box once and cached on the
shape, so a hover that does not change the region repaints without recomputing.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QPointF, QRect, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QImage, QPainter, QPen, QPolygonF

from workbench.editing.tool_table import Box, Circle, Polyline, RegionMask, Shape

if TYPE_CHECKING:
    from workbench.gui.canvas import Canvas

REGION_ALPHA = 120
ACCEPT_ALPHA = 170   # Accept confident: the accepted pixels in the prediction's colours
DIM_ALPHA = 130      # Accept confident: the pixels left unlabelled, darkened
ROLE_COLOURS = {"outline": QColor(255, 255, 255), "include": QColor(40, 220, 90), "exclude": QColor(240, 60, 60)}
BADGE_MARGIN = 8


def _widget_points(shape: Shape, canvas: "Canvas") -> list[QPointF]:
    if isinstance(shape, Polyline):
        return [canvas.image_to_widget(QPointF(x, y)) for x, y in shape.points]
    if isinstance(shape, Box):
        return [canvas.image_to_widget(QPointF(shape.x0, shape.y0)), canvas.image_to_widget(QPointF(shape.x1, shape.y1))]
    if isinstance(shape, Circle):
        return [canvas.image_to_widget(QPointF(shape.cx - shape.r, shape.cy - shape.r)),
                canvas.image_to_widget(QPointF(shape.cx + shape.r, shape.cy + shape.r))]
    y0, x0, y1, x1 = shape.bbox
    return [canvas.image_to_widget(QPointF(x0, y0)), canvas.image_to_widget(QPointF(x1, y1))]


def shape_rect(shape: Shape, canvas: "Canvas") -> QRect:
    """The widget rectangle a shape covers, with room for its outline."""
    pts = _widget_points(shape, canvas)
    if not pts:
        return QRect()
    xs, ys = [p.x() for p in pts], [p.y() for p in pts]
    left, top = math.floor(min(xs)) - 4, math.floor(min(ys)) - 4
    return QRect(left, top, math.ceil(max(xs)) + 4 - left, math.ceil(max(ys)) + 4 - top)


def _double_pen(painter: QPainter, draw, colour: QColor = QColor(255, 255, 255), dashed: bool = False) -> None:
    """Draw twice, dark and wide under light and thin, so the outline shows on any image."""
    painter.setBrush(Qt.BrushStyle.NoBrush)
    for pen in (QPen(QColor(0, 0, 0, 200), 3.0), QPen(colour, 1.0, Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine)):
        painter.setPen(pen)
        draw()


def _region_image(shape: RegionMask, canvas: "Canvas") -> QImage:
    cache = getattr(shape, "_qimage", None)
    colour = canvas.preview_colour(shape.role)
    # Zoomed out, the screen shows at most one of every `step` x `step` image pixels: build
    # the preview at that resolution (16x fewer pixels for a 4096 x 4096 image fitted to
    # a window), so a large selection previews without building a full-size image.
    step = max(1, math.floor(1.0 / max(canvas.zoom, 1e-6)))
    key = (shape.role, colour.rgb(), step)
    if cache is not None and cache[0] == key:
        return cache[1]
    mask = shape.mask[::step, ::step]
    h, w = mask.shape
    argb = np.zeros((h, w), np.uint32)
    if shape.role == "accept" and canvas.prediction is not None:
        y0, x0, y1, x1 = shape.bbox
        # Scale the 256-entry class table once, then one gather: fast on 4096 x 4096 images.
        lut = canvas.class_lut   # the class colours, premultiplied (alpha 255)
        f = ACCEPT_ALPHA / 255.0
        r = np.round(((lut >> 16) & 0xFF) * f).astype(np.uint32)
        g = np.round(((lut >> 8) & 0xFF) * f).astype(np.uint32)
        b = np.round((lut & 0xFF) * f).astype(np.uint32)
        accept_lut = (np.uint32(ACCEPT_ALPHA) << 24) | (r << 16) | (g << 8) | b
        argb[...] = np.uint32(DIM_ALPHA << 24)   # premultiplied black: what stays unlabelled
        pred = canvas.prediction[y0:y1:step, x0:x1:step]
        argb[mask] = accept_lut[pred[mask]]
    else:
        a = REGION_ALPHA / 255.0
        value = ((REGION_ALPHA << 24) | (round(colour.red() * a) << 16) | (round(colour.green() * a) << 8)
                 | round(colour.blue() * a))
        argb[mask] = value
    img = QImage(argb.data, w, h, w * 4, QImage.Format.Format_ARGB32_Premultiplied).copy()
    object.__setattr__(shape, "_qimage", (key, img))   # frozen dataclass: cache beside the fields
    return img


def paint_shape(painter: QPainter, shape: Shape, canvas: "Canvas") -> None:
    """Draw one preview shape in widget coordinates."""
    if isinstance(shape, Circle):
        a, b = _widget_points(shape, canvas)
        _double_pen(painter, lambda: painter.drawEllipse(QRectF(a, b)))
    elif isinstance(shape, Box):
        a, b = _widget_points(shape, canvas)
        _double_pen(painter, lambda: painter.drawRect(QRectF(a, b)), dashed=True)
    elif isinstance(shape, Polyline):
        poly = QPolygonF(_widget_points(shape, canvas))
        colour = ROLE_COLOURS.get(shape.role, ROLE_COLOURS["outline"])
        draw = (lambda: painter.drawPolygon(poly)) if shape.closed else (lambda: painter.drawPolyline(poly))
        _double_pen(painter, draw, colour, dashed=shape.role == "outline")
    elif isinstance(shape, RegionMask):
        a, b = _widget_points(shape, canvas)
        img = _region_image(shape, canvas)
        step = max(1, math.floor(1.0 / max(canvas.zoom, 1e-6)))
        # a subsampled image covers ceil(size / step) * step pixels: draw it over exactly that
        z = canvas.zoom
        target = QRectF(a, QPointF(a.x() + img.width() * step * z, a.y() + img.height() * step * z))
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        painter.drawImage(target, img)


def _badge_font(canvas: "Canvas") -> QFont:
    font = QFont(canvas.font())
    font.setBold(True)
    return font


def badge_text(label: str) -> str:
    """The badge's text for a tool job."""
    return f"{label}: working… (image locked)"


def busy_badge_rect(canvas: "Canvas", label: str = "") -> QRect:
    """Where the "working…" badge is drawn (top-left corner of the canvas), sized to its text."""
    width = QFontMetrics(_badge_font(canvas)).horizontalAdvance(badge_text(label)) + 24
    return QRect(BADGE_MARGIN, BADGE_MARGIN, width, 28)


def paint_busy_badge(painter: QPainter, canvas: "Canvas", label: str) -> None:
    """A dark rounded badge: '<tool>: working…', while a tool job runs and the image is locked."""
    rect = busy_badge_rect(canvas, label)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor(20, 20, 20, 210))
    painter.drawRoundedRect(QRectF(rect), 6, 6)
    painter.setPen(QColor(255, 220, 120))
    painter.setFont(_badge_font(canvas))
    painter.drawText(rect.adjusted(10, 0, -6, 0), Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                     badge_text(label))

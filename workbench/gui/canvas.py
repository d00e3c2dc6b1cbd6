"""The image canvas: shows an image with label, prediction and uncertainty overlays and
turns mouse input into ``LabelEditor`` operations.

The canvas owns no project state. The app gives it an image, a ``LabelEditor`` (whose
mask the canvas edits in place), the class schema and optionally a prediction and an
uncertainty map; the canvas reports edits through signals carrying plain data and the
app decides when to save.

Painting is incremental (GUIDE section 4): every layer is a numpy array with a
persistent QImage view, an edit recolours only its bounding box, and ``paintEvent``
draws only the exposed rectangle mapped back to image pixels, so a brush dab on a
4096 x 4096 image repaints a few hundred screen pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QPointF, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QPolygonF,
    QResizeEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import QWidget

from workbench.classes import UNLABELLED, ClassSchema
from workbench.editing import LabelEditor
from workbench.editing.geometry import BBox
from workbench.errors import InputError
from workbench.gui.overlay import (
    LayerBuffer,
    colour_labels,
    error_lut,
    error_mask,
    hatch_tile,
    heat_lut,
    normalise_uncertainty,
    premultiplied_lut,
    rgb_to_argb32,
)
from workbench.gui.tools import Tool

VIEW_MODES = ("labels", "ground_truth", "errors")
MIN_ZOOM = 1 / 64
MAX_ZOOM = 64.0
WHEEL_STEP = 1.25          # zoom factor per wheel notch (120 units of angleDelta)
MAX_BRUSH_RADIUS = 512
BACKGROUND = QColor(48, 48, 48)


@dataclass(frozen=True)
class PixelInfo:
    """What lies under one image pixel, for the status bar."""

    x: int
    y: int
    label: int | None
    prediction: int | None
    confidence: float | None
    uncertainty: float | None


class Canvas(QWidget):
    """Zoomable, pannable view of one image with editable label overlay."""

    cursorMoved = Signal(object)       # (x, y) image pixel under the mouse, or None outside
    labelsEdited = Signal(object)      # bbox (y0, x0, y1, x1) after each committed edit / undo / redo
    strokeFinished = Signal()          # a brush or eraser drag ended (after labelsEdited)
    classPicked = Signal(int)          # the eyedropper chose a class value
    zoomChanged = Signal(float)
    brushRadiusChanged = Signal(int)
    toolChanged = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)  # paintEvent fills its rect
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setMinimumSize(64, 64)
        # data
        self._image: LayerBuffer | None = None
        self._editor: LabelEditor | None = None
        self._schema: ClassSchema | None = None
        self._lut = premultiplied_lut(np.zeros((256, 4), np.uint8))
        self._labels_layer: LayerBuffer | None = None
        self._pred: np.ndarray | None = None
        self._confidence: np.ndarray | None = None
        self._pred_layer: LayerBuffer | None = None
        self._uncert: np.ndarray | None = None
        self._uncert_layer: LayerBuffer | None = None
        # reference views (issue 12.8): ground truth instead of labels, or the model's errors
        self._ref: np.ndarray | None = None
        self._ref_layer: LayerBuffer | None = None
        self._err_layer: LayerBuffer | None = None
        self._error_counts: tuple[int, int] | None = None   # (wrong, compared) pixels
        self._view = "labels"
        self._hatch = QBrush(hatch_tile())
        # display options
        self._label_opacity = 0.5
        self._pred_opacity = 0.5
        self._uncert_opacity = 0.6
        self._show_labels = True
        self._show_pred = False
        self._show_uncert = False
        self._outline = False
        # view: widget = offset + zoom * image (logical pixels)
        self._zoom = 1.0
        self._ox = 0.0
        self._oy = 0.0
        self._fitted = True   # follow resizes until the person zooms or pans
        # interaction
        self._tool = Tool.BRUSH
        self._value = 0
        self._radius = 8
        self._mouse: QPointF | None = None
        self._painting = False
        self._pan_from: QPointF | None = None
        self._space = False
        self._poly: list[QPointF] = []   # polygon vertices in continuous image coordinates

    # ----- data from the app ------------------------------------------------------------
    def set_image(self, rgb: np.ndarray | None) -> None:
        """Show an (H, W, 3) uint8 RGB image (None clears); refits when the size changes."""
        if rgb is None:
            self._image = None
            self.update()
            return
        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise InputError(f"canvas image must be (H, W, 3) uint8 RGB, got {rgb.dtype} {rgb.shape}")
        old_shape = self._image.shape if self._image is not None else None
        h, w = rgb.shape[:2]
        layer = LayerBuffer(h, w)
        layer.array[...] = rgb_to_argb32(rgb)
        self._image = layer
        self._cancel_polygon()
        if old_shape != (h, w):
            self._labels_layer = self._pred_layer = self._uncert_layer = None
            self.fit_to_window()
        self._rebuild_labels()
        self._rebuild_prediction()
        self._rebuild_uncertainty()
        self.update()

    def set_editor(self, editor: LabelEditor | None) -> None:
        """Edit and show ``editor.mask`` (same size as the image)."""
        self._end_drag()
        self._editor = editor
        self._painting = False
        self._cancel_polygon()
        self._rebuild_labels()
        self.update()

    @property
    def editor(self) -> LabelEditor | None:
        """The label editor being shown."""
        return self._editor

    def set_schema(self, schema: ClassSchema | None) -> None:
        """Use this schema's class colours for labels and predictions."""
        self._schema = schema
        lut = schema.lut_rgba(255) if schema is not None else np.zeros((256, 4), np.uint8)
        self._lut = premultiplied_lut(lut)
        if schema is not None and self._schema_value_invalid(self._value):
            self._value = schema.classes[0].index if schema.classes else 0
        self._rebuild_labels()
        self._rebuild_prediction()
        self.update()

    def set_prediction(self, mask: np.ndarray | None, confidence: np.ndarray | None = None) -> None:
        """Show a model prediction (uint8 classes) and keep its confidence for ``pixel_info``."""
        self._pred = None if mask is None else np.ascontiguousarray(mask, np.uint8)
        self._confidence = None if confidence is None or mask is None else np.asarray(confidence)
        self._rebuild_prediction()
        self.update()

    def set_uncertainty(self, values: np.ndarray | None) -> None:
        """Show a heat map of per-pixel uncertainty (in [0, 1], uint8 or entropy, normalised)."""
        self._uncert = None if values is None else normalise_uncertainty(values)
        self._rebuild_uncertainty()
        self.update()

    def set_reference(self, mask: np.ndarray | None) -> None:
        """The mask the ground-truth and error views show: imported ground truth, or the label."""
        self._ref = None if mask is None else np.ascontiguousarray(mask, np.uint8)
        self._rebuild_reference()
        self.update()

    def set_view_mode(self, mode: str) -> None:
        """"labels" (labels solid, prediction hatched), "ground_truth" (the reference instead of
        the labels) or "errors" (magenta where the prediction disagrees with the reference)."""
        if mode not in VIEW_MODES:
            raise ValueError(f"view mode must be one of {', '.join(VIEW_MODES)}, not {mode!r}")
        if self._view != mode:
            self._view = mode
            self._recolour_prediction()
            self.update()

    view_mode = property(lambda self: self._view, doc="The view: labels, ground_truth or errors.")

    @property
    def error_counts(self) -> tuple[int, int] | None:
        """(pixels the model gets wrong, pixels compared) for the reference, or None."""
        return self._error_counts

    @property
    def prediction(self) -> np.ndarray | None:
        """The prediction being shown (for accept-region), or None."""
        return self._pred

    def refresh_labels(self, bbox: BBox | None = None) -> None:
        """Recolour and repaint ``bbox`` after the app changed the editor's mask itself."""
        if bbox is None:
            self._rebuild_labels()
            self.update()
            return
        self._labels_changed(bbox)

    # ----- display options --------------------------------------------------------------
    def _set_and_update(self, name: str, value: object) -> None:
        if getattr(self, name) != value:
            setattr(self, name, value)
            self.update()

    def set_labels_visible(self, on: bool) -> None:
        """Show or hide the label overlay (the prediction then shows under the labels too)."""
        if self._show_labels != bool(on):
            self._show_labels = bool(on)
            self._recolour_prediction()
            self.update()

    def set_prediction_visible(self, on: bool) -> None:
        """Show or hide the prediction overlay."""
        self._set_and_update("_show_pred", bool(on))

    def set_uncertainty_visible(self, on: bool) -> None:
        """Show or hide the uncertainty heat map."""
        self._set_and_update("_show_uncert", bool(on))

    def set_label_opacity(self, value: float) -> None:
        """Opacity of the label overlay, 0..1."""
        self._set_and_update("_label_opacity", min(1.0, max(0.0, float(value))))

    def set_prediction_opacity(self, value: float) -> None:
        """Opacity of the prediction overlay, 0..1."""
        self._set_and_update("_pred_opacity", min(1.0, max(0.0, float(value))))

    def set_uncertainty_opacity(self, value: float) -> None:
        """Opacity of the uncertainty heat map, 0..1."""
        self._set_and_update("_uncert_opacity", min(1.0, max(0.0, float(value))))

    def set_outline_mode(self, on: bool) -> None:
        """Draw labels as class boundaries only (True) or filled (False)."""
        if self._outline != bool(on):
            self._outline = bool(on)
            self._rebuild_labels()
            self.update()

    labels_visible = property(lambda self: self._show_labels, doc="Label overlay shown.")
    prediction_visible = property(lambda self: self._show_pred, doc="Prediction overlay shown.")
    uncertainty_visible = property(lambda self: self._show_uncert, doc="Heat map shown.")
    label_opacity = property(lambda self: self._label_opacity, doc="Label overlay opacity.")
    prediction_opacity = property(lambda self: self._pred_opacity, doc="Prediction overlay opacity.")
    uncertainty_opacity = property(lambda self: self._uncert_opacity, doc="Heat map opacity.")
    outline_mode = property(lambda self: self._outline, doc="Labels drawn as boundaries only.")

    # ----- tools ------------------------------------------------------------------------
    @property
    def tool(self) -> Tool:
        """The active tool."""
        return self._tool

    def set_tool(self, tool: Tool | str) -> None:
        """Choose the tool (a ``Tool`` or its name); cancels an unfinished polygon."""
        tool = Tool(tool)
        if tool != self._tool:
            self._end_drag()
            self._cancel_polygon()
            self._tool = tool
            self._update_cursor_area()
            self.toolChanged.emit(str(tool))

    @property
    def current_class(self) -> int:
        """The mask value the brush, fill and polygon paint."""
        return self._value

    def set_current_class(self, value: int) -> None:
        """Set the value to paint (0..254; the eraser paints 255)."""
        value = int(value)
        if not 0 <= value <= 255:
            raise ValueError(f"class value {value} is outside 0-255")
        self._value = value

    @property
    def brush_radius(self) -> int:
        """Brush radius in image pixels (0 = one pixel)."""
        return self._radius

    def set_brush_radius(self, radius: int) -> None:
        """Set the brush radius, clamped to 0..512 image pixels."""
        radius = int(min(MAX_BRUSH_RADIUS, max(0, radius)))
        if radius != self._radius:
            self._update_cursor_area()
            self._radius = radius
            self._update_cursor_area()
            self.brushRadiusChanged.emit(radius)

    # ----- view transform ---------------------------------------------------------------
    @property
    def zoom(self) -> float:
        """Screen (logical) pixels per image pixel."""
        return self._zoom

    @property
    def offset(self) -> QPointF:
        """Widget position of the image's top-left corner."""
        return QPointF(self._ox, self._oy)

    def widget_to_image(self, pos: QPointF) -> QPointF:
        """Continuous image coordinates (pixel (r, c) spans [c, c+1) x [r, r+1))."""
        return QPointF((pos.x() - self._ox) / self._zoom, (pos.y() - self._oy) / self._zoom)

    def image_to_widget(self, pt: QPointF) -> QPointF:
        """Widget position of continuous image coordinates."""
        return QPointF(self._ox + pt.x() * self._zoom, self._oy + pt.y() * self._zoom)

    def pixel_at(self, pos: QPointF) -> tuple[int, int] | None:
        """(x, y) of the image pixel under a widget position, or None outside the image."""
        if self._image is None:
            return None
        p = self.widget_to_image(pos)
        x, y = math.floor(p.x()), math.floor(p.y())
        h, w = self._image.shape
        return (x, y) if 0 <= x < w and 0 <= y < h else None

    def view_rect_of(self, bbox: BBox) -> QRect:
        """The widget rectangle covering image box (y0, x0, y1, x1), rounded outwards."""
        y0, x0, y1, x1 = bbox
        z = self._zoom
        left = math.floor(self._ox + x0 * z) - 1
        top = math.floor(self._oy + y0 * z) - 1
        right = math.ceil(self._ox + x1 * z) + 1
        bottom = math.ceil(self._oy + y1 * z) + 1
        return QRect(left, top, right - left, bottom - top)

    def set_zoom(self, zoom: float, anchor: QPointF | None = None) -> None:
        """Zoom keeping the image point under ``anchor`` (default: the centre) in place."""
        zoom = min(MAX_ZOOM, max(MIN_ZOOM, float(zoom)))
        if anchor is None:
            anchor = QPointF(self.width() / 2, self.height() / 2)
        p = self.widget_to_image(anchor)
        self._zoom = zoom
        self._ox = anchor.x() - p.x() * zoom
        self._oy = anchor.y() - p.y() * zoom
        self._fitted = False
        self.update()
        self.zoomChanged.emit(zoom)

    def set_view(self, zoom: float, offset_x: float, offset_y: float) -> None:
        """Set zoom and the widget position of the image's top-left corner directly."""
        self._zoom = min(MAX_ZOOM, max(MIN_ZOOM, float(zoom)))
        self._ox, self._oy = float(offset_x), float(offset_y)
        self._fitted = False
        self.update()
        self.zoomChanged.emit(self._zoom)

    def pan_by(self, dx: float, dy: float) -> None:
        """Move the image by (dx, dy) logical pixels."""
        self._ox += dx
        self._oy += dy
        self._fitted = False
        if float(dx).is_integer() and float(dy).is_integer():
            # Qt moves the pixels already on screen and repaints only the uncovered strip.
            self.scroll(int(dx), int(dy))
        else:
            self.update()

    def fit_to_window(self) -> None:
        """Show the whole image centred in the widget."""
        if self._image is None:
            return
        h, w = self._image.shape
        vw, vh = max(1, self.width()), max(1, self.height())
        self._zoom = min(MAX_ZOOM, max(MIN_ZOOM, min(vw / w, vh / h)))
        self._ox = (vw - w * self._zoom) / 2
        self._oy = (vh - h * self._zoom) / 2
        self._fitted = True
        self.update()
        self.zoomChanged.emit(self._zoom)

    def zoom_to_actual_size(self) -> None:
        """Zoom to 1 image pixel per logical screen pixel around the centre."""
        self.set_zoom(1.0)

    # ----- queries ----------------------------------------------------------------------
    def class_at(self, x: int, y: int) -> int | None:
        """The label value at image pixel (x, y), or None (outside / no labels)."""
        if self._editor is None:
            return None
        return self._editor.value_at(y, x)

    def prediction_at(self, x: int, y: int) -> int | None:
        """The predicted class at image pixel (x, y), or None."""
        p = self._pred
        if p is None or not (0 <= y < p.shape[0] and 0 <= x < p.shape[1]):
            return None
        return int(p[y, x])

    def pixel_info(self, x: int, y: int) -> PixelInfo:
        """Label, prediction, confidence and uncertainty at image pixel (x, y)."""
        conf = unc = None
        c = self._confidence
        if c is not None and 0 <= y < c.shape[0] and 0 <= x < c.shape[1]:
            conf = float(c[y, x]) / 255.0 if c.dtype == np.uint8 else float(c[y, x])
        u = self._uncert
        if u is not None and 0 <= y < u.shape[0] and 0 <= x < u.shape[1]:
            unc = float(u[y, x]) / 255.0
        return PixelInfo(x, y, self.class_at(x, y), self.prediction_at(x, y), conf, unc)

    # ----- edits ------------------------------------------------------------------------
    def undo(self) -> BBox | None:
        """Undo the newest edit (a drag in progress is committed first) and repaint its box."""
        self._end_drag()
        return self._edit_done(self._editor.undo() if self._editor is not None else None)

    def redo(self) -> BBox | None:
        """Redo the newest undone edit and repaint its box."""
        self._end_drag()
        return self._edit_done(self._editor.redo() if self._editor is not None else None)

    def accept_prediction(self, at: tuple[int, int] | None = None) -> BBox | None:
        """Copy the prediction into the labels (everywhere, or the region under (x, y))."""
        self._end_drag()
        if self._editor is None or self._pred is None or self._pred.shape != self._editor.shape:
            return None
        where = None if at is None else (int(at[1]), int(at[0]))
        return self._edit_done(self._editor.accept_prediction(self._pred, at=where))

    def clear_labels(self) -> BBox | None:
        """Set every label to "not labelled" (one undo step)."""
        self._end_drag()
        return self._edit_done(self._editor.clear() if self._editor is not None else None)

    def _edit_done(self, bbox: BBox | None) -> BBox | None:
        if bbox is not None:
            self._labels_changed(bbox)
            self.labelsEdited.emit(bbox)
        return bbox

    # ----- layers -----------------------------------------------------------------------
    def _editable(self) -> bool:
        return (self._editor is not None and self._image is not None
                and self._editor.shape == self._image.shape)

    def _schema_value_invalid(self, value: int) -> bool:
        return self._schema is not None and value != UNLABELLED and self._schema.by_index(value) is None

    def _rebuild_labels(self) -> None:
        if not self._editable():
            self._labels_layer = None
            self._recolour_prediction()
            return
        h, w = self._editor.shape
        if self._labels_layer is None or self._labels_layer.shape != (h, w):
            self._labels_layer = LayerBuffer(h, w)
        colour_labels(self._labels_layer.array, self._editor.mask, self._lut, (0, 0, h, w), outline=self._outline)
        self._recolour_prediction()      # the prediction is hidden under the (new) labels

    def _rebuild_prediction(self) -> None:
        p = self._pred
        if p is None or self._image is None or p.shape != self._image.shape:
            self._pred_layer = None
            return
        if self._pred_layer is None or self._pred_layer.shape != p.shape:
            self._pred_layer = LayerBuffer(*p.shape)
        self._colour_prediction((0, 0, *p.shape))
        self._rebuild_reference()

    def _prediction_under_labels_hidden(self) -> bool:
        # Where a person labelled, the solid label alone is drawn: no stripes through it. With
        # the labels hidden (Ctrl+L), as outlines, or in a reference view, the whole prediction shows.
        return self._show_labels and not self._outline and self._view == "labels" and self._editable()

    def _colour_prediction(self, box: BBox) -> None:
        """Recolour ``box`` of the prediction layer (transparent under labels, see above)."""
        p, layer = self._pred, self._pred_layer
        if p is None or layer is None or layer.shape != p.shape:
            return
        y0, x0, y1, x1 = box
        colours = self._lut[p[y0:y1, x0:x1]]
        if self._prediction_under_labels_hidden() and self._editor.shape == p.shape:
            colours[self._editor.mask[y0:y1, x0:x1] != UNLABELLED] = 0
        layer.array[y0:y1, x0:x1] = colours

    def _recolour_prediction(self) -> None:
        if self._pred_layer is not None:
            self._colour_prediction((0, 0, *self._pred_layer.shape))

    def _rebuild_reference(self) -> None:
        # The reference in class colours, and the error mask against the prediction.
        ref = self._ref
        self._error_counts = None
        if ref is None or self._image is None or ref.shape != self._image.shape:
            self._ref_layer = self._err_layer = None
            return
        if self._ref_layer is None or self._ref_layer.shape != ref.shape:
            self._ref_layer = LayerBuffer(*ref.shape)
        self._ref_layer.array[...] = self._lut[ref]
        p = self._pred
        if p is None or p.shape != ref.shape:
            self._err_layer = None
            return
        ignore = tuple(self._schema.ignore_values) if self._schema is not None else (UNLABELLED,)
        wrong = error_mask(p, ref, ignore)
        compared = int(ref.size - np.isin(ref, np.asarray(ignore, np.uint8)).sum())
        self._error_counts = (int(wrong.sum()), compared)
        if self._err_layer is None or self._err_layer.shape != ref.shape:
            self._err_layer = LayerBuffer(*ref.shape)
        self._err_layer.array[...] = error_lut()[wrong.view(np.uint8)]

    def _rebuild_uncertainty(self) -> None:
        u = self._uncert
        if u is None or self._image is None or u.shape != self._image.shape:
            self._uncert_layer = None
            return
        if self._uncert_layer is None or self._uncert_layer.shape != u.shape:
            self._uncert_layer = LayerBuffer(*u.shape)
        self._uncert_layer.array[...] = heat_lut()[u]

    def _labels_changed(self, bbox: BBox) -> None:
        """Recolour the box of the label layer and schedule a repaint of just that area."""
        if self._labels_layer is None or not self._editable():
            return
        written = colour_labels(self._labels_layer.array, self._editor.mask, self._lut, bbox, outline=self._outline)
        if self._pred_layer is not None and self._prediction_under_labels_hidden():
            self._colour_prediction(bbox)
        if self._show_labels:
            self.update(self.view_rect_of(written))

    # ----- painting ---------------------------------------------------------------------
    def _source_rect(self, rect: QRect) -> tuple[int, int, int, int] | None:
        """Image pixels (x0, y0, x1, y1) that cover widget ``rect`` (plus one for filtering)."""
        if self._image is None:
            return None
        h, w = self._image.shape
        z = self._zoom
        x0 = max(0, math.floor((rect.left() - self._ox) / z) - 1)
        y0 = max(0, math.floor((rect.top() - self._oy) / z) - 1)
        x1 = min(w, math.ceil((rect.right() + 1 - self._ox) / z) + 1)
        y1 = min(h, math.ceil((rect.bottom() + 1 - self._oy) / z) + 1)
        if x0 >= x1 or y0 >= y1:
            return None
        return x0, y0, x1, y1

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt override)
        """Draw only the exposed rectangle: background, image, overlays, tool feedback."""
        painter = QPainter(self)
        rect = event.rect()
        painter.fillRect(rect, BACKGROUND)
        src = self._source_rect(rect)
        if src is not None:
            x0, y0, x1, y1 = src
            z = self._zoom
            source = QRectF(x0, y0, x1 - x0, y1 - y0)
            target = QRectF(self._ox + x0 * z, self._oy + y0 * z, (x1 - x0) * z, (y1 - y0) * z)
            # Nearest neighbour when magnifying keeps label edges crisp; smooth when shrinking.
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, z < 1)
            painter.drawImage(target, self._image.qimage, source)
            for layer, opacity, hatched in self._visible_layers():
                if hatched:
                    self._paint_hatched(painter, layer, target, source, opacity)
                else:
                    painter.setOpacity(opacity)
                    painter.drawImage(target, layer.qimage, source)
            painter.setOpacity(1.0)
        self._paint_tool_feedback(painter)
        painter.end()

    def _visible_layers(self) -> list[tuple[LayerBuffer, float, bool]]:
        """(layer, opacity, hatched) bottom to top for the current view.

        Labels are solid and the prediction hatched, so what a person painted and what the
        model suggests differ at a glance (issue 12.8); the ground-truth view puts the
        reference where the labels were; the error view shows only where the model is wrong.
        """
        # One-pixel outlines vanish at half opacity: draw them twice as strong (and the stripes).
        label_opacity = min(1.0, 2 * self._label_opacity) if self._outline else self._label_opacity
        pred = (self._pred_layer, self._show_pred, min(1.0, 1.6 * self._pred_opacity), True)
        if self._view == "errors":
            layers = [(self._err_layer, True, 0.85, False)]
        elif self._view == "ground_truth":
            layers = [pred, (self._ref_layer, True, self._label_opacity, False)]
        else:
            layers = [pred, (self._labels_layer, self._show_labels, label_opacity, False)]
        layers.append((self._uncert_layer, self._show_uncert, self._uncert_opacity, False))
        return [(layer, opacity, hatched) for layer, shown, opacity, hatched in layers
                if layer is not None and shown and opacity > 0]

    def _paint_hatched(self, painter: QPainter, layer: LayerBuffer, target: QRectF, source: QRectF,
                       opacity: float) -> None:
        """Draw ``layer`` only on diagonal stripes fixed to the widget (so they line up across repaints)."""
        area = target.toAlignedRect().intersected(self.rect())
        if area.isEmpty():
            return
        tile = QImage(area.size(), QImage.Format.Format_ARGB32_Premultiplied)
        tile.fill(0)
        p = QPainter(tile)
        p.translate(-area.left(), -area.top())       # widget coordinates: the stripes' origin is the widget's
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self._zoom < 1)
        p.drawImage(target, layer.qimage, source)
        p.setCompositionMode(QPainter.CompositionMode.CompositionMode_DestinationIn)
        p.fillRect(area, self._hatch)
        p.end()
        painter.setOpacity(opacity)
        painter.drawImage(area.topLeft(), tile)

    def _paint_tool_feedback(self, painter: QPainter) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        if self._poly:
            pts = [self.image_to_widget(p) for p in self._poly]
            if self._mouse is not None:
                pts.append(self._mouse)
            poly = QPolygonF(pts)
            for colour, style in ((QColor(0, 0, 0), Qt.PenStyle.SolidLine), (QColor(255, 255, 255), Qt.PenStyle.DashLine)):
                painter.setPen(QPen(colour, 1.5, style))
                painter.drawPolyline(poly)
        circle = self._brush_circle()
        if circle is not None:
            painter.setBrush(Qt.BrushStyle.NoBrush)
            for colour, width in ((QColor(0, 0, 0, 200), 3.0), (QColor(255, 255, 255), 1.0)):
                painter.setPen(QPen(colour, width))
                painter.drawEllipse(circle)

    def _brush_circle(self) -> QRectF | None:
        """Widget rectangle of the brush outline around the pixel under the mouse."""
        if self._mouse is None or not self._tool.paints or self._image is None:
            return None
        p = self.widget_to_image(self._mouse)
        cx = self._ox + (math.floor(p.x()) + 0.5) * self._zoom
        cy = self._oy + (math.floor(p.y()) + 0.5) * self._zoom
        r = (self._radius + 0.5) * self._zoom
        return QRectF(cx - r, cy - r, 2 * r, 2 * r)

    def _update_cursor_area(self) -> None:
        circle = self._brush_circle()
        if circle is not None:
            self.update(circle.toAlignedRect().adjusted(-3, -3, 3, 3))
        if self._poly:
            self._update_polygon_area()

    def _update_polygon_area(self) -> None:
        pts = [self.image_to_widget(p) for p in self._poly]
        if self._mouse is not None:
            pts.append(self._mouse)
        if pts:
            self.update(QPolygonF(pts).boundingRect().toAlignedRect().adjusted(-3, -3, 3, 3))

    # ----- mouse and keys ---------------------------------------------------------------
    def _image_pixel(self, pos: QPointF) -> tuple[int, int]:
        p = self.widget_to_image(pos)
        return math.floor(p.y()), math.floor(p.x())

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        """Start a pan, a brush drag, or apply a click tool."""
        pos = event.position()
        button = event.button()
        if button == Qt.MouseButton.MiddleButton or (
                button == Qt.MouseButton.LeftButton and (self._space or self._tool == Tool.PAN)):
            self._pan_from = pos
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
            return
        if button != Qt.MouseButton.LeftButton or not self._editable():
            return
        self._end_drag()  # a release that never arrived (focus lost mid-drag)
        y, x = self._image_pixel(pos)
        if self._tool.paints:
            value = UNLABELLED if self._tool == Tool.ERASER else self._value
            self._editor.begin_stroke(value)
            self._painting = True
            self._dab(y, x)
        elif self._tool == Tool.FILL:
            self._edit_done(self._editor.fill(y, x, self._value))
        elif self._tool == Tool.PICK:
            self._pick(x, y)
        elif self._tool == Tool.ACCEPT:
            self.accept_prediction((x, y))
        elif self._tool == Tool.POLYGON:
            self._add_vertex(pos)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        """Pan, paint along the path, or move the brush outline and rubber band."""
        pos = event.position()
        if self._pan_from is not None:
            # Whole pixels only, so Qt can scroll; the remainder carries to the next move.
            dx, dy = round(pos.x() - self._pan_from.x()), round(pos.y() - self._pan_from.y())
            self._pan_from = QPointF(self._pan_from.x() + dx, self._pan_from.y() + dy)
            self._mouse = pos
            if dx or dy:
                self.pan_by(dx, dy)
            self.cursorMoved.emit(self.pixel_at(pos))
            return
        self._update_cursor_area()  # erase the old outline
        self._mouse = pos
        if self._painting and event.buttons() & Qt.MouseButton.LeftButton:
            y, x = self._image_pixel(pos)
            self._dab(y, x)
        self._update_cursor_area()  # draw the new one
        self.cursorMoved.emit(self.pixel_at(pos))

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        """End a pan or a brush drag (one undo step)."""
        if self._pan_from is not None and event.button() in (Qt.MouseButton.MiddleButton, Qt.MouseButton.LeftButton):
            self._pan_from = None
            self.setCursor(Qt.CursorShape.CrossCursor)
            return
        if event.button() == Qt.MouseButton.LeftButton and self._painting:
            self._finish_stroke()

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        """Double-click closes the polygon (after adding the clicked vertex)."""
        if self._tool == Tool.POLYGON and event.button() == Qt.MouseButton.LeftButton and self._editable():
            self._add_vertex(event.position())
            self.close_polygon()
            return
        self.mousePressEvent(event)

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802
        """Zoom around the cursor."""
        steps = event.angleDelta().y() / 120.0
        if steps:
            self._update_cursor_area()
            self.set_zoom(self._zoom * WHEEL_STEP ** steps, event.position())
        event.accept()

    def leaveEvent(self, event) -> None:  # noqa: N802
        """Hide the brush outline and tell the status bar the cursor left the image."""
        self._update_cursor_area()
        self._mouse = None
        self.cursorMoved.emit(None)
        super().leaveEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        """Space (hold) pans; Enter closes the polygon; Esc cancels it; Backspace drops a vertex."""
        key = event.key()
        if key == Qt.Key.Key_Space:
            if not event.isAutoRepeat():
                self._space = True
                self.setCursor(Qt.CursorShape.OpenHandCursor)
        elif key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self._poly:
            self.close_polygon()
        elif key == Qt.Key.Key_Escape and self._poly:
            self._cancel_polygon()
        elif key == Qt.Key.Key_Backspace and self._poly:
            self._update_polygon_area()
            self._poly.pop()
        else:
            super().keyPressEvent(event)
            return
        event.accept()

    def keyReleaseEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        """Releasing space ends space-drag panning."""
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = False
            self._pan_from = None
            self.setCursor(Qt.CursorShape.CrossCursor)
            event.accept()
            return
        super().keyReleaseEvent(event)

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802
        """Keep a fitted image fitted."""
        if self._fitted:
            self.fit_to_window()
        super().resizeEvent(event)

    def sizeHint(self) -> QSize:  # noqa: N802
        """A comfortable default size."""
        return QSize(800, 600)

    # ----- tool actions -----------------------------------------------------------------
    def _dab(self, y: int, x: int) -> None:
        if self._editor is None or not self._editor.stroke_active:
            # The app ended the drag behind our back (e.g. an edit through the editor).
            self._painting = False
            return
        bbox = self._editor.stroke_to(y, x, self._radius)
        if bbox is not None:
            self._labels_changed(bbox)

    def _end_drag(self) -> None:
        """Commit a brush drag in progress, with its signals."""
        if self._painting:
            self._finish_stroke()

    def _finish_stroke(self) -> None:
        self._painting = False
        bbox = self._editor.end_stroke() if self._editor is not None else None
        if bbox is not None:
            self.labelsEdited.emit(bbox)
        self.strokeFinished.emit()

    def _pick(self, x: int, y: int) -> None:
        value = self.class_at(x, y)
        if value is None or value == UNLABELLED:
            value = self.prediction_at(x, y)  # nothing painted here: take the model's class
        if value is None or value == UNLABELLED:
            return
        self._value = value
        self.classPicked.emit(value)

    def _add_vertex(self, pos: QPointF) -> None:
        p = self.widget_to_image(pos)
        if self._poly and abs(self._poly[-1].x() - p.x()) < 1e-9 and abs(self._poly[-1].y() - p.y()) < 1e-9:
            return
        self._poly.append(p)
        self._mouse = pos
        self._update_polygon_area()

    @property
    def polygon_points(self) -> list[tuple[float, float]]:
        """Vertices of the polygon being drawn, (x, y) continuous image coordinates."""
        return [(p.x(), p.y()) for p in self._poly]

    def close_polygon(self) -> BBox | None:
        """Fill the polygon being drawn with the current class (one undo step)."""
        if not self._poly:
            return None
        self._update_polygon_area()
        # continuous coordinates -> pixel-centre frame of LabelEditor.fill_polygon
        pts = [(p.x() - 0.5, p.y() - 0.5) for p in self._poly]
        self._poly = []
        if len(pts) < 3 or not self._editable():
            return None
        return self._edit_done(self._editor.fill_polygon(pts, self._value))

    def _cancel_polygon(self) -> None:
        if self._poly:
            self._update_polygon_area()
            self._poly = []

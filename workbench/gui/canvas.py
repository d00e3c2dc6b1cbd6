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
import sys
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QObject, QPointF, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QResizeEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import QWidget

from workbench.classes import UNLABELLED, ClassSchema
from workbench.editing import LabelEditor
from workbench.editing import tool_table
from workbench.editing.geometry import BBox
from workbench.editing.tool_table import Outcome, ToolContext, ToolEvent, ToolJob, ToolOptions, ToolSpec
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
from workbench.gui.tool_feedback import busy_badge_rect, paint_busy_badge, paint_shape, shape_rect
from workbench.gui.tools import Tool, tool_cursor
from workbench.gui.workers import Job, JobError, JobRunner

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
    strokeFinished = Signal()          # a drag of a drag tool (brush, unlabel, …) ended (after labelsEdited)
    classPicked = Signal(int)          # the eyedropper chose a class value
    zoomChanged = Signal(float)
    brushRadiusChanged = Signal(int)
    toolChanged = Signal(str)
    optionsChanged = Signal(object)    # tool_table.ToolOptions
    busyChanged = Signal(bool)         # a tool's long operation started (True) / landed or stopped
    message = Signal(str)              # a short note from a tool, for the status bar

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)  # paintEvent fills its rect
        self.setMinimumSize(64, 64)
        # data
        self._image: LayerBuffer | None = None
        self._rgb: np.ndarray | None = None   # the RGB array the tools read (never written)
        self._image_serial = 0                # identifies the image for the superpixel cache
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
        # interaction: the tool table (workbench.editing.tool_table) dispatches every tool
        self._tool = "brush"
        self._value = 0
        self._options = ToolOptions()
        self._state: dict = {}          # the active tool's gesture state (tool_table handlers)
        self._mouse: QPointF | None = None
        self._hover: ToolEvent | None = None
        self._pressed = False           # a left-button gesture is in progress
        self._pan_from: QPointF | None = None
        self._space = False
        self._previews: list[tool_table.Shape] = []
        self._preview_rect: QRect | None = None
        self._error_index = -1
        # long tool operations: one at a time, the image locked until the result lands
        self._tool_jobs = JobRunner("tool_jobs", 1, self)
        self._job: Job | None = None
        self._job_label = ""
        self._job_seq = 0
        self._landing: QObject | None = None
        self._superpixel_jobs = JobRunner("superpixels", 1, self)
        self._superpixel_cache = None   # a SuperpixelCache, made when Superpixel paint is first used
        self._superpixel_pending: tuple[int, int] | None = None
        self._superpixel_landing: QObject | None = None
        self._apply_cursor()

    # ----- data from the app ------------------------------------------------------------
    def set_image(self, rgb: np.ndarray | None) -> None:
        """Show an (H, W, 3) uint8 RGB image (None clears); refits when the size changes."""
        if rgb is None:
            self._end_drag()
            self.cancel_tool_job()
            self._image = self._rgb = None
            self._state = {}
            self._refresh_previews()
            self.update()
            return
        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise InputError(f"canvas image must be (H, W, 3) uint8 RGB, got {rgb.dtype} {rgb.shape}")
        old_shape = self._image.shape if self._image is not None else None
        h, w = rgb.shape[:2]
        layer = LayerBuffer(h, w)
        layer.array[...] = rgb_to_argb32(rgb)
        self._end_drag()
        self.cancel_tool_job()
        self._image = layer
        self._rgb = rgb
        self._image_serial += 1
        self._error_index = -1
        self._state = {}
        self._cancel_polygon()
        if old_shape != (h, w):
            self._labels_layer = self._pred_layer = self._uncert_layer = None
            self.fit_to_window()
        self._rebuild_labels()
        self._rebuild_prediction()
        self._rebuild_uncertainty()
        self._refresh_previews()
        self._ensure_superpixels()
        self.update()

    def set_editor(self, editor: LabelEditor | None) -> None:
        """Edit and show ``editor.mask`` (same size as the image)."""
        self._end_drag()
        self.cancel_tool_job()
        self._editor = editor
        self._cancel_polygon()
        self._rebuild_labels()
        self._refresh_previews()
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
        self._error_index = -1
        self._rebuild_prediction()
        self._refresh_previews()
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
    def class_lut(self) -> np.ndarray:
        """(256,) uint32 premultiplied ARGB colour of each class value (for tool previews)."""
        return self._lut

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
        return Tool(self._tool)

    @property
    def tool_spec(self) -> ToolSpec:
        """The table entry of the active tool."""
        return tool_table.tool(self._tool)

    def set_tool(self, tool: Tool | str) -> None:
        """Choose the tool (a ``Tool`` or its id); ends a drag and forgets an unfinished gesture."""
        tool = str(Tool(tool))
        if tool != self._tool:
            self._end_drag()
            self._state = {}
            self._tool = tool
            self._apply_cursor()
            self._refresh_previews()
            self._ensure_superpixels()
            self.toolChanged.emit(tool)

    @property
    def current_class(self) -> int:
        """The mask value the brush, fill and polygon paint."""
        return self._value

    def set_current_class(self, value: int) -> None:
        """Set the value to paint (0..254; Unlabel paints 255)."""
        value = int(value)
        if not 0 <= value <= 255:
            raise ValueError(f"class value {value} is outside 0-255")
        self._value = value
        self._refresh_previews()

    @property
    def options(self) -> ToolOptions:
        """Brush size, wand tolerance, superpixel size, confidence threshold."""
        return self._options

    def set_options(self, options: ToolOptions) -> None:
        """Replace the tool options (emits ``optionsChanged``, ``brushRadiusChanged``)."""
        if options == self._options:
            return
        old = self._options
        self._options = options
        if options.brush_radius != old.brush_radius:
            self.brushRadiusChanged.emit(options.brush_radius)
        self._refresh_previews()
        if options.superpixel_size != old.superpixel_size:
            self._ensure_superpixels()
        self.optionsChanged.emit(options)

    def set_option(self, name: str, value: float | bool) -> None:
        """Set one tool option by name (see ``tool_table.OPTION_SPECS``), clamped to its range."""
        self.set_options(self._options.with_value(name, value))

    @property
    def brush_radius(self) -> int:
        """Brush radius in image pixels (0 = one pixel); the diameter is 2 * radius + 1."""
        return self._options.brush_radius

    def set_brush_radius(self, radius: int) -> None:
        """Set the brush radius, clamped to 0..512 image pixels."""
        radius = int(min(MAX_BRUSH_RADIUS, max(0, radius)))
        self.set_option("brush_size", 2 * radius + 1)

    @property
    def busy(self) -> bool:
        """True while a tool's long operation runs (the image is locked from edits meanwhile)."""
        return self._job is not None

    def wait_for_tool(self, msecs: int) -> bool:
        """Wait up to ``msecs`` for a tool job to finish running (its result lands via the event loop)."""
        return self._tool_jobs.wait(msecs) and self._superpixel_jobs.wait(msecs)

    def cancel_tool_job(self) -> None:
        """Ask a running tool job to stop; its result, if any, is dropped."""
        if self._job is not None:
            self._job.cancel()
            self._drop_job()

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
        if self._job is not None:
            return None  # locked until the tool's result lands
        return self._edit_done(self._editor.undo() if self._editor is not None else None)

    def redo(self) -> BBox | None:
        """Redo the newest undone edit and repaint its box."""
        self._end_drag()
        if self._job is not None:
            return None
        return self._edit_done(self._editor.redo() if self._editor is not None else None)

    def accept_prediction(self, at: tuple[int, int] | None = None) -> BBox | None:
        """Copy the prediction into the labels (everywhere, or the region under (x, y))."""
        self._end_drag()
        if self._job is not None:
            return None
        if self._editor is None or self._pred is None or self._pred.shape != self._editor.shape:
            return None
        where = None if at is None else (int(at[1]), int(at[0]))
        return self._edit_done(self._editor.accept_prediction(self._pred, at=where))

    def clear_labels(self) -> BBox | None:
        """Set every label to "not labelled" (one undo step)."""
        self._end_drag()
        if self._job is not None:
            return None
        return self._edit_done(self._editor.clear() if self._editor is not None else None)

    def _edit_done(self, bbox: BBox | None) -> BBox | None:
        if bbox is not None:
            self._labels_changed(bbox)
            self.labelsEdited.emit(bbox)
            self._refresh_previews()  # previews that depend on the labels (Accept confident)
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
        for shape in self._previews:
            paint_shape(painter, shape, self)
        if self._job is not None:
            paint_busy_badge(painter, self, self._job_label)

    def preview_colour(self, role: str) -> QColor:
        """The colour a region preview is drawn in (the current class's colour)."""
        if self._schema is not None:
            cls = self._schema.by_index(self._value)
            if cls is not None:
                r, g, b = cls.color[:3]
                return QColor(int(r), int(g), int(b))
        return QColor(255, 255, 0)

    @property
    def previews(self) -> list[tool_table.Shape]:
        """The preview shapes drawn now (image coordinates), for tests and tools."""
        return list(self._previews)

    def _context(self) -> ToolContext:
        return ToolContext(self._editor, self._rgb, self._value, self._options, self._pred, self._confidence,
                           self._superpixels_now)

    def _refresh_previews(self) -> None:
        """Recompute the tool's preview shapes and repaint where the old and new ones lie."""
        old = self._preview_rect
        shapes: list[tool_table.Shape] = []
        spec = self.tool_spec
        if spec.preview is not None and self._editable() and self._rgb is not None:
            hover = self._hover if self._mouse is not None else None
            shapes = list(spec.preview(self._context(), self._state, hover))
        self._previews = shapes
        rect = QRect()
        for shape in shapes:
            rect = rect.united(shape_rect(shape, self))
        if self._job is not None:
            rect = rect.united(busy_badge_rect(self, self._job_label))
        self._preview_rect = rect
        if old is not None and not old.isEmpty():
            self.update(old)
        if not rect.isEmpty():
            self.update(rect)

    def _apply_cursor(self) -> None:
        if self._pan_from is not None:
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
        elif self._space:
            self.setCursor(Qt.CursorShape.OpenHandCursor)
        elif self._job is not None:
            self.setCursor(Qt.CursorShape.BusyCursor)
        else:
            self.setCursor(tool_cursor(self.tool_spec.cursor))

    # ----- mouse and keys ---------------------------------------------------------------
    def _tool_event(self, event: QMouseEvent | QWheelEvent) -> ToolEvent:
        pos = event.position()
        p = self.widget_to_image(pos)
        mods = event.modifiers()
        return ToolEvent(p.x(), p.y(), bool(mods & Qt.KeyboardModifier.ShiftModifier),
                         bool(mods & Qt.KeyboardModifier.ControlModifier),
                         bool(mods & Qt.KeyboardModifier.AltModifier), (pos.x(), pos.y()))

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        """Start a pan, or hand the press to the active tool's handler."""
        pos = event.position()
        button = event.button()
        if button == Qt.MouseButton.MiddleButton or (
                button == Qt.MouseButton.LeftButton and (self._space or self.tool_spec.pans)):
            self._pan_from = pos
            self._apply_cursor()
            return
        if button != Qt.MouseButton.LeftButton or not self._editable():
            return
        self._end_drag()  # a release that never arrived (focus lost mid-drag)
        if self._job is not None:
            self.message.emit(f"{self._job_label}: still working, the image is locked until it lands.")
            return
        spec = self.tool_spec
        self._mouse = pos
        self._hover = ev = self._tool_event(event)
        if spec.press is not None:
            self._pressed = True
            self._apply(self._run(spec.press, ev))
        self._refresh_previews()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        """Pan, or move the tool's gesture and preview."""
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
        self._mouse = pos
        self._hover = ev = self._tool_event(event)
        spec = self.tool_spec
        if self._pressed and event.buttons() & Qt.MouseButton.LeftButton and spec.move is not None:
            if self._editable():
                self._apply(self._run(spec.move, ev))
        self._refresh_previews()
        self.cursorMoved.emit(self.pixel_at(pos))

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        """End a pan, or finish the tool's gesture (one undo step)."""
        if self._pan_from is not None and event.button() in (Qt.MouseButton.MiddleButton, Qt.MouseButton.LeftButton):
            self._pan_from = None
            self._apply_cursor()
            return
        if event.button() == Qt.MouseButton.LeftButton and self._pressed:
            self._hover = self._tool_event(event)
            self._finish_gesture()

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        """Double-click finishes a tool with a finish step (the polygon closes at the clicked vertex)."""
        spec = self.tool_spec
        if spec.finish is not None and event.button() == Qt.MouseButton.LeftButton and self._editable() \
                and self._job is None and not self._space:
            ev = self._tool_event(event)
            if spec.press is not None:
                self._run(spec.press, ev)
            self._apply(self._run(spec.finish))
            self._refresh_previews()
            return
        self.mousePressEvent(event)

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802
        """Zoom around the cursor; Ctrl+wheel changes the active tool's size / tolerance / threshold."""
        steps = event.angleDelta().y() / 120.0
        if steps and event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            name = tool_table.wheel_option(self._tool)
            if name is not None:
                self.set_options(self._options.stepped(name, steps))
        elif steps:
            old = self._preview_rect
            self.set_zoom(self._zoom * WHEEL_STEP ** steps, event.position())
            if old is not None:
                self.update(old)
            self._refresh_previews()
        event.accept()

    def leaveEvent(self, event) -> None:  # noqa: N802
        """Hide the hover preview and tell the status bar the cursor left the image."""
        self._mouse = None
        self._refresh_previews()
        self.cursorMoved.emit(None)
        super().leaveEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        """Space (hold) pans; Enter finishes the tool's gesture, Esc cancels it, Backspace steps back."""
        key = event.key()
        spec = self.tool_spec
        handler = None
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            handler = spec.finish
        elif key == Qt.Key.Key_Escape:
            handler = spec.cancel
        elif key == Qt.Key.Key_Backspace:
            handler = spec.undo_last
        if key == Qt.Key.Key_Space:
            if not event.isAutoRepeat():
                self._space = True
                self._apply_cursor()
        elif handler is not None and self._state and self._editable() and self._job is None:
            self._apply(self._run(handler))
            self._refresh_previews()
        else:
            super().keyPressEvent(event)
            return
        event.accept()

    def keyReleaseEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        """Releasing space ends space-drag panning."""
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = False
            self._pan_from = None
            self._apply_cursor()
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

    # ----- tool outcomes and jobs -------------------------------------------------------
    def _apply(self, outcome: Outcome) -> None:
        """Show what a tool handler did: repaint, report the edit, pick, jump, start a job."""
        if outcome.painted is not None:
            self._labels_changed(outcome.painted)
        if outcome.edited is not None:
            self._edit_done(outcome.edited)
        if outcome.picked is not None:
            self._value = outcome.picked
            self.classPicked.emit(outcome.picked)
        if outcome.view is not None:
            self.show_box(outcome.view)
        if outcome.message:
            self.message.emit(outcome.message)
        if outcome.job is not None:
            self._start_job(outcome.job)

    def _run(self, handler, *args: object) -> Outcome:
        """Call a tool handler; a failure becomes a message (never a traceback or a crash)."""
        try:
            return handler(self._context(), self._state, *args)
        except Exception as exc:  # noqa: BLE001 - a tool must never take the app down
            if self._editor is not None and self._editor.stroke_active:
                self._edit_done(self._editor.end_stroke())   # keep what the drag painted
            self._state = {}
            self._pressed = False
            error = JobError.from_exception(exc)
            if error.details:
                sys.stderr.write(error.details)
            return Outcome(message=f"{self.tool_spec.label} failed: {error.message}")

    def _end_drag(self) -> None:
        """Finish a gesture in progress (a release that never came), with its signals."""
        if self._pressed:
            self._finish_gesture()

    def _finish_gesture(self) -> None:
        self._pressed = False
        spec = self.tool_spec
        if spec.release is not None and self._editable() and self._hover is not None:
            self._apply(self._run(spec.release, self._hover))
            self._refresh_previews()
        elif self._editor is not None and self._editor.stroke_active:
            self._edit_done(self._editor.end_stroke())
        if spec.move is not None:
            self.strokeFinished.emit()

    def _start_job(self, job: ToolJob) -> None:
        """Run ``job.compute`` in a worker; the image is locked until ``job.land`` has run here."""
        self._job_seq += 1
        landing = _JobLanding(self, self._job_seq, job)
        worker = Job(_run_tool_job, job.compute)
        worker.signals.returned.connect(landing.returned)
        worker.signals.errored.connect(landing.errored)
        self._job, self._job_label, self._landing = worker, job.label, landing
        self._apply_cursor()
        self._refresh_previews()
        self.busyChanged.emit(True)
        self._tool_jobs.start(worker)

    def _drop_job(self) -> None:
        if self._job is None:
            return
        self._job = None
        self._landing = None
        self._apply_cursor()
        self._refresh_previews()
        self.busyChanged.emit(False)

    def _job_returned(self, seq: int, job: ToolJob, result: object) -> None:
        if seq != self._job_seq or self._job is None:
            return  # stale: the image changed or the job was cancelled
        self._drop_job()
        if self._editable():
            self._apply(self._run(lambda _c, _s: job.land(result)))
        self._refresh_previews()

    def _job_errored(self, seq: int, job: ToolJob, error: JobError) -> None:
        if seq != self._job_seq or self._job is None:
            return
        self._drop_job()
        if not error.cancelled:
            self.message.emit(f"{job.label} failed: {error.message}")

    # ----- superpixels --------------------------------------------------------------------
    def _superpixels_now(self) -> np.ndarray | None:
        if self._rgb is None or self._superpixel_cache is None:
            return None
        return self._superpixel_cache.peek(self._image_serial, int(self._options.superpixel_size))

    def _ensure_superpixels(self) -> None:
        """Compute the superpixels of the image in the background while Superpixel paint is active."""
        if self._tool != "superpixel" or self._rgb is None:
            return
        if self._superpixel_cache is None:
            from workbench.editing.superpixels import SuperpixelCache
            self._superpixel_cache = SuperpixelCache()
        size = int(self._options.superpixel_size)
        key = (self._image_serial, size)
        if self._superpixels_now() is not None or self._superpixel_pending == key:
            return
        self._superpixel_pending = key
        cache, rgb = self._superpixel_cache, self._rgb
        worker = Job(_compute_superpixels, cache, key, rgb, progress=False)
        landing = _SuperpixelLanding(self, key)
        worker.signals.returned.connect(landing.returned)
        worker.signals.errored.connect(landing.errored)
        self._superpixel_landing = landing
        self.message.emit("Computing superpixels…")
        self._superpixel_jobs.start(worker)

    def _superpixels_ready(self, key: tuple[int, int]) -> None:
        if self._superpixel_pending == key:
            self._superpixel_pending = None
        self._refresh_previews()
        self._ensure_superpixels()  # the size may have changed meanwhile

    def _superpixels_failed(self, key: tuple[int, int], error: JobError) -> None:
        if self._superpixel_pending == key:
            self._superpixel_pending = None
        self.message.emit(f"Superpixels failed: {error.message}")

    # ----- view jumps ---------------------------------------------------------------------
    def show_box(self, bbox: BBox, fill: float = 0.6) -> None:
        """Centre the view on image box (y0, x0, y1, x1), zoomed so it fills ``fill`` of the widget."""
        y0, x0, y1, x1 = bbox
        bw, bh = max(1, x1 - x0), max(1, y1 - y0)
        zoom = min(MAX_ZOOM, 16.0, max(MIN_ZOOM, fill * min(self.width() / bw, self.height() / bh)))
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        self.set_view(zoom, self.width() / 2 - cx * zoom, self.height() / 2 - cy * zoom)
        self._refresh_previews()

    def next_error_region(self) -> object | None:
        """Jump to the next low-confidence region of the prediction (cycling); the Region, or None."""
        if self._pred is None or self._confidence is None or self._image is None \
                or self._pred.shape != self._image.shape:
            self.message.emit("Next error region: no prediction with confidence for this image yet.")
            return None
        found = tool_table.next_error_region(self._pred, self._confidence, self._error_index,
                                             self._options.threshold)
        if found is None:
            self.message.emit("Next error region: the model is confident everywhere on this image.")
            return None
        self._error_index, region = found
        self.show_box(tuple(int(v) for v in region.bbox))
        self.message.emit(f"Error region {self._error_index + 1}: {int(region.area)} pixels, "
                          f"score {float(region.score):.2f}")
        return region

    # ----- tool actions -----------------------------------------------------------------
    def _pick(self, x: int, y: int) -> None:
        outcome = tool_table.BY_ID["pick"].press(self._context(), {}, ToolEvent(x + 0.5, y + 0.5))
        self._apply(outcome)

    @property
    def polygon_points(self) -> list[tuple[float, float]]:
        """Vertices of the polygon being drawn, (x, y) continuous image coordinates."""
        return list(self._state.get("points", [])) if self._tool == "polygon" else []

    def close_polygon(self) -> BBox | None:
        """Fill the polygon being drawn with the current class (one undo step)."""
        if self._tool != "polygon" or not self._editable():
            return None
        outcome = self._run(tool_table.BY_ID["polygon"].finish)
        self._apply(outcome)
        self._refresh_previews()
        return outcome.edited

    def _cancel_polygon(self) -> None:
        if self._state:
            self._state = {}
            self._refresh_previews()


def _run_tool_job(compute, *, on_progress=None, cancel=None):
    """Worker body of a tool job (``compute`` takes only the cancel token)."""
    return compute(cancel)


def _compute_superpixels(cache, key: tuple[int, int], rgb: np.ndarray) -> tuple[int, int]:
    """Worker body: fill the cache for (image serial, size); returns the key."""
    cache.get(key[0], rgb, key[1])
    return key


class _JobLanding(QObject):
    """Receives one tool job's signals on the GUI thread (a QObject slot, not a lambda: GUIDE 5)."""

    def __init__(self, canvas: Canvas, seq: int, job: ToolJob) -> None:
        super().__init__(canvas)
        self._canvas, self._seq, self._job = canvas, seq, job

    def returned(self, result: object) -> None:
        self._canvas._job_returned(self._seq, self._job, result)
        self.deleteLater()

    def errored(self, error: JobError) -> None:
        self._canvas._job_errored(self._seq, self._job, error)
        self.deleteLater()


class _SuperpixelLanding(QObject):
    """Receives a superpixel job's signals on the GUI thread."""

    def __init__(self, canvas: Canvas, key: tuple[int, int]) -> None:
        super().__init__(canvas)
        self._canvas, self._key = canvas, key

    def returned(self, _result: object) -> None:
        self._canvas._superpixels_ready(self._key)
        self.deleteLater()

    def errored(self, error: JobError) -> None:
        self._canvas._superpixels_failed(self._key, error)
        self.deleteLater()

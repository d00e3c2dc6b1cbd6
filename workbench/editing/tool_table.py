"""The tool table: every editing tool and canvas action as data, outside Qt.

After napari's labels layer, which dispatches its drag modes from a dict: one entry per
tool holds its id, key, label, tooltip, cursor and icon names, the options it uses, and
its press / move / release (and finish / cancel) handlers and preview. The canvas only
turns mouse events into ``ToolEvent``s in continuous image coordinates and calls the
handlers; the toolbar, the shortcuts, the Help dialog and the README's tool table are
generated from ``TOOLS`` and ``ACTIONS``. Adding a tool means adding one entry here.

A handler gets a ``ToolContext`` (the editor, the image, the prediction and its
confidence, the current class, the options), a per-tool ``state`` dict that lives
until the tool, the image or the editor changes, and the event. It returns an
``Outcome``: the box of a committed edit (one undo step), the box of a drag in progress,
a picked class, a view to jump to, or a ``ToolJob`` for work too long for the GUI
thread (GrabCut, superpixels); the job's ``land`` turns its result into an edit on the
GUI thread, as one undo step, and the canvas locks the image until it has landed.

The operations themselves (wand, smart region, superpixels, confidence) live in their
own modules of ``workbench.editing``; this table only connects them to gestures.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from workbench.classes import UNLABELLED
from workbench.editing.confidence import DEFAULT_THRESHOLD, confident_region, error_regions
from workbench.editing.geometry import BBox, box_slices, capsule_box, capsule_mask
from workbench.editing.label_editor import LabelEditor
from workbench.editing.smart_region import class_prior, smart_region
from workbench.editing.superpixels import DEFAULT_SIZE, MAX_SIZE, MIN_SIZE, superpixel_selection
from workbench.editing.wand import magic_wand

# ----- options ----------------------------------------------------------------------------


@dataclass(frozen=True)
class OptionSpec:
    """A numeric tool option: range, step, how a modifier+wheel notch changes it, display."""

    name: str
    label: str
    minimum: float
    maximum: float
    step: float
    default: float
    suffix: str = ""
    tooltip: str = ""
    integer: bool = True

    def clamp(self, value: float) -> float:
        """``value`` limited to the range (and rounded for integer options)."""
        value = min(self.maximum, max(self.minimum, float(value)))
        return float(round(value)) if self.integer else value


OPTION_SPECS: dict[str, OptionSpec] = {s.name: s for s in (
    # napari shows the brush size as a diameter; our brush paints pixel centres within a
    # radius of the cursor's pixel, so the painted width is always odd: 2 * radius + 1.
    OptionSpec("brush_size", "Size", 1, 1025, 2, 17, " px",
               "Brush diameter in image pixels ([ and ], or Ctrl+wheel)"),
    OptionSpec("tolerance", "Tolerance", 0, 255, 2, 24, "",
               "Magic wand: largest colour difference (0-255, per channel) still selected (Ctrl+wheel)"),
    OptionSpec("superpixel_size", "Superpixel", MIN_SIZE, MAX_SIZE, 2, DEFAULT_SIZE, " px",
               "Superpixel paint: typical superpixel width in image pixels (Ctrl+wheel)"),
    OptionSpec("threshold", "Confidence", 0.05, 1.0, 0.01, DEFAULT_THRESHOLD, "",
               "Accept confident: accept the prediction where its confidence is at least this (Ctrl+wheel)",
               integer=False),
)}


@dataclass(frozen=True)
class ToolOptions:
    """The values of every tool option, plus the wand's contiguous switch (immutable)."""

    brush_size: float = OPTION_SPECS["brush_size"].default
    tolerance: float = OPTION_SPECS["tolerance"].default
    superpixel_size: float = OPTION_SPECS["superpixel_size"].default
    threshold: float = OPTION_SPECS["threshold"].default
    contiguous: bool = True

    @property
    def brush_radius(self) -> int:
        """The radius ``LabelEditor.stroke_to`` paints with for ``brush_size``."""
        return max(0, (int(self.brush_size) - 1) // 2)

    def with_value(self, name: str, value: float | bool) -> "ToolOptions":
        """A copy with option ``name`` set (clamped to its range)."""
        if name == "contiguous":
            return replace(self, contiguous=bool(value))
        spec = OPTION_SPECS.get(name)
        if spec is None:
            raise KeyError(f"unknown tool option {name!r}; options: {', '.join(OPTION_SPECS)}, contiguous")
        v = spec.clamp(value)
        if name == "brush_size" and int(v) % 2 == 0:
            v = v + 1 if v < spec.maximum else v - 1   # keep the diameter odd (see above)
        return replace(self, **{name: v})

    def stepped(self, name: str, steps: float) -> "ToolOptions":
        """A copy with option ``name`` moved by ``steps`` of its step (wheel notches)."""
        spec = OPTION_SPECS[name]
        return self.with_value(name, getattr(self, name) + steps * spec.step)


# ----- events, previews, outcomes -----------------------------------------------------------


@dataclass(frozen=True)
class ToolEvent:
    """A mouse event in continuous image coordinates: pixel (r, c) spans [c, c+1) x [r, r+1)."""

    x: float
    y: float
    shift: bool = False
    ctrl: bool = False
    alt: bool = False
    screen: tuple[float, float] | None = None   # widget position (logical pixels), for drag gestures

    @property
    def row(self) -> int:
        """The pixel row under the event."""
        return math.floor(self.y)

    @property
    def col(self) -> int:
        """The pixel column under the event."""
        return math.floor(self.x)


@dataclass(frozen=True)
class Circle:
    """Preview: a circle centred on (cx, cy) with radius r, image coordinates."""

    cx: float
    cy: float
    r: float


@dataclass(frozen=True)
class Box:
    """Preview: a rectangle from (x0, y0) to (x1, y1), image coordinates."""

    x0: float
    y0: float
    x1: float
    y1: float


@dataclass(frozen=True)
class Polyline:
    """Preview: a line through ``points`` ((x, y) image coordinates); role picks the colour."""

    points: tuple[tuple[float, float], ...]
    role: str = "outline"      # "outline" | "include" | "exclude"
    closed: bool = False


@dataclass(frozen=True, eq=False)
class RegionMask:
    """Preview: the pixels an action would change, ``mask`` (bool) over ``bbox`` (y0, x0, y1, x1)."""

    bbox: BBox
    mask: np.ndarray
    role: str = "select"       # "select" (current class colour) | "accept" (prediction)


Shape = Circle | Box | Polyline | RegionMask


@dataclass(frozen=True)
class ToolJob:
    """Work to run off the GUI thread: ``compute(cancel)`` there, ``land(result)`` back here."""

    label: str
    compute: Callable[[Any], Any]
    land: Callable[[Any], "Outcome"]


@dataclass(frozen=True)
class Outcome:
    """What a handler did, for the canvas to show and announce."""

    edited: BBox | None = None     # a committed undo step: repaint and report
    painted: BBox | None = None    # a drag in progress changed these pixels: repaint only
    picked: int | None = None      # the eyedropper chose this class
    view: BBox | None = None       # show this image box (Next error region)
    job: ToolJob | None = None     # long work to run in a worker
    message: str | None = None     # a short note for the status bar


NOTHING = Outcome()


@dataclass
class ToolContext:
    """What a handler may use. The canvas builds one per event; the editor is edited in place."""

    editor: LabelEditor
    image: np.ndarray                      # (H, W, 3) uint8 RGB
    value: int                             # the current class
    options: ToolOptions = field(default_factory=ToolOptions)
    prediction: np.ndarray | None = None   # (H, W) uint8 classes
    confidence: np.ndarray | None = None   # (H, W) max softmax probability, uint8 (x255) or float
    superpixels: Callable[[], np.ndarray | None] = lambda: None  # labels for the size, None while computing

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) of the image."""
        return self.editor.shape

    def inside(self, ev: ToolEvent) -> bool:
        """True when the event is over an image pixel."""
        h, w = self.shape
        return 0 <= ev.row < h and 0 <= ev.col < w

    def confidence01(self) -> np.ndarray | None:
        """The confidence as float32 in [0, 1], or None."""
        c = self.confidence
        if c is None:
            return None
        c = np.asarray(c)
        return c.astype(np.float32) / 255.0 if c.dtype == np.uint8 else c.astype(np.float32, copy=False)

    def has_prediction(self) -> bool:
        """True when a prediction of the image's size is known."""
        return self.prediction is not None and self.prediction.shape == self.shape


Handler = Callable[[ToolContext, dict, ToolEvent], Outcome]
Finisher = Callable[[ToolContext, dict], Outcome]
Previewer = Callable[[ToolContext, dict, "ToolEvent | None"], Sequence[Shape]]


@dataclass(frozen=True)
class ToolSpec:
    """One tool: identity, how it looks, and what the mouse does with it."""

    id: str
    key: str
    label: str
    tooltip: str
    cursor: str                       # a cursor name the GUI maps to a Qt cursor / icon
    icon: str                         # resources/icons/<icon>.svg
    press: Handler | None = None
    move: Handler | None = None       # called while the left button is held
    release: Handler | None = None
    finish: Finisher | None = None    # Enter / double-click
    cancel: Finisher | None = None    # Esc
    undo_last: Finisher | None = None  # Backspace
    preview: Previewer | None = None
    options: tuple[str, ...] = ()     # OPTION_SPECS names (and "contiguous") the tool uses
    needs_prediction: bool = False
    pans: bool = False                # the canvas pans on left-drag
    help: str = ""                    # how to use it (Help, README)


@dataclass(frozen=True)
class ActionSpec:
    """A one-shot command that belongs with the tools (toolbar, key, Help)."""

    id: str
    key: str
    label: str
    tooltip: str
    icon: str
    help: str = ""


# ----- selection helpers ----------------------------------------------------------------------


def _tight(sel: np.ndarray) -> tuple[BBox, np.ndarray] | None:
    """(bbox, sel cropped to it) for a full-size bool mask, or None when empty."""
    rows = np.flatnonzero(sel.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(sel.any(axis=0))
    box = (int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1)
    return box, sel[box[0]:box[2], box[1]:box[3]]


def _paint(editor: LabelEditor, sel: np.ndarray, value: int | np.ndarray, kind: str) -> BBox | None:
    """Set ``value`` (a class or a full-size array) where ``sel``; one undo step."""
    if isinstance(value, np.ndarray):
        return editor.accept_where(value, sel)
    return editor.paint_selection(sel, int(value), kind=kind)


def _region_preview(sel: np.ndarray | None, role: str = "select") -> list[Shape]:
    if sel is None:
        return []
    found = _tight(sel)
    return [] if found is None else [RegionMask(found[0], found[1], role)]


# ----- brush and unlabel ------------------------------------------------------------------------


def _stroke_press(value_of: Callable[[ToolContext], int]) -> Handler:
    def press(ctx: ToolContext, state: dict, ev: ToolEvent) -> Outcome:
        ctx.editor.begin_stroke(value_of(ctx))
        return Outcome(painted=ctx.editor.stroke_to(ev.row, ev.col, ctx.options.brush_radius))
    return press


def _stroke_move(ctx: ToolContext, state: dict, ev: ToolEvent) -> Outcome:
    if not ctx.editor.stroke_active:
        return NOTHING
    return Outcome(painted=ctx.editor.stroke_to(ev.row, ev.col, ctx.options.brush_radius))


def _stroke_release(ctx: ToolContext, state: dict, ev: ToolEvent) -> Outcome:
    return Outcome(edited=ctx.editor.end_stroke())


def _brush_preview(ctx: ToolContext, state: dict, hover: ToolEvent | None) -> list[Shape]:
    if hover is None:
        return []
    return [Circle(hover.col + 0.5, hover.row + 0.5, ctx.options.brush_radius + 0.5)]


# ----- click tools ------------------------------------------------------------------------------


def _fill_press(ctx: ToolContext, state: dict, ev: ToolEvent) -> Outcome:
    return Outcome(edited=ctx.editor.fill(ev.row, ev.col, ctx.value))


def _pick_press(ctx: ToolContext, state: dict, ev: ToolEvent) -> Outcome:
    value = ctx.editor.value_at(ev.row, ev.col)
    if (value is None or value == UNLABELLED) and ctx.has_prediction() and ctx.inside(ev):
        value = int(ctx.prediction[ev.row, ev.col])  # nothing painted here: take the model's class
    if value is None or value == UNLABELLED:
        return NOTHING
    return Outcome(picked=value)


def _accept_press(ctx: ToolContext, state: dict, ev: ToolEvent) -> Outcome:
    if not ctx.has_prediction():
        return Outcome(message="No prediction for this image yet.")
    if not ctx.inside(ev):
        return NOTHING
    return Outcome(edited=ctx.editor.accept_prediction(ctx.prediction, at=(ev.row, ev.col)))


# ----- polygon ----------------------------------------------------------------------------------


def _polygon_press(ctx: ToolContext, state: dict, ev: ToolEvent) -> Outcome:
    pts = state.setdefault("points", [])
    p = (ev.x, ev.y)
    if not pts or abs(pts[-1][0] - p[0]) > 1e-9 or abs(pts[-1][1] - p[1]) > 1e-9:
        pts.append(p)
    return NOTHING


def _polygon_finish(ctx: ToolContext, state: dict) -> Outcome:
    pts = state.pop("points", [])
    if len(pts) < 3:
        return NOTHING
    # continuous coordinates -> the pixel-centre frame of LabelEditor.fill_polygon
    return Outcome(edited=ctx.editor.fill_polygon([(x - 0.5, y - 0.5) for x, y in pts], ctx.value))


def _polygon_cancel(ctx: ToolContext, state: dict) -> Outcome:
    state.pop("points", None)
    return NOTHING


def _polygon_backspace(ctx: ToolContext, state: dict) -> Outcome:
    if state.get("points"):
        state["points"].pop()
    return NOTHING


def _polygon_preview(ctx: ToolContext, state: dict, hover: ToolEvent | None) -> list[Shape]:
    pts = list(state.get("points", []))
    if not pts:
        return []
    if hover is not None:
        pts.append((hover.x, hover.y))
    return [Polyline(tuple(pts))]


# ----- magic wand -------------------------------------------------------------------------------
# Press selects from the clicked pixel at the current tolerance and shows it; dragging
# right / left while held widens / narrows the tolerance (as GIMP's fuzzy select does),
# release paints the selection with the current class as one undo step.

WAND_DRAG_PER_UNIT = 2.0   # screen pixels of horizontal drag per tolerance unit (zoom-independent)


def _drag_x(ev: ToolEvent) -> float:
    return ev.screen[0] if ev.screen is not None else ev.x


def _wand_select(ctx: ToolContext, state: dict, seed: tuple[int, int], tolerance: float) -> np.ndarray:
    image = ctx.image
    if not image.flags.writeable:
        # cv2.floodFill refuses read-only arrays (the app's source images are read-only):
        # one writable copy per gesture, reused while the drag changes the tolerance.
        if state.get("image_copy") is None:
            state["image_copy"] = np.array(image)
        image = state["image_copy"]
    return magic_wand(image, seed, tolerance, contiguous=ctx.options.contiguous)


def _wand_press(ctx: ToolContext, state: dict, ev: ToolEvent) -> Outcome:
    if not ctx.inside(ev):
        return NOTHING
    state.update(seed=(ev.row, ev.col), x0=_drag_x(ev), tolerance=ctx.options.tolerance)
    state["image_copy"] = None
    state["sel"] = _wand_select(ctx, state, state["seed"], state["tolerance"])
    return NOTHING


def _wand_move(ctx: ToolContext, state: dict, ev: ToolEvent) -> Outcome:
    if "seed" not in state:
        return NOTHING
    tol = OPTION_SPECS["tolerance"].clamp(ctx.options.tolerance + (_drag_x(ev) - state["x0"]) / WAND_DRAG_PER_UNIT)
    if tol != state["tolerance"]:
        state["tolerance"] = tol
        state["sel"] = _wand_select(ctx, state, state["seed"], tol)
    return Outcome(message=f"Tolerance {tol:g}")


def _wand_release(ctx: ToolContext, state: dict, ev: ToolEvent) -> Outcome:
    sel = state.pop("sel", None)
    state.pop("seed", None)
    state.pop("image_copy", None)
    if sel is None:
        return NOTHING
    return Outcome(edited=_paint(ctx.editor, sel, ctx.value, "wand"))


def _wand_preview(ctx: ToolContext, state: dict, hover: ToolEvent | None) -> list[Shape]:
    return _region_preview(state.get("sel"))


# ----- smart region (GrabCut) ---------------------------------------------------------------------
# Drag a box: GrabCut runs in a worker (initialised from the model's probability of the
# current class when there is a prediction) and its region lands as one undo step.
# Then Shift+drag marks pixels that belong to the object, Ctrl+drag pixels that do not:
# each refinement reruns GrabCut with the same box and replaces the previous result
# (undone first when it is still the newest step), so the history keeps one step per box.

MIN_BOX = 3  # pixels: a smaller drag is a click, not a box


def _smart_press(ctx: ToolContext, state: dict, ev: ToolEvent) -> Outcome:
    if (ev.shift or ev.ctrl) and state.get("box") is not None:
        state["stroke"] = {"role": "include" if ev.shift else "exclude", "points": [(ev.x, ev.y)]}
    else:
        state.update(drag_start=(ev.x, ev.y), drag_end=(ev.x, ev.y), stroke=None)
    return NOTHING


def _smart_move(ctx: ToolContext, state: dict, ev: ToolEvent) -> Outcome:
    if state.get("stroke") is not None:
        state["stroke"]["points"].append((ev.x, ev.y))
    elif "drag_start" in state:
        state["drag_end"] = (ev.x, ev.y)
    return NOTHING


def _stroke_raster(points: list[tuple[float, float]], shape: tuple[int, int], radius: float) -> np.ndarray:
    """A bool mask of a stroke through continuous points (for include / exclude marks)."""
    out = np.zeros(shape, bool)
    pts = [(y - 0.5, x - 0.5) for x, y in points]
    for a, b in zip(pts, pts[1:] + pts[-1:]):
        box = capsule_box(a, b, radius, shape)
        if box is not None:
            out[box_slices(box)] |= capsule_mask(a, b, radius, box)
    return out


def _smart_release(ctx: ToolContext, state: dict, ev: ToolEvent) -> Outcome:
    h, w = ctx.shape
    stroke = state.get("stroke")
    if stroke is not None:
        state["stroke"] = None
        mark = _stroke_raster(stroke["points"], (h, w), ctx.options.brush_radius)
        key = stroke["role"]
        state[key] = mark if state.get(key) is None else (state[key] | mark)
        state.setdefault("marks", []).append(stroke)
    elif "drag_start" in state:
        (xa, ya), (xb, yb) = state.pop("drag_start"), state.pop("drag_end")
        x0, x1 = sorted((min(max(xa, 0), w), min(max(xb, 0), w)))
        y0, y1 = sorted((min(max(ya, 0), h), min(max(yb, 0), h)))
        box = (math.floor(x0), math.floor(y0), math.ceil(x1), math.ceil(y1))
        if box[2] - box[0] < MIN_BOX or box[3] - box[1] < MIN_BOX:
            return Outcome(message="Smart region: drag a box around the object.")
        state.update(box=box, include=None, exclude=None, marks=[], landed=None)
    else:
        return NOTHING
    return Outcome(job=_smart_job(ctx, state))


def _smart_job(ctx: ToolContext, state: dict) -> ToolJob:
    image, box, value, editor = ctx.image, state["box"], ctx.value, ctx.editor
    include, exclude = state.get("include"), state.get("exclude")
    prior = None
    if ctx.has_prediction() and ctx.confidence is not None:
        prior = class_prior(ctx.prediction, ctx.confidence01(), value)
    landed_before = state.get("landed")

    def compute(cancel: Any) -> np.ndarray:
        return smart_region(image, box, include=include, exclude=exclude, prior=prior, cancel=cancel)

    def land(sel: np.ndarray) -> Outcome:
        undone = None
        if landed_before is not None and editor.revision == landed_before:
            undone = editor.undo()   # the previous result of this box: replaced, not stacked
        done = _paint(editor, sel, value, "smart-region")
        state["landed"] = editor.revision if done is not None else None
        edited = done if undone is None else _union(undone, done)
        return Outcome(edited=edited, message=None if done is not None or undone is not None
                       else "Smart region: nothing to change in this box.")

    return ToolJob("Smart region", compute, land)


def _union(a: BBox | None, b: BBox | None) -> BBox | None:
    if a is None or b is None:
        return a or b
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def _smart_cancel(ctx: ToolContext, state: dict) -> Outcome:
    state.clear()
    return NOTHING


def _smart_preview(ctx: ToolContext, state: dict, hover: ToolEvent | None) -> list[Shape]:
    shapes: list[Shape] = []
    if "drag_start" in state:
        (xa, ya), (xb, yb) = state["drag_start"], state["drag_end"]
        shapes.append(Box(min(xa, xb), min(ya, yb), max(xa, xb), max(ya, yb)))
    elif state.get("box") is not None:
        x0, y0, x1, y1 = state["box"]
        shapes.append(Box(x0, y0, x1, y1))
    for stroke in [*state.get("marks", []), *([state["stroke"]] if state.get("stroke") else [])]:
        shapes.append(Polyline(tuple(stroke["points"]), stroke["role"]))
    return shapes


# ----- superpixel paint ---------------------------------------------------------------------------


def _cell_boxes(state: dict, labels: np.ndarray) -> list:
    """Bounding slices of every superpixel (computed once per labels array): previews then
    touch only the cells' boxes, not the whole image, on every mouse move."""
    if state.get("cells_key") != id(labels):
        from scipy.ndimage import find_objects   # scikit-image's dependency
        state["cells"] = find_objects(labels + 1)   # labels start at 0; find_objects skips 0
        state["cells_key"] = id(labels)
    return state["cells"]


def _cells_preview(state: dict, labels: np.ndarray, cells: set[int]) -> list[Shape]:
    boxes = _cell_boxes(state, labels)
    sl = [boxes[i] for i in cells if i < len(boxes) and boxes[i] is not None]
    if not sl:
        return []
    y0, x0 = min(s[0].start for s in sl), min(s[1].start for s in sl)
    y1, x1 = max(s[0].stop for s in sl), max(s[1].stop for s in sl)
    sub = labels[y0:y1, x0:x1]
    mask = sub == next(iter(cells)) if len(cells) == 1 else np.isin(sub, list(cells))
    return [RegionMask((y0, x0, y1, x1), mask)]


def _superpixel_press(ctx: ToolContext, state: dict, ev: ToolEvent) -> Outcome:
    labels = ctx.superpixels()
    if labels is None:
        return Outcome(message="Superpixels are still being computed for this image…")
    state["points"] = []
    state["hit"] = set()
    return _superpixel_move(ctx, state, ev)


def _superpixel_move(ctx: ToolContext, state: dict, ev: ToolEvent) -> Outcome:
    if "points" not in state or not ctx.inside(ev):
        return NOTHING
    labels = ctx.superpixels()
    if labels is None or labels.shape != ctx.shape:
        return NOTHING
    cell = int(labels[ev.row, ev.col])
    if cell not in state["hit"]:
        state["points"].append((ev.row, ev.col))
        state["hit"].add(cell)
        state["drag_preview"] = _cells_preview(state, labels, state["hit"])
    return NOTHING


def _superpixel_release(ctx: ToolContext, state: dict, ev: ToolEvent) -> Outcome:
    points = state.pop("points", None)
    state.pop("hit", None)
    state.pop("drag_preview", None)
    labels = ctx.superpixels()
    if not points or labels is None or labels.shape != ctx.shape:
        return NOTHING
    sel = superpixel_selection(labels, points)
    return Outcome(edited=_paint(ctx.editor, sel, ctx.value, "superpixel"))


def _superpixel_preview(ctx: ToolContext, state: dict, hover: ToolEvent | None) -> list[Shape]:
    if state.get("drag_preview") is not None:
        return state["drag_preview"]
    labels = ctx.superpixels()
    if hover is None or labels is None or labels.shape != ctx.shape or not ctx.inside(hover):
        return []
    # The cell under the cursor changes far less often than the cursor moves: keep its preview.
    key = (id(labels), int(labels[hover.row, hover.col]))
    if state.get("hover_key") != key:
        state["hover_key"] = key
        state["hover_preview"] = _cells_preview(state, labels, {key[1]})
    return state["hover_preview"]


# ----- accept confident ---------------------------------------------------------------------------


def confident_selection(ctx: ToolContext, state: dict) -> np.ndarray | None:
    """Pixels Accept confident would change at the current threshold (cached per threshold)."""
    if not ctx.has_prediction() or ctx.confidence is None:
        return None
    key = (id(ctx.prediction), id(ctx.confidence), ctx.options.threshold, ctx.editor.revision)
    if state.get("key") != key:
        sel = confident_region(ctx.prediction, ctx.confidence01(), ctx.options.threshold)
        # Only what would change: a person's label is never replaced by this tool.
        sel = sel & (ctx.editor.mask == UNLABELLED)
        state.update(key=key, sel=sel)
    return state["sel"]


def _confident_press(ctx: ToolContext, state: dict, ev: ToolEvent) -> Outcome:
    sel = confident_selection(ctx, state)
    if sel is None:
        return Outcome(message="No prediction with confidence for this image yet.")
    return Outcome(edited=_paint(ctx.editor, sel, ctx.prediction, "accept-confident"))


def _confident_preview(ctx: ToolContext, state: dict, hover: ToolEvent | None) -> list[Shape]:
    sel = confident_selection(ctx, state)
    if sel is None or not sel.any():
        return []
    # Over the whole image: what would be accepted in the prediction's colours, the rest
    # dimmed, so moving the threshold visibly grows and shrinks the accepted area.
    h, w = ctx.shape
    return [RegionMask((0, 0, h, w), sel, "accept")]


# ----- the table ----------------------------------------------------------------------------------

TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec("brush", "P", "Brush", "Paint the current class (P); [ and ] or Ctrl+wheel change the size",
             "brush", "brush", _stroke_press(lambda c: c.value), _stroke_move, _stroke_release,
             preview=_brush_preview, options=("brush_size",),
             help="Drag to paint the current class; one drag is one undo step."),
    ToolSpec("unlabel", "E", "Unlabel", "Make pixels unlabelled (E): they are ignored by training and metrics",
             "unlabel", "unlabel", _stroke_press(lambda c: UNLABELLED), _stroke_move, _stroke_release,
             preview=_brush_preview, options=("brush_size",),
             help="Drag to make pixels unlabelled (not background: background is a class like any other)."),
    ToolSpec("fill", "F", "Fill", "Fill the connected region of equal label under the click (F)",
             "fill", "fill", _fill_press,
             help="Click to fill the 4-connected region of equal label with the current class."),
    ToolSpec("polygon", "G", "Polygon", "Click vertices; double-click or Enter fills, Esc cancels (G)",
             "polygon", "polygon", _polygon_press, finish=_polygon_finish, cancel=_polygon_cancel,
             undo_last=_polygon_backspace, preview=_polygon_preview,
             help="Click vertices; double-click or Enter fills with the current class, "
                  "Backspace removes the last vertex, Esc cancels."),
    ToolSpec("wand", "W", "Magic wand", "Select by colour similarity from the clicked pixel and paint it (W)",
             "wand", "wand", _wand_press, _wand_move, _wand_release, preview=_wand_preview,
             options=("tolerance", "contiguous"),
             help="Click to paint the pixels of similar colour (contiguous or everywhere); drag right or "
                  "left while holding to widen or narrow the tolerance before releasing."),
    ToolSpec("smart", "S", "Smart region", "Drag a box around an object: GrabCut finds it (S)",
             "smart", "smart", _smart_press, _smart_move, _smart_release, cancel=_smart_cancel,
             preview=_smart_preview, options=("brush_size",),
             help="Drag a box around an object; GrabCut (started from the model's prediction when there is "
                  "one) paints it with the current class. Then Shift+drag marks object pixels and Ctrl+drag "
                  "non-object pixels to refine; Esc forgets the box."),
    ToolSpec("superpixel", "X", "Superpixel paint", "Click or drag to paint whole superpixels (X)",
             "superpixel", "superpixel", _superpixel_press, _superpixel_move, _superpixel_release,
             preview=_superpixel_preview, options=("superpixel_size",),
             help="Click or drag to paint whole superpixels (SLIC, computed in the background per image) "
                  "with the current class; the highlighted superpixel under the cursor shows what a click takes."),
    ToolSpec("pick", "L", "Pick class", "The current class becomes the label (or prediction) under the click (L)",
             "pick", "pick", _pick_press,
             help="Click to make the label under the cursor (or the prediction, where unlabelled) "
                  "the current class."),
    ToolSpec("accept", "R", "Accept region", "Copy the prediction's connected region under the click (R)",
             "accept", "accept", _accept_press, needs_prediction=True,
             help="Click to copy the prediction's connected region under the cursor into the labels."),
    ToolSpec("confident", "C", "Accept confident",
             "Accept the prediction where its confidence is at least the threshold (C); click to apply",
             "confident", "confident", _confident_press, preview=_confident_preview,
             options=("threshold",), needs_prediction=True,
             help="Shows where the prediction is at least as confident as the threshold (slider, "
                  "Ctrl+wheel); a click copies it into the unlabelled pixels there. The rest stays "
                  "unlabelled for you; your labels are never replaced."),
    ToolSpec("pan", "H", "Pan", "Drag to move the image (H); middle-drag or Space+drag pan with any tool",
             "pan", "pan", pans=True,
             help="Drag to move the image; the wheel zooms around the cursor."),
)

ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("next_error", "N", "Next error region",
               "Jump to the next region where the model is unsure (N)", "next_error",
               help="Shows the next region where the prediction's confidence is below Accept confident's "
                    "threshold, largest x most uncertain first."),
)

BY_ID: dict[str, ToolSpec] = {t.id: t for t in TOOLS}
ACTIONS_BY_ID: dict[str, ActionSpec] = {a.id: a for a in ACTIONS}


def tool(tool_id: str) -> ToolSpec:
    """The tool with this id; the error lists the valid ids."""
    try:
        return BY_ID[tool_id]
    except KeyError:
        raise KeyError(f"unknown tool {tool_id!r}; tools: {', '.join(BY_ID)}") from None


def check_table() -> None:
    """Raise ValueError when two tools or actions share an id or a key (run by the tests)."""
    seen_ids: set[str] = set()
    seen_keys: dict[str, str] = {}
    for entry in (*TOOLS, *ACTIONS):
        if entry.id in seen_ids:
            raise ValueError(f"tool id {entry.id!r} is used twice")
        seen_ids.add(entry.id)
        k = entry.key.upper()
        if k in seen_keys:
            raise ValueError(f"key {entry.key} is bound to both {seen_keys[k]} and {entry.id}")
        seen_keys[k] = entry.id
    for t in TOOLS:
        for name in t.options:
            if name != "contiguous" and name not in OPTION_SPECS:
                raise ValueError(f"tool {t.id} uses unknown option {name!r}")


def wheel_option(tool_id: str) -> str | None:
    """The option a modifier+wheel adjusts for this tool (its first numeric option), or None."""
    for name in tool(tool_id).options:
        if name in OPTION_SPECS:
            return name
    return None


# ----- Next error region --------------------------------------------------------------------------


def next_error_region(pred: np.ndarray, confidence: np.ndarray, after: int = -1,
                      threshold: float = DEFAULT_THRESHOLD) -> tuple[int, Any] | None:
    """(index, Region) of the error region after index ``after`` (wrapping), or None if none.

    The app passes Accept confident's threshold: the regions are exactly what that tool
    would leave unlabelled, so the two tools agree on where the model is unsure.
    """
    conf = np.asarray(confidence)
    conf = conf.astype(np.float32) / 255.0 if conf.dtype == np.uint8 else conf
    regions = error_regions(pred, conf, threshold=threshold)
    if not regions:
        return None
    i = (after + 1) % len(regions)
    return i, regions[i]


def markdown_table() -> str:
    """The README's tool table, generated from TOOLS and ACTIONS."""
    rows = ["| Tool | Key | What it does |", "|---|---|---|"]
    rows += [f"| {t.label} | {t.key} | {t.help} |" for t in TOOLS]
    rows += [f"| {a.label} (action) | {a.key} | {a.help} |" for a in ACTIONS]
    return "\n".join(rows)

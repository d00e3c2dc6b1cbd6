"""The one rule for polygons <-> masks shared by the polygon formats (labelme, CVAT, YOLO).

Two coordinate conventions exist in the field, and each format is read the way its own
tool rasterises it (docs/formats-polygons.md):

* ``AREA`` (CVAT, YOLO, COCO): coordinates on the continuous image plane, pixel (row r,
  column c) is the unit square ``[c, c+1) x [r, r+1)``, its centre at ``(c+0.5, r+0.5)``.
  A polygon covers a pixel when the pixel's *centre* lies inside it or on its edge.
  A box from 0 to 10 covers pixels 0..9, as pycocotools draws it.
* ``LABELME``: labelme rasterises with PIL, whose integer coordinates are pixel centres,
  and draws the outline as well as the inside: a polygon covers the pixels whose centre
  is inside it plus the pixels its one-pixel outline passes through. A box from 0 to 10
  covers pixels 0..10. (``labelme.utils.shape_to_mask`` is the oracle in the tests.)

Shapes are drawn in order, later over earlier ("painter's order"), which is how labelme,
CVAT (by z_order, then document order) and our YOLO reader resolve overlaps.

Vectorising a mask (:func:`vectorise`) gives, for each connected region of each value,
its outer boundary (``cv2.findContours``, ``RETR_CCOMP``), ordered by decreasing area so
that whatever fills a hole (another class) is drawn after the region around it. Holes are
thus rebuilt by the shapes drawn after them; a not-labelled hole, which nothing fills,
is said the format's way (labelme ``__ignore__`` shapes from ``void_regions``, YOLO keyhole
rings from ``keyhole``, CVAT masks). The result is then painted back with the
format's own rule and any pixel that comes out wrong (a not-labelled hole, diagonal
touches) gets a correction shape drawn last, so the round trip is exact or very nearly.
In the AREA convention the boundary is traced on a mask upsampled x2, which puts the
vertices a quarter pixel inside the region's pixel edges: every covered pixel's centre is
strictly inside, every other centre strictly outside, so no pixel sits on an edge.

Void classes (CamVid's "Unlabelled") follow one rule in all three formats
(:func:`trainable`, :func:`without_void`, :func:`is_void_name`): a writer writes no shape and no class entry for
a void class, its pixels are not labelled in what is written (labelme says so with
``__ignore__`` where a shape would cover them), and a reader takes ``__ignore__`` as not
labelled and a class named like a void class (:data:`VOID_NAMES`) as void, so a void
class never comes back as a trainable one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageDraw

from workbench.classes import name_key
from workbench.formats.base import NOT_LABELLED, DatasetClass, ExportClass, Problem

AREA = "area"
LABELME = "labelme"
CONVENTIONS = (AREA, LABELME)

# a coordinate further than this (pixels) is corrupt data, not a shape: PIL's integer
# arithmetic overflows long before floats do, and no image is a million pixels wide
MAX_COORD = 1_000_000.0

# labelme.utils.shape_to_mask defaults (what labelme2voc draws lines and points with)
LABELME_LINE_WIDTH = 10
LABELME_POINT_RADIUS = 5


@dataclass(frozen=True)
class Region:
    """One polygon to paint with one value (vertices ``(N, 2)`` float x, y)."""

    value: int
    points: np.ndarray


def _check(convention: str) -> None:
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown convention {convention!r}; valid: {', '.join(CONVENTIONS)}")


def as_points(points: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """``(N, 2)`` float64 vertices from a list of pairs or a flat list."""
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim == 1:
        if arr.size % 2:
            raise ValueError("an odd number of coordinates")
        arr = arr.reshape(-1, 2)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError("points are not (x, y) pairs")
    check_coords(arr)
    return arr


def check_coords(arr: np.ndarray) -> None:
    """ValueError for coordinates that are not finite or lie beyond ``MAX_COORD``."""
    if not np.all(np.isfinite(arr)):
        raise ValueError("points that are not finite numbers")
    if arr.size and float(np.abs(arr).max()) > MAX_COORD:
        raise ValueError(f"coordinates beyond {MAX_COORD:,.0f} px: not a shape on an image")


def polygon_area(points: np.ndarray) -> float:
    """Absolute area of a polygon (shoelace formula)."""
    if len(points) < 3:
        return 0.0
    x, y = points[:, 0], points[:, 1]
    return abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))) / 2.0


def placement(points: np.ndarray, height: int, width: int, convention: str = AREA) -> str:
    """Where a shape lies: ``"inside"`` the image, ``"clipped"`` (partly out) or ``"outside"``."""
    _check(convention)
    if len(points) == 0:
        return "outside"
    # the image spans [0, W] x [0, H] in AREA coordinates and [-0.5, W-0.5] in labelme's
    lo = 0.0 if convention == AREA else -0.5
    eps = 1e-6
    xs, ys = points[:, 0], points[:, 1]
    hi_x, hi_y = width + lo, height + lo
    if xs.max() < lo or ys.max() < lo or xs.min() > hi_x or ys.min() > hi_y:
        return "outside"
    if xs.min() < lo - eps or ys.min() < lo - eps or xs.max() > hi_x + eps or ys.max() > hi_y + eps:
        return "clipped"
    return "inside"


def _area_spans(points: np.ndarray, height: int, width: int, canvas: np.ndarray, value: int) -> None:
    """Paint the pixels whose centre is inside the polygon (even-odd scanline fill).

    Row r is sampled at y = r + 0.5: an edge crosses it when y_low <= y < y_high (half-open,
    so a vertex on the sample line is counted once); along the row a pixel is covered when
    x_a <= c + 0.5 <= x_b for a pair of crossings (centres on a left or right edge count).
    """
    if len(points) < 3:
        return
    x0, y0 = points[:, 0], points[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    keep = y0 != y1  # horizontal edges never cross a sample line
    x0, y0, x1, y1 = x0[keep], y0[keep], x1[keep], y1[keep]
    if len(x0) == 0:
        return
    ylo, yhi = np.minimum(y0, y1), np.maximum(y0, y1)
    r_first = max(0, math.ceil(float(ylo.min()) - 0.5))
    r_last = min(height - 1, math.floor(float(yhi.max()) - 0.5))
    inv_slope = (x1 - x0) / (y1 - y0)
    for start in range(r_first, r_last + 1, 256):  # bounded memory on tall polygons
        rows = np.arange(start, min(start + 256, r_last + 1))
        cy = rows[:, None] + 0.5
        cross = (ylo[None, :] <= cy) & (cy < yhi[None, :])
        xs = np.where(cross, x0[None, :] + (cy - y0[None, :]) * inv_slope[None, :], np.inf)
        xs.sort(axis=1)
        n = cross.sum(axis=1)
        k = np.arange(xs.shape[1])[None, :]
        pair = (k % 2 == 0) & (k + 1 < n[:, None])
        ri, ki = np.nonzero(pair)
        if len(ri) == 0:
            continue
        # clip the floats before the cast: an edge far outside must not overflow int64
        c_from = np.ceil(np.clip(xs[ri, ki], -2.0, width + 2.0) - 0.5).astype(np.int64)
        c_to = np.floor(np.clip(xs[ri, ki + 1], -2.0, width + 2.0) - 0.5).astype(np.int64)
        c_from = np.clip(c_from, 0, width)
        c_to = np.clip(c_to, -1, width - 1)
        ok = c_from <= c_to
        ri, c_from, c_to = ri[ok], c_from[ok], c_to[ok]
        # a +1/-1 difference per span, summed along the row: even-odd overlaps stay 0/1
        diff = np.zeros((len(rows), width + 1), np.int32)
        np.add.at(diff, (ri, c_from), 1)
        np.add.at(diff, (ri, c_to + 1), -1)
        covered = np.cumsum(diff[:, :width], axis=1) > 0
        canvas[rows[0]:rows[-1] + 1][covered] = value


def polygon_pixels(points: np.ndarray, height: int, width: int,
                   convention: str = AREA) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the pixels a polygon covers (clipped to the image)."""
    _check(convention)
    canvas = np.zeros((height, width), np.uint8)
    paint_polygon(canvas, points, 1, convention)
    return np.nonzero(canvas)


def paint_polygon(canvas: np.ndarray, points: np.ndarray, value: int, convention: str = AREA) -> None:
    """Paint a polygon with ``value`` into a uint8 ``canvas`` in place (clipped)."""
    _check(convention)
    if convention == AREA:
        _area_spans(points, canvas.shape[0], canvas.shape[1], canvas, value)
        return
    if len(points) == 0:
        return
    xy = [tuple(map(float, p)) for p in points]
    _pil_paint(canvas, xy, 1, lambda d, q: d.polygon(q, fill=1, outline=1) if len(q) > 2 else d.line(q, fill=1),
               value)


def _pil_paint(canvas: np.ndarray, xy: list[tuple[float, float]], reach: float, draw_fn, value: int) -> int:
    """Draw with PIL (as labelme does) on a stencil over just the shape's box, then paint.

    The stencil's origin is a whole pixel, so the shifted shape rasterises exactly as it
    would on the full image; ``reach`` is how far the drawing goes past the points.
    """
    h, w = canvas.shape
    xs, ys = [p[0] for p in xy], [p[1] for p in xy]
    x0 = max(math.floor(min(xs) - reach) - 2, 0)
    y0 = max(math.floor(min(ys) - reach) - 2, 0)
    x1 = min(math.ceil(max(xs) + reach) + 3, w)
    y1 = min(math.ceil(max(ys) + reach) + 3, h)
    if x0 >= x1 or y0 >= y1:
        return 0
    stencil = Image.new("L", (x1 - x0, y1 - y0), 0)
    draw_fn(ImageDraw.Draw(stencil), [(x - x0, y - y0) for x, y in xy])
    covered = np.asarray(stencil, dtype=bool)
    canvas[y0:y1, x0:x1][covered] = value
    return int(covered.sum())


def paint_labelme_shape(canvas: np.ndarray, shape_type: str, points: np.ndarray, value: int) -> int:
    """Paint one labelme shape as ``labelme.utils.shape_to_mask`` draws it (PIL, pixel centres).

    ``shape_type`` is polygon, rectangle, circle, line, linestrip or point; the caller has
    checked the number of points (polygon >= 3, rectangle/circle/line 2, point 1).
    Returns how many pixels of the image it covers (0: wholly outside).
    """
    xy = [tuple(map(float, p)) for p in points]
    if shape_type == "polygon":
        return _pil_paint(canvas, xy, 1, lambda d, q: d.polygon(q, fill=1, outline=1), value)
    if shape_type == "rectangle":
        def rect(d, q):
            (a, b), (c, e) = q
            d.rectangle(((min(a, c), min(b, e)), (max(a, c), max(b, e))), outline=1, fill=1)
        return _pil_paint(canvas, xy, 1, rect, value)
    if shape_type == "circle":
        (cx, cy), (px, py) = xy
        r = math.hypot(cx - px, cy - py)

        def circle(d, q):
            (qx, qy) = q[0]
            d.ellipse(((qx - r, qy - r), (qx + r, qy + r)), outline=1, fill=1)
        return _pil_paint(canvas, xy, r + 1, circle, value)
    if shape_type in ("line", "linestrip"):
        return _pil_paint(canvas, xy, LABELME_LINE_WIDTH, lambda d, q: d.line(xy=q, fill=1, width=LABELME_LINE_WIDTH),
                          value)
    if shape_type == "point":
        r = LABELME_POINT_RADIUS

        def point(d, q):
            (qx, qy) = q[0]
            d.ellipse(((qx - r, qy - r), (qx + r, qy + r)), outline=1, fill=1)
        return _pil_paint(canvas, xy, r + 1, point, value)
    raise ValueError(f"shape_type {shape_type!r} is not a labelme area shape")


def rasterise(regions: Iterable[Region], height: int, width: int, convention: str = AREA,
              *, order: str = "document", fill: int = NOT_LABELLED) -> np.ndarray:
    """Paint regions into a new ``uint8`` mask (``fill`` where nothing is drawn).

    ``order="document"`` paints in the given order (later over earlier); ``"area"`` paints
    larger polygons first so smaller ones end on top, as Ultralytics overlaps YOLO masks.
    """
    _check(convention)
    regions = list(regions)
    if order == "area":
        regions = sorted(regions, key=lambda r: -polygon_area(r.points))  # stable for ties
    elif order != "document":
        raise ValueError(f"unknown order {order!r}; valid: document, area")
    canvas = np.full((height, width), fill, np.uint8)
    if convention == LABELME:
        # one PIL canvas for all shapes: same pixels as one stencil per shape, much faster
        image = Image.fromarray(canvas)
        draw = ImageDraw.Draw(image)
        for region in regions:
            xy = [tuple(map(float, p)) for p in region.points]
            if len(xy) > 2:
                draw.polygon(xy, fill=int(region.value), outline=int(region.value))
            elif xy:
                draw.line(xy, fill=int(region.value), width=1)
        return np.asarray(image, dtype=np.uint8).copy()
    for region in regions:
        paint_polygon(canvas, region.points, region.value, AREA)
    return canvas


def _keyhole(outer: np.ndarray, holes: list[np.ndarray]) -> np.ndarray:
    """One ring: ``outer`` with each hole spliced in by a bridge there and back.

    Under the even-odd rule a bridge is two coincident edges and crosses every scan line
    twice, so it covers nothing; the hole's ring toggles its inside off. (Ultralytics'
    converters join a region's rings the same way, into one line per region.)
    """
    ring = outer
    for hole in holes:
        if len(ring) * len(hole) <= 4_000_000:
            d = ((ring[:, None, :] - hole[None, :, :]) ** 2).sum(axis=-1)
            i, j = np.unravel_index(int(np.argmin(d)), d.shape)
        else:  # a huge pair: the nearest ring vertex to the hole's first one is enough
            i, j = int(np.argmin(((ring - hole[0]) ** 2).sum(axis=1))), 0
        ring = np.concatenate([ring[:i + 1], hole[j:], hole[:j + 1], ring[i:]])
    return ring


def _outer_contours(binary: np.ndarray, convention: str, keyhole: bool = False) -> list[np.ndarray]:
    """Outer boundaries of the 8-connected regions of a boolean mask, in ``convention``
    (with ``keyhole``, AREA only: each with its holes spliced in)."""
    if convention == AREA:
        # trace on a x2 mask: vertices land a quarter pixel inside the pixel edges
        up = np.repeat(np.repeat(binary.astype(np.uint8), 2, axis=0), 2, axis=1)
        contours, hierarchy = cv2.findContours(up, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
        scale, offset = 0.5, 0.25
    else:
        contours, hierarchy = cv2.findContours(binary.astype(np.uint8), cv2.RETR_CCOMP,
                                               cv2.CHAIN_APPROX_SIMPLE)
        scale, offset = 1.0, 0.0
    if hierarchy is None:
        return []
    holes: dict[int, list[np.ndarray]] = {}
    if keyhole:
        for k, (contour, (_n, _p, _c, parent)) in enumerate(zip(contours, hierarchy[0])):
            if parent != -1:
                holes.setdefault(int(parent), []).append(contour.reshape(-1, 2).astype(np.float64) * scale + offset)
    out = []
    for k, (contour, (_next, _prev, _child, parent)) in enumerate(zip(contours, hierarchy[0])):
        if parent != -1:
            continue  # a hole: rebuilt by the shapes drawn after this one (or spliced in)
        pts = contour.reshape(-1, 2).astype(np.float64) * scale + offset
        if k in holes:
            pts = _keyhole(pts, holes[k])
        if len(pts) < 3:
            if convention == AREA:
                continue  # cannot happen: a pixel traced at x2 is a 2x2 block, 4 vertices
            # a single pixel or a straight one-pixel line: labelme wants >= 3 points, and a
            # polygon that goes there and back draws exactly those pixels
            pts = np.concatenate([pts, pts[:1]] if len(pts) == 2 else [pts, pts, pts])
        out.append(pts)
    return out


def _regions_of(mask: np.ndarray, values: Iterable[int], convention: str,
                where: np.ndarray | None = None, keyhole: bool = False) -> list[tuple[float, Region]]:
    found = []
    for v in values:
        binary = mask == v
        if where is not None:
            binary &= where
        if not binary.any():
            continue
        for pts in _outer_contours(binary, convention, keyhole):
            found.append((polygon_area(pts), Region(int(v), pts)))
    return found


def vectorise(mask: np.ndarray, convention: str = AREA, *, order: str = "document",
              void_regions: bool = False, keyhole: bool = False, values: Iterable[int] | None = None,
              max_corrections: int = 3) -> list[Region]:
    """Polygons that paint ``mask`` back (in ``convention`` and read ``order``).

    ``values``: the mask values to write (default: all but 255). Pixels with other values
    are not written; they come back not labelled unless a shape around them covers them.
    ``void_regions``: 255 pixels that a shape covers by mistake (a not-labelled hole in a
    region) get correction regions of value 255, which the format writes as "not
    labelled" (labelme's ``__ignore__``); without them such holes take the class around
    them (for a format with no way to say void).
    ``keyhole`` (AREA only): each region's holes are spliced into its ring by zero-width
    bridges, so a region leaves its holes unpainted whatever is (or is not) drawn there:
    the way to keep not-labelled holes in a format with one ring per shape and no void.
    """
    _check(convention)
    if keyhole and convention != AREA:
        raise ValueError("keyhole polygons need the AREA convention (an outline would draw the bridges)")
    mask = np.asarray(mask, dtype=np.uint8)
    height, width = mask.shape
    if values is None:
        values = [int(v) for v in np.unique(mask) if v != NOT_LABELLED]
    values = sorted(set(int(v) for v in values) - {NOT_LABELLED})
    wanted = np.isin(mask, values)
    found = _regions_of(mask, values, convention, keyhole=keyhole)
    found.sort(key=lambda item: -item[0])  # big first: whatever fills a hole comes after
    regions = [r for _, r in found]
    painted = rasterise(regions, height, width, convention, order=order)
    for _ in range(max_corrections):
        # pixels to write that came out wrong, and (with a void value) not-labelled pixels
        # that a shape covered
        wrong = wanted & (painted != mask)
        void_wrong = None
        if void_regions:
            void_wrong = (mask == NOT_LABELLED) & (painted != NOT_LABELLED)
        if not wrong.any() and (void_wrong is None or not void_wrong.any()):
            break
        fixes = _regions_of(mask, values, convention, where=wrong, keyhole=keyhole)
        if void_wrong is not None and void_wrong.any():
            fixes += _regions_of(mask, [NOT_LABELLED], convention, where=void_wrong)
        if not fixes:
            break
        fixes.sort(key=lambda item: -item[0])
        regions += [r for _, r in fixes]
        painted = rasterise(regions, height, width, convention, order=order)
    return regions


def agreement(expected: np.ndarray, actual: np.ndarray) -> float:
    """Share of ``expected``'s labelled pixels (not 255) that ``actual`` gives the same value."""
    labelled = expected != NOT_LABELLED
    n = int(labelled.sum())
    if n == 0:
        return 1.0
    return float((expected[labelled] == actual[labelled]).sum()) / n


# ----- void classes (one rule for labelme, CVAT and YOLO) -------------------------------
# names that are void wherever a polygon format names them: CamVid's "Unlabelled" /
# "Void", Cityscapes' "unlabeled" (the names class_files.parse_colour_names takes as void)
VOID_NAMES = frozenset({"void", "unlabelled", "unlabeled"})


def is_void_name(name: str) -> bool:
    """True for a class name that means void (:data:`VOID_NAMES`, case ignored)."""
    return name_key(name) in VOID_NAMES


def mark_void_names(classes: list[DatasetClass]) -> list[DatasetClass]:
    """``classes`` with those named like a void class marked void (a reader's found classes:
    the polygon formats have no void flag, so the name is all that says it)."""
    return [DatasetClass(c.name, c.value, c.color, True) if not c.void and is_void_name(c.name) else c
            for c in classes]


def trainable(classes: Iterable[ExportClass]) -> list[ExportClass]:
    """The classes a polygon format writes: the trainable ones, in value order.

    The polygon formats cannot mark a class void, and a class written under its name is
    read back as a trainable one; so void classes are in no class list they write.
    """
    return sorted((c for c in classes if not c.void), key=lambda c: c.value)


def without_void(mask: np.ndarray, classes: Iterable[ExportClass]) -> np.ndarray:
    """``mask`` (uint8) with the void classes' pixels not labelled, as a polygon format
    writes them (what VOC, COCO and Cityscapes do too)."""
    lut = np.arange(256, dtype=np.uint8)
    for c in classes:
        if c.void:
            lut[c.value] = NOT_LABELLED
    return lut[np.asarray(mask, dtype=np.uint8)]


def named_values(mask: np.ndarray, named: Iterable[int], item_name: str,
                 problems: list[Problem]) -> tuple[list[int], list[int]]:
    """The values in ``mask`` (not-labelled aside) and those of them in ``named``.

    A polygon writer writes only the named values; the others are reported once for the
    image in ``problems`` (shared by the CVAT, labelme and YOLO writers).
    """
    named = set(named)
    present = [int(v) for v in np.unique(mask) if v != NOT_LABELLED]
    stray = [v for v in present if v not in named]
    if stray:
        problems.append(Problem(item_name, f"values no class names, not written: "
                                           f"{', '.join(map(str, stray))}"))
    return present, [v for v in present if v in named]

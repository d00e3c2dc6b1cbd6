"""Pixel geometry for label editing: boxes, brush capsules, polygons and regions.

Coordinates follow numpy: a point is (y, x) in pixel units with the centre of pixel
(r, c) at (r, c). Boxes are ``(y0, x0, y1, x1)``, half-open, clipped to the image.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

BBox = tuple[int, int, int, int]
"""(y0, x0, y1, x1), half-open: rows y0..y1-1 and columns x0..x1-1."""

# The smallest brush still paints the pixel under the cursor and leaves no gaps along
# a drag: every pixel whose centre lies within half a pixel of the path is covered.
MIN_RADIUS = 0.5
_EPS = 1e-6


def clip_box(y0: int, x0: int, y1: int, x1: int, shape: tuple[int, ...]) -> BBox | None:
    """The box clipped to an image of ``shape``; None when nothing is left."""
    h, w = shape[:2]
    y0, x0, y1, x1 = max(0, y0), max(0, x0), min(h, y1), min(w, x1)
    if y0 >= y1 or x0 >= x1:
        return None
    return (y0, x0, y1, x1)


def union_box(a: BBox | None, b: BBox | None) -> BBox | None:
    """The smallest box holding both (None counts as empty)."""
    if a is None:
        return b
    if b is None:
        return a
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def tight_box(sel: np.ndarray, origin: tuple[int, int] = (0, 0)) -> BBox | None:
    """Box of the True pixels of ``sel`` (a sub-array placed at ``origin``), or None."""
    rows = np.flatnonzero(sel.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(sel.any(axis=0))
    oy, ox = origin
    return (oy + int(rows[0]), ox + int(cols[0]), oy + int(rows[-1]) + 1, ox + int(cols[-1]) + 1)


def box_slices(box: BBox) -> tuple[slice, slice]:
    """Index the box region of an array: ``arr[box_slices(box)]``."""
    return slice(box[0], box[2]), slice(box[1], box[3])


def capsule_box(p0: tuple[float, float], p1: tuple[float, float], radius: float,
                shape: tuple[int, ...]) -> BBox | None:
    """Clipped box of every pixel centre within ``radius`` of the segment p0-p1."""
    r = max(float(radius), MIN_RADIUS)
    y0 = math.ceil(min(p0[0], p1[0]) - r - _EPS)
    x0 = math.ceil(min(p0[1], p1[1]) - r - _EPS)
    y1 = math.floor(max(p0[0], p1[0]) + r + _EPS) + 1
    x1 = math.floor(max(p0[1], p1[1]) + r + _EPS) + 1
    return clip_box(y0, x0, y1, x1, shape)


def capsule_mask(p0: tuple[float, float], p1: tuple[float, float], radius: float, box: BBox) -> np.ndarray:
    """Bool array over ``box``: pixel centres within ``radius`` of the segment p0-p1.

    A single dab is the degenerate segment p0 == p1 (a disk). Round caps at both ends
    make successive segments of a drag join without gaps.
    """
    r = max(float(radius), MIN_RADIUS)
    ys = np.arange(box[0], box[2], dtype=np.float32)[:, None] - np.float32(p0[0])
    xs = np.arange(box[1], box[3], dtype=np.float32)[None, :] - np.float32(p0[1])
    dy, dx = np.float32(p1[0] - p0[0]), np.float32(p1[1] - p0[1])
    length2 = float(dy * dy + dx * dx)
    if length2 > 0:
        t = np.clip((ys * dy + xs * dx) / np.float32(length2), 0, 1)
        ys = ys - t * dy
        xs = xs - t * dx
    return ys * ys + xs * xs <= np.float32(r * r + _EPS)


def polygon_mask(points: Sequence[tuple[float, float]], shape: tuple[int, ...]) -> tuple[BBox, np.ndarray] | None:
    """(box, bool array over box) of a filled polygon given as (x, y) points, or None.

    Points use pixel-centre coordinates; sub-pixel precision is kept through OpenCV's
    fixed-point ``shift`` argument.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) < 3 or not np.isfinite(pts).all():
        return None
    box = clip_box(math.floor(pts[:, 1].min()), math.floor(pts[:, 0].min()),
                   math.ceil(pts[:, 1].max()) + 1, math.ceil(pts[:, 0].max()) + 1, shape)
    if box is None:
        return None
    shift = 4
    local = np.round((pts - (box[1], box[0])) * (1 << shift)).astype(np.int32)
    stamp = np.zeros((box[2] - box[0], box[3] - box[1]), np.uint8)
    cv2.fillPoly(stamp, [local], 1, lineType=cv2.LINE_8, shift=shift)
    return box, stamp.view(bool)


def region_at(arr: np.ndarray, y: int, x: int) -> tuple[BBox, np.ndarray]:
    """(box, bool array over box) of the 4-connected region of equal value holding (y, x)."""
    h, w = arr.shape
    buf = np.zeros((h + 2, w + 2), np.uint8)
    src = np.ascontiguousarray(arr, dtype=np.uint8)
    flags = 4 | cv2.FLOODFILL_MASK_ONLY | (1 << 8)
    _, _, _, (rx, ry, rw, rh) = cv2.floodFill(src, buf, (int(x), int(y)), 0, 0, 0, flags)
    box = (ry, rx, ry + rh, rx + rw)
    # floodFill marks the buffer's 1-pixel border too; the region lives inside it.
    sel = buf[ry + 1:ry + rh + 1, rx + 1:rx + rw + 1] == 1
    return box, sel

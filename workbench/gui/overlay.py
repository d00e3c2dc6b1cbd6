"""Overlay buffers for the canvas: numpy arrays with a persistent QImage view over each.

Everything is stored as ``Format_ARGB32_Premultiplied`` (one uint32 per pixel), the
format Qt's raster engine blends and scales without converting: a partial repaint then
costs only the exposed pixels. Colours go through 256-entry uint32 lookup tables that
are premultiplied once, so recolouring a box is a single ``lut[values[box]]`` gather.
"""

from __future__ import annotations

import cv2
import numpy as np
from PySide6.QtGui import QImage

from workbench.editing.geometry import BBox

ARGB32 = QImage.Format.Format_ARGB32_Premultiplied


def premultiplied_lut(lut_rgba: np.ndarray) -> np.ndarray:
    """(256,) uint32 ARGB32-premultiplied table from an (N, 4) uint8 RGBA table."""
    rgba = np.zeros((256, 4), np.float64)
    rgba[: len(lut_rgba)] = np.asarray(lut_rgba, np.float64)[:256]
    a = rgba[:, 3] / 255.0
    r, g, b = (np.round(rgba[:, i] * a).astype(np.uint32) for i in range(3))
    return (rgba[:, 3].astype(np.uint32) << 24) | (r << 16) | (g << 8) | b


def heat_lut() -> np.ndarray:
    """(256,) uint32 premultiplied heat map: transparent at 0, dark purple, red, yellow at 1."""
    stops = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
    colours = np.array([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], float)
    t = np.linspace(0.0, 1.0, 256)
    rgba = np.zeros((256, 4))
    for c in range(3):
        rgba[:, c] = np.interp(t, stops, colours[:, c])
    # Low uncertainty fades out so the photograph stays readable where the model is sure.
    rgba[:, 3] = np.clip(t * 2.0, 0.0, 1.0) * 255.0
    return premultiplied_lut(np.round(rgba).astype(np.uint8))


def normalise_uncertainty(values: np.ndarray) -> np.ndarray:
    """(H, W) uint8 0..255 from probabilities in [0, 1], uint8, or unnormalised entropy."""
    arr = np.asarray(values)
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    arr = np.nan_to_num(arr.astype(np.float32, copy=False), nan=0.0, posinf=0.0, neginf=0.0)
    top = float(arr.max()) if arr.size else 0.0
    if top > 1.0:  # entropy in nats: scale by the image's maximum
        arr = arr / top
    return np.round(np.clip(arr, 0.0, 1.0) * 255.0).astype(np.uint8)


class LayerBuffer:
    """An (H, W) uint32 ARGB32-premultiplied array and a QImage sharing its memory."""

    def __init__(self, height: int, width: int) -> None:
        self.array = np.zeros((height, width), np.uint32)
        # The QImage points into self.array; both live and die together on this object.
        self.qimage = QImage(self.array.data, width, height, width * 4, ARGB32)

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width)."""
        return self.array.shape  # type: ignore[return-value]


def rgb_to_argb32(rgb: np.ndarray) -> np.ndarray:
    """(H, W) uint32 opaque ARGB32 pixels from an (H, W, 3) uint8 RGB image."""
    # Little-endian ARGB32 stores B, G, R, A in memory: OpenCV's BGRA, alpha 255.
    out = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGRA)
    return out.view(np.uint32)[..., 0]


def grow_box(box: BBox, by: int, shape: tuple[int, int]) -> BBox:
    """The box grown by ``by`` pixels on every side, clipped to ``shape``."""
    return (max(0, box[0] - by), max(0, box[1] - by), min(shape[0], box[2] + by), min(shape[1], box[3] + by))


def colour_labels(out: np.ndarray, labels: np.ndarray, lut: np.ndarray, box: BBox, *, outline: bool) -> BBox:
    """Recolour ``out[box]`` from ``labels``; returns the box actually written.

    In outline mode only class boundaries are drawn (pixels with a 4-neighbour of a
    different value); an edit can change the boundary status of the pixels just
    outside it, so the box grows by one and neighbours are read one further out.
    """
    shape = labels.shape
    if not outline:
        y0, x0, y1, x1 = box
        out[y0:y1, x0:x1] = lut[labels[y0:y1, x0:x1]]
        return box
    wb = grow_box(box, 1, shape)     # written
    rb = grow_box(wb, 1, shape)      # read (neighbours of the written pixels)
    lab = labels[rb[0]:rb[2], rb[1]:rb[3]]
    edge = np.zeros(lab.shape, bool)
    dv = lab[1:, :] != lab[:-1, :]
    edge[1:, :] |= dv
    edge[:-1, :] |= dv
    dh = lab[:, 1:] != lab[:, :-1]
    edge[:, 1:] |= dh
    edge[:, :-1] |= dh
    oy, ox = wb[0] - rb[0], wb[1] - rb[1]
    h, w = wb[2] - wb[0], wb[3] - wb[1]
    colours = lut[lab[oy:oy + h, ox:ox + w]]
    colours[~edge[oy:oy + h, ox:ox + w]] = 0
    out[wb[0]:wb[2], wb[1]:wb[3]] = colours
    return wb


# ----- telling labels, prediction and reference apart (issue 12.8) --------------------------
HATCH_PERIOD = 8     # screen pixels between two stripes of the prediction's hatching
HATCH_WIDTH = 3      # stripe width: thick enough to carry the class colour, thin enough to see through
ERROR_RGBA = (255, 0, 170, 255)   # magenta: no class palette uses it for a frequent class


def hatch_tile(period: int = HATCH_PERIOD, width: int = HATCH_WIDTH) -> QImage:
    """A ``period`` x ``period`` tile of opaque diagonal stripes on transparent (a texture brush).

    The canvas keeps the prediction's colours only where this tile is opaque, in screen
    pixels, so the hatching stays readable at any zoom (image-space stripes would blur away
    when zoomed out, like one-pixel outlines do).
    """
    y, x = np.mgrid[0:period, 0:period]
    alpha = ((x + y) % period < width).astype(np.uint32) * 0xFF000000
    tile = QImage(period, period, ARGB32)
    tile.fill(0)
    for yy in range(period):
        for xx in range(period):
            tile.setPixel(xx, yy, int(alpha[yy, xx]))
    return tile


def error_mask(prediction: np.ndarray, reference: np.ndarray, ignore: tuple[int, ...]) -> np.ndarray:
    """(H, W) bool: pixels where the model's ``prediction`` disagrees with the ``reference``.

    Pixels the reference leaves unlabelled (255) or marks void (``ignore``) are never errors:
    the metrics ignore them too.
    """
    pred = np.asarray(prediction)
    ref = np.asarray(reference)
    if pred.shape != ref.shape:
        raise ValueError(f"prediction {pred.shape} and reference {ref.shape} differ in size")
    valid = ~np.isin(ref, np.asarray(ignore, ref.dtype)) if ignore else np.ones(ref.shape, bool)
    return valid & (pred != ref)


def error_lut() -> np.ndarray:
    """(256,) uint32 premultiplied table for an error mask: 0 transparent, 1 magenta."""
    rgba = np.zeros((2, 4), np.uint8)
    rgba[1] = ERROR_RGBA
    return premultiplied_lut(rgba)

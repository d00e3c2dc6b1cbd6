"""Edit operations on one label mask, each recorded as one undo step.

After napari's Labels layer: a brush drag joins successive cursor positions with a
round-capped thick segment, touches only the bounding box of each segment, and the
whole drag becomes one undo atom holding only the changed pixels. Every operation
returns the bounding box a view has to repaint, or None when no pixel changed.
"""

from __future__ import annotations

import math

import numpy as np

from workbench.classes import UNLABELLED
from workbench.editing.geometry import (
    BBox,
    MIN_RADIUS,
    box_slices,
    capsule_box,
    capsule_mask,
    polygon_mask,
    region_at,
    tight_box,
    union_box,
)
from workbench.editing.history import EditAtom, UndoHistory, atom_from_indices, atom_from_selection
from workbench.errors import InputError


def _check_mask(mask: np.ndarray, what: str = "label mask") -> np.ndarray:
    if not isinstance(mask, np.ndarray) or mask.ndim != 2:
        raise InputError(f"{what} must be a 2-D array, got {getattr(mask, 'shape', type(mask).__name__)}")
    if mask.dtype != np.uint8:
        raise InputError(f"{what} must be uint8 class indices, got dtype {mask.dtype}")
    if not mask.flags.c_contiguous or not mask.flags.writeable:
        raise InputError(f"{what} must be a writeable C-contiguous array (it is edited in place)")
    return mask


def _check_value(value: int) -> int:
    if not 0 <= int(value) <= 255:
        raise InputError(f"label value {value} is outside 0-255")
    return int(value)


class LabelEditor:
    """Brush, eraser, fill, polygon and accept-prediction edits on a (H, W) uint8 mask, in place.

    ``mask`` is edited in place (the caller may hold it); ``revision`` counts every
    change, ``dirty`` says whether the mask differs from the last ``mark_saved()``
    state (undoing back to the saved state makes it clean again).
    """

    def __init__(self, mask: np.ndarray, max_history_bytes: int = 256 * 2**20) -> None:
        self.history = UndoHistory(max_history_bytes)
        self.revision = 0
        self._reset(mask)

    def _reset(self, mask: np.ndarray) -> None:
        self.mask = _check_mask(mask)
        self.history.clear()
        self._state = 0       # identifies the mask content reached through committed atoms
        self._next_state = 1
        self._saved_state = 0
        self._stroke_value: int | None = None
        self._stroke_last: tuple[float, float] | None = None
        self._stroke_idx: list[np.ndarray] = []
        self._stroke_old: list[np.ndarray] = []
        self._stroke_box: BBox | None = None

    # ----- state --------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) of the mask."""
        return self.mask.shape  # type: ignore[return-value]

    @property
    def dirty(self) -> bool:
        """True when the mask has edits not yet saved (see ``mark_saved``)."""
        return bool(self._stroke_idx) or self._state != self._saved_state

    @property
    def can_undo(self) -> bool:
        """True when an action (or the drag in progress) can be undone."""
        return self.history.can_undo or bool(self._stroke_idx)

    @property
    def can_redo(self) -> bool:
        """True when an undone action can be redone."""
        return self.history.can_redo and self._stroke_value is None

    @property
    def stroke_active(self) -> bool:
        """True between ``begin_stroke`` and ``end_stroke``."""
        return self._stroke_value is not None

    def mark_saved(self) -> None:
        """Record that the current mask is what is on disk (ends a drag in progress)."""
        self.end_stroke()
        self._saved_state = self._state

    def set_mask(self, mask: np.ndarray, *, dirty: bool = False) -> None:
        """Replace the whole mask (e.g. another image); forgets the undo history."""
        self._reset(mask)
        self.revision += 1
        if dirty:
            self._saved_state = -1

    def value_at(self, y: int, x: int) -> int | None:
        """The label value at pixel (y, x), or None outside the image."""
        h, w = self.shape
        if 0 <= y < h and 0 <= x < w:
            return int(self.mask[y, x])
        return None

    # ----- recording ----------------------------------------------------------------
    def _commit(self, atom: EditAtom) -> BBox:
        atom.state_before = self._state
        atom.state_after = self._next_state
        self._next_state += 1
        self._state = atom.state_after
        self.history.push(atom)
        self.revision += 1
        return atom.bbox

    def _apply_selection(self, box: BBox, sel: np.ndarray, new: np.ndarray | int, kind: str) -> BBox | None:
        """Set ``new`` where ``sel`` (bool over box) is True and the value differs; one atom."""
        sub = self.mask[box_slices(box)]
        if isinstance(new, np.ndarray):
            new = new[box_slices(box)]
            changed = sel & (sub != new)
            new_vals = new[changed]
        else:
            changed = sel & (sub != new)
            new_vals = np.uint8(new)
        if not changed.any():
            return None
        old = sub[changed]
        sub[changed] = new_vals
        # Record and report only the box of the pixels that changed; cropping keeps the
        # row-major order of the selected pixels, so ``old`` still lines up.
        rows = np.flatnonzero(changed.any(axis=1))
        cols = np.flatnonzero(changed.any(axis=0))
        r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        tight = (box[0] + r0, box[1] + c0, box[0] + r1, box[1] + c1)
        atom = atom_from_selection(tight, changed[r0:r1, c0:c1], old, new_vals, self.shape, kind)
        return self._commit(atom)

    # ----- brush --------------------------------------------------------------------
    def begin_stroke(self, value: int) -> None:
        """Start a drag that paints ``value`` (255 erases); ends any drag in progress."""
        self.end_stroke()
        self._stroke_value = _check_value(value)
        self._stroke_last = None

    def stroke_to(self, y: float, x: float, radius: float) -> BBox | None:
        """Paint from the previous cursor position to (y, x); returns the changed box or None.

        The first call of a drag paints one round dab. Later calls paint the capsule of
        pixel centres within ``radius`` of the segment from the previous position, so a
        fast drag leaves no gaps. Long segments are cut into pieces so that each piece's
        bounding box stays close to the line (work grows with length x radius, not with
        the area of the segment's box).
        """
        if self._stroke_value is None:
            raise RuntimeError("stroke_to() called outside begin_stroke()/end_stroke()")
        if not (math.isfinite(y) and math.isfinite(x) and math.isfinite(radius)):
            return None
        p1 = (float(y), float(x))
        p0 = self._stroke_last if self._stroke_last is not None else p1
        self._stroke_last = p1
        r = max(float(radius), MIN_RADIUS)
        length = math.hypot(p1[0] - p0[0], p1[1] - p0[1])
        pieces = max(1, math.ceil(length / max(4.0 * r, 16.0)))
        dirty: BBox | None = None
        value = self._stroke_value
        h, w = self.shape
        for i in range(pieces):
            a = (p0[0] + (p1[0] - p0[0]) * i / pieces, p0[1] + (p1[1] - p0[1]) * i / pieces)
            b = (p0[0] + (p1[0] - p0[0]) * (i + 1) / pieces, p0[1] + (p1[1] - p0[1]) * (i + 1) / pieces)
            box = capsule_box(a, b, r, (h, w))
            if box is None:
                continue
            sub = self.mask[box_slices(box)]
            changed = capsule_mask(a, b, r, box) & (sub != value)
            ly, lx = np.nonzero(changed)
            if ly.size == 0:
                continue
            self._stroke_old.append(sub[ly, lx])
            sub[ly, lx] = value
            self._stroke_idx.append((ly.astype(np.int64) + box[0]) * w + (lx + box[1]))
            piece_box = (box[0] + int(ly.min()), box[1] + int(lx.min()),
                         box[0] + int(ly.max()) + 1, box[1] + int(lx.max()) + 1)
            dirty = union_box(dirty, piece_box)
        if dirty is not None:
            self._stroke_box = union_box(self._stroke_box, dirty)
            self.revision += 1
        return dirty

    def end_stroke(self) -> BBox | None:
        """Finish the drag: record it as one undo step; returns its box, or None if unchanged."""
        if self._stroke_value is None:
            return None
        value = self._stroke_value
        self._stroke_value = None
        self._stroke_last = None
        if not self._stroke_idx:
            return None
        idx = np.concatenate(self._stroke_idx)
        old = np.concatenate(self._stroke_old)
        box = self._stroke_box
        assert box is not None
        self._stroke_idx, self._stroke_old, self._stroke_box = [], [], None
        y0, x0, y1, x1 = box
        area = (y1 - y0) * (x1 - x0)
        if 4 * idx.size > area // 8:
            # A dense drag (big brush): a bit mask over the box is smaller than indices.
            # Each pixel was recorded once (a painted pixel already holds the value), so
            # scattering into box-sized buffers gives the row-major order atoms expect.
            w = self.shape[1]
            ly, lx = idx // w - y0, idx % w - x0
            sel = np.zeros((y1 - y0, x1 - x0), bool)
            sel[ly, lx] = True
            olds = np.zeros((y1 - y0, x1 - x0), np.uint8)
            olds[ly, lx] = old
            atom = atom_from_selection(box, sel, olds[sel], value, self.shape, "brush")
        else:
            atom = atom_from_indices(box, idx, old, value, self.shape, "brush")
        return self._commit(atom)

    # ----- region operations --------------------------------------------------------
    def fill(self, y: int, x: int, value: int) -> BBox | None:
        """Flood-fill the 4-connected region of equal value under (y, x) with ``value``."""
        self.end_stroke()
        value = _check_value(value)
        h, w = self.shape
        if not (0 <= y < h and 0 <= x < w) or int(self.mask[y, x]) == value:
            return None
        box, sel = region_at(self.mask, int(y), int(x))
        return self._apply_selection(box, sel, int(value), "fill")

    def fill_polygon(self, points: list[tuple[float, float]], value: int) -> BBox | None:
        """Fill the polygon with (x, y) vertices (pixel-centre coordinates) with ``value``."""
        self.end_stroke()
        value = _check_value(value)
        found = polygon_mask(points, self.shape)
        if found is None:
            return None
        box, sel = found
        return self._apply_selection(box, sel, int(value), "polygon")

    def accept_prediction(self, pred: np.ndarray, *, at: tuple[int, int] | None = None) -> BBox | None:
        """Copy the prediction into the labels: everywhere, or the connected region under ``at``.

        With ``at=(y, x)`` only the 4-connected region of the prediction's class under
        that pixel is copied (one object or stretch of road at a time).
        """
        self.end_stroke()
        pred = self._check_prediction(pred)
        if at is None:
            h, w = self.shape
            box: BBox = (0, 0, h, w)
            sel = np.ones(self.shape, bool)
            return self._apply_selection(box, sel, pred, "accept")
        y, x = int(at[0]), int(at[1])
        if not (0 <= y < self.shape[0] and 0 <= x < self.shape[1]):
            return None
        box, sel = region_at(pred, y, x)
        return self._apply_selection(box, sel, int(pred[y, x]), "accept")

    def _check_selection(self, sel: np.ndarray) -> np.ndarray:
        sel = np.asarray(sel)
        if sel.shape != self.shape:
            raise InputError(f"selection has shape {sel.shape} but the labels are "
                             f"{self.shape[1]}x{self.shape[0]} pixels")
        return sel.astype(bool, copy=False)

    def paint_selection(self, sel: np.ndarray, value: int | np.ndarray, *, kind: str = "paint",
                        only_unlabelled: bool = False) -> BBox | None:
        """Set the True pixels of ``sel`` ((H, W) bool) to ``value``, as one undo step.

        ``value`` is a class value (255 erases) or an (H, W) uint8 array of per-pixel
        values. ``only_unlabelled`` leaves pixels that already hold a label alone.
        ``kind`` names the step ("wand", "smart-region", "superpixel", ...). Returns the
        changed box, or None when no pixel changed (then no step is recorded).
        """
        self.end_stroke()
        sel = self._check_selection(sel)
        if isinstance(value, np.ndarray):
            if value.shape != self.shape:
                raise InputError(f"value array is {value.shape} but the labels are {self.shape}")
            new: np.ndarray | int = value.astype(np.uint8, copy=False)
        else:
            new = _check_value(value)
        box = tight_box(sel)
        if box is None:
            return None
        sub_sel = sel[box_slices(box)]
        if only_unlabelled:
            sub_sel = sub_sel & (self.mask[box_slices(box)] == UNLABELLED)
        return self._apply_selection(box, sub_sel, new, kind)

    def accept_where(self, pred: np.ndarray, sel: np.ndarray, *, only_unlabelled: bool = True) -> BBox | None:
        """Copy the prediction into the labels where ``sel`` is True, as one undo step.

        By default only pixels that are not labelled are filled: a person's label is not
        replaced by the model without being asked (Accept confident uses this).
        """
        pred = self._check_prediction(pred)
        return self.paint_selection(sel, pred, kind="accept", only_unlabelled=only_unlabelled)

    def _check_prediction(self, pred: np.ndarray) -> np.ndarray:
        pred = np.asarray(pred)
        if pred.shape != self.shape:
            ph, pw = pred.shape[:2] if pred.ndim >= 2 else (0, 0)
            raise InputError(f"prediction is {pw}x{ph} pixels but the labels are {self.shape[1]}x{self.shape[0]}")
        if pred.dtype != np.uint8:
            if pred.size and (pred.min() < 0 or pred.max() > 255):
                raise InputError("prediction holds values outside 0-255")
            pred = pred.astype(np.uint8)
        return pred

    def clear(self) -> BBox | None:
        """Set every pixel to 255, "not labelled"; one undo step."""
        self.end_stroke()
        h, w = self.shape
        return self._apply_selection((0, 0, h, w), np.ones(self.shape, bool), UNLABELLED, "clear")

    # ----- undo ---------------------------------------------------------------------
    def undo(self) -> BBox | None:
        """Undo the newest action (a drag in progress is ended first); returns its box."""
        self.end_stroke()
        atom = self.history.undo(self.mask)
        if atom is None:
            return None
        self._state = atom.state_before
        self.revision += 1
        return atom.bbox

    def redo(self) -> BBox | None:
        """Redo the newest undone action; returns its box."""
        self.end_stroke()
        atom = self.history.redo(self.mask)
        if atom is None:
            return None
        self._state = atom.state_after
        self.revision += 1
        return atom.bbox

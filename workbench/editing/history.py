"""Undo history of a label mask: compact atoms, bounded memory.

One atom is one user action (a whole brush drag, a fill, a polygon, accepting a
prediction). It holds only the bounding box, where the changed pixels are, and their
old and new values - never a copy of the mask. Where the changed pixels are is stored
as flat indices when few pixels changed, or as a bit-packed mask over the box when many
did (one bit per box pixel), whichever is smaller.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from workbench.editing.geometry import BBox


def _index_dtype(size: int) -> type[np.integer]:
    return np.int32 if size < 2**31 else np.int64


@dataclass(eq=False)
class EditAtom:
    """The changed pixels of one action, enough to undo and redo it exactly."""

    bbox: BBox
    where: np.ndarray  # flat indices into the whole mask, or packed bits over bbox
    packed: bool       # True: ``where`` is np.packbits of a bool array over bbox (row-major)
    old: np.ndarray    # uint8 values before, in the order of ``where``, or one value for all
    new: np.ndarray    # uint8 values after, likewise (a stroke or fill writes one value)
    kind: str = ""     # "brush", "fill", "polygon", "accept", "clear" (for menus and logs)
    state_before: int = 0
    state_after: int = 0

    @property
    def count(self) -> int:
        """Number of changed pixels."""
        if self.packed:
            return int(np.unpackbits(self.where).sum())
        return int(self.where.size)

    @property
    def nbytes(self) -> int:
        """Memory held by the atom's arrays."""
        return int(self.where.nbytes + self.old.nbytes + self.new.nbytes)

    def apply(self, mask: np.ndarray, *, forward: bool) -> None:
        """Write the new (``forward``) or old values into ``mask`` (C-contiguous, in place)."""
        values = self.new if forward else self.old
        if values.size == 1:
            values = values[0]
        if self.packed:
            y0, x0, y1, x1 = self.bbox
            h, w = y1 - y0, x1 - x0
            sel = np.unpackbits(self.where, count=h * w).view(bool).reshape(h, w)
            mask[y0:y1, x0:x1][sel] = values
        else:
            mask.reshape(-1)[self.where] = values


def _compact(values: np.ndarray | int) -> np.ndarray:
    """uint8 values, or a single value when they are all equal (a fill's old region)."""
    arr = np.atleast_1d(np.asarray(values, np.uint8))
    if arr.size > 1 and (arr == arr[0]).all():
        return arr[:1].copy()
    return arr


def atom_from_indices(bbox: BBox, flat_index: np.ndarray, old: np.ndarray, new: np.ndarray | int,
                      shape: tuple[int, int], kind: str = "") -> EditAtom:
    """An atom from flat indices into a mask of ``shape`` (any order) and their values."""
    idx = np.asarray(flat_index).astype(_index_dtype(shape[0] * shape[1]), copy=False)
    return EditAtom(bbox, idx, False, _compact(old), _compact(new), kind)


def atom_from_selection(bbox: BBox, sel: np.ndarray, old: np.ndarray, new: np.ndarray | int,
                        shape: tuple[int, int], kind: str = "") -> EditAtom:
    """An atom from a bool array over ``bbox`` and the values at its True pixels (row-major).

    Chooses the smaller encoding: 4-byte flat indices cost ``4 * n`` bytes, packed bits
    ``area / 8``, so the bit mask wins once more than 1 in 32 box pixels changed.
    """
    old = np.asarray(old, np.uint8)
    area = sel.size
    if 4 * old.size > area // 8:
        return EditAtom(bbox, np.packbits(sel.reshape(-1)), True, _compact(old), _compact(new), kind)
    ly, lx = np.nonzero(sel)
    idx = (ly.astype(np.int64) + bbox[0]) * shape[1] + (lx + bbox[1])
    return atom_from_indices(bbox, idx, old, new, shape, kind)


class UndoHistory:
    """Undo and redo stacks of ``EditAtom``s whose total size stays under ``max_bytes``.

    When a new atom would exceed the budget the oldest atoms are dropped (redo atoms
    first, since pushing clears them anyway). An atom larger than the whole budget is
    not kept and the history is cleared: undoing older actions across an unrecorded
    one would mix states.
    """

    def __init__(self, max_bytes: int = 256 * 2**20) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must be >= 0")
        self.max_bytes = int(max_bytes)
        self._undo: deque[EditAtom] = deque()
        self._redo: list[EditAtom] = []
        self._bytes = 0
        self.dropped = 0  # atoms forgotten to respect the budget, since creation

    @property
    def nbytes(self) -> int:
        """Memory held by all atoms (undo and redo)."""
        return self._bytes

    @property
    def can_undo(self) -> bool:
        """True when there is an action to undo."""
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        """True when there is an undone action to redo."""
        return bool(self._redo)

    def __len__(self) -> int:
        return len(self._undo)

    def push(self, atom: EditAtom) -> bool:
        """Record a new action (already applied); clears redo. False if too big to keep."""
        for a in self._redo:
            self._bytes -= a.nbytes
        self._redo.clear()
        if atom.nbytes > self.max_bytes:
            # Older atoms cannot be undone across an action that was not recorded.
            self.dropped += len(self._undo) + 1
            self.clear()
            return False
        while self._undo and self._bytes + atom.nbytes > self.max_bytes:
            self._bytes -= self._undo.popleft().nbytes
            self.dropped += 1
        self._undo.append(atom)
        self._bytes += atom.nbytes
        return True

    def undo(self, mask: np.ndarray) -> EditAtom | None:
        """Restore the old values of the newest action; returns it, or None."""
        if not self._undo:
            return None
        atom = self._undo.pop()
        atom.apply(mask, forward=False)
        self._redo.append(atom)
        return atom

    def redo(self, mask: np.ndarray) -> EditAtom | None:
        """Re-apply the newest undone action; returns it, or None."""
        if not self._redo:
            return None
        atom = self._redo.pop()
        atom.apply(mask, forward=True)
        self._undo.append(atom)
        return atom

    def clear(self) -> None:
        """Forget every action."""
        self._undo.clear()
        self._redo.clear()
        self._bytes = 0

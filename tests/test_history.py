"""UndoHistory and EditAtom: exact restore, compact encodings, bounded memory."""

import numpy as np
import pytest

from workbench.editing.history import UndoHistory, atom_from_indices, atom_from_selection


def _apply_change(mask, box, sel, value, kind=""):
    y0, x0, y1, x1 = box
    sub = mask[y0:y1, x0:x1]
    old = sub[sel]
    sub[sel] = value
    return atom_from_selection(box, sel, old, value, mask.shape, kind)


def test_sparse_selection_uses_indices_and_dense_uses_bits():
    mask = np.zeros((64, 64), np.uint8)
    sparse = np.zeros((64, 64), bool)
    sparse[3, 5] = sparse[40, 60] = True
    a = _apply_change(mask, (0, 0, 64, 64), sparse, 7)
    assert not a.packed and a.where.dtype == np.int32 and a.count == 2
    dense = np.ones((32, 32), bool)
    b = _apply_change(mask, (10, 10, 42, 42), dense, 3)
    assert b.packed and b.where.nbytes == 32 * 32 // 8
    assert b.nbytes < 32 * 32 * 2  # far less than a copy of old + new values


def test_undo_redo_restore_exactly():
    rng = np.random.default_rng(0)
    mask = rng.integers(0, 5, (50, 70), dtype=np.uint8)
    hist = UndoHistory()
    snapshots = [mask.copy()]
    for i in range(6):
        y0, x0 = rng.integers(0, 40), rng.integers(0, 60)
        box = (int(y0), int(x0), int(y0) + 10, int(x0) + 10)
        sel = rng.random((10, 10)) < (0.02 if i % 2 else 0.8)
        sel &= mask[box[0]:box[2], box[1]:box[3]] != 9
        hist.push(_apply_change(mask, box, sel, 9))
        snapshots.append(mask.copy())
    for snap in reversed(snapshots[:-1]):
        assert hist.undo(mask) is not None
        np.testing.assert_array_equal(mask, snap)
    assert hist.undo(mask) is None and not hist.can_undo
    for snap in snapshots[1:]:
        assert hist.redo(mask) is not None
        np.testing.assert_array_equal(mask, snap)
    assert not hist.can_redo


def test_push_clears_redo_and_frees_its_memory():
    mask = np.zeros((20, 20), np.uint8)
    hist = UndoHistory()
    sel = np.ones((5, 5), bool)
    hist.push(_apply_change(mask, (0, 0, 5, 5), sel, 1))
    hist.push(_apply_change(mask, (5, 5, 10, 10), sel, 2))
    hist.undo(mask)
    assert hist.can_redo
    before = hist.nbytes
    hist.push(_apply_change(mask, (10, 10, 15, 15), sel, 3))
    assert not hist.can_redo and len(hist) == 2
    assert hist.nbytes == before  # the redo atom's bytes were released, a same-size atom added


def test_memory_bound_drops_oldest():
    mask = np.zeros((100, 100), np.uint8)
    idx = np.arange(100)
    one = atom_from_indices((0, 0, 1, 100), idx, mask.reshape(-1)[idx], 1, mask.shape)
    size = one.nbytes
    hist = UndoHistory(max_bytes=3 * size)
    for row in range(10):
        idx = np.arange(row * 100, row * 100 + 100)
        old = mask.reshape(-1)[idx].copy()
        mask.reshape(-1)[idx] = 1
        hist.push(atom_from_indices((row, 0, row + 1, 100), idx, old, 1, mask.shape))
        assert hist.nbytes <= 3 * size
    assert len(hist) == 3 and hist.dropped == 7
    while hist.undo(mask) is not None:
        pass
    assert (mask[7:] == 0).all() and (mask[:7] == 1).all()  # only the last 3 rows undone


def test_atom_larger_than_budget_clears_history():
    mask = np.zeros((40, 40), np.uint8)
    hist = UndoHistory(max_bytes=64)
    small = np.zeros((4, 4), bool)
    small[0, 0] = True
    assert hist.push(_apply_change(mask, (0, 0, 4, 4), small, 1))
    big = np.ones((40, 40), bool)
    assert not hist.push(_apply_change(mask, (0, 0, 40, 40), big, 2))
    assert not hist.can_undo and hist.nbytes == 0


def test_negative_budget_rejected():
    with pytest.raises(ValueError):
        UndoHistory(-1)


def test_uniform_old_values_are_stored_once():
    mask = np.full((100, 100), 4, np.uint8)
    sel = np.zeros((100, 100), bool)
    sel[:, :60] = True
    atom = _apply_change(mask, (0, 0, 100, 100), sel, 1)
    assert atom.old.size == 1 and atom.new.size == 1 and atom.count == 6000
    assert atom.nbytes <= 100 * 100 // 8 + 2
    hist = UndoHistory()
    hist.push(atom)
    hist.undo(mask)
    assert (mask == 4).all()
    hist.redo(mask)
    assert (mask[:, :60] == 1).all() and (mask[:, 60:] == 4).all()

"""LabelEditor: brush strokes, fill, polygon, accept prediction, undo/redo, dirty state."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.editing import LabelEditor
from workbench.errors import InputError


def _changed_box(before, after):
    ys, xs = np.nonzero(before != after)
    if ys.size == 0:
        return None
    return (int(ys.min()), int(xs.min()), int(ys.max()) + 1, int(xs.max()) + 1)


def _capsule_truth(shape, p0, p1, r):
    """Independent float64 check: pixel centres within r of segment p0-p1."""
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float64)
    d = np.array(p1, float) - np.array(p0, float)
    L2 = d @ d
    t = np.zeros_like(yy) if L2 == 0 else np.clip(((yy - p0[0]) * d[0] + (xx - p0[1]) * d[1]) / L2, 0, 1)
    return (yy - p0[0] - t * d[0]) ** 2 + (xx - p0[1] - t * d[1]) ** 2 <= max(r, 0.5) ** 2 + 1e-9


def test_single_dab_is_a_disk_and_bbox_is_exact():
    mask = np.full((40, 50), 255, np.uint8)
    ed = LabelEditor(mask)
    ed.begin_stroke(2)
    box = ed.stroke_to(20, 25, 5)
    ed.end_stroke()
    expected = _capsule_truth(mask.shape, (20, 25), (20, 25), 5)
    np.testing.assert_array_equal(mask == 2, expected)
    assert box == (15, 20, 26, 31)
    assert ed.mask is mask  # edited in place


def test_fast_drag_leaves_no_gaps():
    mask = np.full((120, 160), 255, np.uint8)
    ed = LabelEditor(mask)
    path = [(5, 5), (110, 150), (10, 140), (60, 3), (60, 158)]  # long jumps in one event each
    ed.begin_stroke(1)
    for y, x in path:
        ed.stroke_to(y, x, 2)
    ed.end_stroke()
    truth = np.zeros(mask.shape, bool)
    for a, b in zip(path, path[1:]):
        truth |= _capsule_truth(mask.shape, a, b, 2)
    np.testing.assert_array_equal(mask == 1, truth)


def test_thin_brush_diagonal_drag_is_connected():
    mask = np.full((50, 50), 255, np.uint8)
    ed = LabelEditor(mask)
    ed.begin_stroke(0)
    ed.stroke_to(0, 0, 0)
    ed.stroke_to(47, 13, 0)
    ed.end_stroke()
    painted = mask == 0
    # every row between the ends holds a painted pixel next to one in the previous row
    for y in range(1, 48):
        prev, cur = np.flatnonzero(painted[y - 1]), np.flatnonzero(painted[y])
        assert cur.size and np.abs(cur[:, None] - prev[None, :]).min() <= 1


def test_each_stroke_call_returns_its_dirty_box():
    mask = np.full((60, 60), 255, np.uint8)
    ed = LabelEditor(mask)
    ed.begin_stroke(3)
    for p in [(10, 10), (12, 30), (40, 35), (40, 36)]:
        before = mask.copy()
        box = ed.stroke_to(*p, 3)
        assert box == _changed_box(before, mask)
    before = mask.copy()
    assert ed.stroke_to(40, 36, 3) is None  # same spot again: nothing new
    np.testing.assert_array_equal(before, mask)
    ed.end_stroke()


def test_stroke_clips_at_the_image_border():
    mask = np.full((20, 20), 255, np.uint8)
    ed = LabelEditor(mask)
    ed.begin_stroke(1)
    assert ed.stroke_to(-30, -30, 3) is None
    box = ed.stroke_to(-2, 10, 4)
    assert box is not None and box[0] == 0 and box[2] <= 3
    ed.end_stroke()
    assert (mask[0, 7:14] == 1).all()


def test_one_drag_is_one_undo_step_and_redo_restores():
    mask = np.full((64, 64), 255, np.uint8)
    ed = LabelEditor(mask)
    ed.begin_stroke(4)
    for x in range(5, 60, 3):
        ed.stroke_to(30, x, 2)
    box = ed.end_stroke()
    painted = mask.copy()
    assert box == _changed_box(np.full_like(mask, 255), painted)
    assert len(ed.history) == 1
    assert ed.undo() == box
    assert (mask == 255).all() and not ed.can_undo
    assert ed.redo() == box
    np.testing.assert_array_equal(mask, painted)


def test_dense_big_brush_stroke_is_stored_as_bits():
    mask = np.zeros((200, 200), np.uint8)
    ed = LabelEditor(mask)
    ed.begin_stroke(1)
    ed.stroke_to(100, 20, 60)
    ed.stroke_to(100, 180, 60)
    ed.end_stroke()
    atom = ed.history._undo[-1]
    assert atom.packed and atom.nbytes < atom.count * 2
    before = mask.copy()
    ed.undo()
    assert (mask == 0).all()
    ed.redo()
    np.testing.assert_array_equal(mask, before)


def test_eraser_paints_unlabelled():
    mask = np.full((30, 30), 2, np.uint8)
    ed = LabelEditor(mask)
    ed.begin_stroke(255)
    ed.stroke_to(15, 5, 2)
    ed.stroke_to(15, 25, 2)
    ed.end_stroke()
    assert (mask[15, 5:26] == 255).all() and mask[0, 0] == 2
    ed.undo()
    assert (mask == 2).all()


def test_fill_is_four_connected():
    mask = np.zeros((10, 10), np.uint8)
    mask[:, 5] = 1                  # a wall
    mask[4, 5] = 0                  # with a 4-connected gap in it
    mask[8, 8] = 1
    ed = LabelEditor(mask)
    box = ed.fill(0, 0, 3)
    assert box == (0, 0, 10, 10)
    assert (mask == 3).sum() == 100 - 9 - 1  # every 0 reaches through the gap
    assert mask[8, 8] == 1 and mask[0, 5] == 1
    # a diagonal-only neighbour is a separate region
    mask2 = np.zeros((5, 5), np.uint8)
    mask2[1, 1] = mask2[2, 2] = 7
    ed2 = LabelEditor(mask2)
    assert ed2.fill(1, 1, 9) == (1, 1, 2, 2)
    assert mask2[2, 2] == 7
    assert ed2.fill(0, 0, 0) is None  # already that value: no edit, no undo step
    assert len(ed2.history) == 1


def test_fill_outside_image_is_ignored():
    ed = LabelEditor(np.zeros((5, 5), np.uint8))
    assert ed.fill(10, 1, 2) is None and ed.fill(-1, 0, 2) is None and not ed.dirty


def test_polygon_fill():
    mask = np.full((40, 40), 255, np.uint8)
    ed = LabelEditor(mask)
    box = ed.fill_polygon([(10.0, 5.0), (30.0, 5.0), (30.0, 20.0), (10.0, 20.0)], 6)
    assert box == (5, 10, 21, 31)
    assert (mask[5:21, 10:31] == 6).all() and (mask == 6).sum() == 16 * 21
    tri = ed.fill_polygon([(0.0, 39.0), (39.0, 39.0), (0.0, 25.0)], 1)
    assert tri is not None and mask[39, 0] == 1 and mask[26, 38] == 255
    assert ed.fill_polygon([(1.0, 1.0), (2.0, 2.0)], 1) is None
    assert ed.fill_polygon([(100.0, 100.0), (120.0, 100.0), (120.0, 130.0)], 1) is None
    ed.undo()
    ed.undo()
    assert (mask == 255).all()


def test_accept_prediction_whole_and_region():
    mask = np.full((20, 20), 255, np.uint8)
    mask[0, 0] = 1
    pred = np.zeros((20, 20), np.uint8)
    pred[5:10, 5:10] = 2
    pred[15:18, 15:18] = 2  # a second blob of the same class, not connected
    ed = LabelEditor(mask)
    box = ed.accept_prediction(pred, at=(7, 7))
    assert box == (5, 5, 10, 10)
    assert (mask[5:10, 5:10] == 2).all() and (mask[15:18, 15:18] == 255).all()
    box = ed.accept_prediction(pred)
    np.testing.assert_array_equal(mask, pred)
    assert box == (0, 0, 20, 20)
    assert ed.accept_prediction(pred) is None
    ed.undo()
    assert mask[0, 0] == 1 and mask[16, 16] == 255 and mask[7, 7] == 2
    ed.undo()
    assert mask[7, 7] == 255


def test_accept_prediction_rejects_wrong_shape():
    ed = LabelEditor(np.zeros((4, 6), np.uint8))
    with pytest.raises(InputError, match="prediction is 4x6 pixels but the labels are 6x4"):
        ed.accept_prediction(np.zeros((6, 4), np.uint8))


def test_clear_and_dirty_state():
    mask = np.full((8, 8), 3, np.uint8)
    ed = LabelEditor(mask)
    assert not ed.dirty
    rev = ed.revision
    assert ed.clear() == (0, 0, 8, 8)
    assert (mask == 255).all() and ed.dirty and ed.revision > rev
    ed.mark_saved()
    assert not ed.dirty
    ed.undo()
    assert ed.dirty and (mask == 3).all()
    ed.redo()
    assert not ed.dirty  # back to the saved content


def test_dirty_during_a_drag_and_undo_ends_it():
    mask = np.zeros((10, 10), np.uint8)
    ed = LabelEditor(mask)
    ed.begin_stroke(1)
    ed.stroke_to(5, 5, 1)
    assert ed.dirty and ed.can_undo and ed.stroke_active
    ed.undo()
    assert (mask == 0).all() and not ed.stroke_active and not ed.dirty


def test_new_edit_clears_redo():
    mask = np.zeros((10, 10), np.uint8)
    ed = LabelEditor(mask)
    ed.fill(0, 0, 1)
    ed.undo()
    assert ed.can_redo
    ed.fill_polygon([(0, 0), (5, 0), (5, 5)], 2)
    assert not ed.can_redo and ed.redo() is None


def test_set_mask_resets_history():
    ed = LabelEditor(np.zeros((10, 10), np.uint8))
    ed.fill(0, 0, 1)
    other = np.full((6, 7), 2, np.uint8)
    ed.set_mask(other)
    assert ed.mask is other and ed.shape == (6, 7)
    assert not ed.can_undo and not ed.dirty and ed.undo() is None
    ed.set_mask(np.zeros((3, 3), np.uint8), dirty=True)
    assert ed.dirty


def test_history_memory_bound_in_editor():
    mask = np.zeros((100, 100), np.uint8)
    ed = LabelEditor(mask, max_history_bytes=4000)
    for i in range(30):
        ed.begin_stroke(i % 2 + 1)
        ed.stroke_to(50, 50, 30)
        ed.end_stroke()
        assert ed.history.nbytes <= 4000
    assert 0 < len(ed.history) < 30


def test_bad_masks_are_rejected():
    with pytest.raises(InputError, match="uint8"):
        LabelEditor(np.zeros((4, 4), np.int32))
    with pytest.raises(InputError, match="2-D"):
        LabelEditor(np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(InputError, match="contiguous"):
        LabelEditor(np.zeros((4, 8), np.uint8)[:, ::2])
    ed = LabelEditor(np.zeros((4, 4), np.uint8))
    with pytest.raises(InputError, match="outside 0-255"):
        ed.begin_stroke(300)
    with pytest.raises(InputError, match="outside 0-255"):
        ed.fill(0, 0, -1)
    with pytest.raises(InputError, match="outside 0-255"):
        ed.fill_polygon([(0, 0), (3, 0), (3, 3)], 256)
    assert (ed.mask == 0).all()


# ----- random sequences of operations against snapshot copies --------------------------
H, W = 24, 32
coord = st.tuples(st.integers(-3, H + 2), st.integers(-3, W + 2))
op = st.one_of(
    st.tuples(st.just("stroke"), st.integers(0, 4), st.lists(coord, min_size=1, max_size=4), st.integers(0, 4)),
    st.tuples(st.just("erase"), st.lists(coord, min_size=1, max_size=3), st.integers(0, 3)),
    st.tuples(st.just("fill"), coord, st.integers(0, 4)),
    st.tuples(st.just("polygon"), st.lists(st.tuples(st.floats(-2, W + 2), st.floats(-2, H + 2)), min_size=3, max_size=5), st.integers(0, 4)),
    st.tuples(st.just("accept"), st.one_of(st.none(), coord)),
    st.tuples(st.just("clear")),
    st.tuples(st.just("undo")),
    st.tuples(st.just("redo")),
)


@settings(max_examples=60, deadline=None)
@given(ops=st.lists(op, max_size=12), seed=st.integers(0, 2**16))
def test_random_operations_match_snapshots(ops, seed):
    rng = np.random.default_rng(seed)
    mask = rng.integers(0, 3, (H, W), dtype=np.uint8)
    pred = np.zeros((H, W), np.uint8)
    pred[4:14, 6:20] = 2
    pred[16:, :10] = 1
    ed = LabelEditor(mask)
    done = [mask.copy()]   # states reachable by undo, newest last
    undone: list[np.ndarray] = []
    for o in ops:
        before = mask.copy()
        if o[0] in ("undo", "redo"):
            box = ed.undo() if o[0] == "undo" else ed.redo()
            if o[0] == "undo" and len(done) > 1:
                undone.append(done.pop())
                np.testing.assert_array_equal(mask, done[-1])
            elif o[0] == "redo" and undone:
                done.append(undone.pop())
                np.testing.assert_array_equal(mask, done[-1])
            else:
                assert box is None
                np.testing.assert_array_equal(mask, before)
            if box is not None:
                changed = _changed_box(before, mask)
                if changed is not None:  # the repaint box covers every changed pixel
                    assert box[0] <= changed[0] and box[1] <= changed[1]
                    assert box[2] >= changed[2] and box[3] >= changed[3]
            continue
        if o[0] == "stroke":
            ed.begin_stroke(o[1])
            for y, x in o[2]:
                ed.stroke_to(y, x, o[3])
            box = ed.end_stroke()
        elif o[0] == "erase":
            ed.begin_stroke(255)
            for y, x in o[1]:
                ed.stroke_to(y, x, o[2])
            box = ed.end_stroke()
        elif o[0] == "fill":
            box = ed.fill(o[1][0], o[1][1], o[2])
        elif o[0] == "polygon":
            box = ed.fill_polygon(o[1], o[2])
        elif o[0] == "accept":
            box = ed.accept_prediction(pred, at=o[1])
        else:
            box = ed.clear()
        assert box == _changed_box(before, mask)
        if box is not None:
            done.append(mask.copy())
            undone.clear()
        assert ed.can_redo == bool(undone)
    # unwinding everything returns the original mask
    while ed.undo() is not None:
        pass
    np.testing.assert_array_equal(mask, done[0])

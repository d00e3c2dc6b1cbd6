"""Canvas: real mouse events paint, fill, draw polygons, pan and zoom; partial repaints."""

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, QRect, Qt
from PySide6.QtGui import QKeyEvent, QMouseEvent, QWheelEvent
from PySide6.QtWidgets import QApplication

from workbench.classes import ClassSchema
from workbench.editing import LabelEditor
from workbench.errors import InputError
from workbench.gui.canvas import Canvas
from workbench.gui.overlay import colour_labels

H, W = 60, 80
ZOOM = 4.0
L = Qt.MouseButton.LeftButton
M = Qt.MouseButton.MiddleButton
NB = Qt.MouseButton.NoButton


def at(x, y):
    """Widget position of the centre of image pixel (x, y) at the test view."""
    return QPointF(ZOOM * x + ZOOM / 2, ZOOM * y + ZOOM / 2)


def mouse(canvas, kind, pos, button=L, buttons=None, mods=Qt.KeyboardModifier.NoModifier):
    if buttons is None:
        buttons = NB if kind == QEvent.Type.MouseButtonRelease else button
    glob = canvas.mapToGlobal(pos)
    QApplication.sendEvent(canvas, QMouseEvent(kind, pos, glob, button, buttons, mods))


def drag(canvas, points, button=L):
    mouse(canvas, QEvent.Type.MouseButtonPress, points[0], button)
    for p in points[1:]:
        mouse(canvas, QEvent.Type.MouseMove, p, NB, button)
    mouse(canvas, QEvent.Type.MouseButtonRelease, points[-1], button)


def click(canvas, pos, button=L):
    mouse(canvas, QEvent.Type.MouseButtonPress, pos, button)
    mouse(canvas, QEvent.Type.MouseButtonRelease, pos, button)


def key(canvas, k, kind=QEvent.Type.KeyPress):
    QApplication.sendEvent(canvas, QKeyEvent(kind, k, Qt.KeyboardModifier.NoModifier))


@pytest.fixture
def setup(qtbot):
    rng = np.random.default_rng(0)
    image = rng.integers(60, 200, (H, W, 3), dtype=np.uint8)
    mask = np.full((H, W), 255, np.uint8)
    editor = LabelEditor(mask)
    canvas = Canvas()
    qtbot.addWidget(canvas)
    canvas.resize(400, 300)
    canvas.set_schema(ClassSchema.default(4))
    canvas.set_image(image)
    canvas.set_editor(editor)
    canvas.set_view(ZOOM, 0, 0)
    canvas.set_brush_radius(1)
    with qtbot.waitExposed(canvas):
        canvas.show()
    return canvas, editor, mask


def rendered(canvas):
    img = canvas.grab().toImage()
    return img


def test_brush_stroke_with_real_mouse_events(setup, qtbot):
    canvas, editor, mask = setup
    canvas.set_current_class(2)
    edits = []
    canvas.labelsEdited.connect(edits.append)
    with qtbot.waitSignal(canvas.strokeFinished, timeout=30000):
        drag(canvas, [at(10, 10), at(25, 10), at(40, 12)])
    assert (mask[10, 10:26] == 2).all() and mask[12, 40] == 2
    assert mask[30, 60] == 255
    assert len(edits) == 1 and edits[0] == (9, 9, 14, 42)
    assert len(editor.history) == 1 and editor.dirty


def test_move_without_button_does_not_paint(setup):
    canvas, editor, mask = setup
    mouse(canvas, QEvent.Type.MouseMove, at(5, 5), NB, NB)
    mouse(canvas, QEvent.Type.MouseMove, at(20, 20), NB, NB)
    assert (mask == 255).all()


def test_undo_redo_repaint_and_signal(setup):
    canvas, editor, mask = setup
    canvas.set_current_class(1)
    drag(canvas, [at(5, 5), at(30, 5)])
    painted = mask.copy()
    edits = []
    canvas.labelsEdited.connect(edits.append)
    assert canvas.undo() is not None and (mask == 255).all()
    assert canvas._labels_layer.array[5, 10] == 0  # overlay recoloured to transparent
    assert canvas.redo() is not None
    np.testing.assert_array_equal(mask, painted)
    assert canvas._labels_layer.array[5, 10] != 0
    assert len(edits) == 2


def test_unlabel(setup):
    canvas, editor, mask = setup
    mask[...] = 3
    canvas.refresh_labels()
    canvas.set_tool("unlabel")
    drag(canvas, [at(10, 20), at(50, 20)])
    assert (mask[20, 10:51] == 255).all() and mask[0, 0] == 3


def test_fill_tool(setup):
    canvas, editor, mask = setup
    mask[:, 40] = 1
    canvas.refresh_labels()
    canvas.set_tool("fill")
    canvas.set_current_class(2)
    edits = []
    canvas.labelsEdited.connect(edits.append)
    click(canvas, at(5, 5))
    assert (mask[:, :40] == 2).all() and (mask[:, 41:] == 255).all()
    assert edits == [(0, 0, H, 40)]


def test_polygon_enter_double_click_and_escape(setup):
    canvas, editor, mask = setup
    canvas.set_tool("polygon")
    canvas.set_current_class(3)
    for p in [(10, 10), (30, 10), (30, 20)]:
        click(canvas, at(*p))
    assert len(canvas.polygon_points) == 3
    key(canvas, Qt.Key.Key_Escape)
    assert canvas.polygon_points == [] and (mask == 255).all()
    for p in [(10, 10), (30, 10), (30, 20), (10, 20)]:
        click(canvas, at(*p))
    key(canvas, Qt.Key.Key_Return)
    assert (mask[10:21, 10:31] == 3).all() and (mask == 3).sum() == 11 * 21
    canvas.set_current_class(1)
    click(canvas, at(50, 40))
    click(canvas, at(70, 40))
    mouse(canvas, QEvent.Type.MouseButtonPress, at(70, 55))
    mouse(canvas, QEvent.Type.MouseButtonRelease, at(70, 55))
    mouse(canvas, QEvent.Type.MouseButtonDblClick, at(70, 55))
    assert mask[45, 68] == 1 and mask[54, 52] == 255 and canvas.polygon_points == []


def test_pick_and_accept_region(setup):
    canvas, editor, mask = setup
    pred = np.zeros((H, W), np.uint8)
    pred[20:30, 20:30] = 3
    canvas.set_prediction(pred)
    mask[0:5, 0:5] = 1
    canvas.refresh_labels()
    canvas.set_tool("pick")
    picked = []
    canvas.classPicked.connect(picked.append)
    click(canvas, at(2, 2))
    click(canvas, at(25, 25))  # unlabelled there: the prediction's class
    assert picked == [1, 3] and canvas.current_class == 3
    canvas.set_tool("accept")
    click(canvas, at(22, 28))
    assert (mask[20:30, 20:30] == 3).all() and (mask[10, 10] == 255)
    info = canvas.pixel_info(22, 28)
    assert info.label == 3 and info.prediction == 3


def test_wheel_zoom_keeps_point_under_cursor(setup):
    canvas, *_ = setup
    pos = QPointF(123.0, 77.0)
    before = canvas.widget_to_image(pos)
    ev = QWheelEvent(pos, canvas.mapToGlobal(pos), QPoint(0, 0), QPoint(0, 240), NB,
                     Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(canvas, ev)
    assert canvas.zoom == pytest.approx(ZOOM * 1.25 ** 2)
    after = canvas.widget_to_image(pos)
    assert after.x() == pytest.approx(before.x()) and after.y() == pytest.approx(before.y())


def test_pan_with_middle_drag_and_space_drag(setup):
    canvas, editor, mask = setup
    drag(canvas, [QPointF(100, 100), QPointF(130, 90)], button=M)
    assert (canvas.offset.x(), canvas.offset.y()) == (30, -10)
    key(canvas, Qt.Key.Key_Space)
    drag(canvas, [QPointF(100, 100), QPointF(90, 120)])
    key(canvas, Qt.Key.Key_Space, QEvent.Type.KeyRelease)
    assert (canvas.offset.x(), canvas.offset.y()) == (20, 10)
    assert (mask == 255).all()  # panning never paints


def test_fit_to_window(setup):
    canvas, *_ = setup
    canvas.fit_to_window()
    assert canvas.zoom == pytest.approx(min(400 / W, 300 / H))
    centre = canvas.image_to_widget(QPointF(W / 2, H / 2))
    assert (centre.x(), centre.y()) == pytest.approx((200, 150))


def test_dab_repaints_only_a_small_rect(setup, monkeypatch):
    canvas, editor, mask = setup
    calls = []
    real_update = canvas.update

    def spy(*args):
        calls.append(args)
        real_update(*args)

    monkeypatch.setattr(canvas, "update", spy)
    mouse(canvas, QEvent.Type.MouseButtonPress, at(30, 30))
    calls.clear()
    mouse(canvas, QEvent.Type.MouseMove, at(33, 30), NB, L)
    assert calls, "a dab must schedule a repaint"
    assert all(len(a) == 1 and isinstance(a[0], QRect) for a in calls)  # never a full update()
    widget_area = canvas.width() * canvas.height()
    for (rect,) in calls:
        assert rect.width() * rect.height() < widget_area / 20
    # one rect covers the newly painted pixels: columns 32..34, rows 29..31 (radius 1)
    new = QRect(int(ZOOM * 32), int(ZOOM * 29), int(ZOOM * 3), int(ZOOM * 3))
    assert any(r.contains(new) for (r,) in calls)
    mouse(canvas, QEvent.Type.MouseButtonRelease, at(33, 30))


class RecordingCanvas(Canvas):
    """Records the rectangle of every paint event."""

    def __init__(self):
        super().__init__()
        self.painted = []

    def paintEvent(self, event):  # noqa: N802
        self.painted.append(QRect(event.rect()))
        super().paintEvent(event)


def test_paint_event_draws_only_the_exposed_rect(qtbot):
    canvas = RecordingCanvas()
    qtbot.addWidget(canvas)
    canvas.resize(400, 300)
    canvas.set_image(np.zeros((H, W, 3), np.uint8))
    canvas.set_editor(LabelEditor(np.full((H, W), 255, np.uint8)))
    canvas.set_view(ZOOM, 0, 0)
    with qtbot.waitExposed(canvas):
        canvas.show()
    seen = canvas.painted
    canvas.repaint(QRect(10, 10, 8, 8))
    assert seen and seen[-1].width() <= 8 and seen[-1].height() <= 8
    src = canvas._source_rect(seen[-1])
    # 8 widget px = 2 image px at zoom 4, plus one pixel each side for filtering
    assert src is not None and (src[2] - src[0]) <= 5 and (src[3] - src[1]) <= 5


def test_outline_mode(setup):
    canvas, editor, mask = setup
    canvas.set_outline_mode(True)
    canvas.set_current_class(1)
    canvas.set_brush_radius(4)
    drag(canvas, [at(20, 20), at(40, 20)])
    layer = canvas._labels_layer.array
    assert layer[20, 30] == 0             # interior: not drawn
    assert layer[20 - 4, 30] != 0          # top boundary of the stroke drawn
    # the incremental outline equals a full rebuild
    full = np.zeros_like(layer)
    colour_labels(full, mask, canvas._lut, (0, 0, H, W), outline=True)
    np.testing.assert_array_equal(layer, full)
    img_outline = rendered(canvas)
    canvas.set_outline_mode(False)
    assert canvas._labels_layer.array[20, 30] != 0
    img_filled = rendered(canvas)
    centre = at(30, 20).toPoint()
    assert img_outline.pixel(centre) != img_filled.pixel(centre)


def test_toggling_overlays_changes_rendered_pixels(setup):
    canvas, editor, mask = setup
    mask[10:20, 10:20] = 0
    canvas.refresh_labels()
    pred = np.full((H, W), 2, np.uint8)
    canvas.set_prediction(pred)
    p_label = at(15, 15).toPoint()
    p_free = at(50, 40).toPoint()
    base = rendered(canvas)
    canvas.set_labels_visible(False)
    no_labels = rendered(canvas)
    assert base.pixel(p_label) != no_labels.pixel(p_label)
    assert base.pixel(p_free) == no_labels.pixel(p_free)
    canvas.set_prediction_visible(True)
    with_pred = rendered(canvas)
    # the prediction is hatched (issue 12.8): some pixel of one stripe period along the row changes
    assert any(with_pred.pixel(p_free.x() + dx, p_free.y()) != no_labels.pixel(p_free.x() + dx, p_free.y())
               for dx in range(8))
    canvas.set_prediction_opacity(0.0)
    assert rendered(canvas).pixel(p_free) == no_labels.pixel(p_free)
    unc = np.zeros((H, W), np.float32)
    unc[:, 40:] = 1.0
    canvas.set_uncertainty(unc)
    canvas.set_uncertainty_visible(True)
    heat = rendered(canvas)
    assert heat.pixel(p_free) != no_labels.pixel(p_free)
    assert heat.pixel(at(5, 40).toPoint()) == no_labels.pixel(at(5, 40).toPoint())  # 0 = transparent
    assert canvas.pixel_info(50, 40).uncertainty == pytest.approx(1.0)


def test_cursor_signal_and_brush_radius(setup):
    canvas, *_ = setup
    seen = []
    canvas.cursorMoved.connect(seen.append)
    mouse(canvas, QEvent.Type.MouseMove, at(7, 9), NB, NB)
    mouse(canvas, QEvent.Type.MouseMove, QPointF(390, 290), NB, NB)  # beyond the 80x60 image
    assert seen == [(7, 9), None]
    radii = []
    canvas.brushRadiusChanged.connect(radii.append)
    canvas.set_brush_radius(10_000)
    canvas.set_brush_radius(-5)
    assert radii == [512, 0]


def test_bad_image_is_rejected(qtbot):
    canvas = Canvas()
    qtbot.addWidget(canvas)
    with pytest.raises(InputError, match="uint8 RGB"):
        canvas.set_image(np.zeros((4, 4), np.uint8))


def test_editor_of_another_size_is_not_edited(setup):
    canvas, editor, mask = setup
    other = LabelEditor(np.full((10, 10), 255, np.uint8))
    canvas.set_editor(other)
    drag(canvas, [at(2, 2), at(5, 5)])
    assert (other.mask == 255).all()


def test_undo_during_a_drag_commits_the_drag_then_undoes_it(setup):
    canvas, editor, mask = setup
    canvas.set_current_class(2)
    edits = []
    canvas.labelsEdited.connect(edits.append)
    mouse(canvas, QEvent.Type.MouseButtonPress, at(10, 10))
    mouse(canvas, QEvent.Type.MouseMove, at(20, 10), NB, L)
    assert canvas.undo() is not None
    assert (mask == 255).all() and len(edits) == 2  # the drag, then its undo
    mouse(canvas, QEvent.Type.MouseMove, at(30, 10), NB, L)  # button still down: no new paint
    mouse(canvas, QEvent.Type.MouseButtonRelease, at(30, 10))
    assert (mask == 255).all()


def test_edit_through_the_editor_mid_drag_does_not_break_the_canvas(setup):
    canvas, editor, mask = setup
    mouse(canvas, QEvent.Type.MouseButtonPress, at(10, 10))
    editor.fill(50, 70, 1)                 # the app edits directly; this ends the drag
    canvas.refresh_labels()
    mouse(canvas, QEvent.Type.MouseMove, at(20, 10), NB, L)
    mouse(canvas, QEvent.Type.MouseButtonRelease, at(20, 10))
    drag(canvas, [at(5, 40), at(15, 40)])  # the next drag works normally
    assert mask[40, 10] == canvas.current_class


def test_prediction_given_before_the_image_is_shown(qtbot):
    canvas = Canvas()
    qtbot.addWidget(canvas)
    canvas.resize(200, 150)
    canvas.set_schema(ClassSchema.default(3))
    canvas.set_prediction(np.full((H, W), 1, np.uint8))
    canvas.set_uncertainty(np.ones((H, W), np.float32))
    canvas.set_image(np.zeros((H, W, 3), np.uint8))
    assert canvas._pred_layer is not None and canvas._uncert_layer is not None
    canvas.set_image(np.zeros((10, 10, 3), np.uint8))  # another size: the old layers go
    assert canvas._pred_layer is None and canvas._uncert_layer is None

"""The assisted tools on a real canvas with real mouse events: wand, smart region (in a worker,
image locked until it lands), superpixel paint, accept confident, next error region.
Each edit is one undo step."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QKeyEvent, QMouseEvent, QWheelEvent
from PySide6.QtWidgets import QApplication

from workbench.classes import UNLABELLED, ClassSchema
from workbench.editing import LabelEditor
from workbench.editing.tool_table import Box, RegionMask
from workbench.gui.canvas import Canvas

H, W = 80, 80
ZOOM = 4.0
L = Qt.MouseButton.LeftButton
NB = Qt.MouseButton.NoButton
NOMOD = Qt.KeyboardModifier.NoModifier
CTRL = Qt.KeyboardModifier.ControlModifier


def at(x, y):
    return QPointF(ZOOM * x + ZOOM / 2, ZOOM * y + ZOOM / 2)


def send(canvas, kind, pos, button=L, buttons=None, mods=NOMOD):
    if buttons is None:
        buttons = NB if kind == QEvent.Type.MouseButtonRelease else button
    QApplication.sendEvent(canvas, QMouseEvent(kind, pos, canvas.mapToGlobal(pos), button, buttons, mods))


def drag(canvas, points, mods=NOMOD):
    send(canvas, QEvent.Type.MouseButtonPress, points[0], mods=mods)
    for p in points[1:]:
        send(canvas, QEvent.Type.MouseMove, p, NB, L, mods)
    send(canvas, QEvent.Type.MouseButtonRelease, points[-1], mods=mods)


def click(canvas, pos):
    drag(canvas, [pos])


def hover(canvas, pos):
    send(canvas, QEvent.Type.MouseMove, pos, NB, NB)


def disc_image():
    yy, xx = np.mgrid[:H, :W]
    disc = (yy - 40) ** 2 + (xx - 40) ** 2 <= 18 * 18
    img = np.full((H, W, 3), (40, 90, 40), np.uint8)
    img[disc] = (220, 200, 60)
    rng = np.random.default_rng(1)
    return np.clip(img.astype(int) + rng.integers(-8, 9, img.shape), 0, 255).astype(np.uint8), disc


@pytest.fixture
def setup(qtbot):
    image, disc = disc_image()
    mask = np.full((H, W), UNLABELLED, np.uint8)
    editor = LabelEditor(mask)
    canvas = Canvas()
    qtbot.addWidget(canvas)
    canvas.resize(400, 400)
    canvas.set_schema(ClassSchema.default(4))
    canvas.set_image(image)
    canvas.set_editor(editor)
    canvas.set_view(ZOOM, 0, 0)
    canvas.set_current_class(2)
    with qtbot.waitExposed(canvas):
        canvas.show()
    yield canvas, editor, mask, disc
    canvas.cancel_tool_job()
    canvas.wait_for_tool(60000)


def iou(a, b):
    return (a & b).sum() / max(1, (a | b).sum())


def test_magic_wand_click_paints_the_disc_as_one_step(setup):
    canvas, editor, mask, disc = setup
    canvas.set_tool("wand")
    canvas.set_option("tolerance", 40)
    edits = []
    canvas.labelsEdited.connect(edits.append)
    send(canvas, QEvent.Type.MouseButtonPress, at(40, 40))
    (region,) = canvas.previews                      # the selection shows before release
    assert isinstance(region, RegionMask) and (mask == UNLABELLED).all()
    send(canvas, QEvent.Type.MouseButtonRelease, at(40, 40))
    assert iou(mask == 2, disc) > 0.97 and len(edits) == 1 and len(editor.history) == 1
    canvas.undo()
    assert (mask == UNLABELLED).all()


def test_wand_tolerance_from_ctrl_wheel_and_the_options_bar_value(setup):
    canvas, *_ = setup
    canvas.set_tool("wand")
    before = canvas.options.tolerance
    pos = at(10, 10)
    ev = QWheelEvent(pos, canvas.mapToGlobal(pos), QPoint(0, 0), QPoint(0, 240), NB, CTRL,
                     Qt.ScrollPhase.NoScrollPhase, False)
    zoom = canvas.zoom
    QApplication.sendEvent(canvas, ev)
    assert canvas.options.tolerance == before + 4 and canvas.zoom == zoom   # Ctrl+wheel does not zoom
    canvas.set_tool("brush")
    QApplication.sendEvent(canvas, ev)
    assert canvas.options.brush_size == 17 + 4 and canvas.brush_radius == 10


def test_smart_region_runs_in_a_worker_locks_the_image_and_lands_as_one_step(setup, qtbot):
    canvas, editor, mask, disc = setup
    canvas.set_tool("smart")
    busy = []
    canvas.busyChanged.connect(busy.append)
    send(canvas, QEvent.Type.MouseButtonPress, at(15, 15))
    send(canvas, QEvent.Type.MouseMove, at(65, 65), NB, L)
    assert canvas.previews and isinstance(canvas.previews[0], Box)   # the rubber band
    send(canvas, QEvent.Type.MouseButtonRelease, at(65, 65))
    assert busy == [True] or (busy == [True, False])
    if canvas.busy:
        # locked: neither a new gesture nor undo changes the mask until the result lands
        canvas.set_tool("brush")
        click(canvas, at(5, 5))
        assert mask[5, 5] == UNLABELLED and canvas.undo() is None
        canvas.set_tool("smart")
    qtbot.waitUntil(lambda: not canvas.busy, timeout=120000)
    assert busy[-1] is False
    assert iou(mask == 2, disc) > 0.9 and len(editor.history) == 1
    canvas.undo()
    assert (mask == UNLABELLED).all()


def test_smart_region_result_for_another_image_is_dropped(setup, qtbot):
    canvas, editor, mask, disc = setup
    canvas.set_tool("smart")
    drag(canvas, [at(15, 15), at(65, 65)])
    other = LabelEditor(np.full((H, W), UNLABELLED, np.uint8))
    canvas.set_editor(other)              # the person moved on: the job is cancelled
    assert not canvas.busy
    canvas.wait_for_tool(120000)
    qtbot.wait(50)                        # let any queued signal arrive
    assert (other.mask == UNLABELLED).all() and (mask == UNLABELLED).all()


def test_superpixel_paint_computes_in_the_background_then_paints_whole_cells(setup, qtbot):
    canvas, editor, mask, disc = setup
    canvas.set_option("superpixel_size", 8)
    canvas.set_tool("superpixel")
    qtbot.waitUntil(lambda: canvas._superpixels_now() is not None, timeout=120000)
    hover(canvas, at(40, 40))
    (cell,) = canvas.previews
    assert isinstance(cell, RegionMask) and cell.mask.sum() > 4
    drag(canvas, [at(36, 40), at(44, 40)])
    painted = mask == 2
    assert painted[40, 36] and painted[40, 44] and len(editor.history) == 1
    assert (painted & disc).sum() > 0.9 * painted.sum()     # stays inside the disc's edge


def test_accept_confident_live_preview_follows_the_threshold_and_a_click_applies(setup):
    canvas, editor, mask, disc = setup
    pred = np.where(disc, 2, 0).astype(np.uint8)
    conf = np.full((H, W), 0.95, np.float32)
    conf[:, 60:] = 0.5
    canvas.set_prediction(pred, conf)
    canvas.set_tool("confident")
    canvas.set_option("threshold", 0.9)
    (region,) = canvas.previews
    assert region.mask[:, :60].all() and not region.mask[:, 60:].any()
    dimmed = canvas.grab().toImage().pixelColor(at(70, 70).toPoint())
    canvas.set_option("threshold", 0.4)
    assert canvas.previews[0].mask.all()
    assert canvas.grab().toImage().pixelColor(at(70, 70).toPoint()) != dimmed   # the preview follows
    canvas.set_option("threshold", 0.9)
    click(canvas, at(70, 70))
    assert (mask[:, 60:] == UNLABELLED).all() and (mask[:, :60] == pred[:, :60]).all()
    assert len(editor.history) == 1 and canvas.previews == []


def test_next_error_region_moves_the_view_to_the_unsure_region(setup):
    canvas, editor, mask, disc = setup
    pred = np.zeros((H, W), np.uint8)
    conf = np.ones((H, W), np.float32)
    conf[60:70, 5:15] = 0.2
    canvas.set_prediction(pred, conf)
    region = canvas.next_error_region()
    assert region is not None and region.bbox == (60, 5, 70, 15)
    centre = canvas.widget_to_image(QPointF(canvas.width() / 2, canvas.height() / 2))
    assert (centre.x(), centre.y()) == pytest.approx((10, 65))
    assert canvas.zoom > ZOOM
    notes = []
    canvas.message.connect(notes.append)
    canvas.set_prediction(None)
    assert canvas.next_error_region() is None and notes


def test_escape_forgets_the_smart_box(setup, qtbot):
    canvas, *_ = setup
    canvas.set_tool("smart")
    drag(canvas, [at(15, 15), at(65, 65)])
    qtbot.waitUntil(lambda: not canvas.busy, timeout=120000)
    assert canvas.previews
    canvas.setFocus()
    QApplication.sendEvent(canvas, QKeyEvent(QEvent.Type.KeyPress, Qt.Key.Key_Escape, NOMOD))
    assert canvas.previews == []


def test_wand_on_a_read_only_image_like_the_apps_source_images(qtbot):
    image, disc = disc_image()
    image.setflags(write=False)
    canvas = Canvas()
    qtbot.addWidget(canvas)
    canvas.resize(400, 400)
    canvas.set_image(image)
    mask = np.full((H, W), UNLABELLED, np.uint8)
    canvas.set_editor(LabelEditor(mask))
    canvas.set_view(ZOOM, 0, 0)
    canvas.set_current_class(1)
    canvas.set_tool("wand")
    canvas.set_option("tolerance", 40)
    click(canvas, at(40, 40))
    assert iou(mask == 1, disc) > 0.97 and not image.flags.writeable


def test_a_failing_tool_shows_a_message_instead_of_crashing(setup, monkeypatch):
    from workbench.editing import tool_table
    from workbench.errors import InputError

    canvas, editor, mask, disc = setup

    def broken(*args, **kwargs):
        raise InputError("the wand cannot read this image")

    monkeypatch.setattr(tool_table, "magic_wand", broken)
    notes = []
    canvas.message.connect(notes.append)
    canvas.set_tool("wand")
    click(canvas, at(40, 40))
    assert notes and "Magic wand failed: the wand cannot read this image" in notes[-1]
    assert (mask == UNLABELLED).all() and len(editor.history) == 0
    canvas.set_tool("brush")
    click(canvas, at(5, 5))                 # the canvas still works
    assert mask[5, 5] == 2

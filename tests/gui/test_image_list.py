"""The image list: names elided in the middle, many rows selected at once, an order that holds
still while predictions arrive, and Verify + next that stays within its split (issue 12 items 7, 9, 10;
issue 10's multi-select)."""

from __future__ import annotations

from gui_helpers import tiny_checkpoint
from PySide6.QtCore import Qt
from PySide6.QtGui import QFontMetrics
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QStyleOptionViewItem

from workbench.gui.image_list import COL_NAME, ELLIPSIS, elide_keeping_end
from workbench.project import Split, Status


def _click_row(table, row: int, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    """A real mouse click on ``row`` of the table (with Ctrl or Shift held, when given)."""
    rect = table.visualRect(table.model().index(row, COL_NAME))
    QTest.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, modifier, rect.center())


def _row_of_name(panel, name: str) -> int:
    for r in range(panel.proxy.rowCount()):
        if panel.proxy.index(r, COL_NAME).data() == name:
            return r
    raise AssertionError(f"{name} is not listed")


# ----- item 7: names elided in the middle ---------------------------------------------------
def test_elision_keeps_the_end_of_the_stem_and_the_extension() -> None:
    def fits(t: str) -> bool:
        return len(t) <= 12

    a, b = elide_keeping_end("0001TP_006690.png", fits), elide_keeping_end("0001TP_006720.png", fits)
    assert len(a) <= 12 and ELLIPSIS in a
    assert a.endswith("6690.png") and b.endswith("6720.png")   # what tells CamVid frames apart
    assert a != b
    assert elide_keeping_end("cell_01.jpg", fits) == "cell_01.jpg"   # short names are left alone
    # Too narrow for the extension: the stem's end still shows.
    assert elide_keeping_end("0001TP_006690.png", lambda t: len(t) <= 6) == ELLIPSIS + "06690"
    # A head is kept once enough of the tail shows, so different prefixes stay apart.
    long_a = elide_keeping_end("Seq05VD_f00000.png", lambda t: len(t) <= 16)
    assert long_a.startswith("Seq") and long_a.endswith("00000.png")


def test_the_list_draws_camvid_names_with_their_end_and_the_full_name_as_tooltip(make_window, qtbot,
                                                                                  tmp_path) -> None:
    import numpy as np
    from PIL import Image

    folder = tmp_path / "camvid"
    folder.mkdir()
    for name in ("0001TP_006690.png", "0001TP_006720.png"):
        Image.fromarray(np.zeros((8, 10, 3), np.uint8)).save(folder / name)
    window = make_window(folder)
    panel = window.list_panel
    panel.table.setColumnWidth(COL_NAME, 110)
    delegate = panel.table.itemDelegateForColumn(COL_NAME)
    shown = []
    for row in range(2):
        idx = panel.proxy.index(row, COL_NAME)
        option = QStyleOptionViewItem()
        option.initFrom(panel.table)
        option.rect = panel.table.visualRect(idx)
        option.rect.setWidth(110)                      # a narrow column, as in the report
        option.widget = panel.table
        delegate.initStyleOption(option, idx)
        assert QFontMetrics(option.font).horizontalAdvance(option.text) <= 110
        shown.append(option.text)
        assert panel.proxy.data(idx, Qt.ItemDataRole.ToolTipRole).startswith(idx.data())   # the full name
    assert all(ELLIPSIS in t for t in shown)
    assert shown[0].endswith("690.png") and shown[1].endswith("720.png") and shown[0] != shown[1]


# ----- multi-select: split and status of many images at once ----------------------------------
def test_ctrl_click_selects_many_and_sets_their_split(window, qtbot) -> None:
    panel, project = window.list_panel, window.project
    table = panel.table
    names = ["cell_11.jpg", "cell_13.jpg", "cell_14.jpg"]
    _click_row(table, _row_of_name(panel, names[0]))
    for name in names[1:]:
        _click_row(table, _row_of_name(panel, name), Qt.KeyboardModifier.ControlModifier)
    assert sorted(project.get(i).name for i in panel.selected_ids()) == names
    assert panel.selection_label.text() == "3 selected"
    with qtbot.waitSignal(window.events.imagesChanged, timeout=30000):
        action = next(a for a in panel.split_button.menu().actions() if a.text() == "val")
        action.trigger()
    assert [project.find(n).split for n in names] == [Split.VAL] * 3
    assert project.find("cell_15.jpg").split == Split.TRAIN            # not selected: unchanged
    split_col = 2
    for name in names:                                                 # the list shows it
        assert panel.proxy.index(_row_of_name(panel, name), split_col).data() == "val"
    assert "3 images moved to the val split" in window.statusBar().currentMessage()


def test_shift_click_range_and_status_refuses_images_without_a_label(window, qtbot) -> None:
    panel, project = window.list_panel, window.project
    table = panel.table
    _click_row(table, _row_of_name(panel, "cell_09.jpg"))
    _click_row(table, _row_of_name(panel, "cell_11.jpg"), Qt.KeyboardModifier.ShiftModifier)
    chosen = sorted(project.get(i).name for i in panel.selected_ids())
    assert chosen == ["cell_09.jpg", "cell_10.jpg", "cell_11.jpg"]
    project.set_status(project.find("cell_09.jpg").id, Status.EDITED)
    changed = panel.set_status_of_selected(Status.VERIFIED)
    assert [project.get(i).name for i in changed] == ["cell_09.jpg", "cell_10.jpg"]
    assert project.find("cell_09.jpg").status == Status.VERIFIED
    assert project.find("cell_11.jpg").status == Status.UNLABELLED    # no label: nothing to verify
    message = window.statusBar().currentMessage()
    assert "cell_11.jpg" in message and "no label" in message


def test_context_menu_offers_split_and_status_for_the_clicked_row(window, qtbot) -> None:
    panel, project = window.list_panel, window.project
    _click_row(panel.table, _row_of_name(panel, "cell_11.jpg"))
    row = _row_of_name(panel, "cell_12.jpg")
    pos = panel.table.visualRect(panel.proxy.index(row, COL_NAME)).center()
    menu = panel.context_menu(pos)                   # what a right-click there shows
    assert [a.text() for a in menu.actions()] == ["Set split", "Set status"]
    assert [project.get(i).name for i in panel.selected_ids()] == ["cell_12.jpg"]
    split_menu = menu.actions()[0].menu()
    next(a for a in split_menu.actions() if a.text() == "test").trigger()
    assert project.find("cell_12.jpg").split == Split.TEST
    assert project.find("cell_11.jpg").split == Split.TRAIN


# ----- item 9: the order holds still while predictions arrive ------------------------------------
def test_rows_hold_still_while_predict_all_runs_until_it_ends(window, qtbot) -> None:
    panel, project = window.list_panel, window.project
    panel.sort_combo.setCurrentText("Status")
    panel.status_combo.setCurrentIndex(panel.status_combo.findData("unlabelled"))
    before = panel.visible_ids()
    assert len(before) == 16
    window.predictions.batchProgress.emit(0, len(before))           # Predict all started
    moved = before[3:6]
    project.set_status(moved, Status.PREDICTED)
    window.events.images(moved)
    assert panel.visible_ids() == before                            # no row moved or left
    window.predictions.batchFinished.emit(None)                     # the run ended
    after = panel.visible_ids()
    assert len(after) == 13 and not set(moved) & set(after)


def test_a_person_re_sorting_during_the_run_gets_the_new_order_which_then_holds(window, qtbot) -> None:
    panel, project = window.list_panel, window.project
    window.predictions.batchProgress.emit(0, 24)
    panel.sort_combo.setCurrentText("Status")                       # the person's choice applies now
    order = panel.visible_ids()
    assert [project.get(i).status for i in order[:3]] == [Status.UNLABELLED] * 3
    project.set_status(order[:2], Status.PREDICTED)
    window.events.images(order[:2])
    assert panel.visible_ids() == order                             # and then holds
    window.predictions.batchFinished.emit(None)
    assert panel.visible_ids()[:2] != order[:2]


# ----- item 10: Verify + next stays within the split and filter --------------------------------
def test_verify_next_skips_images_of_another_split_and_says_so(window, qtbot) -> None:
    project = window.project
    window.workspace.open_image(project.find("cell_03.jpg").id)     # train; cell_04 after it is val
    qtbot.keyClick(window.canvas, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert window.workspace.image_id == project.find("cell_05.jpg").id
    assert project.find("cell_03.jpg").status == Status.VERIFIED
    message = window.statusBar().currentMessage()
    assert "cell_05.jpg" in message and "train images" in message


def test_verify_next_respects_the_filter_and_stops_at_the_end(window, qtbot) -> None:
    panel, project = window.list_panel, window.project
    panel.search.setText("cell_2")
    window.canvas.setFocus()
    window.workspace.open_image(project.find("cell_23.jpg").id)
    window.session.editor.mask[:4, :4] = 0
    qtbot.keyClick(window.canvas, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert window.workspace.image_id == project.find("cell_23.jpg").id   # cell_24 is val: stay
    message = window.statusBar().currentMessage()
    assert "No more train images" in message and "'cell_2'" in message


def test_a_real_predict_all_keeps_rows_still_then_sorts_by_its_scores(window, qtbot, tmp_path) -> None:
    panel, project = window.list_panel, window.project
    project.register_model(tiny_checkpoint(tmp_path / "tiny.safetensors", project.schema))
    window.workspace.model_changed()
    panel.split_combo.setCurrentIndex(panel.split_combo.findData("val"))
    panel.sort_combo.setCurrentText("Most uncertain first")
    before = panel.visible_ids()
    orders: list[list[int]] = []
    window.events.imagesChanged.connect(lambda _ids: orders.append(panel.visible_ids()))  # GUI-thread signal
    with qtbot.waitSignal(window.predictions.batchFinished, timeout=300000):
        qtbot.keyClick(window, Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert orders and all(order == before for order in orders)       # nothing moved while results came in
    shown = [project.get(i).uncertainty for i in panel.visible_ids()]
    assert None not in shown and shown == sorted(shown, reverse=True)  # the run ended: sorted by its scores

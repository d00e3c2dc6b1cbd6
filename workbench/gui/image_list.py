"""The image list: a table model over ``project.images()``, a filter/sort proxy and its panel.

The model holds the project's ImageRecords as last read, nothing else: it re-reads them
from the project whenever a controller says images changed (``refresh``), so the list
can never drift from the project.
"""

from __future__ import annotations

import math
from typing import Any

from collections.abc import Callable

from PySide6.QtCore import (QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, QPoint, QSize,
                            QSortFilterProxyModel, Qt, Signal)
from PySide6.QtGui import QBrush, QColor, QFontMetrics
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QMenu,
                               QSizePolicy,
                               QStyle, QStyledItemDelegate, QStyleOptionViewItem, QTableView, QToolButton,
                               QVBoxLayout, QWidget)

from workbench.errors import WorkbenchError
from workbench.gui.thumbnails import THUMB_SIZE, ThumbnailCache
from workbench.project import ImageRecord, Project, Split, Status

STATUS_COLORS: dict[str, str] = {
    Status.UNLABELLED: "#8a8a8a",
    Status.PREDICTED: "#d9a300",
    Status.EDITED: "#2f7fd8",
    Status.VERIFIED: "#2e9e4f",
    "unsaved": "#d62828",
}
STATUS_ORDER = {Status.UNLABELLED: 0, Status.PREDICTED: 1, Status.EDITED: 2, Status.VERIFIED: 3}

COL_NAME, COL_STATUS, COL_SPLIT, COL_MIOU, COL_UNCERTAINTY = range(5)
HEADERS = ("Image", "Status", "Split", "mIoU", "Uncert.")
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
ID_ROLE = Qt.ItemDataRole.UserRole + 2

SORTS: dict[str, tuple[int, Qt.SortOrder]] = {
    "Name": (COL_NAME, Qt.SortOrder.AscendingOrder),
    "Status": (COL_STATUS, Qt.SortOrder.AscendingOrder),
    "Worst mIoU first": (COL_MIOU, Qt.SortOrder.AscendingOrder),
    "Most uncertain first": (COL_UNCERTAINTY, Qt.SortOrder.DescendingOrder),
}


ELLIPSIS = "\u2026"


def elide_keeping_end(name: str, fits: Callable[[str], bool]) -> str:
    """``name`` shortened in the middle so that ``fits`` accepts it, keeping the end of the stem.

    Names of one dataset often share a prefix and differ at the end (CamVid
    "0001TP_006690.png"): Qt's own middle elision gave "0001….png" for all of them in
    a narrow column. Here the extension and the longest stem tail that fits are kept;
    a short head (up to 3 characters) is kept too once at least 6 characters of the tail
    show, so that "Seq05VD_…" and "0001TP_…" still look different.
    """
    if fits(name):
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot or len(ext) > 5:       # no extension worth keeping whole
        stem, ext = name, ""
    else:
        ext = "." + ext
    tail = 0
    while tail < len(stem) and fits(ELLIPSIS + stem[len(stem) - tail - 1:] + ext):
        tail += 1
    if tail < 4 and ext:              # very narrow: the stem's end matters more than the extension
        bare = elide_keeping_end(stem, fits)
        if len(bare) > tail + 1:
            return bare
    if tail == 0:
        return ELLIPSIS + ext if fits(ELLIPSIS + ext) else ELLIPSIS
    head = 0
    while tail - head > 6 and head < 3:
        head += 1
    best = ELLIPSIS + stem[len(stem) - tail:] + ext
    for h in range(head, 0, -1):      # trade tail characters for head ones while it still fits
        candidate = stem[:h] + ELLIPSIS + stem[len(stem) - tail + h:] + ext
        if fits(candidate):
            return candidate
    return best


class NameDelegate(QStyledItemDelegate):
    """Draws image names elided in the middle, keeping the end of the stem (issue 12.7)."""

    def initStyleOption(self, option: QStyleOptionViewItem,  # noqa: N802 (Qt override)
                        index: QModelIndex | QPersistentModelIndex) -> None:
        """Replace the name by the version that fits the text rectangle."""
        super().initStyleOption(option, index)
        if not option.text:
            return
        widget = option.widget
        style = widget.style() if widget is not None else None
        if style is None:
            return
        rect = style.subElementRect(QStyle.SubElement.SE_ItemViewItemText, option, widget)
        width = rect.width() - 2 * style.pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin, None, widget) - 2
        metrics = QFontMetrics(option.font)
        option.text = elide_keeping_end(option.text, lambda t: metrics.horizontalAdvance(t) <= width)
        option.textElideMode = Qt.TextElideMode.ElideNone


class ImageListModel(QAbstractTableModel):
    """Rows = the project's images; columns = name (+thumbnail), status, split, mIoU, uncertainty."""

    refreshing = Signal()   # records are about to be re-read (rows may move or vanish)
    refreshed = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._project: Project | None = None
        self._records: list[ImageRecord] = []
        self._row_of: dict[int, int] = {}
        self._unsaved: set[int] = set()
        self.thumbnails: ThumbnailCache | None = None
        self.generation = 0     # bumped per project, so ids of another project are never reused

    # ----- project ------------------------------------------------------------------------
    def set_project(self, project: Project | None) -> None:
        """Show ``project``'s images (None: empty list)."""
        if self.thumbnails is not None:
            self.thumbnails.forget()
            self.thumbnails.deleteLater()
            self.thumbnails = None
        self._project = project
        self.generation += 1
        if project is not None:
            self.thumbnails = ThumbnailCache(project.image_path, parent=self)
            self.thumbnails.ready.connect(self._on_thumbnails)
        self._unsaved.clear()
        self.refresh()

    def refresh(self, image_ids: list[int] | None = None) -> None:
        """Re-read records from the project: all of them, or just ``image_ids``."""
        self.refreshing.emit()
        try:
            self._refresh(image_ids)
        finally:
            self.refreshed.emit()

    def _refresh(self, image_ids: list[int] | None) -> None:
        if self._project is None:
            self.beginResetModel()
            self._records, self._row_of = [], {}
            self.endResetModel()
            return
        if image_ids is None:
            self.beginResetModel()
            self._records = self._project.images()
            self._row_of = {r.id: i for i, r in enumerate(self._records)}
            self.endResetModel()
            return
        for image_id in image_ids:
            row = self._row_of.get(image_id)
            if row is None:
                continue
            self._records[row] = self._project.get(image_id)
            self.dataChanged.emit(self.index(row, 0), self.index(row, len(HEADERS) - 1))

    def set_unsaved(self, image_id: int, unsaved: bool) -> None:
        """Mark an image whose edits could not be saved (shown in red)."""
        changed = (image_id in self._unsaved) != unsaved
        (self._unsaved.add if unsaved else self._unsaved.discard)(image_id)
        if changed:
            self.refresh([image_id])

    @property
    def project(self) -> Project | None:
        """The project shown (None: none)."""
        return self._project

    def record(self, row: int) -> ImageRecord:
        """The record shown in ``row`` of this (source) model."""
        return self._records[row]

    def row_of(self, image_id: int) -> int | None:
        """Source row of ``image_id``."""
        return self._row_of.get(image_id)

    def _on_thumbnails(self, ids: list) -> None:
        for image_id in ids:
            row = self._row_of.get(image_id)
            if row is not None:
                idx = self.index(row, COL_NAME)
                self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])

    # ----- Qt model API ---------------------------------------------------------------------
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        """Number of images."""
        return 0 if parent.isValid() else len(self._records)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        """Number of columns."""
        return 0 if parent.isValid() else len(HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """Column titles."""
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return HEADERS[section]
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """Text, colours, thumbnails and sort keys of one cell."""
        if not index.isValid():
            return None
        rec = self._records[index.row()]
        col = index.column()
        unsaved = rec.id in self._unsaved
        if role == ID_ROLE:
            return rec.id
        if role == Qt.ItemDataRole.DisplayRole:
            if col == COL_NAME:
                return rec.name
            if col == COL_STATUS:
                return "unsaved!" if unsaved else rec.status.value
            if col == COL_SPLIT:
                return rec.split.value
            if col == COL_MIOU:
                return "" if rec.miou is None else f"{rec.miou:.2f}"
            if col == COL_UNCERTAINTY:
                return "" if rec.uncertainty is None else f"{rec.uncertainty:.2f}"
        if role == SORT_ROLE:
            if col == COL_NAME:
                return rec.name.lower()
            if col == COL_STATUS:
                return STATUS_ORDER[rec.status]
            if col == COL_SPLIT:
                return rec.split.value
            if col == COL_MIOU:  # unknown mIoU sorts last when looking for the worst
                return math.inf if rec.miou is None else rec.miou
            if col == COL_UNCERTAINTY:
                return -math.inf if rec.uncertainty is None else rec.uncertainty
        if role == Qt.ItemDataRole.DecorationRole and col == COL_NAME and self.thumbnails is not None:
            return self.thumbnails.get(rec.id)
        if col == COL_STATUS:
            color = QColor(STATUS_COLORS["unsaved" if unsaved else rec.status])
            if role == Qt.ItemDataRole.ForegroundRole:
                return QBrush(QColor("white"))
            if role == Qt.ItemDataRole.BackgroundRole:
                return QBrush(color)
            if role == Qt.ItemDataRole.TextAlignmentRole:
                return Qt.AlignmentFlag.AlignCenter
        if role == Qt.ItemDataRole.ToolTipRole:
            src = f", label by {rec.source}" if rec.source else ""
            gt = ", has ground truth" if rec.has_ground_truth else ""
            warn = " - EDITS NOT SAVED, see the status bar" if unsaved else ""
            return f"{rec.name}: {rec.status.value}, {rec.split.value}{src}{gt}{warn}"
        return None


class ImageFilterProxy(QSortFilterProxyModel):
    """Filters rows by status, split and a name substring; sorts by the model's sort keys.

    ``freeze`` pins the order and the set of rows shown (issue 12.9): while Predict all
    writes scores and statuses, rows would otherwise re-sort, or leave a status filter,
    under the cursor. Images shown when the order was pinned keep their place and stay
    listed; the person's own re-sort or filter change pins the new order instead.
    """

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.status: str | None = None
        self.split: str | None = None
        self.text = ""
        self._rank: dict[int, int] | None = None     # image id -> pinned position
        self.setSortRole(SORT_ROLE)
        self.setDynamicSortFilter(True)

    @property
    def frozen(self) -> bool:
        """True while the order is pinned."""
        return self._rank is not None

    def freeze(self, ids_in_order: list[int]) -> None:
        """Pin these images, in this order (the visible one)."""
        self._rank = {image_id: n for n, image_id in enumerate(ids_in_order)}

    def thaw(self) -> None:
        """Sort and filter live again."""
        self._rank = None
        self.invalidate()

    def lessThan(self, left: QModelIndex | QPersistentModelIndex,  # noqa: N802 (Qt override)
                 right: QModelIndex | QPersistentModelIndex) -> bool:
        """The pinned order while frozen (images not pinned sort by their live key), else the sort key."""
        if self._rank is not None:
            a = self._rank.get(int(self.sourceModel().data(left, ID_ROLE)))
            b = self._rank.get(int(self.sourceModel().data(right, ID_ROLE)))
            if a is not None and b is not None:
                # Pinned ranks were taken in the visible order; Qt reverses descending sorts itself.
                return a < b if self.sortOrder() == Qt.SortOrder.AscendingOrder else a > b
        return super().lessThan(left, right)

    def set_filter(self, *, status: str | None = None, split: str | None = None, text: str = "") -> None:
        """Show only rows matching all of the given criteria (None / "" = any)."""
        if hasattr(self, "beginFilterChange"):      # Qt >= 6.9; invalidateFilter is deprecated there
            self.beginFilterChange()
            self.status, self.split, self.text = status, split, text.strip().lower()
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            self.status, self.split, self.text = status, split, text.strip().lower()
            self.invalidateFilter()

    def filterAcceptsRow(self, source_row: int, source_parent: QModelIndex | QPersistentModelIndex) -> bool:
        """True when the image matches the filter."""
        rec = self.sourceModel().record(source_row)
        if self._rank is not None and rec.id in self._rank:
            return True
        if self.status and rec.status.value != self.status:
            return False
        if self.split and rec.split.value != self.split:
            return False
        return not self.text or self.text in rec.name.lower()


class ImageListPanel(QWidget):
    """Filter controls over a sortable table; emits ``imageActivated(id)`` on selection.

    Many rows can be selected (Ctrl / Shift + click) to set their split or status at
    once, from the buttons under the list or its context menu.
    """

    imageActivated = Signal(int)
    imagesEdited = Signal(list)      # ids whose split or status the panel changed in the project
    failed = Signal(str)             # a user-facing error message
    message = Signal(str)            # a user-facing note (status bar)

    def __init__(self, model: ImageListModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.proxy = ImageFilterProxy(self)
        self.proxy.setSourceModel(model)

        self.search = QLineEdit(placeholderText="Filter by name…", clearButtonEnabled=True)
        self.status_combo = QComboBox()
        self.status_combo.addItem("Any status", None)
        for s in Status:
            self.status_combo.addItem(s.value, s.value)
        self.split_combo = QComboBox()
        self.split_combo.addItem("Any split", None)
        for s in Split:
            self.split_combo.addItem(s.value, s.value)
        self.sort_combo = QComboBox()
        self.sort_combo.addItems(list(SORTS))
        for w, name in ((self.search, "filter"), (self.status_combo, "status filter"),
                        (self.split_combo, "split filter"), (self.sort_combo, "sort")):
            w.setAccessibleName(name)

        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setItemDelegateForColumn(COL_NAME, NameDelegate(self.table))
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._context_menu)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(THUMB_SIZE + 4)
        self.table.setIconSize(QSize(THUMB_SIZE, THUMB_SIZE))
        self.table.setSortingEnabled(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(COL_NAME, QHeaderView.ResizeMode.Stretch)
        for col in (COL_STATUS, COL_SPLIT, COL_MIOU, COL_UNCERTAINTY):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)

        filters = QHBoxLayout()
        filters.addWidget(self.status_combo)
        filters.addWidget(self.split_combo)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.search)
        layout.addLayout(filters)
        layout.addWidget(self.sort_combo)
        layout.addWidget(self.table)
        # Bulk edits of the selected rows (also in the context menu).
        self.selection_label = QLabel()
        self.selection_label.setAccessibleName("selection")
        # The note must not widen the dock (and so the window's minimum width).
        self.selection_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.selection_label.setToolTip("Ctrl+click or Shift+click selects many images")
        self.split_button = QToolButton(text="Set split", popupMode=QToolButton.ToolButtonPopupMode.InstantPopup)
        self.status_button = QToolButton(text="Set status", popupMode=QToolButton.ToolButtonPopupMode.InstantPopup)
        self.split_button.setMenu(self._split_menu(self))
        self.status_button.setMenu(self._status_menu(self))
        self.split_button.setToolTip("Move the selected images (Ctrl/Shift+click to select many) to a split")
        self.status_button.setToolTip("Set the status of the selected images")
        bulk = QHBoxLayout()
        bulk.addWidget(self.selection_label, 1)
        bulk.addWidget(self.split_button)
        bulk.addWidget(self.status_button)
        layout.addLayout(bulk)

        self.search.textChanged.connect(self._apply_filter)
        self.status_combo.currentIndexChanged.connect(self._apply_filter)
        self.split_combo.currentIndexChanged.connect(self._apply_filter)
        self.sort_combo.currentTextChanged.connect(self._apply_sort)
        self.table.selectionModel().currentRowChanged.connect(self._on_current)
        self.table.selectionModel().selectionChanged.connect(self._on_selection)
        header.sortIndicatorChanged.connect(self._on_person_sort)
        self._on_selection()
        # Only a person's choice opens an image. When rows move or vanish on their own (a
        # filter, a re-sort, a status that changed under a status filter, a full refresh),
        # the view's current row moves too: activation is muted meanwhile and the open
        # image is selected again afterwards (or nothing, if it is filtered out).
        self._quiet = 0
        self._open: tuple[int, int | None] = (0, None)   # (model generation, image on screen)
        # (The view reacts to the proxy's row signals before any slot of ours could, so
        # the mute brackets the operations themselves: refresh and filter changes.)
        model.refreshing.connect(self._mute)
        model.refreshed.connect(self._unmute)
        self._apply_sort(self.sort_combo.currentText())

    # ----- state ---------------------------------------------------------------------------
    def current_id(self) -> int | None:
        """Id of the selected image, or None."""
        idx = self.table.currentIndex()
        return None if not idx.isValid() else int(self.proxy.data(idx, ID_ROLE))

    @property
    def open_id(self) -> int | None:
        """The image on screen, as last passed to ``select`` (None after another project)."""
        generation, image_id = self._open
        return image_id if generation == self.model.generation else None

    def select(self, image_id: int) -> bool:
        """Select the open image ``image_id`` (no signal when already current); False if filtered out."""
        self._open = (self.model.generation, image_id)
        row = self.model.row_of(image_id)
        if row is None:
            return False
        idx = self.proxy.mapFromSource(self.model.index(row, 0))
        if not idx.isValid():
            return False
        if self.current_id() != image_id:
            self.table.setCurrentIndex(idx)
        self.table.scrollTo(idx)
        return True

    def neighbour(self, image_id: int | None, step: int) -> int | None:
        """The image ``step`` rows away in the visible order (sorted and filtered)."""
        n = self.proxy.rowCount()
        if n == 0:
            return None
        row = -1
        if image_id is not None and (src := self.model.row_of(image_id)) is not None:
            row = self.proxy.mapFromSource(self.model.index(src, 0)).row()
        if row < 0:
            row = 0 if step > 0 else n - 1
        else:
            row = row + step
        if not 0 <= row < n:
            return None
        return int(self.proxy.data(self.proxy.index(row, 0), ID_ROLE))

    def next_in_split(self, image_id: int) -> int | None:
        """The next image after ``image_id`` in the visible order that is in the same split (issue 12.10)."""
        if self.model.row_of(image_id) is None:
            return None
        split = self.model.record(self.model.row_of(image_id)).split
        ids = self.visible_ids()
        start = ids.index(image_id) + 1 if image_id in ids else 0
        for other in ids[start:]:
            if self.model.record(self.model.row_of(other)).split == split:
                return other
        return None

    def describe_filter(self) -> str:
        """The list's filter in words ("" when it shows every image)."""
        parts = [str(c.currentData()) for c in (self.status_combo, self.split_combo) if c.currentData()]
        if self.search.text().strip():
            parts.append(f"name contains {self.search.text().strip()!r}")
        return ", ".join(parts)

    def selected_ids(self) -> list[int]:
        """Ids of the selected rows, in the visible order."""
        rows = sorted(i.row() for i in self.table.selectionModel().selectedRows())
        return [int(self.proxy.data(self.proxy.index(r, 0), ID_ROLE)) for r in rows]

    # ----- bulk edits ----------------------------------------------------------------------
    def _split_menu(self, parent: QWidget) -> QMenu:
        menu = QMenu("Set split", parent)
        for split in Split:
            menu.addAction(split.value, lambda s=split: self.set_split_of_selected(s))
        return menu

    def _status_menu(self, parent: QWidget) -> QMenu:
        menu = QMenu("Set status", parent)
        for status in Status:
            menu.addAction(status.value, lambda s=status: self.set_status_of_selected(s))
        return menu

    def context_menu(self, pos: QPoint) -> QMenu | None:
        """The menu for a right-click at ``pos``: it acts on the selection (the clicked row if outside it)."""
        index = self.table.indexAt(pos)
        if index.isValid() and not self.table.selectionModel().isRowSelected(index.row(), QModelIndex()):
            self.table.selectRow(index.row())
        if not self.selected_ids():
            return None
        menu = QMenu(self)
        menu.addMenu(self._split_menu(menu))
        menu.addMenu(self._status_menu(menu))
        return menu

    def _context_menu(self, pos: QPoint) -> None:
        menu = self.context_menu(pos)
        if menu is not None:
            menu.exec(self.table.viewport().mapToGlobal(pos))
            menu.deleteLater()

    def _project(self) -> Project | None:
        project = self.model.project
        if project is None or project.read_only:
            if project is not None:
                self.failed.emit(f"Cannot change images: the project is read-only ({project.read_only_reason})")
            return None
        return project

    def set_split_of_selected(self, split: Split | str) -> list[int]:
        """Move every selected image to ``split``; returns the ids changed."""
        split = Split(split)
        ids, project = self.selected_ids(), self._project()
        if not ids or project is None:
            return []
        try:
            project.set_split(ids, split)
        except WorkbenchError as exc:
            self.failed.emit(f"Could not set the split: {exc}")
            return []
        self.imagesEdited.emit(ids)
        self.message.emit(f"{_images(len(ids))} moved to the {split.value} split.")
        return ids

    def set_status_of_selected(self, status: Status | str) -> list[int]:
        """Set the status of the selected images; images without a label cannot become labelled ones.

        "unlabelled" is refused for images that have a label (their label stays; clear it
        on the canvas), any other status for images without one (nothing to verify).
        """
        status = Status(status)
        ids, project = self.selected_ids(), self._project()
        if not ids or project is None:
            return []
        records = [self.model.record(self.model.row_of(i)) for i in ids]
        wants_label = status != Status.UNLABELLED
        ok = [r.id for r in records if r.has_label == wants_label]
        left = [r.name for r in records if r.has_label != wants_label]
        if ok:
            try:
                project.set_status(ok, status)
            except WorkbenchError as exc:
                self.failed.emit(f"Could not set the status: {exc}")
                return []
            self.imagesEdited.emit(ok)
        note = f"{_images(len(ok))} set to {status.value}."
        if left:
            why = "they have no label" if wants_label else "they have a label (clear it on the canvas first)"
            shown = ", ".join(left[:3]) + (f" and {len(left) - 3} more" if len(left) > 3 else "")
            note += f" {_images(len(left))} left as they were: {why}: {shown}."
            (self.failed if not ok else self.message).emit(note)
        else:
            self.message.emit(note)
        return ok

    # ----- order held while predictions arrive --------------------------------------------
    def hold_order(self, *_args: object) -> None:
        """Keep rows where they are (Predict all is writing scores) until ``release_order``."""
        if not self.proxy.frozen:
            self.proxy.freeze(self.visible_ids())

    def release_order(self, *_args: object) -> None:
        """Sort and filter live again (the run ended)."""
        if self.proxy.frozen:
            self._mute()
            try:
                self.proxy.thaw()
            finally:
                self._unmute()

    def _repin(self, change: Callable[[], None]) -> None:
        # A person's own re-sort or filter applies now; the order is then held again.
        frozen = self.proxy.frozen
        if frozen:
            self.proxy._rank = None
        change()
        if frozen:
            self.proxy.freeze(self.visible_ids())

    def visible_ids(self) -> list[int]:
        """Image ids in the visible order."""
        return [int(self.proxy.data(self.proxy.index(r, 0), ID_ROLE)) for r in range(self.proxy.rowCount())]

    def ui_state(self) -> dict:
        """Filter and sort choices, to restore next time."""
        return {"filter": self.search.text(), "status": self.status_combo.currentData(),
                "split": self.split_combo.currentData(), "sort": self.sort_combo.currentText()}

    def restore_ui_state(self, state: dict) -> None:
        """Undo ``ui_state``; unknown values are ignored."""
        self.search.setText(str(state.get("filter", "")))
        for combo, key in ((self.status_combo, "status"), (self.split_combo, "split")):
            i = combo.findData(state.get(key))
            combo.setCurrentIndex(max(i, 0))
        if state.get("sort") in SORTS:
            self.sort_combo.setCurrentText(state["sort"])

    # ----- slots -----------------------------------------------------------------------------
    def _apply_filter(self) -> None:
        self._mute()
        try:
            self._repin(lambda: self.proxy.set_filter(status=self.status_combo.currentData(),
                                                      split=self.split_combo.currentData(), text=self.search.text()))
        finally:
            self._unmute()

    def _apply_sort(self, name: str) -> None:
        col, order = SORTS.get(name, SORTS["Name"])
        self.table.sortByColumn(col, order)

    def _on_person_sort(self, *_args: object) -> None:
        if self.proxy.frozen:       # a click on a header or the sort box while the order is held
            self._repin(self.proxy.invalidate)

    def _on_selection(self, *_args: object) -> None:
        n = len(self.table.selectionModel().selectedRows())
        self.selection_label.setText(f"{n:,} selected")
        for b in (self.split_button, self.status_button):
            b.setEnabled(n > 0)

    def _mute(self, *_args: object) -> None:
        self._quiet += 1

    def _unmute(self, *_args: object) -> None:
        self._quiet = max(0, self._quiet - 1)
        if self._quiet:
            return
        image_id = self.open_id
        self._quiet += 1
        try:
            if image_id is None or not self.select(image_id):
                self.table.setCurrentIndex(QModelIndex())   # the open image is not listed now
        finally:
            self._quiet -= 1

    def _on_current(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid() and not self._quiet:
            self.imageActivated.emit(int(self.proxy.data(current, ID_ROLE)))


def _images(n: int) -> str:
    return f"{n:,} image{'' if n == 1 else 's'}"

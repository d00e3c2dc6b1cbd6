"""The Models panel: every model version of the project, which one is current, and why.

A table of ``workflows.model_summaries(project)`` (version, parent, created, images
trained on, val mIoU before -> after, note, size on disk; the current one in bold),
the selected version's per-class IoU and training curves, and buttons to make a
version current, delete one or edit its note, plus the promotion policy. It only
displays what the workflows report; the model controller does the changes and the
project events bring the panel up to date.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QHBoxLayout, QHeaderView, QLabel, QPushButton,
                               QSplitter, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from workbench.gui.notifier import Strip
from workbench.workflows.models import RECOVERED_NOTE, format_size, recovered_label

# What a person compares first comes first: the dock is narrow.
COLUMNS = ("Version", "Val mIoU", "Trained on", "Size", "Note", "Parent", "Created")
# (workflows policy name, what the person reads, tooltip)
POLICIES = (("better", "only if better", "A new version becomes current only if its val mIoU is at least the "
             "current one's (on the same val images); otherwise it is kept as a candidate"),
            ("always", "always", "Every finished Retrain becomes current"))
POLICY_TEXT = {name: text for name, text, _tip in POLICIES}




def _fmt(v: float | None) -> str:
    return "–" if v is None or not math.isfinite(v) else f"{v:.3f}"


def _trained_on(value: int | None) -> str:
    return "" if not value else f"{value} image{'s' if value != 1 else ''}"


def _before_after(s: Any) -> str:
    if s.val_miou is None:
        return "not scored"
    if s.previous_val_miou is None:
        return _fmt(s.val_miou)
    return f"{_fmt(s.previous_val_miou)} → {_fmt(s.val_miou)}"


class ModelsPanel(QWidget):
    """Version table, per-class IoU and curves of the selection, actions and the policy."""

    useRequested = Signal(int)          # make this version current
    deleteRequested = Signal(int)
    noteRequested = Signal(int)
    policyChosen = Signal(str)          # "better" | "always" (workflows.models.POLICIES)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.summaries: list[Any] = []
        self.class_names: list[str] = []
        self.read_only = False
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setAccessibleName("model versions")
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().hide()
        self.table.setMinimumHeight(50)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(COLUMNS.index("Note"), QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        self.use_button = QPushButton("Use this version")
        self.use_button.setAccessibleName("use this version")
        self.use_button.setToolTip("Make the selected version current: predictions and metrics follow it")
        self.delete_button = QPushButton("Delete…")
        self.delete_button.setToolTip("Remove the selected version and its files (never the current one)")
        self.note_button = QPushButton("Edit note…")
        self.policy = QComboBox()
        self.policy.setAccessibleName("promotion policy")
        for name, text, tip in POLICIES:
            self.policy.addItem(text, name)
            self.policy.setItemData(self.policy.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        self.disk = QLabel("")
        self.detail = QLabel("Select a version to see its per-class IoU and training curves.")
        self.detail.setWordWrap(True)
        self.classes = QTableWidget(0, 2)
        self.classes.setHorizontalHeaderLabels(["Class", "Val IoU"])
        self.classes.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.classes.verticalHeader().hide()
        self.classes.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.classes.horizontalHeader().setStretchLastSection(True)
        self.classes.setMinimumHeight(40)
        pg.setConfigOptions(antialias=True, background="w", foreground="k")
        self.plot = pg.PlotWidget()
        self.plot.setMinimumHeight(40)
        self.plot.addLegend(offset=(-5, 5))
        self.plot.setLabel("bottom", "epoch")
        self.plot.showGrid(x=True, y=True, alpha=0.3)
        self.loss_curve = self.plot.plot([], [], pen=pg.mkPen("#d62828", width=2), symbol="o", symbolSize=4,
                                         symbolBrush="#d62828", name="train loss")  # a 1-epoch run: one point
        self.miou_curve = self.plot.plot([], [], pen=pg.mkPen("#2e9e4f", width=2), symbol="o", symbolSize=5,
                                         symbolBrush="#2e9e4f", name="val mIoU")

        buttons = QHBoxLayout()
        for w in (self.use_button, self.delete_button, self.note_button):
            buttons.addWidget(w)
        policy_row = QHBoxLayout()
        policy_label = QLabel("Promote:")
        policy_label.setToolTip("The promotion policy: when a finished Retrain becomes the current version")
        policy_row.addWidget(policy_label)
        policy_row.addWidget(self.policy)
        policy_row.addStretch(1)
        policy_row.addWidget(self.disk)
        details = QWidget()
        column = QVBoxLayout(details)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.detail)
        below = QHBoxLayout()
        below.addWidget(self.classes, 1)
        below.addWidget(self.plot, 1)
        column.addLayout(below, 1)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.table)
        split.addWidget(details)
        split.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(policy_row)
        layout.addWidget(split, 1)
        layout.addLayout(buttons)

        self.table.itemSelectionChanged.connect(self._on_selection)
        self.use_button.clicked.connect(self._use)
        self.delete_button.clicked.connect(self._delete)
        self.note_button.clicked.connect(self._note)
        self.policy.activated.connect(self._on_policy)
        self._on_selection()

    # ----- data --------------------------------------------------------------------------
    def show_models(self, summaries: Sequence[Any], class_names: Sequence[str], policy: str,
                    read_only: bool = False) -> None:
        # class_names: the project's, for versions whose file names none
        """Display ``summaries`` (workflows.ModelSummary), keeping the selected version."""
        selected = self.selected_version()
        self.summaries = list(summaries)
        self.class_names = list(class_names)
        self.read_only = read_only
        self.table.blockSignals(True)
        self.table.setRowCount(len(self.summaries))
        bold = QFont()
        bold.setBold(True)
        for row, s in enumerate(self.summaries):
            recovered = recovered_label(s) if getattr(s, "recovered", None) else ""
            created = time.strftime("%Y-%m-%d %H:%M", time.localtime(s.created)) if s.created else ""
            kind = " quick model" if getattr(s, "kind", "unet") == "quick" else ""   # issue 13
            cells = (f"v{s.version}{kind}" + (" (current)" if s.current else ""), _before_after(s),
                     _trained_on(s.trained_on), format_size(s.size_bytes),
                     f"{recovered}: {s.note}" if recovered and s.note else (recovered or s.note or ""),
                     "" if s.parent is None else f"v{s.parent}", created)
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, s.version)
                if s.current:
                    item.setFont(bold)
                if col == COLUMNS.index("Note") and (s.note or recovered):
                    item.setToolTip("\n".join(t for t in (s.note, RECOVERED_NOTE if recovered else "") if t))
                self.table.setItem(row, col, item)
        self.table.blockSignals(False)
        total = sum(s.size_bytes or 0 for s in self.summaries)
        self.disk.setText(f"{len(self.summaries)} version(s), {format_size(total) or '0 B'} on disk"
                          if self.summaries else "No versions yet")
        self.disk.setToolTip("Disk used by the model files of this project" if self.summaries else
                             "Label a few images (train split) and press Retrain to make the first version")
        i = self.policy.findData(policy)
        self.policy.setCurrentIndex(max(i, 0))
        self.policy.setEnabled(not read_only)
        if selected is None or not self.select_version(selected):
            current = next((s.version for s in self.summaries if s.current), None)
            if current is None or not self.select_version(current):
                self._on_selection()

    def selected_version(self) -> int | None:
        """Version of the selected row, or None."""
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        item = self.table.item(rows[0].row(), 0)
        return None if item is None else int(item.data(Qt.ItemDataRole.UserRole))

    def select_version(self, version: int) -> bool:
        """Select ``version``'s row; False when it is not listed."""
        for row, s in enumerate(self.summaries):
            if s.version == version:
                self.table.selectRow(row)
                self._on_selection()
                return True
        return False

    def summary(self, version: int | None) -> Any | None:
        """The displayed summary of ``version``."""
        return next((s for s in self.summaries if s.version == version), None)

    # ----- selection detail ----------------------------------------------------------------
    def _on_selection(self) -> None:
        s = self.summary(self.selected_version())
        writable = not self.read_only
        self.use_button.setEnabled(s is not None and not s.current and writable)
        self.delete_button.setEnabled(s is not None and not s.current and writable)
        self.delete_button.setToolTip("The current version cannot be deleted: make another one current first"
                                      if s is not None and s.current else
                                      "Remove the selected version and its files (never the current one)")
        self.note_button.setEnabled(s is not None and writable)
        if s is None:
            self.classes.setRowCount(0)
            self.loss_curve.setData([], [])
            self.miou_curve.setData([], [])
            return
        self._fill_classes(s.per_class_iou, list(getattr(s, "class_names", None) or self.class_names))
        self._fill_curves(s.history or [])
        state = "current" if s.current else "not current"
        if getattr(s, "problem", None):
            state += f"; <span style='color:#d62828'>{s.problem}</span>"
        quick = getattr(s, "kind", "unet") == "quick"
        self.detail.setText(f"<b>v{s.version}</b>{' quick model' if quick else ''} ({state}): "
                            f"val mIoU {_before_after(s)}"
                            + ("; a random forest on filter features (seconds to train; a U-Net replaces "
                               "it when it scores better on val)" if quick else
                               f"; parent v{s.parent}" if s.parent is not None else "; trained from scratch")
                            + (f"<br>Note: {s.note}" if s.note else "")
                            + (f"<br><i>{RECOVERED_NOTE[0].upper() + RECOVERED_NOTE[1:]}. Keep it, "
                               "make it current, or delete it.</i>" if getattr(s, "recovered", None) else ""))

    def _fill_classes(self, ious: Sequence[float | None], names: list[str]) -> None:
        ious = list(ious or [])
        names = names + [f"class {i}" for i in range(len(names), len(ious))]
        pairs = list(zip(names, ious))
        self.classes.setRowCount(len(pairs))
        for row, (name, iou) in enumerate(pairs):
            self.classes.setItem(row, 0, QTableWidgetItem(str(name)))
            self.classes.setItem(row, 1, QTableWidgetItem(_fmt(iou)))

    def _fill_curves(self, history: list[dict]) -> None:
        loss = [(float(h["epoch"]), float(h["loss"])) for h in history
                if isinstance(h, dict) and isinstance(h.get("loss"), (int, float)) and "epoch" in h]
        miou = [(float(h["epoch"]), float(h["val_miou"])) for h in history
                if isinstance(h, dict) and isinstance(h.get("val_miou"), (int, float)) and "epoch" in h]
        self.loss_curve.setData([a for a, _ in loss], [b for _, b in loss])
        self.miou_curve.setData([a for a, _ in miou], [b for _, b in miou])

    # ----- buttons -----------------------------------------------------------------------
    def _use(self) -> None:
        v = self.selected_version()
        if v is not None:
            self.useRequested.emit(v)

    def _delete(self) -> None:
        v = self.selected_version()
        if v is not None:
            self.deleteRequested.emit(v)

    def _note(self) -> None:
        v = self.selected_version()
        if v is not None:
            self.noteRequested.emit(v)

    def _on_policy(self, _index: int) -> None:
        self.policyChosen.emit(str(self.policy.currentData()))


class CandidateBanner(Strip):
    """Above the canvas after a Retrain that was not promoted: says why, offers "Use vN anyway"."""

    useRequested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("candidate_banner", "#fff4d6", "#d9a300", "#5a4300", "Use it anyway", parent)
        self.version: int | None = None
        self.use_button = self.action_button
        self.use_button.clicked.connect(self._use)

    def show_candidate(self, version: int, message: str) -> None:
        """Show the workflow's message about candidate ``version``."""
        self.version = version
        self.text.setText(message)
        self.use_button.setText(f"Use v{version} anyway")
        self.show()

    def _use(self) -> None:
        if self.version is not None:
            self.useRequested.emit(self.version)

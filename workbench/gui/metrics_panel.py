"""The metrics panel: scores of the current model on the val split, and their history.

Shows mIoU and pixel accuracy (with the previous version's mIoU, before -> after),
per-class IoU, a colour-scaled confusion matrix, a sortable per-image table (a click
opens the image) and every recorded evaluation. It only displays what the evaluation
workflow computed and the project recorded, following the project events (a new
evaluation; another current model).
"""

from __future__ import annotations

import time
from html import escape

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QAbstractItemView, QHBoxLayout, QHeaderView, QLabel, QPushButton,
                               QTableWidget, QTableWidgetItem, QTabWidget, QVBoxLayout, QWidget)

from workbench.gui.confusion_view import ConfusionView
from workbench.metrics import EvaluationReport
from workbench.project import Project


def _fmt(v: float | None) -> str:
    return "–" if v is None else f"{v:.3f}"


class NumericItem(QTableWidgetItem):
    """A table cell that sorts by number (missing values last)."""

    def __init__(self, value: float | None) -> None:
        super().__init__(_fmt(value))
        self.value = value

    def __lt__(self, other: QTableWidgetItem) -> bool:
        a = self.value if self.value is not None else float("inf")
        b = getattr(other, "value", None)
        return a < (b if b is not None else float("inf"))


def _table(headers: list[str]) -> QTableWidget:
    t = QTableWidget(0, len(headers))
    t.setHorizontalHeaderLabels(headers)
    t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    t.verticalHeader().hide()
    t.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    t.horizontalHeader().setStretchLastSection(True)
    return t


class MetricsPanel(QWidget):
    """Summary line, buttons and four tabs (classes, confusion, images, history)."""

    imageRequested = Signal(int)
    evaluateRequested = Signal()
    importRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.project: Project | None = None
        self.summary = QLabel("No evaluation yet.")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.evaluate_button = QPushButton("Evaluate on val")
        self.import_button = QPushButton("Import ground truth…")
        self.classes = _table(["Class", "IoU"])
        self.confusion_view = ConfusionView()
        self.confusion = self.confusion_view.table
        self.per_image = _table(["Image", "mIoU"])
        self.per_image.setSortingEnabled(True)
        self.history = _table(["Version", "Split", "mIoU", "Pixel acc.", "Images", "When"])
        self.tabs = QTabWidget()
        self.tabs.addTab(self.classes, "Classes")
        self.tabs.addTab(self.confusion_view, "Confusion")
        self.tabs.addTab(self.per_image, "Images")
        self.tabs.addTab(self.history, "History")
        buttons = QHBoxLayout()
        buttons.addWidget(self.evaluate_button)
        buttons.addWidget(self.import_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.summary)
        layout.addLayout(buttons)
        layout.addWidget(self.tabs)
        self.evaluate_button.clicked.connect(self.evaluateRequested)
        self.import_button.clicked.connect(self.importRequested)
        self.per_image.cellClicked.connect(self._on_image_clicked)
        self._image_ids: dict[str, int] = {}
        self.last_report: EvaluationReport | None = None
        self._activity = ""                     # the running job's summary line
        self._summary_before: str | None = None  # the summary it replaced

    def set_project(self, project: Project | None) -> None:
        """Show ``project``'s newest recorded evaluation and history."""
        self.project = project
        self.last_report = None
        self.summary.setText("No evaluation yet.")
        for t in (self.classes, self.per_image):
            t.setRowCount(0)
        self.confusion_view.clear()
        self.refresh_history()
        if project is not None:
            self._show_recorded()

    def set_busy(self, busy: bool) -> None:
        """Disable the buttons while a job runs; a job that ended without a report leaves the summary as it was."""
        self.evaluate_button.setEnabled(not busy)
        self.import_button.setEnabled(not busy)
        if busy:
            if self._summary_before is None:
                self._summary_before = self.summary.text()
            return
        if self._activity and self.summary.text() == self._activity:   # cancelled: nothing to say
            self.summary.setText(self._summary_before or "No evaluation yet.")
        self._activity = ""
        self._summary_before = None

    def show_activity(self, text: str) -> None:
        """What the running job does, in the summary line until it ends."""
        if self._summary_before is None:
            self._summary_before = self.summary.text()
        self._activity = text
        self.summary.setText(text)

    def show_failure(self, message: str) -> None:
        """Why the last job failed, here (the banner above the image holds it too, until dismissed)."""
        before = self._summary_before if self._summary_before is not None else self.summary.text()
        self._activity = ""
        self.summary.setText(f"<span style='color:#b00020'><b>Failed:</b> {escape(message)}</span>"
                             + (f"<br>{before}" if before else ""))

    # ----- event slots -------------------------------------------------------------------
    def show_evaluation(self, evaluation) -> None:
        """A ``workflows.ProjectEvaluation`` was recorded: show it."""
        self.show_report(evaluation.version, evaluation.split, evaluation.report, dict(evaluation.per_image))

    def show_current(self, _version: object = None) -> None:
        """The current model changed: show its newest recorded evaluation (or say there is none)."""
        self.set_project(self.project)

    # ----- display -----------------------------------------------------------------------
    def show_report(self, version: int, split: str, report: EvaluationReport,
                    per_image: dict[int, float | None] | None = None) -> None:
        """Fill every tab from one evaluation (per-image scores by id; default: the report's, by stem)."""
        if per_image is None:
            per_image = {}
            for stem, miou in report.per_image.items():
                rec = self.project.find(stem) if self.project is not None else None
                if rec is not None:
                    per_image[rec.id] = miou
        self.last_report = report
        s = report.scores
        before = self._previous_miou(version, split)
        change = "" if before is None or s.miou is None else \
            f"  (v{before[0]}: {_fmt(before[1])} → v{version}: {_fmt(s.miou)}, {s.miou - before[1]:+.3f})"
        note = f"; {len(report.missing)} image(s) without a reference mask" if report.missing else ""
        self.summary.setText(f"<b>Model v{version}</b> on {split} ({report.images} images{note}): "
                             f"<b>mIoU {_fmt(s.miou)}</b>, pixel accuracy {_fmt(s.pixel_accuracy)}{change}")
        self._fill_classes(report.class_names, s.per_class_iou)
        self._fill_confusion(report.class_names, np.asarray(report.confusion))
        names = {}
        if self.project is not None:
            for image_id in per_image:
                try:
                    names[image_id] = self.project.get(image_id).name
                except Exception:  # removed meanwhile
                    continue
        self.per_image.setSortingEnabled(False)
        self.per_image.setRowCount(len(names))
        self._image_ids = {}
        for row, (image_id, name) in enumerate(names.items()):
            self.per_image.setItem(row, 0, QTableWidgetItem(name))
            self.per_image.setItem(row, 1, NumericItem(per_image[image_id]))
            self._image_ids[name] = image_id
        self.per_image.setSortingEnabled(True)
        self.per_image.sortItems(1, Qt.SortOrder.AscendingOrder)  # worst first
        self.refresh_history()

    def refresh_history(self) -> None:
        """Re-read ``project.metrics_history()``, newest first."""
        entries = [] if self.project is None else list(reversed(self.project.metrics_history()))
        self.history.setRowCount(len(entries))
        for row, e in enumerate(entries):
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(e.get("time") or 0))
            cells = [f"v{e.get('version')}", str(e.get("split", "")), NumericItem(e.get("miou")),
                     NumericItem(e.get("pixel_accuracy")), str(e.get("images", "")), when]
            for col, c in enumerate(cells):
                self.history.setItem(row, col, c if isinstance(c, QTableWidgetItem) else QTableWidgetItem(c))

    def _show_recorded(self) -> None:
        # On opening, show the newest recorded evaluation of the current model.
        current = self.project.current_model()
        if current is None:
            self.summary.setText("No model yet: label some images, then Retrain.")
            return
        for e in reversed(self.project.metrics_history()):
            if e.get("version") == current.version and "confusion" in e:
                report = EvaluationReport(
                    scores=_scores_from_entry(e), images=int(e.get("images", 0)),
                    missing=list(e.get("missing", [])), per_image=dict(e.get("per_image", {})),
                    problems=list(e.get("problems", [])), class_names=list(e.get("class_names", [])),
                    confusion=np.asarray(e["confusion"], np.int64))
                self.show_report(current.version, e.get("split", "val"), report)
                return
        self.summary.setText(f"Model v{current.version} has not been evaluated yet: press Evaluate.")

    def _previous_miou(self, version: int, split: str) -> tuple[int, float | None] | None:
        if self.project is None:
            return None
        parent = None
        for m in self.project.models():
            if m.version == version:
                parent = m.parent
        older = [e for e in self.project.metrics_history()
                 if e.get("split") == split and e.get("version") is not None and e["version"] != version
                 and (e["version"] == parent if parent is not None else e["version"] < version)]
        if not older:
            return None
        e = older[-1]
        return int(e["version"]), e.get("miou")

    def _fill_classes(self, names: list[str], ious: list[float | None]) -> None:
        self.classes.setRowCount(len(names))
        for row, (name, iou) in enumerate(zip(names, ious)):
            self.classes.setItem(row, 0, QTableWidgetItem(name))
            self.classes.setItem(row, 1, NumericItem(iou))

    def _fill_confusion(self, names: list[str], matrix: np.ndarray) -> None:
        self.confusion_view.show_matrix(names, matrix)

    def _on_image_clicked(self, row: int, _col: int) -> None:
        item = self.per_image.item(row, 0)
        if item is not None and item.text() in self._image_ids:
            self.imageRequested.emit(self._image_ids[item.text()])


def _scores_from_entry(e: dict):
    from workbench.metrics import Scores

    return Scores(e.get("miou"), e.get("pixel_accuracy"), list(e.get("per_class_iou", [])), int(e.get("pixels", 0)))

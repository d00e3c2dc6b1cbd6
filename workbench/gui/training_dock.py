"""The training dock: Retrain / Cancel / Settings, live loss and validation mIoU curves, ETA."""

from __future__ import annotations

import math
import time

import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from workbench.progress import Progress


IDLE_TEXT = "Retrain makes a new model version from the saved labels of the train split."


def format_eta(seconds: float | None) -> str:
    """"2 min 05 s" style remaining time; empty when unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return ""
    seconds = int(round(seconds))
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds} s"


def run_fraction(done: float, total: float | None, eta_s: object, elapsed_s: float | None) -> float | None:
    """How far the run is, 0..1, consistent with its ETA.

    With a minutes budget the trainer ends on time, not after its epochs: the step count
    then understates progress (22 % done by steps while the ETA says two thirds of the time
    is gone, issue 12.5). When the ETA is known the bar shows elapsed / (elapsed + ETA).
    """
    if (isinstance(eta_s, (int, float)) and math.isfinite(eta_s) and eta_s >= 0
            and elapsed_s is not None and elapsed_s > 0):
        return min(1.0, elapsed_s / (elapsed_s + float(eta_s)))
    if total:
        return min(1.0, max(0.0, float(done) / float(total)))
    return None


class TrainingPanel(QWidget):
    """Buttons, a progress bar, a status line and two curves fed by trainer progress."""

    retrainRequested = Signal()
    cancelRequested = Signal()
    settingsRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.retrain_button = QPushButton("Retrain")
        self.retrain_button.setToolTip("Train a new model version on the saved labels of the train split "
                                       "(fine-tunes the current model); Ctrl+R")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.settings_button = QPushButton("Settings…")
        self.bar = QProgressBar()
        self.bar.setTextVisible(True)
        self.bar.hide()             # shown while a run is in progress
        self.status = QLabel(IDLE_TEXT)
        self.status.setWordWrap(True)
        pg.setConfigOptions(antialias=True, background="w", foreground="k")
        self.plot = pg.PlotWidget()
        self.plot.setMinimumHeight(140)
        legend = self.plot.addLegend(offset=(-5, 5))
        item = self.plot.getPlotItem()
        item.setLabel("bottom", "epoch")
        item.setLabel("left", "train loss")
        # Epochs are epochs: no "(x0.001)" SI rescaling of the axes during the first epoch (issue 12.5).
        for side in ("bottom", "left", "right"):
            item.getAxis(side).enableAutoSIPrefix(False)
        self.plot.showGrid(x=True, y=True, alpha=0.3)
        self.loss_curve = self.plot.plot([], [], pen=pg.mkPen("#d62828", width=2), name="train loss")
        # val mIoU on its own 0..1 axis on the right (pyqtgraph's multiple-axes recipe): a loss of
        # 2.3 and an mIoU of 0.4 on one axis flattened the mIoU curve.
        self.miou_view = pg.ViewBox()
        self.miou_view.setMouseEnabled(x=False, y=False)
        item.showAxis("right")
        item.scene().addItem(self.miou_view)
        item.getAxis("right").linkToView(self.miou_view)
        item.getAxis("right").setLabel("val mIoU")
        self.miou_view.setXLink(item)
        self.miou_view.setYRange(0.0, 1.0, padding=0.02)
        self.miou_view.enableAutoRange(axis=pg.ViewBox.YAxis, enable=False)
        self.miou_curve = pg.PlotDataItem([], [], pen=pg.mkPen("#2e9e4f", width=2), symbol="o", symbolSize=5,
                                          symbolBrush="#2e9e4f", name="val mIoU")
        self.miou_view.addItem(self.miou_curve)
        legend.addItem(self.miou_curve, "val mIoU")
        item.vb.sigResized.connect(self._align_views)
        self._align_views()
        self._started: float | None = None      # monotonic time the run started (for the bar)
        self._eta_at: tuple[float, float] | None = None   # (when, ETA) of the last report with one
        buttons = QHBoxLayout()
        for b in (self.retrain_button, self.cancel_button, self.settings_button):
            buttons.addWidget(b)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(buttons)
        layout.addWidget(self.bar)
        layout.addWidget(self.status)
        layout.addWidget(self.plot, 1)
        self.retrain_button.clicked.connect(self.retrainRequested)
        self.cancel_button.clicked.connect(self.cancelRequested)
        self.settings_button.clicked.connect(self.settingsRequested)
        self.loss: list[tuple[float, float]] = []
        self.miou: list[tuple[float, float]] = []

    def _align_views(self) -> None:
        # The mIoU view box sits exactly over the loss view box and follows its x range.
        vb = self.plot.getPlotItem().vb
        self.miou_view.setGeometry(vb.sceneBoundingRect())
        self.miou_view.linkedViewChanged(vb, self.miou_view.XAxis)

    def set_running(self, running: bool) -> None:
        """Switch buttons between idle and running; clears the curves on start."""
        self.retrain_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.bar.setVisible(running)
        if running:
            self.loss.clear()
            self.miou.clear()
            self.loss_curve.setData([], [])
            self.miou_curve.setData([], [])
            self.bar.setRange(0, 0)
            self._started = time.monotonic()
            self._eta_at = None
            self.status.setText("Starting training…")

    def show_progress(self, p: Progress) -> None:
        """Update the bar, the status line and the curves from one trainer report."""
        info = p.info
        epoch, epochs = info.get("epoch"), info.get("epochs")
        step, steps = info.get("step"), info.get("steps")
        now = time.monotonic()
        eta_s = info.get("eta_s")
        if isinstance(eta_s, (int, float)):
            self._eta_at = (now, float(eta_s))
        elif self._eta_at is not None:        # a report without an ETA (validating): count the last one down
            eta_s = max(0.0, self._eta_at[1] - (now - self._eta_at[0]))
        fraction = run_fraction(p.done, p.total, eta_s, None if self._started is None else now - self._started)
        if fraction is not None:
            self.bar.setRange(0, 1000)
            self.bar.setValue(int(round(1000 * fraction)))
            self.bar.setFormat(f"{100 * fraction:.0f} %")
        # x axis in (fractional) epochs so loss per step and mIoU per epoch share it
        x = None
        if isinstance(epoch, (int, float)):
            x = float(epoch)
            if isinstance(step, (int, float)) and isinstance(steps, (int, float)) and steps:
                x = float(epoch) - 1 + float(step) / float(steps) if epoch >= 1 else float(step) / float(steps)
        loss = info.get("loss")
        if isinstance(loss, (int, float)) and math.isfinite(loss) and x is not None:
            self.loss.append((x, float(loss)))
            self.loss_curve.setData([a for a, _ in self.loss], [b for _, b in self.loss])
        val = info.get("val_miou")
        if isinstance(val, (int, float)) and math.isfinite(val) and isinstance(epoch, (int, float)):
            if not self.miou or self.miou[-1][0] != float(epoch):
                self.miou.append((float(epoch), float(val)))
                self.miou_curve.setData([a for a, _ in self.miou], [b for _, b in self.miou])
        parts = []
        if epoch is not None:
            parts.append(f"epoch {epoch}" + (f"/{epochs}" if epochs else ""))
        if isinstance(loss, (int, float)):
            parts.append(f"loss {loss:.3f}")
        if isinstance(val, (int, float)):
            parts.append(f"val mIoU {val:.3f}")
        eta = format_eta(info.get("eta_s"))
        if eta:
            parts.append(f"about {eta} left")
        self.status.setText(", ".join(parts) or p.message or "Training…")

    def set_project(self, project: object | None) -> None:
        """Another project (or none) is open: forget the last run's line and curves."""
        self.set_running(False)
        self.loss.clear()
        self.miou.clear()
        self.loss_curve.setData([], [])
        self.miou_curve.setData([], [])
        self.status.setText(IDLE_TEXT)

    def show_outcome(self, message: str) -> None:
        """Final line of a run."""
        self.set_running(False)
        self.status.setText(message)

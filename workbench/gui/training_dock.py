"""The training dock: Retrain / Cancel / Settings, live loss and validation mIoU curves, ETA."""

from __future__ import annotations

import math

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
        self.plot.addLegend(offset=(-5, 5))
        self.plot.setLabel("bottom", "epoch")
        self.plot.showGrid(x=True, y=True, alpha=0.3)
        self.loss_curve = self.plot.plot([], [], pen=pg.mkPen("#d62828", width=2), name="train loss")
        self.miou_curve = self.plot.plot([], [], pen=pg.mkPen("#2e9e4f", width=2), symbol="o", symbolSize=5,
                                         symbolBrush="#2e9e4f", name="val mIoU")
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
            self.status.setText("Starting training…")

    def show_progress(self, p: Progress) -> None:
        """Update the bar, the status line and the curves from one trainer report."""
        info = p.info
        epoch, epochs = info.get("epoch"), info.get("epochs")
        step, steps = info.get("step"), info.get("steps")
        if p.total:
            self.bar.setRange(0, int(p.total))
            self.bar.setValue(int(min(p.done, p.total)))
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

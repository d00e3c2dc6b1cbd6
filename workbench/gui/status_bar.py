"""Permanent status-bar fields: cursor, classes under it, save state, device, model, batch progress."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QProgressBar, QPushButton, QStatusBar, QWidget

from workbench.gui.legend import OverlayLegend


class StatusFields(QWidget):
    """Owns the labels it adds to a QStatusBar; the window feeds them plain values."""

    cancelRequested = Signal()

    def __init__(self, bar: QStatusBar, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.cursor = QLabel("")
        self.under = QLabel("")
        self.saved = QLabel("")
        self.device = QLabel("")
        self.model = QLabel("")
        self.training = QLabel("")       # the running Retrain, whichever panel is in front (issue 12.11)
        self.legend = OverlayLegend()    # what solid / hatched / red mean on the canvas (issue 12.8)
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(160)
        self.progress.setFormat("Predict all %v/%m")
        self.cancel = QPushButton("Cancel")
        self.cancel.setToolTip("Stop Predict all (Ctrl+.)")
        # Clicking Cancel must not take the keyboard focus: when it hides, Qt would hand the
        # focus to the next widget, the list's filter box, and D would type "d" (issue 12.1).
        self.cancel.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        for w in (self.legend, self.cursor, self.under, self.saved, self.training, self.progress, self.cancel,
                  self.device, self.model):
            bar.addPermanentWidget(w)
        self.progress.hide()
        self.cancel.hide()
        self.training.hide()
        self.cancel.clicked.connect(self.cancelRequested)

    def set_project(self, _project: object = None) -> None:
        """Another project is open: no run, no batch of the previous one."""
        self.show_training("")
        self.show_batch(0, 0)

    def show_training(self, text: str) -> None:
        """'Training: epoch 2/10, …' while a Retrain runs; empty hides it."""
        self.training.setText(f"<b>Training:</b> {text}" if text else "")
        self.training.setVisible(bool(text))

    def show_cursor(self, x: int | None, y: int | None, label: str, prediction: str | None) -> None:
        """Cursor position and the class under it in the labels and in the prediction."""
        if x is None or y is None:
            self.cursor.setText("")
            self.under.setText("")
            return
        self.cursor.setText(f"x {x}, y {y}")
        pred = f" | prediction: {prediction}" if prediction is not None else ""
        self.under.setText(f"label: {label}{pred}")

    def show_saved(self, unsaved: bool, failed: int = 0) -> None:
        """'unsaved edits' (autosave pending), 'saved', or 'NOT SAVED' while any save has failed."""
        if failed:
            self.saved.setText(f"<b style='color:#d62828'>NOT SAVED ({failed} image{'s' if failed > 1 else ''})</b>")
            self.saved.setToolTip("Saving failed; the edits are kept in memory and saving is retried "
                                  "when you switch images or press Ctrl+S. See the image list (red).")
        else:
            self.saved.setText("unsaved edits" if unsaved else "saved")
            self.saved.setToolTip("")

    def show_model(self, version: int | None, device: str) -> None:
        """Compute device and current model version (or 'no model yet')."""
        self.device.setText(device)
        self.model.setText(f"model v{version}" if version is not None else "no model yet")

    def show_batch(self, done: int, total: int) -> None:
        """Progress of Predict all; hidden when total is 0."""
        running = total > 0
        self.progress.setVisible(running)
        self.cancel.setVisible(running)
        if running:
            self.progress.setRange(0, total)
            self.progress.setValue(done)

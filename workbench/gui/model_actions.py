"""Model commands: Predict all, Retrain, Cancel, Evaluate, import ground truth, training settings.

Slots for buttons and menu items; each catches ``WorkbenchError`` and shows it. When a
training run registers a new version, predictions of the image on screen refresh and
the new version is scored on the val split (the panel shows before -> after).
"""

from __future__ import annotations

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QFileDialog, QWidget

from workbench.errors import WorkbenchError
from workbench.gui.image_list import ImageListModel, ImageListPanel
from workbench.gui.metrics_controller import MetricsController
from workbench.gui.metrics_panel import MetricsPanel
from workbench.gui.notifier import Notifier
from workbench.gui.prediction_service import PredictionService
from workbench.gui.session import EditSession
from workbench.gui.settings_dialog import SettingsDialog
from workbench.gui.status_bar import StatusFields
from workbench.gui.training_controller import (SETTINGS_KEY, TrainingController, TrainingOutcome,
                                               stored_settings)
from workbench.gui.training_dock import TrainingPanel
from workbench.gui.workspace import Workspace
from workbench.progress import Progress


class ModelActions(QObject):
    """Connects the model-related controllers to their panels and to the window's messages."""

    def __init__(self, window: QWidget, workspace: Workspace, session: EditSession,
                 predictions: PredictionService, training: TrainingController, metrics: MetricsController,
                 training_panel: TrainingPanel, metrics_panel: MetricsPanel, list_model: ImageListModel,
                 list_panel: ImageListPanel, status: StatusFields, notifier: Notifier) -> None:
        super().__init__(window)
        self.window = window
        self.workspace, self.session, self.predictions = workspace, session, predictions
        self.training, self.metrics = training, metrics
        self.training_panel, self.metrics_panel = training_panel, metrics_panel
        self.list_model, self.list_panel = list_model, list_panel
        self.status, self.notifier = status, notifier
        self.dialog: SettingsDialog | None = None

        predictions.batchProgress.connect(self._on_batch_progress)
        predictions.batchFinished.connect(self._on_batch_finished)
        status.cancelRequested.connect(self.cancel_predictions)
        training_panel.retrainRequested.connect(self.retrain)
        training_panel.cancelRequested.connect(self.cancel_training)
        training_panel.settingsRequested.connect(self.edit_settings)
        training.progress.connect(self._on_training_progress)
        training.finished.connect(self._on_training_finished)
        training.failed.connect(self._on_failed)
        training.modelRegistered.connect(self._on_model_registered)
        metrics_panel.evaluateRequested.connect(self.evaluate)
        metrics_panel.importRequested.connect(self.import_ground_truth)
        metrics_panel.imageRequested.connect(workspace.open_image)
        metrics.evaluated.connect(self._on_evaluated)
        metrics.imported.connect(self._on_imported)
        metrics.failed.connect(self._on_failed)
        metrics.busyChanged.connect(metrics_panel.set_busy)

    # ----- predict ---------------------------------------------------------------------------
    def predict_all(self) -> None:
        """Predict every image in the list's visible order."""
        try:
            self.predictions.predict_all(self.list_panel.visible_ids())
        except WorkbenchError as exc:
            self.notifier.error(str(exc))

    def cancel_predictions(self) -> None:
        """Stop Predict all."""
        self.predictions.cancel()

    def cancel_all(self) -> None:
        """Stop every running job (Ctrl+.)."""
        self.predictions.cancel()
        self.training.cancel()
        self.metrics.cancel()

    def _on_batch_progress(self, done: int, total: int) -> None:
        self.status.show_batch(done, total)

    def _on_batch_finished(self, cancelled: bool) -> None:
        self.status.show_batch(0, 0)
        self.notifier.info("Predict all cancelled." if cancelled else "Predict all finished.")
        self.list_model.refresh()

    # ----- train -----------------------------------------------------------------------------
    def retrain(self) -> None:
        """Save the current image, then train a new version in the background."""
        try:
            self.session.save()
            self.training.start()
        except WorkbenchError as exc:
            self.notifier.error(f"Cannot retrain: {exc}")
            return
        self.training_panel.set_running(True)
        self.notifier.info("Training started; keep annotating - labels saved from now on go into the next run.")

    def cancel_training(self) -> None:
        """Stop the training run at its next step."""
        self.training.cancel()

    def _on_training_progress(self, p: Progress) -> None:
        self.training_panel.show_progress(p)

    def _on_training_finished(self, outcome: TrainingOutcome) -> None:
        self.training_panel.show_outcome(outcome.message)
        self.notifier.info(outcome.message)

    def _on_model_registered(self, version: int) -> None:
        self.workspace.model_changed()
        self.list_model.refresh()
        try:
            self.metrics.evaluate(version)
        except WorkbenchError as exc:
            self.notifier.info(f"Model v{version} not evaluated: {exc}")

    def edit_settings(self) -> None:
        """Open the training settings dialog; OK stores them in the project."""
        project = self.workspace.project
        if project is None:
            return
        self.dialog = SettingsDialog(stored_settings(project), self.status.device.text(), self.window)
        self.dialog.accepted.connect(self._store_settings)
        self.dialog.open()

    def _store_settings(self) -> None:
        project = self.workspace.project
        if project is None or self.dialog is None:
            return
        try:
            data = project.settings()
            data[SETTINGS_KEY] = self.dialog.values()
            project.save_settings(data)
        except WorkbenchError as exc:
            self.notifier.error(f"Could not save the settings: {exc}")
            return
        self.notifier.info("Training settings saved.", 3000)

    # ----- measure ---------------------------------------------------------------------------
    def evaluate(self) -> None:
        """Score the current model on the val split."""
        try:
            self.metrics.evaluate()
        except WorkbenchError as exc:
            self.notifier.error(f"Cannot evaluate: {exc}")

    def import_ground_truth(self) -> None:
        """Ask for a folder of reference masks and import it as ground truth."""
        folder = QFileDialog.getExistingDirectory(self.window, "Folder of ground-truth masks")
        if folder:
            try:
                self.metrics.import_ground_truth(folder)
            except WorkbenchError as exc:
                self.notifier.error(str(exc))

    def _on_imported(self, report) -> None:
        self.list_model.refresh()
        problems = f", {len(report.problems)} problem(s): {report.problems[0][0]}: {report.problems[0][1]}" \
            if report.problems else ""
        self.notifier.info(f"Imported {report.imported} ground-truth mask(s){problems}.")
        if self.predictions.has_model:
            self.evaluate()

    def _on_evaluated(self, result: tuple) -> None:
        version, split, report, per_image = result
        self.metrics_panel.show_report(version, split, report, per_image)
        self.list_model.refresh(list(per_image))

    def _on_failed(self, message: str) -> None:
        self.notifier.error(message)

"""Model commands: Predict all, Retrain, Cancel, Evaluate, training settings,
and the Models panel's actions (use a version, delete one, edit its note, promotion policy).

Slots for buttons and menu items; each catches ``WorkbenchError`` and shows it. The
work is done by ``workbench.workflows`` (in the controllers' workers, or here for the
quick project writes); what changed is announced through the project events, which
the panels and the canvas follow.
"""

from __future__ import annotations

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QInputDialog, QMessageBox, QWidget

from workbench.errors import WorkbenchError
from workbench.gui.image_list import ImageListPanel
from workbench.gui.metrics_controller import MetricsController
from workbench.gui.memory import release_memory
from workbench.gui.metrics_panel import MetricsPanel
from workbench.gui.models_panel import POLICY_TEXT, CandidateBanner, ModelsPanel
from workbench.gui.notifier import Notifier
from workbench.gui.prediction_service import PredictionService
from workbench.gui.project_events import ProjectEvents
from workbench.gui.session import EditSession
from workbench.gui.settings_dialog import SettingsDialog
from workbench.gui.status_bar import StatusFields
from workbench.gui.training_controller import TrainingController
from workbench.gui.training_dock import TrainingPanel
from workbench.gui.workspace import Workspace
from workbench.progress import Progress

TRAINING_LOCK = "a Retrain is running: class edits wait until it ends (it trains on the classes it started with)"


class ModelActions(QObject):
    """Connects the model-related controllers to their panels and to the window's messages."""

    def __init__(self, window: QWidget, events: ProjectEvents, workspace: Workspace, session: EditSession,
                 predictions: PredictionService, training: TrainingController, metrics: MetricsController,
                 training_panel: TrainingPanel, metrics_panel: MetricsPanel, models_panel: ModelsPanel,
                 candidate: CandidateBanner, palette, list_panel: ImageListPanel, status: StatusFields,
                 notifier: Notifier) -> None:
        super().__init__(window)
        self.window, self.events = window, events
        self.workspace, self.session, self.predictions = workspace, session, predictions
        self.training, self.metrics = training, metrics
        self.training_panel, self.metrics_panel, self.models_panel = training_panel, metrics_panel, models_panel
        self.candidate, self.palette, self.list_panel = candidate, palette, list_panel
        self.status, self.notifier = status, notifier
        self.dialog: SettingsDialog | None = None

        predictions.batchProgress.connect(self._on_batch_progress)
        predictions.batchFinished.connect(self._on_batch_finished)
        predictions.batchFailed.connect(self._on_failed)
        status.cancelRequested.connect(self.cancel_predictions)
        training_panel.retrainRequested.connect(self.retrain)
        training_panel.cancelRequested.connect(self.cancel_training)
        training_panel.settingsRequested.connect(self.edit_settings)
        training.started.connect(self._on_training_started)
        training.progress.connect(self._on_training_progress)
        training.finished.connect(self._on_training_finished)
        training.failed.connect(self._on_failed)
        metrics_panel.evaluateRequested.connect(self.evaluate)
        metrics_panel.imageRequested.connect(workspace.open_image)
        metrics.imported.connect(self._on_imported)
        metrics.evaluated.connect(release_memory)
        metrics.failed.connect(self._on_metrics_failed)
        metrics.activity.connect(metrics_panel.show_activity)
        metrics.busyChanged.connect(metrics_panel.set_busy)
        models_panel.useRequested.connect(self.use_version)
        models_panel.deleteRequested.connect(self.delete_version)
        models_panel.noteRequested.connect(self.edit_note)
        models_panel.policyChosen.connect(self.set_policy)
        candidate.useRequested.connect(self.use_version)
        for signal in (events.modelsChanged, events.currentModelChanged, events.metricsRecorded):
            signal.connect(self.show_models)

    @property
    def project(self):
        """The open project (None when none is)."""
        return self.workspace.project

    # ----- predict ---------------------------------------------------------------------------
    def predict_all(self) -> None:
        """Predict every image in the list's visible order (``workflows.predict_project``)."""
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

    def _on_batch_finished(self, outcome) -> None:
        self.status.show_batch(0, 0)
        release_memory()     # Predict all's own model and its tensors are gone: give the pages back
        if outcome is None:
            return
        problems = f"; {len(outcome.problems)} problem(s), first: {outcome.problems[0]}" if outcome.problems else ""
        if outcome.cancelled:
            self.notifier.info(f"Predict all cancelled after {len(outcome.predicted)} image(s){problems}.")
        else:
            self.notifier.info(f"Predict all finished: {len(outcome.predicted)} predicted, "
                               f"{outcome.skipped} already cached{problems}.")

    # ----- train -----------------------------------------------------------------------------
    def retrain(self) -> None:
        """Save the current image, then train a new version in the background."""
        try:
            self.session.save()
            self.training.start()
        except WorkbenchError as exc:
            self.notifier.error(f"Cannot retrain: {exc}")
            return
        self.notifier.info("Training started; keep annotating - labels saved from now on go into the next run.")

    def cancel_training(self) -> None:
        """Stop the training run at its next step."""
        self.training.cancel()

    def _lock_classes(self, reason: str | None) -> None:
        lock = getattr(self.palette, "set_locked", None)   # the Classes panel refuses edits meanwhile
        if lock is not None:
            lock(reason)

    def _on_training_started(self) -> None:
        self.training_panel.set_running(True)
        self.status.show_training("starting…")
        self.candidate.hide()
        self._lock_classes(TRAINING_LOCK)

    def _on_training_progress(self, p: Progress) -> None:
        self.training_panel.show_progress(p)
        self.status.show_training(self.training_panel.status.text())

    def _on_training_finished(self, outcome) -> None:
        self._lock_classes(None)
        self.status.show_training("")
        release_memory()     # the run's model copy, optimizer and batches are gone: give the pages back
        message = getattr(outcome, "app_message", "") or outcome.message   # the app's wording: no command
        self.training_panel.show_outcome(message)
        if outcome.version is not None and not outcome.promoted:
            self.candidate.show_candidate(outcome.version, message)
        else:
            self.notifier.info(message, 15000)

    def edit_settings(self) -> None:
        """Open the training settings dialog; OK stores them in the project."""
        from workbench.workflows import training_settings

        project = self.project
        if project is None:
            return
        self.dialog = SettingsDialog(training_settings(project), self.status.device.text(), self.window)
        self.dialog.accepted.connect(self._store_settings)
        self.dialog.open()

    def _store_settings(self) -> None:
        from workbench.workflows import SETTINGS_KEY

        project = self.project
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

    def _on_imported(self, report) -> None:
        message, details = describe_import(report)
        if report.problems or not report.imported:
            # A failed import stays on screen until dismissed, naming each file and why (issue 12.4).
            self.notifier.error(message, details)
            self.metrics_panel.show_failure(message)
        else:
            self.notifier.info(message, 15000)
        if self.predictions.has_model and report.imported:
            self.evaluate()

    def _on_failed(self, message: str) -> None:
        self.notifier.error(message)

    def _on_metrics_failed(self, message: str) -> None:
        self.notifier.error(message)
        self.metrics_panel.show_failure(message.partition("\n\n")[0])

    # ----- model versions (Models panel) -----------------------------------------------------
    def show_models(self, *_args: object) -> None:
        """Re-read the versions into the Models panel (subscribed to the project events)."""
        from workbench.workflows import model_summaries, promotion_policy

        project = self.project
        if project is None:
            self.models_panel.show_models([], [], "better")
            return
        try:
            summaries = model_summaries(project)
            policy = promotion_policy(project)
        except WorkbenchError as exc:
            self.notifier.error(f"Cannot list the model versions: {exc}")
            return
        self.models_panel.show_models(summaries, project.schema.names, policy, project.read_only)

    def use_version(self, version: int) -> None:
        """Make ``version`` current: predictions, the list's scores and the metrics follow."""
        from workbench.workflows import use_model

        project = self.project
        if project is None:
            return
        try:
            use_model(project, version)
        except WorkbenchError as exc:
            self.notifier.error(f"Cannot use v{version}: {exc}")
            return
        self.candidate.hide()
        self.events.current_model(version)
        self.notifier.info(f"Model v{version} is now current.", 8000)

    def delete_version(self, version: int) -> None:
        """Delete ``version`` and its files after the person confirms (never the current one)."""
        from workbench.workflows import delete_model

        project = self.project
        if project is None:
            return
        answer = QMessageBox.question(self.window, "Delete model version",
                                      f"Delete model v{version}, its file and its cached predictions? "
                                      "This cannot be undone.")
        if answer != QMessageBox.StandardButton.Yes:
            return
        try:
            delete_model(project, version)
        except WorkbenchError as exc:
            self.notifier.error(f"Cannot delete v{version}: {exc}")
            return
        if self.candidate.version == version:
            self.candidate.hide()
        self.events.models()
        self.notifier.info(f"Model v{version} deleted.", 8000)

    def edit_note(self, version: int) -> None:
        """Ask for ``version``'s note and store it."""
        from workbench.workflows import set_model_note

        project = self.project
        if project is None:
            return
        old = self.models_panel.summary(version)
        text, ok = QInputDialog.getText(self.window, "Model note", f"Note for v{version}:",
                                        text=(old.note or "") if old is not None else "")
        if not ok:
            return
        try:
            set_model_note(project, version, text)
        except WorkbenchError as exc:
            self.notifier.error(f"Cannot save the note of v{version}: {exc}")
            return
        self.events.models()

    def set_policy(self, policy: str) -> None:
        """Store the promotion policy ("better" or "always")."""
        from workbench.workflows import set_promotion_policy

        project = self.project
        if project is None:
            return
        try:
            set_promotion_policy(project, policy)
        except WorkbenchError as exc:
            self.notifier.error(f"Cannot store the promotion policy: {exc}")
            self.show_models()
            return
        self.notifier.info(f"New versions become current: {POLICY_TEXT.get(policy, policy)}.", 5000)


def describe_import(report, shown: int = 3) -> tuple[str, str]:
    """(one-paragraph message, every problem one per line) for a ground-truth import."""
    parts = [f"Imported {report.imported} of {report.total} ground-truth mask(s)"]
    if report.problems:
        first = "; ".join(f"{name}: {why}" for name, why in report.problems[:shown])
        more = f" (and {len(report.problems) - shown} more, see Details)" if len(report.problems) > shown else ""
        parts.append(f"{len(report.problems)} could not be imported: {first}{more}")
    if report.unmatched:
        parts.append(f"{len(report.unmatched)} mask file(s) match no image by name, e.g. {report.unmatched[0]}")
    if report.total == 0:
        parts.append("the folder holds no mask files (PNG masks named like the images)")
    details = "\n".join([f"{name}: {why}" for name, why in report.problems] +
                        [f"{name}: no image with this name" for name in report.unmatched])
    return ". ".join(parts) + ".", details

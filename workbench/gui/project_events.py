"""Project events: what a workflow or a Project write changed, announced as Qt signals.

One object per window. Controllers call the ``announce_*`` methods (or emit a signal
directly) after they changed the project; widgets subscribe to the signals and re-read
the project. Nobody refreshes another widget by hand (GUIDE 1.5).
"""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import QObject, Signal


class ProjectEvents(QObject):
    """The window's announcements of project changes (GUI thread only)."""

    imagesChanged = Signal(object)         # list of image ids, or None for all of them
    currentModelChanged = Signal(object)   # the new current version, or None
    schemaChanged = Signal()               # the class schema was saved
    metricsRecorded = Signal(object)       # a workflows.ProjectEvaluation (version, split, report, pairs)
    modelsChanged = Signal()               # versions added, deleted or annotated
    projectOpened = Signal(object)         # the Project now open, or None once it was closed

    def project_opened(self, project) -> None:
        """Another project (or none) is open: every per-project view resets from this one signal."""
        self.projectOpened.emit(project)

    def images(self, image_ids: Iterable[int] | None = None) -> None:
        """Some images (or all, ``None``) changed status, split, label or scores."""
        self.imagesChanged.emit(None if image_ids is None else list(image_ids))

    def current_model(self, version: int | None) -> None:
        """The project's current model is now ``version``: predictions and scores follow it."""
        self.currentModelChanged.emit(version)
        self.imagesChanged.emit(None)      # the list shows the current version's scores

    def models(self) -> None:
        """The list of model versions changed (a run registered, a version deleted, a note)."""
        self.modelsChanged.emit()

    def schema(self) -> None:
        """The class schema changed."""
        self.schemaChanged.emit()

    def training(self, outcome) -> None:
        """A finished ``workflows.train_project`` run: a new version, current or candidate."""
        if getattr(outcome, "version", None) is None:
            return
        self.modelsChanged.emit()
        if getattr(outcome, "promoted", False):
            self.current_model(outcome.version)

    def evaluation(self, evaluation, current_version: int | None) -> None:
        """A finished ``workflows.evaluate_project``: its scores were recorded."""
        self.metricsRecorded.emit(evaluation)
        self.modelsChanged.emit()          # per-version scores show in the Models panel
        if evaluation.version == current_version:
            self.imagesChanged.emit(None)  # per-image mIoU of the current version changed

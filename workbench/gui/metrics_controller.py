"""Evaluation (``workflows.evaluate_project``) and ground-truth import jobs, in one background worker."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from workbench.errors import WorkbenchError
from workbench.gui.project_events import ProjectEvents
from workbench.gui.workers import Job, JobError, JobRunner
from workbench.progress import Progress
from workbench.project import Project


class MetricsController(QObject):
    """Scores model versions on the val split; imports ground-truth folders."""

    evaluated = Signal(object)        # workflows.ProjectEvaluation (also announced as metricsRecorded)
    imported = Signal(object)         # ImportReport
    progress = Signal(object)         # Progress
    failed = Signal(str)
    busyChanged = Signal(bool)
    activity = Signal(str)            # what the running job does ("Evaluating v3 on val…")

    def __init__(self, events: ProjectEvents, device: str = "auto", parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.events = events
        self.project: Project | None = None
        self.device = device
        self._runner = JobRunner("metrics", 1, self)
        self._job: Job | None = None

    @property
    def busy(self) -> bool:
        """True while an evaluation or import runs."""
        return self._job is not None and not self._job.done

    def set_project(self, project: Project | None) -> None:
        """Work on ``project`` from now on."""
        self.project = project

    def evaluate(self, version: int | None = None, split: str = "val") -> None:
        """Score ``version`` (default: the current model) on ``split`` in the background."""
        if self.project is None:
            raise WorkbenchError("open a project first")
        from workbench.workflows import evaluate_project

        if version is None and self.project.current_model() is None:
            raise WorkbenchError("no model yet: label a few images and press Retrain first")
        if version is not None and version not in {m.version for m in self.project.models()}:
            raise WorkbenchError(f"there is no model version {version}")
        if self.busy:
            raise WorkbenchError("an evaluation is already running")
        which = f"v{version}" if version is not None else f"v{self.project.current_model().version}"
        self._start(Job(evaluate_project, self.project, version=version, split=split,
                        record=not self.project.read_only, device=self.device), self._on_evaluated)
        self.activity.emit(f"Evaluating {which} on {split}…")

    def import_ground_truth(self, folder: str | Path) -> None:
        """Import ``folder``'s masks as reference ground truth, then (caller) evaluate."""
        if self.project is None:
            raise WorkbenchError("open a project first")
        if self.busy:
            raise WorkbenchError("an evaluation is already running")
        self._start(Job(self.project.import_masks, folder, as_="ground-truth"), self._on_imported)
        self.activity.emit(f"Importing ground truth from {Path(folder).name}…")

    def cancel(self) -> None:
        """Stop the running job."""
        if self._job is not None:
            self._job.cancel()

    def shutdown(self, msecs: int) -> bool:
        """Cancel and wait up to ``msecs``."""
        self.cancel()
        return self._runner.wait(msecs)

    def _start(self, job: Job, on_returned) -> None:
        self._job = job
        job.signals.progress.connect(self._on_progress)
        job.signals.returned.connect(on_returned)
        job.signals.errored.connect(self._on_errored)
        job.signals.finished.connect(self._on_finished)
        self._runner.start(job)
        self.busyChanged.emit(True)

    def _on_progress(self, p: Progress) -> None:
        self.progress.emit(p)

    def _on_evaluated(self, evaluation) -> None:
        if self.project is None:
            return
        current = self.project.current_model()
        self.events.evaluation(evaluation, current.version if current is not None else None)
        self.evaluated.emit(evaluation)

    def _on_imported(self, report) -> None:
        if self.project is None:
            return
        self.events.images(None)
        self.imported.emit(report)

    def _on_errored(self, err: JobError) -> None:
        if not err.cancelled:
            self.failed.emit(err.message + (f"\n\n{err.details}" if err.details else ""))

    def _on_finished(self) -> None:
        if not self.busy:   # an evaluation started from the import's result keeps the panel busy
            self.busyChanged.emit(False)

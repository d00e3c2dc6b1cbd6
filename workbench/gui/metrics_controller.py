"""Evaluation and ground-truth import jobs for the metrics panel (one background worker)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from workbench.errors import WorkbenchError
from workbench.gui.project_evaluation import evaluate_split
from workbench.gui.workers import Job, JobError, JobRunner
from workbench.progress import Progress
from workbench.project import Project


class MetricsController(QObject):
    """Scores model versions on the val split; imports ground-truth folders."""

    evaluated = Signal(object)        # (version, split, EvaluationReport, {image id: mIoU})
    imported = Signal(object)         # ImportReport
    progress = Signal(object)         # Progress
    failed = Signal(str)
    busyChanged = Signal(bool)

    def __init__(self, device: str = "auto", parent: QObject | None = None) -> None:
        super().__init__(parent)
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
        models = {m.version: m for m in self.project.models()}
        if version is None:
            current = self.project.current_model()
            if current is None:
                raise WorkbenchError("no model yet: label a few images and press Retrain first")
            version = current.version
        if version not in models:
            raise WorkbenchError(f"there is no model version {version}")
        if self.busy:
            raise WorkbenchError("an evaluation is already running")
        self._start(Job(evaluate_split, self.project, version, models[version].path, split, device=self.device),
                    self._on_evaluated)

    def import_ground_truth(self, folder: str | Path) -> None:
        """Import ``folder``'s masks as reference ground truth, then (caller) evaluate."""
        if self.project is None:
            raise WorkbenchError("open a project first")
        if self.busy:
            raise WorkbenchError("an evaluation is already running")
        self._start(Job(self.project.import_masks, folder, as_="ground-truth"), self._on_imported)

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

    def _on_evaluated(self, result: tuple) -> None:
        self.evaluated.emit(result)

    def _on_imported(self, report) -> None:
        self.imported.emit(report)

    def _on_errored(self, err: JobError) -> None:
        if not err.cancelled:
            self.failed.emit(err.message + (f"\n\n{err.details}" if err.details else ""))

    def _on_finished(self) -> None:
        self.busyChanged.emit(False)

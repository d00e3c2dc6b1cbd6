"""Retrain with one click: ``workflows.train_project`` in a worker, its outcome announced.

The workflow does everything (snapshot of the labels, fine-tuning the current model,
registering the version, the promotion policy, removing a cancelled run's file); this
controller only runs it off the GUI thread and hands the ``TrainOutcome`` to the window
and to the project events.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from workbench.errors import WorkbenchError
from workbench.gui.project_events import ProjectEvents
from workbench.gui.workers import Job, JobError, JobRunner
from workbench.progress import Progress
from workbench.project import Project


def preload_trainer() -> None:
    """Import the trainer now, on the GUI thread, before the window is shown.

    Its import (torchvision, via the data pipeline) takes ~2 s and holds the GIL in C
    extension initialisation; done lazily in the worker it froze the window for 0.5 s
    when Retrain was pressed (benchmarks/bench_gui.py).
    """
    import workbench.ml.training  # noqa: F401
    import workbench.workflows  # noqa: F401


class TrainingController(QObject):
    """Starts and cancels training runs for one project; emits each run's outcome."""

    started = Signal()
    progress = Signal(object)          # workbench.progress.Progress from the trainer
    finished = Signal(object)          # workflows.TrainOutcome (cancelled ones too)
    failed = Signal(str)

    def __init__(self, events: ProjectEvents, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.events = events
        self.project: Project | None = None
        self._runner = JobRunner("training", 1, self)
        self._job: Job | None = None
        self._run_project: Project | None = None   # the project the running job trains

    @property
    def running(self) -> bool:
        """True while a run is in progress."""
        return self._job is not None and not self._job.done

    def set_project(self, project: Project | None) -> None:
        """Train on ``project`` from now on (a running job is cancelled by the caller)."""
        self.project = project

    def start(self) -> None:
        """Start a run with the project's stored settings; WorkbenchError when it cannot."""
        from workbench.workflows import config_from_settings, train_project

        project = self.project
        if project is None:
            raise WorkbenchError("open a project first")
        if self.running:
            raise WorkbenchError("a training run is already in progress")
        if project.read_only:
            raise WorkbenchError("the project is open read-only (another window has it); cannot train")
        # Built here, so that a bad stored setting is said at once, not from the worker.
        config, fine_tune = config_from_settings(project)
        self._job = Job(train_project, project, config, fine_tune=fine_tune)
        self._run_project = project
        self._job.signals.progress.connect(self._on_progress)
        self._job.signals.returned.connect(self._on_returned)
        self._job.signals.errored.connect(self._on_errored)
        self._runner.start(self._job)
        self.started.emit()

    def cancel(self) -> None:
        """Ask the run to stop at its next step."""
        if self._job is not None:
            self._job.cancel()

    def shutdown(self, msecs: int) -> bool:
        """Cancel and wait up to ``msecs``; True when the worker stopped (its partial file removed)."""
        self.cancel()
        return self._runner.wait(msecs)

    # ----- worker results (GUI thread) -------------------------------------------------------
    def _stale(self) -> bool:
        # Signals still queued from a run of a project that was closed (another may be open
        # now): its curve, "training cancelled" or errors must not land on this one (issue 12.3).
        return self.project is None or self.project is not self._run_project

    def _on_progress(self, p: Progress) -> None:
        if self._stale():
            return
        self.progress.emit(p)

    def _on_returned(self, outcome) -> None:
        if self._stale():          # the project was closed while the run ended
            return
        self.events.training(outcome)
        self.finished.emit(outcome)

    def _on_errored(self, err: JobError) -> None:
        from workbench.workflows import TrainOutcome

        if self._stale():
            return
        if err.cancelled:
            message = "training cancelled"
        else:
            self.failed.emit(err.message + (f"\n\n{err.details}" if err.details else ""))
            message = err.message
        self.finished.emit(_failed_outcome(TrainOutcome, err.cancelled, message))


def _failed_outcome(cls, cancelled: bool, message: str):
    """A TrainOutcome for a run that raised: nothing registered."""
    import dataclasses

    values = {f.name: None for f in dataclasses.fields(cls)}
    values.update(promoted=False, cancelled=cancelled, message=message)
    return cls(**values)

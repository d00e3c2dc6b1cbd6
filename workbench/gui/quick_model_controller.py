"""The quick model in the app: "Train quick model" and its live update while the person paints.

Training is ``workflows.quick.train_quick_project`` (what ``workbench train PROJECT
--quick`` runs) in a worker of its own, so it never waits behind a U-Net Retrain. In
live mode every finished stroke restarts a short single-shot timer (debounce); when it
fires the open image's label as painted so far (not yet saved) goes in with the saved
labels, and the new quick version supersedes the previous live one (which is deleted
unless it is still current). A stroke during a run queues one more run, never a pile.
The project events announce the new version: the Models panel lists it as "quick
model", and the canvas shows its prediction once it is current.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer, Signal

from workbench.gui.project_events import ProjectEvents
from workbench.gui.session import EditSession
from workbench.gui.workers import Job, JobError, JobRunner
from workbench.project import Project
from workbench.workflows.quick import train_quick_project

LIVE_DEBOUNCE_MS = 1200


class QuickModelController(QObject):
    """Runs quick model training in a worker; announces the new version through the events."""

    started = Signal()
    finished = Signal(object)     # workflows.TrainOutcome
    failed = Signal(str)

    def __init__(self, events: ProjectEvents, session: EditSession, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.events, self.session = events, session
        self.project: Project | None = None
        self.live = False
        self._runner = JobRunner("quick-model", 1, self)
        self._job: Job | None = None
        self._pending = False
        self._job_live = False
        self._last_live: int | None = None
        self.debounce = QTimer(self)
        self.debounce.setSingleShot(True)
        self.debounce.setInterval(LIVE_DEBOUNCE_MS)
        self.debounce.timeout.connect(self._live_update)

    def set_project(self, project: Project | None) -> None:
        """Follow another project (queued live work for the old one is dropped)."""
        if project is self.project:
            return
        self.debounce.stop()
        self._pending = False
        self._last_live = None
        self.project = project

    @property
    def running(self) -> bool:
        """True while a quick model is being trained."""
        return self._job is not None and not self._job.done

    def set_live(self, on: bool) -> None:
        """Turn the live update on (train now, then after each stroke) or off."""
        self.live = bool(on)
        if self.live:
            self.train(live=True)
        else:
            self.debounce.stop()
            self._pending = False

    def stroke_finished(self, *_args: object) -> None:
        """A stroke, fill or undo on the canvas: in live mode, train again once painting pauses."""
        if self.live and self.project is not None:
            self.debounce.start()

    def _live_update(self) -> None:
        self.train(live=True)

    def train(self, live: bool = False) -> bool:
        """Start a run now (or queue one after the run in flight); False without a project."""
        if self.project is None:
            return False
        if self.running:
            self._pending = True
            return True
        overrides = {}
        editor, image_id = self.session.editor, self.session.image_id
        if editor is not None and image_id is not None and editor.dirty:
            overrides[image_id] = editor.mask.copy()   # a snapshot: painting goes on meanwhile
        replace = self._last_live if live else None
        job = Job(train_quick_project, self.project, overrides=overrides, replace=replace, live=live)
        job.signals.returned.connect(self._on_returned)
        job.signals.errored.connect(self._on_errored)
        job.signals.finished.connect(self._on_finished)
        self._job_live = live
        self._job = self._runner.start(job)
        self.started.emit()
        return True

    def _on_returned(self, outcome) -> None:
        if self._job_live:
            self._last_live = outcome.version
        self.events.training(outcome)      # modelsChanged, and currentModelChanged when promoted
        self.finished.emit(outcome)

    def _on_errored(self, error: JobError) -> None:
        self._pending = False
        if not error.cancelled:
            self.failed.emit(error.message)

    def _on_finished(self) -> None:
        if self._pending and self.project is not None:
            self._pending = False
            self.train(live=self.live)

    def cancel(self) -> None:
        """Ask the run in flight to stop."""
        self.debounce.stop()
        self._pending = False
        self._runner.cancel_all()

    def shutdown(self, msecs: int) -> bool:
        """Cancel and wait up to ``msecs``; True when no run is left."""
        self.cancel()
        return self._runner.wait(msecs)

"""Background jobs: a plain function run on a thread pool, reporting through Qt signals.

The function receives ``on_progress`` and ``cancel`` keyword arguments (the same
contract as the CLI: ``workbench.progress``), so inference, training and evaluation run
unchanged in a worker. Signals carry plain data only; connect them to methods of
QObjects living on the GUI thread (a lambda slot may run in the worker thread in
PySide6), and never touch widgets from the function itself.

This is the small QRunnable equivalent of superqt's ``create_worker`` (GUIDE 5): we need
a progress signal fed by a callback, which superqt's function workers do not have.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from workbench.errors import CancelledError, WorkbenchError
from workbench.progress import CancelToken, Progress


@dataclass(frozen=True)
class JobError:
    """What went wrong in a job, as plain data: shown in the window, never swallowed."""

    message: str
    user_error: bool          # a WorkbenchError: the message is the whole story
    cancelled: bool
    details: str = ""         # the traceback for unexpected exceptions

    @classmethod
    def from_exception(cls, exc: BaseException) -> "JobError":
        """Classify ``exc``; unexpected ones keep their traceback for the details box."""
        if isinstance(exc, CancelledError):
            return cls(str(exc), True, True)
        if isinstance(exc, WorkbenchError):
            return cls(str(exc), True, False)
        if isinstance(exc, MemoryError) or "out of memory" in str(exc).lower():
            return cls("out of memory: try a smaller batch size or crop in Settings "
                       f"({exc.__class__.__name__}: {exc})", True, False)
        details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        return cls(f"unexpected error: {exc.__class__.__name__}: {exc}", False, False, details)


class JobSignals(QObject):
    """Signals of one job; created on the GUI thread, emitted from the worker."""

    progress = Signal(object)   # workbench.progress.Progress
    returned = Signal(object)   # the function's return value
    errored = Signal(object)    # JobError (cancellation included, with cancelled=True)
    finished = Signal()         # always last, after returned or errored


# Jobs whose function is running: each keeps itself (and so its signals object) alive until
# its last emit. Without this, a window deleted while a job runs (quitting during a Retrain)
# took the last reference to the Job with it and the worker's next emit raised
# "RuntimeError: Signal source has been deleted" (issue 8.8).
_RUNNING: set["Job"] = set()
_RUNNING_LOCK = threading.Lock()


class Job(QRunnable):
    """One call of ``fn(*args, on_progress=..., cancel=..., **kwargs)`` on a thread pool."""

    def __init__(self, fn: Callable[..., Any], *args: Any, progress: bool = True, **kwargs: Any) -> None:
        super().__init__()
        self.setAutoDelete(False)  # the owner keeps the Python object (and its signals) alive
        self.signals = JobSignals()
        self.token = CancelToken()
        self._fn, self._args, self._kwargs = fn, args, kwargs
        self._with_progress = progress
        self.done = False

    def cancel(self) -> None:
        """Ask the function to stop at its next ``progress.check``."""
        self.token.cancel()

    def _emit(self, signal_name: str, *args: Any) -> None:
        # The receivers may be gone (window closed, app quitting): a signal nobody can
        # receive is dropped, never an exception in the worker thread.
        try:
            getattr(self.signals, signal_name).emit(*args)
        except RuntimeError:
            pass

    def _emit_progress(self, p: Progress) -> None:
        self._emit("progress", p)

    def run(self) -> None:  # runs in the pool's thread
        """Call the function and turn its outcome into signals."""
        with _RUNNING_LOCK:
            _RUNNING.add(self)
        try:
            kwargs = dict(self._kwargs)
            if self._with_progress:
                kwargs.update(on_progress=self._emit_progress, cancel=self.token)
            result = self._fn(*self._args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - every failure must reach the window
            self._emit("errored", JobError.from_exception(exc))
        else:
            self._emit("returned", result)
        finally:
            self.done = True
            self._emit("finished")
            with _RUNNING_LOCK:
                _RUNNING.discard(self)


class JobRunner(QObject):
    """A private thread pool (one thread by default) that keeps its jobs alive until they end.

    One thread per service (prediction, training, metrics, thumbnails) means a long
    training run never queues behind, or starves, the prediction of the image on screen.
    """

    def __init__(self, name: str, threads: int = 1, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(name)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(threads)
        self.pool.setObjectName(name)
        self._jobs: list[Job] = []

    def start(self, job: Job) -> Job:
        """Queue ``job`` on this runner's pool; returns it for cancellation."""
        self._jobs = [j for j in self._jobs if not j.done]
        self._jobs.append(job)
        self.pool.start(job)
        return job

    @property
    def busy(self) -> bool:
        """True while any job of this runner has not finished."""
        return any(not j.done for j in self._jobs)

    def cancel_all(self) -> None:
        """Ask every job to stop; queued ones are dropped from the pool unrun."""
        for job in self._jobs:
            job.cancel()
            if not job.done and self.pool.tryTake(job):
                job.done = True  # never ran: no signal will come

    def wait(self, msecs: int) -> bool:
        """Wait up to ``msecs`` for running jobs; True when all ended."""
        return self.pool.waitForDone(msecs)

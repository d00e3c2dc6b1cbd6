"""Predictions for the image list: one background worker with its own Predictor.

Requests go into a queue served one image at a time on a private one-thread pool:
the image on screen jumps the queue, its neighbours are predicted ahead, and
"Predict all" is ``workflows.predict_project`` (what ``workbench predict PROJECT``
runs) in a worker of its own, with a progress count. Each result carries (image id,
model version); results for an older version are dropped. Results are cached in
memory (bounded) and on disk (by the workflow), so reopening an image shows its
prediction at once.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from workbench.errors import WorkbenchError
from workbench.gui.memory import release_memory
from workbench.gui.workers import Job, JobError, JobRunner
from workbench.progress import CancelToken, Progress, check
from workbench.project import Project
from workbench.workflows.prediction import (PredictionResult, PredictorSlot, predict_image,
                                            predict_project, read_cached)

MEMORY_CACHE = 48
TRIM_EVERY_S = 30.0   # at most one heap trim per this many seconds of single-image predictions


def _read_cached_job(project: Project, image_id: int, version: int, *, on_progress=None,
                     cancel: CancelToken | None = None) -> tuple[int, int, PredictionResult | None]:
    """(image id, version, the disk-cached prediction or None): the cache worker's body."""
    check(cancel)
    return image_id, version, read_cached(project, image_id, version)


class PredictionService(QObject):
    """Queue, worker and caches for predictions of the current model version."""

    ready = Signal(object)            # PredictionResult of the current version
    failed = Signal(int, str)         # image id, message
    batchProgress = Signal(int, int)  # done, total of "Predict all"
    batchFinished = Signal(object)    # workflows.PredictOutcome, or None when it failed
    batchFailed = Signal(str)         # why Predict all stopped
    imagesChanged = Signal(list)      # ids whose status/scores changed on disk

    def __init__(self, device: str = "auto", parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.project: Project | None = None
        self.device = device
        self.version: int | None = None
        self.model_path: Path | None = None
        self._slot = PredictorSlot(device)
        self._runner = JobRunner("prediction", 1, self)
        self._cache_runner = JobRunner("prediction-cache", 1, self)
        self._batch_runner = JobRunner("predict-all", 1, self)
        self._batch_job: Job | None = None
        self._queue: deque[int] = deque()
        self._job: Job | None = None
        self._job_id: int | None = None
        self._job_version: int | None = None
        self._memory: OrderedDict[tuple[int, int], PredictionResult] = OrderedDict()
        self._trimmed = 0.0

    # ----- configuration ---------------------------------------------------------------------
    def set_project(self, project: Project | None) -> None:
        """Use ``project``'s current model (or none)."""
        self.project = project
        self._memory.clear()
        self.reload_model()

    def reload_model(self) -> None:
        """Follow ``project.current_model()``: drops queued work made for another version."""
        rec = self.project.current_model() if self.project is not None else None
        version = rec.version if rec is not None else None
        if version == self.version and (rec is None or rec.path == self.model_path):
            return
        self.cancel()
        self.version = version
        self.model_path = rec.path if rec is not None else None

    @property
    def has_model(self) -> bool:
        """True when a model version is available to predict with."""
        return self.version is not None

    @property
    def busy(self) -> bool:
        """True while a prediction runs or waits."""
        return bool(self._queue) or self._job is not None or self._cache_runner.busy or self.batch_running

    @property
    def batch_running(self) -> bool:
        """True while Predict all runs."""
        return self._batch_job is not None and not self._batch_job.done

    # ----- requests ---------------------------------------------------------------------------
    def cached(self, image_id: int) -> PredictionResult | None:
        """The in-memory result for the current version, if any."""
        if self.version is None:
            return None
        res = self._memory.get((image_id, self.version))
        if res is not None:
            self._memory.move_to_end((image_id, self.version))
        return res

    def request(self, image_id: int) -> PredictionResult | None:
        """Return the prediction now if in memory, else queue it first in line."""
        if self.version is None:
            return None
        res = self.cached(image_id)
        if res is not None:
            return res
        # The disk cache is read by a worker of its own, so the image on screen never waits
        # behind the model predicting a neighbour; a miss sends it to the front of the queue.
        job = Job(_read_cached_job, self.project, image_id, self.version)
        job.signals.returned.connect(self._on_cache_read)
        job.signals.errored.connect(self._on_cache_error)
        self._cache_runner.start(job)
        return None

    def _on_cache_read(self, result: tuple) -> None:
        image_id, version, res = result
        if version != self.version:
            return
        if res is not None:
            self._on_returned(res)
            return
        if not self._in_flight(image_id):
            if image_id in self._queue:
                self._queue.remove(image_id)
            self._queue.appendleft(image_id)
        self._pump()

    def _on_cache_error(self, err: JobError) -> None:
        if not err.cancelled:
            self.failed.emit(-1, err.message)

    def prefetch(self, image_ids: list[int]) -> None:
        """Queue ``image_ids`` after what is already queued (predict ahead)."""
        if self.version is None:
            return
        for i in image_ids:
            if (i, self.version) not in self._memory and i not in self._queue and not self._in_flight(i):
                self._queue.append(i)
        self._pump()

    def predict_all(self, image_ids: list[int]) -> None:
        """Predict (and cache) every image in ``image_ids`` with the current version, in order."""
        if self.version is None or self.project is None:
            raise WorkbenchError("no model yet: label a few images and press Retrain first")
        if self.batch_running:
            raise WorkbenchError("Predict all is already running")
        job = Job(predict_project, self.project, version=self.version, image_ids=list(image_ids),
                  device=self.device)
        job.signals.progress.connect(self._on_batch_progress)
        job.signals.returned.connect(self._on_batch_returned)
        job.signals.errored.connect(self._on_batch_errored)
        self._batch_job = job
        self._batch_runner.start(job)
        self.batchProgress.emit(0, len(image_ids))

    def cancel(self) -> None:
        """Drop the queue and stop the image in flight and Predict all."""
        self._queue.clear()
        if self._job is not None and not self._job.done:
            self._job.cancel()
        if self._batch_job is not None:
            self._batch_job.cancel()

    def shutdown(self, msecs: int) -> bool:
        """Cancel and wait up to ``msecs``; True when the workers stopped."""
        self.cancel()
        self._cache_runner.cancel_all()
        return all([self._runner.wait(msecs), self._cache_runner.wait(msecs), self._batch_runner.wait(msecs)])

    # ----- worker plumbing ------------------------------------------------------------------
    def _in_flight(self, image_id: int) -> bool:
        # True when the running job will deliver this image for the current version.
        job = self._job
        return (job is not None and not job.done and not job.token.cancelled
                and self._job_id == image_id and self._job_version == self.version)

    def _pump(self) -> None:
        # Wait for the previous job's `finished` (not just its thread) so its signals, which
        # refer to _job_id, are all handled before the next job starts.
        if self._job is not None:
            return
        if not self._queue or self.project is None or self.version is None:
            return
        image_id = self._queue.popleft()
        self._job_id = image_id
        self._job_version = self.version
        self._job = Job(predict_image, self.project, image_id, self.version, self.model_path, self._slot)
        self._job.signals.returned.connect(self._on_returned)
        self._job.signals.errored.connect(self._on_errored)
        self._job.signals.finished.connect(self._on_finished)
        self._runner.start(self._job)

    def _on_returned(self, res: PredictionResult) -> None:
        if res.version != self.version:
            return  # made by a model that is no longer current
        self._memory[(res.image_id, res.version)] = res
        while len(self._memory) > MEMORY_CACHE:
            self._memory.popitem(last=False)
        self.imagesChanged.emit([res.image_id])
        self.ready.emit(res)

    def _on_errored(self, err: JobError) -> None:
        image_id = self._job_id
        if err.cancelled:
            return
        if image_id is not None:
            self.failed.emit(image_id, err.message + (f"\n\n{err.details}" if err.details else ""))

    def _on_finished(self) -> None:
        self._job = None
        self._job_id = None
        self._pump()
        if self._job is None and not self.batch_running and time.monotonic() - self._trimmed > TRIM_EVERY_S:
            # The queue ran dry: the model's scratch tensors are free, give their pages back
            # (~100 MiB after the first 480 x 360 prediction; benchmarks/bench_memory.py).
            self._trimmed = time.monotonic()
            release_memory(collect=False)

    def _on_batch_progress(self, p: Progress) -> None:
        if p.total:
            self.batchProgress.emit(int(p.done), int(p.total))

    def _on_batch_returned(self, outcome) -> None:
        self._batch_job = None
        if self.project is None:
            return
        if outcome.predicted:
            self.imagesChanged.emit(list(outcome.predicted))
        for name, problem in outcome.problems:     # an unreadable image: said per image, the rest ran
            rec = self.project.find(name)
            self.failed.emit(rec.id if rec is not None else -1, problem if name in problem else f"{name}: {problem}")
        self.batchFinished.emit(outcome)

    def _on_batch_errored(self, err: JobError) -> None:
        self._batch_job = None
        self.batchFinished.emit(None)
        if not err.cancelled:
            self.batchFailed.emit(f"Predict all stopped: {err.message}" + (f"\n\n{err.details}" if err.details else ""))

"""Predictions for the image list: one background worker with its own Predictor.

Requests go into a queue served one image at a time on a private one-thread pool:
the image on screen jumps the queue, its neighbours are predicted ahead, and
"Predict all" is the same queue with a progress count (so Cancel takes effect after
the image in flight). Each result carries (image id, model version); results for
an older version are dropped. Results are cached in memory (bounded) and on disk
(``project.save_prediction``), so reopening an image shows its prediction at once.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal

from workbench.errors import WorkbenchError
from workbench.gui.workers import Job, JobError, JobRunner
from workbench.progress import CancelToken, check
from workbench.project import Project

MEMORY_CACHE = 48


@dataclass(frozen=True)
class PredictionResult:
    """A model's prediction for one image (plain data; never mutated after it is made)."""

    image_id: int
    version: int
    mask: np.ndarray                 # (H, W) uint8 class indices
    confidence: np.ndarray | None    # (H, W) float32 0..1, None when not stored
    uncertainty: float | None        # mean entropy (fresh predictions only)
    miou: float | None               # against the image's reference mask, when it has one


class PredictorSlot:
    """The worker thread's own Predictor, loaded once per model version (never shared)."""

    def __init__(self, device: str = "auto") -> None:
        self.device = device
        self.version: int | None = None
        self.predictor = None

    def get(self, version: int, path: Path):
        """The Predictor for ``version``, loading it from ``path`` when it changed."""
        if self.version != version or self.predictor is None:
            from workbench.ml.inference import Predictor  # torch loads only when a model exists

            self.predictor = None
            self.predictor = Predictor.from_checkpoint(path, device=self.device)
            self.version = version
        return self.predictor


def read_cached(project: Project, image_id: int, version: int, *, on_progress=None,
                cancel: CancelToken | None = None) -> tuple[int, int, PredictionResult | None]:
    """(image id, version, the disk-cached prediction or None); no Qt (runs in a worker)."""
    check(cancel)
    try:
        cached = project.read_prediction(image_id, version)
    except WorkbenchError:
        cached = None   # a damaged cache file: predict again (and overwrite it)
    if cached is None:
        return image_id, version, None
    mask, conf = cached
    rec = project.get(image_id)
    return image_id, version, PredictionResult(image_id, version, mask, conf, rec.uncertainty, rec.miou)


def predict_image(project: Project, image_id: int, version: int, model_path: Path, slot: PredictorSlot,
                  *, use_cache: bool = True, cancel: CancelToken | None = None,
                  on_progress=None) -> PredictionResult:
    """Cached or fresh prediction of one image by model ``version``; no Qt (runs in a worker)."""
    check(cancel)
    if use_cache:
        try:
            cached = project.read_prediction(image_id, version)
        except WorkbenchError:
            cached = None   # a damaged cache file: predict again (and overwrite it)
        if cached is not None:
            mask, conf = cached
            rec = project.get(image_id)
            return PredictionResult(image_id, version, mask, conf, rec.uncertainty, rec.miou)
    image = project.read_image(image_id)
    pred = slot.get(version, model_path).predict(image, cancel=cancel)
    mask = np.ascontiguousarray(pred.mask)
    uncertainty = float(np.mean(pred.entropy)) if pred.entropy is not None else None
    miou = None
    try:
        ref = project.reference_mask(image_id)
    except WorkbenchError:
        ref = None   # a broken reference mask must not hide the prediction
    if ref is not None and ref.shape == mask.shape:
        from workbench.metrics import score_pair

        miou = score_pair(mask, ref, project.schema).miou
    if not project.read_only:
        project.save_prediction(image_id, version, mask, pred.confidence)
        project.set_image_scores(image_id, miou=miou, uncertainty=uncertainty)
    return PredictionResult(image_id, version, mask, pred.confidence, uncertainty, miou)


class PredictionService(QObject):
    """Queue, worker and caches for predictions of the current model version."""

    ready = Signal(object)            # PredictionResult of the current version
    failed = Signal(int, str)         # image id, message
    batchProgress = Signal(int, int)  # done, total of "Predict all"
    batchFinished = Signal(bool)      # True when cancelled
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
        self._queue: deque[int] = deque()
        self._job: Job | None = None
        self._job_id: int | None = None
        self._job_version: int | None = None
        self._memory: OrderedDict[tuple[int, int], PredictionResult] = OrderedDict()
        self._batch: set[int] = set()
        self._batch_total = 0
        self._batch_done = 0

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
        return bool(self._queue) or self._job is not None or self._cache_runner.busy

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
        job = Job(read_cached, self.project, image_id, self.version)
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
        """Predict every image in ``image_ids``, reporting batch progress."""
        if self.version is None:
            raise WorkbenchError("no model yet: label a few images and press Retrain first")
        self._batch = set(image_ids)
        self._batch_total, self._batch_done = len(self._batch), 0
        for i in image_ids:
            if (i, self.version) in self._memory:
                self._batch_item_done(i)
            elif i not in self._queue and not self._in_flight(i):
                self._queue.append(i)
        self.batchProgress.emit(self._batch_done, self._batch_total)
        if not self._batch:
            self._end_batch(False)
        self._pump()

    def cancel(self) -> None:
        """Drop the queue and stop the image in flight."""
        self._queue.clear()
        if self._job is not None and not self._job.done:
            self._job.cancel()
        if self._batch_total:
            self._end_batch(True)

    def shutdown(self, msecs: int) -> bool:
        """Cancel and wait up to ``msecs``; True when the worker stopped."""
        self.cancel()
        self._cache_runner.cancel_all()
        return self._runner.wait(msecs) and self._cache_runner.wait(msecs)

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
        self._batch_item_done(res.image_id)
        self.ready.emit(res)

    def _on_errored(self, err: JobError) -> None:
        image_id = self._job_id
        if err.cancelled:
            return
        if image_id is not None:
            self._batch_item_done(image_id)
            self.failed.emit(image_id, err.message + (f"\n\n{err.details}" if err.details else ""))

    def _on_finished(self) -> None:
        self._job = None
        self._job_id = None
        self._pump()

    def _batch_item_done(self, image_id: int) -> None:
        if image_id in self._batch:
            self._batch.discard(image_id)
            self._batch_done += 1
            self.batchProgress.emit(self._batch_done, self._batch_total)
            if not self._batch:
                self._end_batch(False)

    def _end_batch(self, cancelled: bool) -> None:
        self._batch.clear()
        self._batch_total = self._batch_done = 0
        self.batchFinished.emit(cancelled)

"""Predict a project's images with a model version and fill its prediction cache.

``predict_project`` is "Predict all" of the app and ``workbench predict PROJECT``: each
image is predicted once per model version (the cache on disk is reused), its
prediction and confidence are cached, and its uncertainty (and mIoU, when it has a
reference mask) is stored for that version. ``predict_image`` is the per-image step
the app's prediction worker runs too. No Qt here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from workbench.errors import CancelledError, WorkbenchError
from workbench.progress import CancelToken, ProgressCallback, check, report
from workbench.project import Project, Status

ONLY_CHOICES = ("unlabelled", "all")


@dataclass(frozen=True)
class PredictionResult:
    """A model's prediction for one image (plain data; never mutated after it is made)."""

    image_id: int
    version: int
    mask: np.ndarray                 # (H, W) uint8 class indices
    confidence: np.ndarray | None    # (H, W) float32 0..1, None when not stored
    uncertainty: float | None        # mean normalised entropy, when known for this version
    miou: float | None               # against the image's reference mask, when it has one


@dataclass(frozen=True)
class PredictOutcome:
    """What ``predict_project`` did."""

    version: int
    predicted: list[int]                       # image ids predicted (and cached) in this run
    skipped: int                               # already cached for this version
    problems: list[tuple[str, str]] = field(default_factory=list)  # (image name, problem)
    cancelled: bool = False
    backend_note: str = ""                     # what ran the model: "ONNX Runtime (...)" or "PyTorch (...)"


class PredictorSlot:
    """One thread's own Predictor, loaded once per model version and class layout (never shared)."""

    def __init__(self, device: Any = "auto", backend: str = "auto", threads: int | None = None) -> None:
        from workbench.ml.onnx_backend import check_backend

        self.device = device
        self.backend = check_backend(backend)  # auto: ONNX Runtime on a CPU when installed
        self.threads = threads
        self.version: int | None = None
        self.path: Path | None = None
        self.predictor = None
        self._key: tuple | None = None

    def get(self, version: int, path: Path, schema=None):
        """The Predictor for ``version``, loading it from ``path`` when it (or the classes) changed.

        With ``schema`` the model's classes are matched to the project's by id: a renamed
        class is the same class, a moved one gets its output channel moved with it, and
        other classes are a WorkbenchError naming both lists (``load_checkpoint``).
        """
        key = (version, Path(path), None if schema is None else tuple(schema.ids))
        if key != self._key or self.predictor is None:
            # torch loads only when a model exists; a quick model (issue 13) is refitted instead
            from workbench.ml.quick_model import open_predictor

            self.predictor = None
            self._key = None
            self.predictor = open_predictor(path, device=self.device, schema=schema,
                                            backend=self.backend, threads=self.threads)
            self.version, self.path, self._key = version, Path(path), key
        return self.predictor


def read_cached(project: Project, image_id: int, version: int) -> PredictionResult | None:
    """The disk-cached prediction of ``version`` with its stored scores, or None."""
    try:
        cached = project.read_prediction(image_id, version)
    except WorkbenchError:
        return None   # a damaged cache file: predict again (and overwrite it)
    if cached is None:
        return None
    mask, conf = cached
    miou, unc = _scores(project, image_id, version)
    return PredictionResult(image_id, version, mask, conf, unc, miou)


def _scores(project: Project, image_id: int, version: int) -> tuple[float | None, float | None]:
    return project.image_scores(version).get(int(image_id), (None, None))


def predict_image(project: Project, image_id: int, version: int, model_path: Path, slot: PredictorSlot,
                  *, use_cache: bool = True, save: bool = True, cancel: CancelToken | None = None,
                  on_progress: ProgressCallback | None = None) -> PredictionResult:
    """Cached or fresh prediction of one image by model ``version``.

    A fresh one is cached with its scores (uncertainty; mIoU against the image's
    reference mask) under ``version`` when ``save`` and the project is writable.
    """
    check(cancel)
    if use_cache:
        cached = read_cached(project, image_id, version)
        if cached is not None:
            return cached
    image = project.read_image(image_id)
    pred = slot.get(version, model_path, project.schema).predict(image, cancel=cancel)
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
    if save and not project.read_only:
        project.save_prediction(image_id, version, mask, pred.confidence)
        project.set_image_scores(image_id, version=version, miou=miou, uncertainty=uncertainty)
    elif save:  # another rank of a distributed run: files now, rank 0 records the rest
        project.write_prediction_files(image_id, version, mask, pred.confidence)
    return PredictionResult(image_id, version, mask, pred.confidence, uncertainty, miou)


def resolve_version(project: Project, version: int | None):
    """The ModelRecord of ``version`` (None: the current model); WorkbenchError when there is none."""
    if version is None:
        rec = project.current_model()
        if rec is None:
            raise WorkbenchError("the project has no model yet: label a few images and train one "
                                 "(Retrain in the app, or workbench train PROJECT)", project.state_dir)
        return rec
    return project.model(version)


def images_to_predict(project: Project, only: str = "unlabelled") -> list[int]:
    """Ids of the images ``only`` selects: "unlabelled" (no person's label) or "all"."""
    if only not in ONLY_CHOICES:
        raise WorkbenchError(f"unknown --only {only!r} (valid: {', '.join(ONLY_CHOICES)})")
    if only == "all":
        return [r.id for r in project.images()]
    return [r.id for r in project.images(status=[Status.UNLABELLED, Status.PREDICTED])]


def predict_project(project: Project, *, version: int | None = None, only: str = "unlabelled",
                    device: Any = "auto", image_ids: list[int] | None = None, rank: int = 0,
                    backend: str = "auto", threads: int | None = None,
                    world_size: int = 1, use_cache: bool = True,
                    on_progress: ProgressCallback | None = None,
                    cancel: CancelToken | None = None, distributed_ctx: Any = None) -> PredictOutcome:
    """Predict the images ``only`` selects (or ``image_ids``) with ``version`` (default: current).

    Under torchrun pass ``distributed_ctx``: each rank predicts every ``world_size``-th
    image from its rank on, the other ranks write cache files only, and rank 0 records
    all ranks' statuses and scores. Cancel stops after the image in flight and returns
    what was done (``cancelled=True``). An unreadable image is listed in ``problems``.
    ``backend``: "auto" (ONNX Runtime on a CPU when installed), "torch" or "onnx".
    """
    if distributed_ctx is not None:
        rank, world_size = distributed_ctx.rank, distributed_ctx.world_size
    if not 0 <= rank < max(1, world_size):
        raise WorkbenchError(f"rank {rank} is outside a world of {world_size} process(es)")
    if project.read_only and not (world_size > 1 and rank > 0):
        raise WorkbenchError("the project is open for writing in another process (the app?); "
                             "close it there to fill its prediction cache", project.state_dir)
    rec = resolve_version(project, version)
    ids = list(image_ids) if image_ids is not None else images_to_predict(project, only)
    mine = ids[rank::world_size] if world_size > 1 else ids
    slot = PredictorSlot(device, backend, threads)
    if mine:
        slot.get(rec.version, rec.path, project.schema)  # a model that cannot be used fails here, once
    predicted: list[int] = []
    scores: list[tuple[int, float | None, float | None]] = []
    problems: list[tuple[str, str]] = []
    skipped = 0
    cancelled = False
    for n, image_id in enumerate(mine):
        if cancel is not None and cancel.cancelled:
            cancelled = True
            break
        name = project.get(image_id).name
        report(on_progress, n, len(mine), name)
        if use_cache and read_cached(project, image_id, rec.version) is not None:
            skipped += 1
            continue
        try:
            res = predict_image(project, image_id, rec.version, rec.path, slot, use_cache=False,
                                cancel=cancel)
        except CancelledError:
            cancelled = True
            break
        except WorkbenchError as exc:
            problems.append((name, str(exc)))
            continue
        predicted.append(image_id)
        scores.append((image_id, res.miou, res.uncertainty))
    report(on_progress, len(mine), len(mine), "done")
    if distributed_ctx is not None and distributed_ctx.enabled:
        everything = distributed_ctx.gather((predicted, scores, skipped, problems, cancelled))
        if distributed_ctx.is_main:
            predicted, skipped, problems = [], 0, []
            for part_rank, part in enumerate(everything):
                part_pred, part_scores, part_skipped, part_problems, part_cancelled = part
                predicted += part_pred
                skipped += part_skipped
                problems += part_problems
                cancelled = cancelled or part_cancelled
                if part_rank == 0:
                    continue  # rank 0 recorded its own images as it went
                project.record_predictions(rec.version, part_pred)
                for image_id, miou, unc in part_scores:
                    project.set_image_scores(image_id, version=rec.version, miou=miou, uncertainty=unc)
    note = slot.predictor.backend_note if slot.predictor is not None else ""
    return PredictOutcome(rec.version, predicted, skipped, problems, cancelled, note)

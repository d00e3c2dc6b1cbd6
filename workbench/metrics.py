"""Segmentation metrics from one dataset-level confusion matrix.

Scores are computed from a single confusion matrix accumulated image by image (rows =
ground truth, columns = prediction), not as a mean of per-image scores: a mean of
per-image mIoUs over-weights small images and classes that appear in few of them.

Conventions (the same for ``workbench evaluate``, the metrics panel and training):

- ground-truth pixels whose value is ignored by the schema (void classes, 255 "not
  labelled") are left out entirely;
- a prediction outside the trainable classes ``0..K-1`` (a void class, 255, anything
  else) is counted in an extra column: wrong for its ground-truth class, and it adds to
  no class's predicted area;
- IoU of a class = TP / (TP + FP + FN); a class absent from both ground truth and
  prediction has IoU ``None`` and is left out of the mean (torchmetrics' macro Jaccard
  does the same);
- pixel accuracy = correctly predicted pixels / scored pixels (micro accuracy).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from workbench.classes import UNLABELLED, ClassSchema
from workbench.errors import InputError, WorkbenchError
from workbench.imageio import IMAGE_EXTENSIONS, list_images
from workbench.masks import read_mask
from workbench.progress import CancelToken, ProgressCallback, check, report


@dataclass
class Scores:
    """Scores of one confusion matrix; ``None`` where there is nothing to score."""

    miou: float | None
    pixel_accuracy: float | None
    per_class_iou: list[float | None]
    pixels: int


class ConfusionMatrix:
    """A (K, K+1) int64 pixel-count matrix: rows ground truth, columns prediction.

    Column K collects predictions that are not a trainable class (void, 255, or any
    value >= K).
    """

    def __init__(self, num_classes: int) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be at least 1, got {num_classes}")
        self.num_classes = num_classes
        self.matrix = np.zeros((num_classes, num_classes + 1), np.int64)

    def _pred_columns(self, pred: np.ndarray, ignore_values: tuple[int, ...]) -> np.ndarray:
        k = self.num_classes
        if pred.dtype == np.uint8:
            # A 256-entry lookup is the fastest way to fold every invalid value into column K.
            lut = np.full(256, k, np.int64)
            lut[:min(k, 256)] = np.arange(min(k, 256))
            lut[[v for v in ignore_values if 0 <= v < 256]] = k
            return lut[pred]
        p = pred.astype(np.int64)
        bad = (p < 0) | (p >= k)
        if ignore_values:
            bad |= np.isin(p, np.asarray(ignore_values, np.int64))
        p[bad] = k
        return p

    def compute(self, pred: np.ndarray, gt: np.ndarray,
                ignore_values: tuple[int, ...] = (UNLABELLED,)) -> np.ndarray:
        """The (K, K+1) matrix of one (pred, gt) pair, without adding it."""
        pred, gt = np.asarray(pred), np.asarray(gt)
        if pred.shape != gt.shape:
            raise ValueError(f"prediction shape {pred.shape} differs from ground truth shape {gt.shape}")
        k = self.num_classes
        g = gt.reshape(-1)
        ignored = np.zeros(max(256, int(g.max(initial=0)) + 1), bool)
        ignored[[v for v in ignore_values if v >= 0]] = True
        if g.dtype != np.uint8 and g.size and int(g.min()) < 0:
            raise ValueError(f"ground truth holds negative values (min {int(g.min())})")
        keep = ~ignored[g]
        g = g[keep].astype(np.int64)
        if g.size and int(g.max()) >= k:
            bad = np.unique(g[g >= k])[:8].tolist()
            raise ValueError(f"ground truth holds values {bad} that are neither classes 0..{k - 1} "
                             f"nor ignored values {tuple(ignore_values)}")
        cols = self._pred_columns(pred.reshape(-1)[keep], tuple(ignore_values))
        counts = np.bincount(g * (k + 1) + cols, minlength=k * (k + 1))
        return counts.reshape(k, k + 1)

    def update(self, pred: np.ndarray, gt: np.ndarray,
               ignore_values: tuple[int, ...] = (UNLABELLED,)) -> None:
        """Add one (pred, gt) pair; ground-truth pixels in ``ignore_values`` are skipped."""
        self.matrix += self.compute(pred, gt, ignore_values)

    def scores(self) -> Scores:
        """mIoU, pixel accuracy and per-class IoU of the accumulated counts."""
        return scores_from_matrix(self.matrix)


def scores_from_matrix(matrix: np.ndarray) -> Scores:
    """Scores of a (K, K+1) or (K, K) confusion matrix (rows ground truth)."""
    m = np.asarray(matrix, np.int64)
    k = m.shape[0]
    tp = np.diagonal(m[:, :k]).astype(np.float64)
    gt_total = m.sum(axis=1)             # includes predictions in the extra column
    pred_total = m[:, :k].sum(axis=0)    # the extra column is no class's prediction
    union = gt_total + pred_total - tp
    per_class: list[float | None] = [float(tp[i] / union[i]) if union[i] > 0 else None
                                     for i in range(k)]
    present = [v for v in per_class if v is not None]
    pixels = int(m.sum())
    return Scores(
        miou=float(np.mean(present)) if present else None,
        pixel_accuracy=float(tp.sum() / pixels) if pixels else None,
        per_class_iou=per_class,
        pixels=pixels,
    )


def score_pair(pred: np.ndarray, gt: np.ndarray, schema: ClassSchema) -> Scores:
    """Scores of one predicted mask against its ground truth under ``schema``'s rules."""
    if np.shape(pred) != np.shape(gt):
        ph, pw = np.shape(pred)[:2]
        gh, gw = np.shape(gt)[:2]
        raise InputError(f"prediction is {pw}x{ph} pixels but the ground truth is {gw}x{gh}")
    cm = ConfusionMatrix(schema.num_classes)
    cm.update(pred, gt, schema.ignore_values)
    return cm.scores()


@dataclass
class EvaluationReport:
    """The result of scoring a set of predictions against ground truth.

    ``per_image`` is keyed by file stem (the key shared by image, prediction and mask);
    ``missing`` lists ground-truth file names that had no prediction; ``problems``
    holds one "file: problem" line per pair that could not be scored.
    """

    scores: Scores
    images: int
    missing: list[str]
    per_image: dict[str, float | None]
    problems: list[str]
    class_names: list[str]
    confusion: np.ndarray = field(repr=False)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-ready dict (keys as in docs/architecture.md, plus pixels/confusion)."""
        return {
            "miou": self.scores.miou,
            "pixel_accuracy": self.scores.pixel_accuracy,
            "per_class_iou": list(self.scores.per_class_iou),
            "images": self.images,
            "missing": list(self.missing),
            "per_image": dict(self.per_image),
            "class_names": list(self.class_names),
            "problems": list(self.problems),
            "pixels": self.scores.pixels,
            "confusion": self.confusion.tolist(),
        }


def _by_stem(files: list[Path], problems: list[str]) -> dict[str, Path]:
    """Map stem -> file; the first by name wins and a second one is reported."""
    out: dict[str, Path] = {}
    for f in files:
        if f.stem in out:
            problems.append(f"{f}: same name as {out[f.stem].name}; {out[f.stem].name} was used")
        else:
            out[f.stem] = f
    return out


def evaluate_folders(pred_dir: str | Path, gt_dir: str | Path, schema: ClassSchema, *,
                     on_progress: ProgressCallback | None = None,
                     cancel: CancelToken | None = None) -> EvaluationReport:
    """Score every ground-truth mask in ``gt_dir`` against the mask of the same stem in
    ``pred_dir`` (any image extension; grayscale, palette or colour-coded).

    A ground-truth mask without a prediction goes to ``missing``; a pair that cannot be
    read, differs in size or holds values outside the schema goes to ``problems``.
    Neither is scored. No ground-truth masks at all is a ``WorkbenchError``.
    """
    pred_dir, gt_dir = Path(pred_dir), Path(gt_dir)
    problems: list[str] = []
    gt_files = _by_stem(list_images(gt_dir), problems)
    if not gt_files:
        exts = ", ".join(sorted(IMAGE_EXTENSIONS))
        raise WorkbenchError(f"no ground-truth masks found (looked for {exts} files)", gt_dir)
    pred_files = _by_stem(list_images(pred_dir), problems)

    k = schema.num_classes
    ignore = schema.ignore_values
    total = ConfusionMatrix(k)
    missing: list[str] = []
    per_image: dict[str, float | None] = {}
    n = len(gt_files)
    for i, (stem, gt_path) in enumerate(gt_files.items()):
        check(cancel)
        pred_path = pred_files.get(stem)
        if pred_path is None:
            missing.append(gt_path.name)
        else:
            try:
                gt = read_mask(gt_path, schema)
                pred = read_mask(pred_path, schema, expected_hw=gt.shape)
            except InputError as exc:
                problems.append(str(exc))
            else:
                m = total.compute(pred, gt, ignore)
                total.matrix += m
                per_image[stem] = scores_from_matrix(m).miou
        report(on_progress, i + 1, n, gt_path.name, miou=total.scores().miou or 0.0)
    return EvaluationReport(
        scores=total.scores(), images=len(per_image), missing=missing, per_image=per_image,
        problems=problems, class_names=schema.names, confusion=total.matrix.copy())

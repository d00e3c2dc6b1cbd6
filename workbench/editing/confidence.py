"""Where the prediction can be trusted, and where a person should look first.

``confident_region`` selects what "Accept confident" copies into the labels. The
decision: accept fills only pixels that are *not labelled* (255); a person's label is
never silently replaced by the model, even where the model is confident (the editor's
``accept_where`` applies that rule, as one undo step). The pixels below the threshold
stay unlabelled, so training ignores them until the person decides.

``error_regions`` ranks the connected low-confidence regions of a prediction for "Next
error region": score = area x mean uncertainty (1 - confidence), so a large region the
model is unsure about comes before a large region it is nearly sure about, and both
before specks (regions under ``min_area`` pixels are dropped).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from workbench.errors import InputError

DEFAULT_THRESHOLD = 0.8
"""Default confidence from which a predicted pixel is accepted / not reviewed."""
DEFAULT_MIN_AREA = 16


@dataclass(frozen=True)
class Region:
    """One connected low-confidence region. ``bbox`` is (y0, x0, y1, x1), half-open."""

    bbox: tuple[int, int, int, int]
    area: int
    score: float
    centroid: tuple[float, float]  # (y, x)
    mean_uncertainty: float


def _check(pred: np.ndarray, confidence: np.ndarray | None) -> np.ndarray:
    if confidence is None:
        raise InputError("this prediction has no confidence map (predict it again with the current model)")
    pred = np.asarray(pred)
    conf = np.asarray(confidence, np.float32)
    if pred.ndim != 2 or conf.shape != pred.shape:
        raise InputError(f"confidence {conf.shape} does not match the prediction {pred.shape}")
    return conf


def confident_region(pred: np.ndarray, confidence: np.ndarray | None, threshold: float) -> np.ndarray:
    """(H, W) bool: pixels whose prediction has confidence >= ``threshold``.

    Use with ``LabelEditor.accept_where(pred, sel)``, which fills only unlabelled pixels.
    """
    conf = _check(pred, confidence)
    return conf >= np.float32(threshold)


def error_regions(pred: np.ndarray, confidence: np.ndarray | None, *,
                  threshold: float = DEFAULT_THRESHOLD, min_area: int = DEFAULT_MIN_AREA,
                  limit: int | None = None) -> list[Region]:
    """Connected (8-neighbour) regions with confidence < ``threshold``, best first.

    Ranked by score = area x mean(1 - confidence) (ties: larger area, then top-left
    first, so the order is stable); regions under ``min_area`` pixels are left out.
    """
    conf = _check(pred, confidence)
    low = (conf < np.float32(threshold)).astype(np.uint8)
    n, labels, stats, centroids = cv2.connectedComponentsWithStats(low, connectivity=8)
    if n <= 1:
        return []
    unc = np.bincount(labels.ravel(), weights=(1.0 - conf).ravel(), minlength=n)
    out: list[Region] = []
    for i in range(1, n):
        x, y, w, h, area = (int(v) for v in stats[i])
        if area < max(1, int(min_area)):
            continue
        mean_u = float(unc[i] / area)
        out.append(Region((y, x, y + h, x + w), area, area * mean_u,
                          (float(centroids[i][1]), float(centroids[i][0])), mean_u))
    out.sort(key=lambda r: (-r.score, -r.area, r.bbox[0], r.bbox[1]))
    return out[:limit] if limit is not None else out

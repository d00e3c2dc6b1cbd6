"""Smart region: GrabCut from a box, with optional include/exclude strokes and a U-Net prior.

Without a prior, GrabCut starts as in its paper: outside the box is background, inside
is "probably foreground". With ``prior`` (the model's probability of the class being
painted) the inside of the box starts as probable background only where the prior is
below ``PRIOR_BG`` (another class is confident there) and probable foreground elsewhere,
so GrabCut's colour models start from the prediction and one box repairs it (its edges
snap to the image's colours). A prior whose foreground (>= ``PRIOR_FG``) fills less than
``MIN_PRIOR_FILL`` of the box has missed the object and is not used. Both rules come from
CamVid with a weak model (val mIoU 0.26): starting every pixel under 0.5 as background
handed the object's colours to the background model and the prior made boxes worse than
no prior (BENCHMARKS.md, "Annotation effort"). Include and exclude strokes are sure
foreground / background and win over both.

Resolution: GrabCut runs on the box plus a margin only (the margin gives the background
model its samples), resampled so that its longer side lies between ``MIN_SIDE`` and
``MAX_SIDE``, and the 0/1 result is scaled back (interpolated, thresholded at 0.5).

- Small crops are UPSCALED to ``MIN_SIDE``. OpenCV's GrabCut has a fixed smoothness
  weight (gamma = 50 per neighbour edge), so the cost of a boundary grows with its
  length in pixels and the colour evidence with the area: on a small box (a 50 x 50 px
  CamVid car, a cell of the sample project) the boundary term wins, the graph cut
  shrinks the object to nothing and the tool said "nothing to change in this box".
  Upscaling by k weighs the boundary k times less against the colours, the same as a
  gamma / k (decision 0016; IoU over CamVid val objects in BENCHMARKS.md).
- Crops larger than ``MAX_SIDE`` are downscaled, so a box over a 4096 x 4096 image
  costs about what a 1024 x 1024 box costs (measured with ``bench_annotation_effort.py
  --grabcut-size 4096``; figures in BENCHMARKS.md).
"""

from __future__ import annotations

import cv2
import numpy as np

from workbench.errors import InputError
from workbench.progress import CancelToken, check

PRIOR_FG = 0.5
"""Prior probability from which a pixel in the box starts as probable foreground."""
PRIOR_BG = 0.2
"""Prior probability below which a pixel in the box starts as probable background."""
MIN_PRIOR_FILL = 0.1
"""Fraction of the box the prior's foreground must fill to be used (else: the plain box)."""
MAX_SIDE = 1024
"""Longer side (pixels) above which the crop is downscaled for GrabCut."""
MIN_SIDE = 384
"""Longer side (pixels) below which the crop is upscaled for GrabCut (see the module note)."""
MIN_MARGIN = 8


def class_prior(pred: np.ndarray, confidence: np.ndarray | None, value: int) -> np.ndarray:
    """(H, W) float32 estimate of P(class ``value``) from a stored argmax + confidence.

    Where the model predicted ``value`` its probability is the confidence (the top
    softmax probability). Elsewhere the top probability belongs to another class, so
    P(value) <= 1 - confidence; that bound is used (optimistic, and always <= 0.5 where
    another class won, so those pixels start as background in GrabCut). Without a
    confidence map the prediction counts as certain.
    """
    pred = np.asarray(pred)
    hit = pred == int(value)
    if confidence is None:
        return hit.astype(np.float32)
    conf = np.asarray(confidence, np.float32)
    if conf.shape != pred.shape:
        raise InputError(f"confidence is {conf.shape[1]}x{conf.shape[0]} but the prediction is "
                         f"{pred.shape[1]}x{pred.shape[0]}")
    return np.where(hit, conf, 1.0 - conf).astype(np.float32)


def _prior_start(p: np.ndarray) -> np.ndarray | int:
    """GrabCut's starting labels inside the box from the prior of the class there."""
    fg = p >= PRIOR_FG
    # A box is drawn around an object: a prior whose foreground fills only a sliver of it
    # has missed the object (a weak model, a class it rarely predicts), and starting
    # from it would teach the background model the object's colours. Start from the box.
    if fg.sum() < max(16, MIN_PRIOR_FILL * fg.size):
        return cv2.GC_PR_FGD
    return np.where(fg | (p > PRIOR_BG), cv2.GC_PR_FGD, cv2.GC_PR_BGD)


def working_scale(height: int, width: int) -> float:
    """The factor GrabCut's crop is resampled by: longer side into [MIN_SIDE, MAX_SIDE]."""
    side = max(height, width, 1)
    if side > MAX_SIDE:
        return MAX_SIDE / side
    if side < MIN_SIDE:
        return MIN_SIDE / side
    return 1.0


def _check(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise InputError(f"smart region needs an (H, W, 3) uint8 image, got "
                         f"{getattr(image, 'shape', None)} {getattr(image, 'dtype', '')}")
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.shape[2] == 4:
        image = image[:, :, :3]
    elif image.shape[2] != 3:
        raise InputError(f"smart region needs 1, 3 or 4 channels, got {image.shape[2]}")
    return image


def _check_plane(arr: np.ndarray | None, shape: tuple[int, int], what: str) -> np.ndarray | None:
    if arr is None:
        return None
    arr = np.asarray(arr)
    if arr.shape != shape:
        raise InputError(f"{what} is {arr.shape} but the image is {shape}")
    return arr


def smart_region(image: np.ndarray, box: tuple[int, int, int, int], *,
                 include: np.ndarray | None = None, exclude: np.ndarray | None = None,
                 prior: np.ndarray | None = None, iterations: int = 5,
                 cancel: CancelToken | None = None) -> np.ndarray:
    """(H, W) bool: the object GrabCut finds in ``box`` = (x0, y0, x1, y1), half-open pixels.

    ``include`` / ``exclude``: (H, W) bool strokes of sure foreground / background
    (exclude wins where both are set). ``prior``: (H, W) float probability of the class
    (see ``class_prior``). Checks ``cancel`` between GrabCut iterations. Nothing outside
    the box is ever selected.
    """
    image = _check(image)
    h, w = image.shape[:2]
    include = _check_plane(include, (h, w), "include strokes")
    exclude = _check_plane(exclude, (h, w), "exclude strokes")
    prior = _check_plane(prior, (h, w), "prior")
    x0, y0, x1, y1 = (int(v) for v in box)
    x0, x1 = sorted((x0, x1))
    y0, y1 = sorted((y0, y1))
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    out = np.zeros((h, w), bool)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return out
    margin = max(MIN_MARGIN, (max(x1 - x0, y1 - y0) + 9) // 10)
    cx0, cy0, cx1, cy1 = max(0, x0 - margin), max(0, y0 - margin), min(w, x1 + margin), min(h, y1 + margin)
    crop = (slice(cy0, cy1), slice(cx0, cx1))
    inner = (slice(y0 - cy0, y1 - cy0), slice(x0 - cx0, x1 - cx0))

    gc = np.full((cy1 - cy0, cx1 - cx0), cv2.GC_BGD, np.uint8)
    gc[inner] = cv2.GC_PR_FGD if prior is None else _prior_start(prior[y0:y1, x0:x1])
    if include is not None:
        # Include strokes count inside the box only: the result never leaves it.
        inc = np.zeros(gc.shape, bool)
        inc[inner] = include[y0:y1, x0:x1].astype(bool)
        gc[inc] = cv2.GC_FGD
    if exclude is not None:
        gc[exclude[crop].astype(bool)] = cv2.GC_BGD
    fg_any = np.isin(gc, (cv2.GC_FGD, cv2.GC_PR_FGD)).any()
    bg_any = np.isin(gc, (cv2.GC_BGD, cv2.GC_PR_BGD)).any()
    if not fg_any:
        return out
    if not bg_any:
        raise InputError("the box covers the whole image: leave some background around the object "
                         "or draw an exclude stroke")

    img = np.ascontiguousarray(image[crop])
    ch, cw = gc.shape
    scale = working_scale(ch, cw)
    if scale != 1.0:
        size = (max(1, round(cw * scale)), max(1, round(ch * scale)))
        img = cv2.resize(img, size, interpolation=cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR)
        # Sure labels must survive the resampling: nearest keeps them as they are.
        gc = cv2.resize(gc, size, interpolation=cv2.INTER_NEAREST)
    bgd = np.zeros((1, 65), np.float64)
    fgd = np.zeros((1, 65), np.float64)
    check(cancel)
    try:
        cv2.grabCut(img, gc, None, bgd, fgd, 1, cv2.GC_INIT_WITH_MASK)
        for _ in range(max(0, int(iterations) - 1)):
            check(cancel)
            cv2.grabCut(img, gc, None, bgd, fgd, 1, cv2.GC_EVAL)
    except cv2.error as exc:
        # GrabCut needs colour samples of both kinds; a uniform crop can still fail.
        raise InputError(f"smart region could not separate the object in this box ({exc.err})") from None
    check(cancel)
    sel = np.isin(gc, (cv2.GC_FGD, cv2.GC_PR_FGD))
    if scale != 1.0:
        # Back to the image's pixels: the fraction of each pixel that was selected.
        sel = cv2.resize(sel.astype(np.float32), (cw, ch),
                         interpolation=cv2.INTER_LINEAR if scale < 1.0 else cv2.INTER_AREA) >= 0.5
    res = np.zeros((ch, cw), bool)
    res[inner] = sel[inner]
    out[crop] = res
    return out

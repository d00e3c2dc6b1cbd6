"""Carry a label from one video frame to its neighbour by dense optical flow (OpenCV's DIS).

For every pixel of the target frame the backward flow (target -> source) says where it
came from; the source label is read there (nearest neighbour, class indices never
blend). Its confidence comes from forward-backward consistency (a pixel whose round
trip source -> target -> source does not come back is occluded or mismatched) and from
how far the label travelled. ``fuse`` combines the carried label with a model's
prediction: where the flow is sure the carried label wins, elsewhere the model does.
No torch, no Qt here.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from workbench.classes import UNLABELLED

DEFAULT_PRESET = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM
FB_TOLERANCE = 1.0          # px: forward-backward error that halves the confidence (plus 5% of the motion)
STEP_DECAY = 0.97           # confidence kept per frame travelled (errors accumulate along a chain)


@dataclass(frozen=True)
class Carried:
    """A label carried to another frame: (H, W) uint8 classes (255 where nothing came) and confidence 0..1."""

    mask: np.ndarray
    confidence: np.ndarray


def _gray(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return np.ascontiguousarray(image, np.uint8)
    return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)


def dense_flow(a: np.ndarray, b: np.ndarray, preset: int = DEFAULT_PRESET) -> np.ndarray:
    """(H, W, 2) float32 flow from image ``a`` to ``b``: pixel p of a moves to p + flow[p] in b."""
    dis = cv2.DISOpticalFlow_create(preset)
    return dis.calc(_gray(a), _gray(b), None)


def _sample(values: np.ndarray, map_x: np.ndarray, map_y: np.ndarray, *, nearest: bool,
            border: float) -> np.ndarray:
    interp = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    return cv2.remap(values, map_x, map_y, interp, borderMode=cv2.BORDER_CONSTANT, borderValue=border)


def carry_label(source_image: np.ndarray, source_mask: np.ndarray, target_image: np.ndarray,
                source_confidence: np.ndarray | None = None, preset: int = DEFAULT_PRESET) -> Carried:
    """The label of ``source_image`` moved onto ``target_image`` with its per-pixel confidence.

    ``source_confidence``: the source label's own confidence (1 for a verified label;
    a carried label passes its own along a chain of frames).
    """
    if source_image.shape[:2] != target_image.shape[:2] or source_mask.shape != source_image.shape[:2]:
        raise ValueError(f"frames and mask differ in size: {source_image.shape[:2]}, "
                         f"{target_image.shape[:2]}, {source_mask.shape}")
    h, w = source_mask.shape
    back = dense_flow(target_image, source_image, preset)      # target pixel -> where it is in source
    fwd = dense_flow(source_image, target_image, preset)       # source pixel -> where it is in target
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    map_x, map_y = xs + back[:, :, 0], ys + back[:, :, 1]
    mask = _sample(np.ascontiguousarray(source_mask), map_x, map_y, nearest=True, border=UNLABELLED)
    # round trip: target p -> source q = p + back(p) -> target q + fwd(q); it should land on p
    fwd_at = np.dstack([_sample(np.ascontiguousarray(fwd[:, :, i]), map_x, map_y, nearest=False, border=0)
                        for i in range(2)])
    err = np.hypot(back[:, :, 0] + fwd_at[:, :, 0], back[:, :, 1] + fwd_at[:, :, 1])
    motion = np.hypot(back[:, :, 0], back[:, :, 1])
    tol = FB_TOLERANCE + 0.05 * motion
    conf = (1.0 / (1.0 + (err / tol) ** 2)).astype(np.float32) * STEP_DECAY
    inside = (map_x >= 0) & (map_x <= w - 1) & (map_y >= 0) & (map_y <= h - 1)
    conf[~inside] = 0.0
    if source_confidence is not None:
        conf *= _sample(np.ascontiguousarray(source_confidence, np.float32), map_x, map_y, nearest=False, border=0)
    conf[mask == UNLABELLED] = 0.0
    return Carried(np.ascontiguousarray(mask), np.clip(conf, 0.0, 1.0))


def carry_along(frames: list[np.ndarray], mask: np.ndarray, preset: int = DEFAULT_PRESET) -> list[Carried]:
    """Carry ``mask`` (on ``frames[0]``) frame by frame to each later frame of the list."""
    out: list[Carried] = []
    cur_mask, cur_conf = mask, None
    for src, dst in zip(frames[:-1], frames[1:]):
        c = carry_label(src, cur_mask, dst, cur_conf, preset)
        out.append(c)
        cur_mask, cur_conf = c.mask, c.confidence
    return out


def fuse(carried: Carried, model_mask: np.ndarray | None, model_confidence: np.ndarray | None,
         num_classes: int, ignore_values: tuple[int, ...] = (UNLABELLED,)) -> tuple[np.ndarray, np.ndarray]:
    """(mask, confidence) of the carried label used as a prior over a model's prediction.

    The fused class distribution is the mixture ``w * onehot(carried) + (1 - w) * model``
    with ``w`` the carried confidence; the model's distribution is its top class at its
    confidence, the rest spread evenly over the other classes (all that a cached
    prediction keeps). Without a model the carried label stands alone. Carried void
    pixels count as "no label" here.
    """
    lab = carried.mask
    w = carried.confidence.astype(np.float32).copy()
    w[np.isin(lab, ignore_values) | (lab >= num_classes)] = 0.0
    if model_mask is None:
        out = lab.copy()
        out[w <= 0] = UNLABELLED
        return out, w
    mconf = (model_confidence.astype(np.float32) if model_confidence is not None
             else np.ones(model_mask.shape, np.float32))
    rest = (1.0 - mconf) / max(1, num_classes - 1)
    same = lab == model_mask
    p_carried = w + (1.0 - w) * np.where(same, mconf, rest)      # score of the carried class
    p_model = (1.0 - w) * mconf                                    # score of the model's class
    use_carried = (p_carried >= p_model) & (w > 0)
    mask = np.where(use_carried, lab, model_mask).astype(np.uint8)
    conf = np.where(use_carried, p_carried, np.where(same, p_carried, p_model)).astype(np.float32)
    return np.ascontiguousarray(mask), np.clip(conf, 0.0, 1.0)

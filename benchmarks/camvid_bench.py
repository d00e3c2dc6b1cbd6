"""Shared pieces of the CamVid benchmarks that train a U-Net by hand (bench_propagation.py,
bench_suggestions.py): loading a downscaled split, the ImageNet-normalised tensor, and
one training step. Imported by the scripts as a sibling module (run from the repository
root as ``python benchmarks/bench_x.py``, so ``benchmarks/`` is on ``sys.path``).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from workbench.imageio import read_image
from workbench.ml.models import IMAGENET_MEAN, IMAGENET_STD

K, VOID = 11, 11    # CamVid's 11 classes; value 11 is void in its annotation PNGs


def load(folder: Path, annot: Path, scale: float,
         names: list[str] | None = None) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(names, images, masks) of a CamVid split at ``scale``, sides cut to multiples of 32."""
    names = names or sorted(p.name for p in folder.iterdir() if p.suffix == ".png")
    imgs, masks = [], []
    for n in names:
        im = read_image(folder / n)
        m = cv2.imread(str(annot / n), cv2.IMREAD_UNCHANGED)
        h, w = int(im.shape[0] * scale) // 32 * 32, int(im.shape[1] * scale) // 32 * 32
        imgs.append(cv2.resize(im, (w, h), interpolation=cv2.INTER_AREA))
        masks.append(cv2.resize(m, (w, h), interpolation=cv2.INTER_NEAREST))
    return names, np.stack(imgs), np.stack(masks)


def to_tensor(imgs: np.ndarray) -> torch.Tensor:
    """NCHW float tensor of uint8 NHWC images, ImageNet-normalised."""
    x = torch.from_numpy(imgs).float().div(255).permute(0, 3, 1, 2)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return ((x - mean) / std).contiguous()


def train_step(model: torch.nn.Module, opt: torch.optim.Optimizer, imgs: np.ndarray,
               masks: np.ndarray, pick: np.ndarray, rng: np.random.Generator,
               weight: torch.Tensor | None = None) -> torch.Tensor:
    """One step on the images ``pick`` (void ignored, a random horizontal flip, optional class
    weights); the loss."""
    x = to_tensor(imgs[pick])
    y = torch.from_numpy(masks[pick].astype(np.int64))
    y[y == VOID] = 255
    if rng.random() < 0.5:
        x, y = x.flip(-1), y.flip(-1)
    loss = F.cross_entropy(model(x), y, weight=weight, ignore_index=255)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss

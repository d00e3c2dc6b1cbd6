"""Training data: (image, mask) pairs checked up front, decoded once, augmented per step.

Decoding PNG/JPEG is the CPU bottleneck of small-data training, so when the decoded
pairs fit in ``CACHE_LIMIT_BYTES`` they are decoded once into RAM (shared with
DataLoader workers by fork, copy-on-write) and every epoch only crops, scales and
flips arrays. Larger sets are decoded per step in DataLoader workers.

Masks become training targets with ``masks.to_training_target``: every ignored value
(void classes, 255 "not labelled") is 255, the loss's ``ignore_index``, so a partly
labelled mask is valid training data.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from workbench import progress
from workbench.classes import UNLABELLED, ClassSchema
from workbench.errors import InputError
from workbench.imageio import image_size, read_image, too_large_message
from workbench.masks import read_mask, to_training_target
from workbench.progress import CancelToken, ProgressCallback

IGNORE = UNLABELLED
"""Target value ignored by the loss and the metrics (void classes are mapped to it)."""

CACHE_LIMIT_BYTES = 2 * 2**30
"""Decoded pairs up to this size are kept in RAM instead of being decoded every epoch."""

VAL_TILE = 1024
"""Validation images larger than this (either side) are scored tile by tile to bound memory."""

Pair = tuple[Path, Path]


@dataclass(frozen=True)
class PairInfo:
    """A checked (image, mask) pair and the image's (height, width)."""

    image: Path
    mask: Path
    hw: tuple[int, int]


def check_pairs(pairs: Sequence[tuple[str | Path, str | Path]], *,
                on_progress: ProgressCallback | None = None,
                cancel: CancelToken | None = None) -> list[PairInfo]:
    """Check every pair cheaply (file headers only): readable, and mask size == image size.

    Raises ``InputError`` naming the first bad file, before any training starts.
    """
    out: list[PairInfo] = []
    for i, (img, msk) in enumerate(pairs):
        progress.check(cancel)
        img, msk = Path(img), Path(msk)
        w, h = image_size(img)
        mw, mh = _mask_size(msk)
        if (mw, mh) != (w, h):
            raise InputError(f"mask is {mw}x{mh} pixels but its image {img.name} is {w}x{h}", msk)
        out.append(PairInfo(img, msk, (h, w)))
        if i % 50 == 0 or i == len(pairs) - 1:
            progress.report(on_progress, i + 1, len(pairs), "checking files", phase="checking")
    return out


def _mask_size(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as img:
            return img.size
    except FileNotFoundError:
        raise InputError("mask file not found", path) from None
    except IsADirectoryError:
        raise InputError("is a folder, not a mask", path) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InputError(too_large_message(exc), path) from None
    except (UnidentifiedImageError, OSError) as exc:
        if path.exists() and path.stat().st_size == 0:
            raise InputError("empty file (0 bytes), not a mask", path) from None
        raise InputError(f"not a readable mask image ({exc.__class__.__name__})", path) from None


def decoded_bytes(infos: Sequence[PairInfo]) -> int:
    """RAM needed to hold every pair decoded (RGB uint8 image + uint8 target)."""
    return sum(h * w * 4 for h, w in (p.hw for p in infos))


def load_pair(info: PairInfo, schema: ClassSchema) -> tuple[np.ndarray, np.ndarray]:
    """Decode one pair: (H, W, 3) uint8 image and (H, W) uint8 target (ignored -> 255)."""
    image = read_image(info.image)
    if image.shape[:2] != info.hw:
        raise InputError(f"image is {image.shape[1]}x{image.shape[0]} pixels after decoding, "
                         f"expected {info.hw[1]}x{info.hw[0]}", info.image)
    mask = read_mask(info.mask, schema, expected_hw=image.shape[:2])
    # Arrays straight from PIL can be read-only; torch.from_numpy wants writable memory.
    return np.require(image, requirements="CW"), to_training_target(mask, schema, IGNORE)


def read_target(info: PairInfo, schema: ClassSchema) -> np.ndarray:
    """Decode just the training target of a pair (masks are cheap; images are not)."""
    return to_training_target(read_mask(info.mask, schema, expected_hw=info.hw), schema, IGNORE)


class PairStore:
    """Decoded pairs, either all held in RAM (``cached``) or decoded on every access."""

    def __init__(self, infos: Sequence[PairInfo], schema: ClassSchema, *, cache: bool) -> None:
        self.infos = list(infos)
        self.schema = schema
        self.cached = cache
        self._images: list[np.ndarray | None] = [None] * len(self.infos)
        self._targets: list[np.ndarray | None] = [None] * len(self.infos)

    def __len__(self) -> int:
        return len(self.infos)

    def preload(self, *, on_progress: ProgressCallback | None = None,
                cancel: CancelToken | None = None, message: str = "decoding images") -> None:
        """Decode every pair into RAM (only when ``cached``); errors name the bad file."""
        if not self.cached:
            return
        for i, info in enumerate(self.infos):
            progress.check(cancel)
            if self._images[i] is None:
                self._images[i], self._targets[i] = load_pair(info, self.schema)
            progress.report(on_progress, i + 1, len(self.infos), message, phase="loading")

    def get(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """The decoded (image, target) of pair ``i``."""
        if self.cached and self._images[i] is not None:
            return self._images[i], self._targets[i]  # type: ignore[return-value]
        return load_pair(self.infos[i], self.schema)

    def target(self, i: int) -> np.ndarray:
        """The target of pair ``i``, decoding only the mask when not cached."""
        if self.cached and self._targets[i] is not None:
            return self._targets[i]  # type: ignore[return-value]
        return read_target(self.infos[i], self.schema)


def class_pixel_counts(store: PairStore, num_classes: int, *,
                       cancel: CancelToken | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per class: labelled pixel count, and pixel count of the images the class occurs in.

    Reads every target once; this also validates every mask's values before training.
    """
    counts = np.zeros(num_classes, np.int64)
    image_pixels = np.zeros(num_classes, np.int64)
    for i in range(len(store)):
        progress.check(cancel)
        target = store.target(i)
        c = np.bincount(target.reshape(-1), minlength=256)[:num_classes]
        counts += c
        labelled = int(c.sum())
        image_pixels[c > 0] += labelled
    return counts, image_pixels


def median_frequency_weights(counts: np.ndarray, image_pixels: np.ndarray,
                             max_weight: float = 10.0, power: float = 1.0) -> np.ndarray:
    """Median-frequency class weights (Eigen & Fergus 2015), to ``power``, clipped to [1/max, max].

    freq(c) = pixels of c / pixels of the images where c occurs; weight = (median / freq)
    ** power (0.5 softens the balancing). Absent classes get weight 1 (they contribute
    nothing to the loss anyway). The clip keeps a class seen in a handful of pixels from
    dominating the loss.
    """
    present = counts > 0
    weights = np.ones(len(counts), np.float64)
    if present.any():
        freq = counts[present] / np.maximum(image_pixels[present], 1)
        weights[present] = (np.median(freq) / freq) ** power
    return np.clip(weights, 1.0 / max_weight, max_weight).astype(np.float32)


@dataclass
class Augment:
    """Random scale, random crop (padded with ``IGNORE``), flip and optional colour jitter."""

    crop: int
    scale: tuple[float, float] = (0.5, 1.5)
    hflip: bool = True
    color_jitter: float = 0.0

    def __post_init__(self) -> None:
        j = self.color_jitter
        self._jitter = v2.ColorJitter(brightness=j, contrast=j, saturation=j, hue=min(j / 4, 0.5)) if j else None

    def __call__(self, image: np.ndarray, target: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """(3, crop, crop) uint8 image and (crop, crop) uint8 target from one decoded pair."""
        img = tv_tensors.Image(torch.from_numpy(image).permute(2, 0, 1))
        msk = tv_tensors.Mask(torch.from_numpy(target))
        h, w = target.shape
        # Scaling by s then cropping `crop` equals cropping crop/s source pixels and
        # resizing that region to `crop`: the same result for a fraction of the work.
        lo, hi = self.scale
        s = math.exp(float(torch.empty(()).uniform_(math.log(lo), math.log(hi)))) if hi > lo else lo
        region = max(1, int(round(self.crop / s)))
        pad_h, pad_w = max(0, region - h), max(0, region - w)
        if pad_h or pad_w:
            # Pad at a random side so small images are not always in the top-left corner.
            top = int(torch.randint(0, pad_h + 1, ()))
            left = int(torch.randint(0, pad_w + 1, ()))
            padding = [left, top, pad_w - left, pad_h - top]
            img = TF.pad(img, padding, fill=0)
            msk = TF.pad(msk, padding, fill=IGNORE)
            h, w = h + pad_h, w + pad_w
        y = int(torch.randint(0, h - region + 1, ()))
        x = int(torch.randint(0, w - region + 1, ()))
        size = [self.crop, self.crop]
        img = TF.resized_crop(img, y, x, region, region, size, antialias=True)
        msk = TF.resized_crop(msk, y, x, region, region, size)  # tv_tensors.Mask -> nearest
        if self.hflip and bool(torch.rand(()) < 0.5):
            img, msk = TF.horizontal_flip(img), TF.horizontal_flip(msk)
        if self._jitter is not None:
            img = self._jitter(img)
        return img.as_subclass(torch.Tensor).contiguous(), msk.as_subclass(torch.Tensor).contiguous()


class TrainDataset(Dataset):
    """Random augmented crops, one per pair per epoch."""

    def __init__(self, store: PairStore, augment: Augment) -> None:
        self.store = store
        self.augment = augment

    def __len__(self) -> int:
        return len(self.store)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, target = self.store.get(i)
        return self.augment(image, target)


class ValDataset(Dataset):
    """Whole images without augmentation; images larger than ``tile`` are split into tiles."""

    def __init__(self, store: PairStore, tile: int = VAL_TILE) -> None:
        self.store = store
        self.items: list[tuple[int, int, int, int, int]] = []
        for i, info in enumerate(store.infos):
            h, w = info.hw
            for y in range(0, h, tile):
                for x in range(0, w, tile):
                    self.items.append((i, y, x, min(h, y + tile), min(w, x + tile)))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        i, y0, x0, y1, x1 = self.items[k]
        image, target = self.store.get(i)
        img = torch.from_numpy(np.ascontiguousarray(image[y0:y1, x0:x1])).permute(2, 0, 1).contiguous()
        return img, torch.from_numpy(np.ascontiguousarray(target[y0:y1, x0:x1]))


VAL_MARGIN = 16
"""Reflected context on every side of a validation image: the Predictor's ``MARGIN``."""


def pad_collate(batch: Sequence[tuple[torch.Tensor, torch.Tensor]],
                multiple: int = 32, margin: int = VAL_MARGIN) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack images of any size: ``margin`` on every side, then up to the batch maximum, a ``multiple``.

    Images are reflect-padded as the Predictor pads them (``inference.pad_for_model``), so
    validation scores match ``workbench evaluate``; targets are padded with ``IGNORE`` so
    padding never counts.
    """
    h = max(t.shape[-2] for _, t in batch) + 2 * margin
    w = max(t.shape[-1] for _, t in batch) + 2 * margin
    h, w = -(-h // multiple) * multiple, -(-w // multiple) * multiple
    images = torch.empty((len(batch), 3, h, w), dtype=torch.uint8)
    targets = torch.full((len(batch), h, w), IGNORE, dtype=torch.uint8)
    for k, (img, tgt) in enumerate(batch):
        ih, iw = tgt.shape
        pads = ((0, 0), (margin, h - ih - margin), (margin, w - iw - margin))
        reflect = max(pads[1]) < ih and max(pads[2]) < iw
        arr = np.pad(img.numpy(), pads, mode="reflect" if reflect else "edge")
        images[k] = torch.from_numpy(arr)
        targets[k, margin:margin + ih, margin:margin + iw] = tgt
    return images, targets


def normalise(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 (N, 3, H, W) -> float32 normalised with ``mean``/``std`` given on the 0-1 scale."""
    m = torch.tensor(mean, dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
    return (images.float() / 255.0 - m) / s


def auto_workers(device_type: str, cached: bool, cpu_count: int | None = None) -> int:
    """DataLoader workers: 0 for cached data on a CPU box, else a share of the cores.

    On a CPU-only machine the model step already uses every core; with decoded pairs
    in RAM a crop costs ~1 ms against ~200 ms of model work per image, so extra worker
    processes only compete for the same cores (measured on the 2-core dev box:
    benchmarks/bench_training.py). On a GPU the CPU is otherwise idle, so decoding and
    augmenting move to workers.
    """
    cpus = cpu_count if cpu_count is not None else (len(os.sched_getaffinity(0))
                                                      if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    if device_type == "cpu":
        if cached or cpus <= 2:
            return 0
        return min(4, cpus // 4)
    return max(0, min(8, cpus - 1))

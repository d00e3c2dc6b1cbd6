"""Inference: one ``Predictor`` for the GUI, the CLI and evaluation.

A predictor owns its model (eval mode, never smp's ``model.predict()``, which flips
modes and would race with a trainer sharing the module). Images are normalised with
the checkpoint's mean/std, reflect-padded to a multiple of 32 and cropped back; images
larger than ``tile`` go through overlapping tiles whose centres are stitched, so a
10,000 x 10,000 image needs memory for one batch of tiles' logits plus the outputs
(mask uint8, confidence and entropy float32), never full-resolution C-class logits.
The forward runs in channels_last on CUDA and CPU (faster kernels), with bf16 (or
fp16) autocast on CUDA. A CUDA out-of-memory error halves the batch, then the tile,
and retries; the lowered limits stay for the predictor's lifetime. On a CPU, a predictor
loaded from a checkpoint runs ONNX Runtime when it is installed (``ml.onnx_backend``:
exported on first use, cached beside the checkpoint), PyTorch otherwise; CPU threads
follow the machine's load (``device.ThreadGovernor``).
"""

from __future__ import annotations

import copy
import math
import threading
from collections.abc import Hashable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from workbench.classes import ClassSchema
from workbench.errors import WorkbenchError
from workbench.ml.checkpoint import CheckpointMeta, load_checkpoint
from workbench.ml.device import ThreadGovernor, resolve_device
from workbench.ml.tiling import Tile, tiles
from workbench.progress import CancelToken, ProgressCallback, check, report

MIN_TILE = 256
"""Smallest tile the out-of-memory fallback tries before giving up."""

MARGIN = 16
"""Pixels of reflected context added on every side before the forward, then cropped off.

Without it the image's top and left edges met the convolutions' zero padding, which in
ImageNet-normalised input is mid-grey: on the dark sample micrographs a bright halo that
the model read as cytoplasm along the top row (issue 12, item 6), while the bottom and
right edges, reflect-padded up to a multiple of 32, were fine. Every side now gets the
same reflected context (``pad_for_model``); training validation pads the same way
(``data.pad_collate``), so its scores match ``workbench evaluate``."""


@dataclass(frozen=True)
class Prediction:
    """Per-pixel outputs for one image.

    ``mask``: (H, W) uint8 class index (argmax). ``confidence``: (H, W) float32, the
    largest softmax probability (1/K .. 1). ``entropy``: (H, W) float32, the softmax
    entropy divided by log K, so 0 = certain and 1 = uniform whatever the class count.
    """

    mask: np.ndarray
    confidence: np.ndarray
    entropy: np.ndarray


def is_out_of_memory(exc: BaseException) -> bool:
    """True for a device out-of-memory error (CUDA raises either type)."""
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def pad_multiple(model: torch.nn.Module) -> int:
    """Inputs are padded to a multiple of this (32, or the encoder's output stride if larger)."""
    stride = getattr(getattr(model, "encoder", None), "output_stride", 32)
    return max(32, int(stride) if isinstance(stride, int) else 32)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad (N, C, H, W) at the bottom/right to a multiple; reflect, or replicate when too small."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x
    # Reflect mirrors content without inventing edges; it needs pad < size.
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


def pad_for_model(x: torch.Tensor, multiple: int, margin: int = MARGIN) -> torch.Tensor:
    """Pad (N, C, H, W) by ``margin`` on every side (reflect) and further at the bottom/right to a multiple.

    The image then starts at (``margin``, ``margin``) of the result; replicate when the
    image is too small to reflect.
    """
    h, w = x.shape[-2:]
    bottom = margin + (-(h + 2 * margin)) % multiple
    right = margin + (-(w + 2 * margin)) % multiple
    mode = "reflect" if max(margin, bottom) < h and max(margin, right) < w else "replicate"
    return F.pad(x, (margin, right, margin, bottom), mode=mode)


def summarise_logits(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(N, K, H, W) float logits -> argmax, max softmax and normalised entropy, per pixel.

    With z = logits - max, e = exp(z), s = sum e: confidence = 1 / s and entropy =
    log s - sum(e * z) / s. ``logits`` is overwritten (it is a temporary).
    """
    k = logits.shape[1]
    vmax, index = logits.max(dim=1, keepdim=True)
    z = logits.sub_(vmax)
    e = torch.exp(z)
    s = e.sum(dim=1)
    ez = e.mul_(z).sum(dim=1)
    confidence = s.reciprocal()
    if k > 1:
        entropy = torch.log(s).sub_(ez.mul_(confidence)).mul_(1.0 / math.log(k)).clamp_(0.0, 1.0)
    else:
        entropy = torch.zeros_like(s)
    return index[:, 0], confidence, entropy


class Predictor:
    """Runs a segmentation model over images of any size; safe to share between threads.

    The predictor takes its own copy of ``model`` (``copy_model=True``), so a trainer
    can keep training the original. Calls are serialised by a lock.
    """

    def __init__(self, model: torch.nn.Module, meta: CheckpointMeta, *, device: str | torch.device = "auto",
                 batch_size: int = 4, tile: int = 1024, overlap: int = 64, amp: bool = True,
                 channels_last: bool | None = None, copy_model: bool = True,
                 threads: int | None = None) -> None:
        self.device = resolve_device(device)
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise WorkbenchError(f"--threads must be a whole number >= 1, got {threads!r}")
        # On the CPU the thread team follows the load as the trainer's does (None = adapt).
        self.threads = ThreadGovernor(threads) if self.device.type == "cpu" else None
        self.meta = meta
        model = copy.deepcopy(model) if copy_model else model
        self.model = model.to(self.device).eval()
        self.multiple = pad_multiple(self.model)
        self.margin = MARGIN
        if batch_size < 1:
            raise WorkbenchError(f"batch size must be at least 1, got {batch_size}")
        self.batch_size = int(batch_size)
        self.tile = max(self.multiple, int(tile) // self.multiple * self.multiple)
        self.overlap = max(0, min(int(overlap), self.tile // 2))
        # NHWC: tensor cores on CUDA; on CPU oneDNN's NHWC kernels ran a resnet18 U-Net
        # 1.4x faster than NCHW (benchmarks/bench_inference.py). Not for MPS.
        self.channels_last = (self.device.type in ("cuda", "cpu") if channels_last is None
                              else bool(channels_last))
        self.amp_dtype: torch.dtype | None = None
        if amp and self.device.type == "cuda":
            self.amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        n = len(meta.mean)
        # x_norm = x_uint8 * scale + shift  ==  (x / 255 - mean) / std, in place.
        std = torch.tensor(meta.std, dtype=torch.float32)
        mean = torch.tensor(meta.mean, dtype=torch.float32)
        self._scale = (1.0 / (255.0 * std)).view(1, n, 1, 1).to(self.device)
        self._shift = (-mean / std).view(1, n, 1, 1).to(self.device)
        self._lock = threading.Lock()
        self._onnx = None  # an onnx_backend.OnnxRunner once use_onnx() succeeded
        self.backend = "torch"
        self.backend_note = "PyTorch"
        # Effective limits; lowered for good after an out-of-memory error.
        self._batch = self.batch_size
        self._tile = self.tile

    @classmethod
    def from_checkpoint(cls, path: str | Path, *, device: str | torch.device = "auto",
                        schema: ClassSchema | None = None, **kw) -> "Predictor":
        """Load a checkpoint and wrap it (weights loaded straight onto the device).

        With ``schema`` (a project's classes) the model must predict those classes, matched
        by id: after a class move its output channels follow the new indices; other
        classes are a ``WorkbenchError`` (see ``load_checkpoint``).
        """
        from workbench.ml import onnx_backend

        requested = onnx_backend.check_backend(kw.pop("backend", "auto"))
        backend = onnx_backend.resolve_backend(requested)
        dev = resolve_device(device)
        model, meta = load_checkpoint(path, schema=schema, device=dev)
        predictor = cls(model, meta, device=dev, copy_model=False, **kw)
        if backend != "torch":
            predictor.use_onnx(path, None if schema is None else tuple(schema.ids), required=requested == "onnx")
        return predictor

    def use_onnx(self, checkpoint: str | Path, layout: object = None, *, required: bool = False) -> bool:
        """Run the forward in ONNX Runtime (CPU only), exporting to a cache beside ``checkpoint``.

        False (PyTorch stays, ``backend_note`` says why) on a GPU, without onnxruntime, or
        when the export cannot be made; with ``required`` those are a WorkbenchError.
        """
        from workbench.ml import onnx_backend

        if self.device.type != "cpu":
            self.backend_note = f"PyTorch (ONNX Runtime is the CPU backend; this runs on {self.device})"
        else:
            runner, self.backend_note = onnx_backend.runner_for(self.model, checkpoint, layout,
                                                                in_channels=len(self.meta.mean))
            if runner is not None:
                self._onnx, self.backend = runner, "onnx"
                return True
        if required:
            raise WorkbenchError(f"--backend onnx: cannot use ONNX Runtime; {self.backend_note}", checkpoint)
        return False

    # ----- public API -----------------------------------------------------------------
    def predict(self, image: np.ndarray, *, on_progress: ProgressCallback | None = None,
                cancel: CancelToken | None = None) -> Prediction:
        """Predict one (H, W, 3) uint8 image; large images go through tiles."""
        for _, pred in self.predict_many([(None, image)], on_progress=on_progress, cancel=cancel):
            return pred
        raise AssertionError("unreachable")  # predict_many yields once per image

    def predict_many(self, images: Iterable[tuple[Hashable, np.ndarray]], *,
                     on_progress: ProgressCallback | None = None,
                     cancel: CancelToken | None = None) -> Iterator[tuple[Hashable, Prediction]]:
        """Yield ``(key, Prediction)`` in input order, lazily; same-size images share batches."""
        total = len(images) if hasattr(images, "__len__") else None
        done = 0
        pending: list[tuple[Hashable, np.ndarray]] = []
        for key, image in images:
            image = self._check_image(image, key)
            if pending and (image.shape != pending[0][1].shape or len(pending) >= self._batch):
                yield from self._flush(pending, cancel)
                done += len(pending)
                report(on_progress, done, total, "predicting")
                pending = []
            if self._fits(image):
                pending.append((key, image))
                continue
            check(cancel)
            pred = self._predict_tiled(image, self._tile, on_progress, cancel, done, total)
            yield key, pred
            done += 1
            report(on_progress, done, total, "predicting")
        if pending:
            yield from self._flush(pending, cancel)
            done += len(pending)
            report(on_progress, done, total, "predicting")

    # ----- internals ------------------------------------------------------------------
    def _check_image(self, image: np.ndarray, key: Hashable) -> np.ndarray:
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
            raise WorkbenchError(f"image {key!r}: expected a uint8 array, got "
                                 f"{getattr(image, 'dtype', type(image).__name__)}")
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        if image.ndim != 3 or image.shape[0] == 0 or image.shape[1] == 0:
            raise WorkbenchError(f"image {key!r}: expected an (H, W, 3) array, got shape {image.shape}")
        channels = len(self.meta.mean)
        if image.shape[2] != channels:
            if channels == 1:
                image = image.mean(axis=2, keepdims=True).round().astype(np.uint8)
            elif image.shape[2] >= 3 and channels == 3:
                image = image[..., :3]
            else:
                raise WorkbenchError(f"image {key!r} has {image.shape[2]} channels; the model "
                                     f"expects {channels}")
        return image

    def _fits(self, image: np.ndarray) -> bool:
        return image.shape[0] <= self._tile and image.shape[1] <= self._tile

    def _to_input(self, arrays: list[np.ndarray]) -> torch.Tensor:
        """uint8 (H, W, C) arrays of one size -> normalised, padded (N, C, Hp, Wp) on the device."""
        batch = np.stack(arrays) if len(arrays) > 1 else arrays[0][None]
        if not batch.flags.writeable:  # torch warns on read-only buffers; never written here
            batch = batch.copy()
        x = torch.from_numpy(batch).to(self.device, non_blocking=True)
        x = x.permute(0, 3, 1, 2).to(dtype=torch.float32, memory_format=torch.contiguous_format)
        x = pad_for_model(x.mul_(self._scale).add_(self._shift), self.multiple, self.margin)
        if self.channels_last and self._onnx is None:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        threads = self.threads.apply() if self.threads is not None else torch.get_num_threads()
        if self._onnx is not None:
            with torch.inference_mode():
                return torch.from_numpy(self._onnx.run(x.contiguous().numpy(), threads))
        with torch.inference_mode():
            if self.amp_dtype is not None:
                with torch.autocast(self.device.type, dtype=self.amp_dtype):
                    out = self.model(x)
            else:
                out = self.model(x)
            return out.float()

    def _outputs(self, logits: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        with torch.inference_mode():
            index, conf, ent = summarise_logits(logits)
            return (index.to(torch.uint8).cpu().numpy(), conf.cpu().numpy(), ent.cpu().numpy())

    def _release(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def _flush(self, items: list[tuple[Hashable, np.ndarray]],
               cancel: CancelToken | None) -> Iterator[tuple[Hashable, Prediction]]:
        """Whole-image prediction of same-size images, in batches, with OOM fallback."""
        i = 0
        while i < len(items):
            check(cancel)
            chunk = items[i:i + self._batch]
            h, w = chunk[0][1].shape[:2]
            try:
                with self._lock:
                    logits = self._forward(self._to_input([a for _, a in chunk]))
                    m = self.margin
                    mask, conf, ent = self._outputs(logits[:, :, m:m + h, m:m + w])
                del logits
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
                self._release()
                if self._batch > 1:
                    self._batch = max(1, len(chunk) // 2)
                    continue
                # Batch 1 of a whole image does not fit: tile this image (and later ones).
                self._shrink_tile(max(h, w))
                for key, image in chunk:
                    yield key, self._predict_tiled(image, self._tile, None, cancel, 0, None)
                i += len(chunk)
                continue
            for j, (key, _) in enumerate(chunk):
                yield key, Prediction(mask[j], conf[j], ent[j])
            i += len(chunk)

    def _shrink_tile(self, size: int) -> None:
        """Halve the tile (below the image size); give up below MIN_TILE."""
        current = min(self._tile, -(-size // self.multiple) * self.multiple)
        if current <= MIN_TILE:
            raise WorkbenchError(
                f"out of memory on {self.device} even with batch 1 and {MIN_TILE}-pixel tiles; "
                "use a smaller model or --device cpu")
        self._tile = max(MIN_TILE, current // 2 // self.multiple * self.multiple)

    def _predict_tiled(self, image: np.ndarray, tile: int, on_progress: ProgressCallback | None,
                       cancel: CancelToken | None, done: int, total: int | None) -> Prediction:
        """Overlapping tiles, batched; each tile writes only the part it owns."""
        h, w = image.shape[:2]
        # Windows leave room for the reflected context, so a tile's forward is ``tile`` pixels a side.
        window = max(self.multiple, tile - 2 * self.margin)
        overlap = min(self.overlap, window // 2)
        grid = tiles(h, w, window, overlap)
        mask = np.empty((h, w), np.uint8)
        conf = np.empty((h, w), np.float32)
        ent = np.empty((h, w), np.float32)
        i = 0
        while i < len(grid):
            check(cancel)
            chunk = grid[i:i + self._batch]
            try:
                self._predict_tiles(image, chunk, mask, conf, ent)
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
                self._release()
                if self._batch > 1:
                    self._batch = max(1, len(chunk) // 2)
                    continue
                self._shrink_tile(tile)
                # Restart this image with smaller tiles (written pixels are simply rewritten).
                return self._predict_tiled(image, self._tile, on_progress, cancel, done, total)
            i += len(chunk)
            report(on_progress, done, total, "predicting", tiles_done=i, tiles=len(grid))
        return Prediction(mask, conf, ent)

    def _predict_tiles(self, image: np.ndarray, chunk: list[Tile], mask: np.ndarray,
                       conf: np.ndarray, ent: np.ndarray) -> None:
        crops = [image[t.rows.start:t.rows.stop, t.cols.start:t.cols.stop] for t in chunk]
        with self._lock:
            logits = self._forward(self._to_input(crops))
            for j, t in enumerate(chunk):
                m = self.margin
                r0, r1 = m + t.rows.own_start - t.rows.start, m + t.rows.own_stop - t.rows.start
                c0, c1 = m + t.cols.own_start - t.cols.start, m + t.cols.own_stop - t.cols.start
                m, c, e = self._outputs(logits[j:j + 1, :, r0:r1, c0:c1])
                rows = slice(t.rows.own_start, t.rows.own_stop)
                cols = slice(t.cols.own_start, t.cols.own_stop)
                mask[rows, cols] = m[0]
                conf[rows, cols] = c[0]
                ent[rows, cols] = e[0]

"""ONNX Runtime as the CPU backend of the Predictor: export once, cache beside the checkpoint.

On a CPU, ONNX Runtime runs the same U-Net faster than PyTorch's eager forward (fused
convolutions and activations, its own thread pool; BENCHMARKS.md "ONNX Runtime against
PyTorch"). The model is exported on first use to ``<checkpoint stem>.<key>.onnx`` in the
checkpoint's folder, where ``key`` hashes the checkpoint's weights (the safetensors
tensors, not its JSON metadata, which registering a version rewrites) and the class
layout the model was loaded for (a class move reorders its output channels), so a
retrained, compacted or remapped model never runs a stale export. Writes are atomic; a
folder that cannot be written, a missing ``onnxruntime`` or an export that fails all
leave the Predictor on PyTorch, with the reason in ``Predictor.backend_note``. GPUs
always use PyTorch (bf16 autocast there is already the fast path).
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import os
import struct
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workbench.errors import WorkbenchError

OPSET = 17
"""ONNX opset of the export (supported by onnxruntime >= 1.14 and torch's TorchScript exporter)."""

_EXPORT_LOCK = threading.Lock()  # two predictor threads loading the same model export once


def available() -> bool:
    """True when onnxruntime and onnx are installed (the ``onnx`` extra)."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def cache_key(checkpoint: str | Path, layout: Any = None) -> str:
    """16 hex digits of SHA-256 over the checkpoint's weights and the class layout it is loaded for.

    A safetensors file is an 8-byte header length, a JSON header (tensor names, dtypes,
    shapes, offsets and a ``__metadata__`` entry) and the tensor bytes: everything but
    ``__metadata__`` is hashed, so rewriting a version's metrics keeps its export.
    """
    h = hashlib.sha256()
    with open(checkpoint, "rb") as f:
        head = f.read(8)
        (n,) = struct.unpack("<Q", head) if len(head) == 8 else (0,)
        try:
            header = json.loads(f.read(n)) if 0 < n < 100 * 2**20 else None
        except ValueError:
            header = None
        if isinstance(header, dict):
            header.pop("__metadata__", None)
            h.update(json.dumps(header, sort_keys=True).encode())
        else:  # not safetensors after all: the whole file
            f.seek(0)
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    h.update(repr(layout).encode())
    return h.hexdigest()[:16]


def cache_path(checkpoint: str | Path, key: str) -> Path:
    """Where the export of ``checkpoint`` (under ``key``) is cached: beside it."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(f"{checkpoint.stem}.{key}.onnx")


def export(model: torch.nn.Module, dest: Path, in_channels: int = 3) -> Path:
    """Export ``model`` (eval mode, float32, CPU) to ``dest`` atomically; batch, height and width dynamic."""
    model = model.eval()
    dummy = torch.zeros(1, in_channels, 64, 64)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.stem}.", suffix=".onnx.tmp", dir=dest.parent)
    os.close(fd)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            # The TorchScript exporter: the dynamo one needs onnxscript and re-traces per shape.
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (dummy,), tmp, dynamo=False, input_names=["x"], output_names=["logits"],
                              dynamic_axes={"x": {0: "n", 2: "h", 3: "w"}, "logits": {0: "n", 2: "h", 3: "w"}},
                              opset_version=OPSET)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest


def _remove_stale(checkpoint: Path, keep: Path) -> None:
    """Remove earlier exports of the same checkpoint name (a replaced or compacted file)."""
    for old in checkpoint.parent.glob(f"{checkpoint.stem}.*.onnx"):
        if old != keep and len(old.suffixes) == 2:
            try:
                old.unlink()
            except OSError:
                pass


class OnnxRunner:
    """An ONNX Runtime session per thread count; ``run`` takes and returns float32 NCHW arrays."""

    def __init__(self, path: Path) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        self._ort = ort
        self._sessions: dict[int, Any] = {}
        self.session(torch.get_num_threads())  # a broken file fails here, not at the first image

    def session(self, threads: int) -> Any:
        """The session with ``threads`` intra-op threads (made on first use; a few hundred ms)."""
        sess = self._sessions.get(threads)
        if sess is None:
            so = self._ort.SessionOptions()
            so.intra_op_num_threads = max(1, threads)
            so.inter_op_num_threads = 1
            so.graph_optimization_level = self._ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            sess = self._ort.InferenceSession(str(self.path), so, providers=["CPUExecutionProvider"])
            self._sessions[threads] = sess
        return sess

    def run(self, x: np.ndarray, threads: int) -> np.ndarray:
        """Logits (N, K, H, W) of a normalised, padded (N, C, H, W) float32 batch."""
        return self.session(threads).run(None, {"x": np.ascontiguousarray(x, dtype=np.float32)})[0]


def runner_for(model: torch.nn.Module, checkpoint: str | Path, layout: Any,
               in_channels: int = 3) -> tuple[OnnxRunner | None, str]:
    """(runner, note): the cached or freshly exported model, or (None, why PyTorch is used)."""
    if not available():
        return None, "PyTorch (onnxruntime is not installed: pip install 'segmentation-workbench[onnx]')"
    checkpoint = Path(checkpoint)
    try:
        key = cache_key(checkpoint, layout)
    except OSError as exc:
        return None, f"PyTorch (cannot read {checkpoint.name} to key its ONNX export: {exc.strerror or exc})"
    dest = cache_path(checkpoint, key)
    with _EXPORT_LOCK:
        fresh = False
        if not dest.is_file():
            if not os.access(checkpoint.parent, os.W_OK):
                return None, f"PyTorch (cannot write the ONNX export beside {checkpoint.name})"
            try:
                export(model, dest, in_channels)
            except Exception as exc:  # noqa: BLE001 - any exporter failure means: stay on PyTorch
                return None, f"PyTorch (ONNX export failed: {type(exc).__name__}: {str(exc)[:200]})"
            fresh = True
            _remove_stale(checkpoint, dest)
        try:
            return OnnxRunner(dest), f"ONNX Runtime ({'exported to' if fresh else 'cached'} {dest.name})"
        except Exception as exc:  # noqa: BLE001 - a damaged cache file: export again, once
            if fresh:
                return None, f"PyTorch (ONNX Runtime cannot load the export: {str(exc)[:200]})"
            try:
                dest.unlink()
                export(model, dest, in_channels)
                return OnnxRunner(dest), f"ONNX Runtime (re-exported {dest.name})"
            except Exception as exc2:  # noqa: BLE001
                return None, f"PyTorch (ONNX export failed: {str(exc2)[:200]})"


BACKENDS = ("auto", "torch", "onnx")
"""Predictor backends: auto = ONNX Runtime on a CPU when installed, else PyTorch."""

_AUTO_MEANS: contextvars.ContextVar[str] = contextvars.ContextVar("workbench_auto_backend", default="onnx")


@contextlib.contextmanager
def auto_means_torch():
    """Within this block (this thread), backend "auto" means PyTorch.

    For short-lived predictors over a handful of images, where the one-off export costs
    more than it saves: Retrain's float16 check and its scoring of the new and the
    previous version (the app's predict-ahead then exports the version it keeps using).
    """
    token = _AUTO_MEANS.set("torch")
    try:
        yield
    finally:
        _AUTO_MEANS.reset(token)


def resolve_backend(name: str) -> str:
    """"torch" or "onnx" for a backend name ("auto" follows ``auto_means_torch``)."""
    check_backend(name)
    return _AUTO_MEANS.get() if name == "auto" else name


def check_backend(name: str) -> str:
    """``name`` if it is a backend; else a WorkbenchError listing them."""
    if name not in BACKENDS:
        raise WorkbenchError(f"--backend must be one of {', '.join(BACKENDS)}, got {name!r}")
    return name

"""Checkpoints: ONE ``.safetensors`` file holding the weights plus JSON metadata.

The metadata (architecture, encoder, classes with colours, input normalisation,
training settings and history, metrics, lineage) is stored as a JSON string under
the key ``"workbench"`` of the safetensors header's ``__metadata__``, so it can be
read without touching the weights. Nothing here unpickles: ``torch.load`` on a file
a user was sent runs code.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from safetensors.torch import save as save_bytes

from workbench.atomic import atomic_write_bytes
from workbench.classes import ClassSchema
from workbench.errors import InputError, WorkbenchError
from workbench.ml.models import IMAGENET_MEAN, IMAGENET_STD, ModelConfig, build_model

FORMAT_VERSION = 1
METADATA_KEY = "workbench"
HEAD_PREFIX = "segmentation_head."
"""Parameters replaced by ``adapt_head``: smp's ``model.segmentation_head`` (the final
convolution from decoder features to one logit per class). Encoder and decoder stay."""


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class CheckpointMeta:
    """Everything needed to rebuild, run and judge a model, stored beside its weights."""

    arch: str
    encoder: str
    num_classes: int
    schema: dict[str, Any]                      # ClassSchema.to_dict()
    mean: list[float] = field(default_factory=lambda: list(IMAGENET_MEAN))
    std: list[float] = field(default_factory=lambda: list(IMAGENET_STD))
    train: dict[str, Any] = field(default_factory=dict)   # training settings
    history: list[Any] = field(default_factory=list)      # per-epoch records
    metrics: dict[str, Any] = field(default_factory=dict)
    parent: str | None = None                   # checkpoint this one was fine-tuned from
    trained_on: list[str] = field(default_factory=list)   # image names used for training
    created: str = field(default_factory=_now_iso)
    format_version: int = FORMAT_VERSION

    def class_schema(self) -> ClassSchema:
        """The class schema the model predicts."""
        return ClassSchema.from_dict(self.schema, "checkpoint class schema")

    def model_config(self) -> ModelConfig:
        """The ``ModelConfig`` that rebuilds this architecture (random weights)."""
        return ModelConfig(arch=self.arch, encoder=self.encoder, encoder_weights=None,
                           in_channels=len(self.mean))

    def to_json(self) -> str:
        """The JSON text stored in the safetensors header."""
        return json.dumps(asdict(self), sort_keys=True, allow_nan=False)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


# field -> (check, description) used by ``read_meta`` to name what is wrong.
_FIELD_CHECKS: dict[str, tuple[Any, str]] = {
    "arch": (lambda v: isinstance(v, str) and v != "", "a non-empty string"),
    "encoder": (lambda v: isinstance(v, str) and v != "", "a non-empty string"),
    "num_classes": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
                    "a positive integer"),
    "schema": (lambda v: isinstance(v, dict), "an object (class schema)"),
    "mean": (lambda v: isinstance(v, list) and len(v) >= 1 and all(map(_is_number, v)),
             "a list of numbers"),
    "std": (lambda v: isinstance(v, list) and len(v) >= 1
            and all(_is_number(x) and x > 0 for x in v), "a list of positive numbers"),
    "train": (lambda v: isinstance(v, dict), "an object"),
    "history": (lambda v: isinstance(v, list), "a list"),
    "metrics": (lambda v: isinstance(v, dict), "an object"),
    "parent": (lambda v: v is None or isinstance(v, str), "a string or null"),
    "trained_on": (lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
                   "a list of strings"),
    "created": (lambda v: isinstance(v, str), "a string (ISO time)"),
    "format_version": (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
}
_REQUIRED = ("arch", "encoder", "num_classes", "schema")


def meta_from_dict(data: Any, path: str | Path) -> CheckpointMeta:
    """Validate parsed metadata field by field; ``InputError`` names the file and field."""
    if not isinstance(data, dict):
        raise InputError("checkpoint metadata is not a JSON object", path)
    for name in _REQUIRED:
        if name not in data:
            raise InputError(f"checkpoint metadata lacks the field {name!r}", path)
    known = {f.name for f in fields(CheckpointMeta)}
    values = {}
    for name, value in data.items():
        if name not in known:
            continue  # fields added by later versions are ignored, not fatal
        check, wanted = _FIELD_CHECKS[name]
        if not check(value):
            raise InputError(f"checkpoint metadata field {name!r} must be {wanted}, "
                             f"got {type(value).__name__} {value!r:.80}", path)
        values[name] = value
    meta = CheckpointMeta(**values)
    if meta.format_version > FORMAT_VERSION:
        raise InputError(f"checkpoint format {meta.format_version} was written by a newer "
                         f"workbench (this one reads format {FORMAT_VERSION})", path)
    if len(meta.mean) != len(meta.std):
        raise InputError(f"checkpoint metadata: mean has {len(meta.mean)} values but std has "
                         f"{len(meta.std)}", path)
    schema = ClassSchema.from_dict(meta.schema, f"{path} (class schema)")
    if schema.num_classes != meta.num_classes:
        raise InputError(f"checkpoint metadata: num_classes is {meta.num_classes} but its class "
                         f"schema has {schema.num_classes} trainable classes", path)
    return meta


FP16_MAX = 65504.0
# BatchNorm statistics stay float32: they are a tiny part of the file, and a running
# variance near 1e-6 would lose its precision (and shift every activation) in float16.
_KEEP_FULL_SUFFIXES = ("running_mean", "running_var")


def storage_tensor(key: str, tensor: torch.Tensor, half: bool) -> torch.Tensor:
    """The tensor as stored: float32 weights as float16 when ``half`` and they fit, else unchanged."""
    t = tensor.detach().to("cpu").contiguous()
    if (half and t.dtype == torch.float32 and not key.endswith(_KEEP_FULL_SUFFIXES)
            and (t.numel() == 0 or float(t.abs().max()) < FP16_MAX)):
        return t.to(torch.float16)
    return t.clone()  # safetensors refuses views sharing storage; a contiguous copy is safe


def save_checkpoint(path: str | Path, model: torch.nn.Module, meta: CheckpointMeta, *,
                    half: bool = False) -> None:
    """Write weights + metadata to one safetensors file, atomically.

    ``half`` stores float32 weights as float16 (half the size; loading casts them back):
    docs/decisions/0008 and BENCHMARKS.md measure that predictions stay the same.
    """
    path = Path(path)
    state = {key: storage_tensor(key, tensor, half) for key, tensor in model.state_dict().items()}
    try:
        data = save_bytes(state, metadata={METADATA_KEY: meta.to_json()})
    except ValueError as exc:
        raise WorkbenchError(f"cannot serialise checkpoint metadata: {exc}", path) from exc
    atomic_write_bytes(path, data)


def compact_checkpoint(path: str | Path, *, metrics: dict[str, Any] | None = None,
                       dest: str | Path | None = None, half: bool = True) -> tuple[int, int]:
    """Rewrite a checkpoint with float16 weights, atomically; (bytes before, bytes after).

    The metadata is kept as it is, plus ``train["storage_dtype"] = "float16"`` and, when
    given, ``metrics`` merged into ``meta.metrics``. ``dest``: write there instead of
    over ``path``. ``half=False`` only merges the metrics. A file already compact is
    left alone unless there are metrics to add or another destination.
    """
    path = Path(path)
    meta = read_meta(path)
    before = path.stat().st_size
    if (meta.train.get("storage_dtype") == "float16" or not half) and not metrics and dest is None:
        return before, before
    if metrics:
        meta.metrics = {**meta.metrics, **metrics}
    try:
        state = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise _open_error(path, exc) from None
    if half:
        meta.train = dict(meta.train, storage_dtype="float16")
    compact = {key: storage_tensor(key, tensor, half) for key, tensor in state.items()}
    try:
        data = save_bytes(compact, metadata={METADATA_KEY: meta.to_json()})
    except ValueError as exc:
        raise WorkbenchError(f"cannot serialise checkpoint metadata: {exc}", path) from exc
    atomic_write_bytes(Path(dest) if dest is not None else path, data)
    return before, len(data)


# How pickled PyTorch files start: torch.save's zip archive, or a bare pickle (protocol 2+).
_PICKLE_STARTS = (b"PK\x03\x04", b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")


def _open_error(path: Path, exc: BaseException) -> InputError:
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError:
        head = b""
    if head.startswith(_PICKLE_STARTS):
        # Say what the file is: the usual case is a .pt/.pth from elsewhere, renamed or not.
        return InputError("not a safetensors checkpoint: this is a pickled PyTorch file (torch.save), "
                          "which can run code when loaded, so workbench never opens it (never pickled "
                          ".pt/.pth); save the weights with safetensors.torch.save_file where they were "
                          "trained", path)
    return InputError(f"not a safetensors checkpoint ({type(exc).__name__}: {exc}); "
                      "workbench reads only .safetensors model files (never pickled .pt/.pth)", path)


def read_meta(path: str | Path) -> CheckpointMeta:
    """Read and validate the metadata from the file header only (weights are not loaded)."""
    path = Path(path)
    if not path.is_file():
        raise InputError("checkpoint not found" if not path.exists() else "not a file", path)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            header = fh.metadata() or {}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise _open_error(path, exc) from None
    text = header.get(METADATA_KEY)
    if text is None:
        raise InputError("safetensors file has no workbench metadata (not a workbench checkpoint)",
                         path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"checkpoint metadata is not valid JSON ({exc.msg})", path) from None
    except RecursionError:
        raise InputError("checkpoint metadata is nested too deeply to be a workbench checkpoint",
                         path) from None
    return meta_from_dict(data, path)


def _class_list(schema_dict: dict[str, Any] | ClassSchema) -> list[str]:
    schema = schema_dict if isinstance(schema_dict, ClassSchema) else ClassSchema.from_dict(schema_dict)
    return schema.names


def _check_shapes(model: torch.nn.Module, state: dict[str, torch.Tensor], meta: CheckpointMeta,
                  path: Path, skip_prefix: str | None = None) -> None:
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()
                if skip_prefix is None or not k.startswith(skip_prefix)}
    got = {k: tuple(v.shape) for k, v in state.items()
           if skip_prefix is None or not k.startswith(skip_prefix)}
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    wrong = sorted(k for k in set(expected) & set(got) if expected[k] != got[k])
    if not (missing or extra or wrong):
        return
    what = f"{meta.arch} / {meta.encoder} with {meta.num_classes} classes"
    parts = []
    if wrong:
        shown = "; ".join(f"{k}: file {got[k]}, model {expected[k]}" for k in wrong[:3])
        parts.append(f"{len(wrong)} tensor(s) of the wrong shape ({shown})")
    if missing:
        parts.append(f"{len(missing)} tensor(s) missing (e.g. {missing[0]})")
    if extra:
        parts.append(f"{len(extra)} unexpected tensor(s) (e.g. {extra[0]})")
    raise InputError(f"weights do not fit the model its metadata describes ({what}): "
                     + "; ".join(parts), path)


def load_checkpoint(path: str | Path, *, schema: ClassSchema | None = None, adapt_head: bool = False,
                    device: str | torch.device = "cpu") -> tuple[torch.nn.Module, CheckpointMeta]:
    """Rebuild the model a checkpoint describes and load its weights (in eval mode).

    With ``schema``: if its trainable classes (names and count) differ from the
    checkpoint's, refuse with ``WorkbenchError`` listing both, unless ``adapt_head``:
    then encoder and decoder weights are kept and ``model.segmentation_head`` is freshly
    initialised for the new classes (recorded in ``meta.train["adapted_head"]``).
    """
    from workbench.ml.device import resolve_device

    path = Path(path)
    meta = read_meta(path)
    try:
        state = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise _open_error(path, exc) from None
    dev = resolve_device(device)
    ckpt_names = _class_list(meta.schema)
    adapted = False
    num_classes = meta.num_classes
    if schema is not None and schema.names != ckpt_names:
        if not adapt_head:
            raise WorkbenchError(
                f"the model was trained for {len(ckpt_names)} classes ({', '.join(ckpt_names)}) "
                f"but the project has {schema.num_classes} ({', '.join(schema.names)}); "
                "retrain with a new head (adapt the head) or use a matching model", path)
        adapted = True
        num_classes = schema.num_classes
    try:
        model = build_model(meta.model_config(), num_classes)
    except WorkbenchError as exc:
        raise InputError(f"cannot rebuild the checkpoint's model: {exc}", path) from None
    if adapted:
        _check_shapes(model, state, meta, path, skip_prefix=HEAD_PREFIX)
        # Keep encoder + decoder; the head keeps the fresh initialisation smp gave it.
        body = {k: v for k, v in state.items() if not k.startswith(HEAD_PREFIX)}
        model.load_state_dict(body, strict=False)
        meta.train = dict(meta.train)
        meta.train["adapted_head"] = {"from_classes": ckpt_names, "to_classes": schema.names,
                                      "layers": HEAD_PREFIX.rstrip(".")}
        meta.num_classes = num_classes
        meta.schema = schema.to_dict()
    else:
        _check_shapes(model, state, meta, path)
        model.load_state_dict(state, strict=True)
    model.to(dev).eval()
    return model, meta

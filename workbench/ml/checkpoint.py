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
    decoder_channels: list[int] | None = None   # U-Net decoder widths; None = smp's default

    def class_schema(self) -> ClassSchema:
        """The class schema the model predicts."""
        return ClassSchema.from_dict(self.schema, "checkpoint class schema", rename_duplicates=True)

    def model_config(self) -> ModelConfig:
        """The ``ModelConfig`` that rebuilds this architecture (random weights)."""
        return ModelConfig(arch=self.arch, encoder=self.encoder, encoder_weights=None,
                           in_channels=len(self.mean),
                           decoder_channels=tuple(self.decoder_channels) if self.decoder_channels else None)

    def to_json(self) -> str:
        """The JSON text stored in the safetensors header."""
        return json.dumps(asdict(self), sort_keys=True, allow_nan=False)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


# Bounds on what a checkpoint may declare, checked before anything is built or loaded:
# the metadata comes from a file a person was sent, and its sizes drive allocations
# (100,000 mean/std values once built a 100,000-channel convolution: 2 GB in 8 s).
# Each is far above anything workbench writes.
MAX_HEADER_BYTES = 32 * 2**20      # the safetensors JSON header (tensor table + metadata)
MAX_METADATA_BYTES = 16 * 2**20    # the workbench metadata string inside it
MAX_IN_CHANNELS = 16               # len(mean) == len(std) == the model's input channels
MAX_CLASSES = 255                  # class indices are 0-254; 255 means "not labelled"
MAX_HISTORY = 100_000              # per-epoch records
MAX_TRAINED_ON = 1_000_000         # image names
MAX_NAME_CHARS = 200               # arch, encoder
MAX_TEXT_CHARS = 4096              # parent, each image name, the creation time
MAX_ENTRIES = 10_000               # keys of train / metrics
# Numbers in the training settings that size something when reused (a fine-tune, a
# tile): (low, high) inclusive; None is allowed.
_TRAIN_NUMBERS: dict[str, tuple[int, int]] = {
    "crop": (32, 4096), "batch_size": (1, 65_536), "tile": (32, 16_384), "epochs": (1, MAX_HISTORY),
    "workers": (0, 4096), "threads": (1, 4096), "world_size": (1, 65_536), "steps": (0, 2**53),
}


def _short_list(limit: int, item: Any) -> Any:
    return lambda v: isinstance(v, list) and 1 <= len(v) <= limit and all(map(item, v))


def _text(limit: int) -> Any:
    return lambda v: isinstance(v, str) and len(v) <= limit


# field -> (check, description) used by ``read_meta`` to name what is wrong.
_FIELD_CHECKS: dict[str, tuple[Any, str]] = {
    "arch": (lambda v: isinstance(v, str) and 0 < len(v) <= MAX_NAME_CHARS,
             f"a non-empty string of at most {MAX_NAME_CHARS} characters"),
    "encoder": (lambda v: isinstance(v, str) and 0 < len(v) <= MAX_NAME_CHARS,
                f"a non-empty string of at most {MAX_NAME_CHARS} characters"),
    "num_classes": (lambda v: isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_CLASSES,
                    f"a positive integer (at most {MAX_CLASSES})"),
    "schema": (lambda v: isinstance(v, dict) and (not isinstance(v.get("classes"), list)
                                                  or len(v["classes"]) <= MAX_CLASSES),
               f"an object (class schema) with at most {MAX_CLASSES} classes"),
    "mean": (_short_list(MAX_IN_CHANNELS, _is_number),
             f"a list of numbers (1 to {MAX_IN_CHANNELS}, one per input channel)"),
    "std": (_short_list(MAX_IN_CHANNELS, lambda x: _is_number(x) and x > 0),
            f"a list of positive numbers (1 to {MAX_IN_CHANNELS}, one per input channel)"),
    "train": (lambda v: isinstance(v, dict) and len(v) <= MAX_ENTRIES,
              f"an object with at most {MAX_ENTRIES} entries"),
    "history": (lambda v: isinstance(v, list) and len(v) <= MAX_HISTORY,
                f"a list of at most {MAX_HISTORY} records"),
    "metrics": (lambda v: isinstance(v, dict) and len(v) <= MAX_ENTRIES,
                f"an object with at most {MAX_ENTRIES} entries"),
    "parent": (lambda v: v is None or (isinstance(v, str) and len(v) <= MAX_TEXT_CHARS),
               f"a string of at most {MAX_TEXT_CHARS} characters, or null"),
    "trained_on": (lambda v: isinstance(v, list) and len(v) <= MAX_TRAINED_ON
                   and all(isinstance(x, str) and len(x) <= MAX_TEXT_CHARS for x in v),
                   f"a list of at most {MAX_TRAINED_ON:,} strings of at most {MAX_TEXT_CHARS} characters"),
    "created": (_text(MAX_TEXT_CHARS), "a string (ISO time)"),
    "format_version": (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    "decoder_channels": (lambda v: v is None or _short_list(5, lambda x: isinstance(x, int) and not isinstance(x, bool)
                                                            and 4 <= x <= 1024)(v),
                         "null or a list of up to 5 integers from 4 to 1024"),
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
    for key, (low, high) in _TRAIN_NUMBERS.items():
        value = values.get("train", {}).get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or not low <= value <= high):
            raise InputError(f"checkpoint metadata field 'train.{key}' must be an integer from {low} "
                             f"to {high} or null, got {value!r:.80}", path)
    meta = CheckpointMeta(**values)
    if meta.format_version > FORMAT_VERSION:
        raise InputError(f"checkpoint format {meta.format_version} was written by a newer "
                         f"workbench (this one reads format {FORMAT_VERSION})", path)
    if len(meta.mean) != len(meta.std):
        raise InputError(f"checkpoint metadata: mean has {len(meta.mean)} values but std has "
                         f"{len(meta.std)}", path)
    schema = ClassSchema.from_dict(meta.schema, f"{path} (class schema)", rename_duplicates=True)
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
    docs/decisions/0009 and BENCHMARKS.md measure that predictions stay the same.
    """
    path = Path(path)
    state = {key: storage_tensor(key, tensor, half) for key, tensor in model.state_dict().items()}
    try:
        data = save_bytes(state, metadata={METADATA_KEY: meta.to_json()})
    except ValueError as exc:
        raise WorkbenchError(f"cannot serialise checkpoint metadata: {exc}", path) from exc
    atomic_write_bytes(path, data)


def compact_checkpoint(path: str | Path, *, metrics: dict[str, Any] | None = None,
                       dest: str | Path | None = None, half: bool = True,
                       history: list[dict] | None = None) -> tuple[int, int]:
    """Rewrite a checkpoint with float16 weights, atomically; (bytes before, bytes after).

    The metadata is kept as it is, plus ``train["storage_dtype"] = "float16"`` and, when
    given, ``metrics`` merged into ``meta.metrics``. ``dest``: write there instead of
    over ``path``. ``half=False`` only merges the metrics. ``history``: the run's whole
    per-epoch history, replacing the one saved with the best epoch (which ends there).
    A file already compact is left alone unless there is something to add or another
    destination.
    """
    path = Path(path)
    meta = read_meta(path)
    before = path.stat().st_size
    if (meta.train.get("storage_dtype") == "float16" or not half) and not metrics and dest is None \
            and history is None:
        return before, before
    if metrics:
        meta.metrics = {**meta.metrics, **metrics}
    if history is not None:
        meta.history = [dict(h) for h in history]
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
    _check_header_size(path)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            header = fh.metadata() or {}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise _open_error(path, exc) from None
    text = header.get(METADATA_KEY)
    if text is None:
        raise InputError("safetensors file has no workbench metadata (not a workbench checkpoint)",
                         path)
    if len(text) > MAX_METADATA_BYTES:
        raise InputError(f"checkpoint metadata is {len(text):,} characters, more than a workbench "
                         f"checkpoint holds (at most {MAX_METADATA_BYTES:,})", path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"checkpoint metadata is not valid JSON ({exc.msg})", path) from None
    except RecursionError:
        raise InputError("checkpoint metadata is nested too deeply to be a workbench checkpoint",
                         path) from None
    return meta_from_dict(data, path)


def _check_header_size(path: Path) -> None:
    """Refuse a safetensors header larger than MAX_HEADER_BYTES before it is parsed.

    The first 8 bytes are the header's length (little-endian); safetensors itself
    accepts up to 100 MB, which parsed into Python objects can take gigabytes.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise InputError(f"cannot read the checkpoint: {exc.strerror or exc}", path) from None
    if len(head) < 8:
        return  # too short to be safetensors: safe_open says so (or names a pickle)
    size = int.from_bytes(head, "little")
    if head.startswith(_PICKLE_STARTS):
        return
    if size > MAX_HEADER_BYTES:
        raise InputError(f"checkpoint header is {size:,} bytes, more than a workbench checkpoint "
                         f"holds (at most {MAX_HEADER_BYTES:,}): not a workbench checkpoint, or forged",
                         path)


def _header_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape from the safetensors header alone (no weights read)."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            return {k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise _open_error(path, exc) from None


def _check_declared_shapes(path: Path, meta: CheckpointMeta, num_classes: int,
                           skip_prefix: str | None) -> None:
    """Compare the header's tensor shapes with the declared architecture, built on the meta
    device (shapes only, no memory), so that a forged file is refused before a real model
    or its weights are allocated. Architectures that cannot be built on the meta device
    (some timm encoders compute values at construction) are checked after building instead,
    and an unknown name is reported by that real build.
    """
    shapes = _header_shapes(path)
    try:
        with torch.device("meta"):
            skeleton = build_model(meta.model_config(), num_classes)
    except Exception:  # noqa: BLE001 - a meta-device limitation, or a bad name the real build reports
        return
    _check_shapes(skeleton, {k: torch.empty(v, device="meta") for k, v in shapes.items()}, meta, path,
                  skip_prefix=skip_prefix)


def _class_list(schema_dict: dict[str, Any] | ClassSchema) -> list[str]:
    schema = (schema_dict if isinstance(schema_dict, ClassSchema)
              else ClassSchema.from_dict(schema_dict, rename_duplicates=True))
    return schema.names


def _carries_ids(schema_dict: dict[str, Any]) -> bool:
    """True when a checkpoint's schema names its classes' ids (checkpoints before ids do not)."""
    items = schema_dict.get("classes") if isinstance(schema_dict, dict) else None
    return isinstance(items, list) and bool(items) and all(isinstance(i, dict) and "id" in i for i in items)


def class_match(meta: CheckpointMeta, schema: ClassSchema) -> str:
    """How a checkpoint's classes relate to ``schema``: "same", "reordered" or "different".

    Classes are matched by id (a renamed class is still the same class). A checkpoint
    written before classes had ids is matched by index and name, as it was then.
    "reordered": the same classes at other indices (``Project.move_class``).
    """
    ckpt = meta.class_schema()
    if not _carries_ids(meta.schema):
        return "same" if ckpt.names == schema.names else "different"
    if ckpt.ids == schema.ids:
        return "same"
    return "reordered" if sorted(ckpt.ids) == sorted(schema.ids) else "different"


def _mismatch_message(ckpt: ClassSchema, schema: ClassSchema) -> str:
    ckpt_names, names = ckpt.names, schema.names
    text = (f"the model was trained for {len(ckpt_names)} classes ({', '.join(ckpt_names)}) "
            f"but the project has {schema.num_classes} ({', '.join(names)})")
    if [n.casefold() for n in ckpt_names] == [n.casefold() for n in names]:
        text += ("; the names match but they are other classes (class ids differ: a class was "
                 "deleted and added again, or the model comes from another project)")
    return text + "; retrain with a new head (adapt the head) or use a matching model"


def _reorder_head(state: dict[str, torch.Tensor], ckpt: ClassSchema, schema: ClassSchema) -> None:
    # Channel i of the head predicts the class at index i: permuting the head's output
    # channels is exact, so a model survives a class move unchanged.
    order = [ckpt.ids.index(cid) for cid in schema.ids]
    k = len(order)
    perm = torch.tensor(order, dtype=torch.long)
    for key, tensor in state.items():
        if key.startswith(HEAD_PREFIX) and tensor.ndim >= 1 and tensor.shape[0] == k:
            state[key] = tensor.index_select(0, perm).contiguous()


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

    With ``schema``: classes are matched by id (``class_match``: a renamed class is the
    same class; checkpoints from before ids by index and name). The same classes at other
    indices get the head's channels permuted to match. Other classes are refused with
    ``WorkbenchError`` listing both, unless ``adapt_head``:
    then encoder and decoder weights are kept and ``model.segmentation_head`` is freshly
    initialised for the new classes (recorded in ``meta.train["adapted_head"]``).
    """
    from workbench.ml.device import resolve_device

    path = Path(path)
    meta = read_meta(path)
    dev = resolve_device(device)
    ckpt_names = _class_list(meta.schema)
    adapted = False
    num_classes = meta.num_classes
    match = "same" if schema is None else class_match(meta, schema)
    if match == "different":
        if not adapt_head:
            raise WorkbenchError(_mismatch_message(meta.class_schema(), schema), path)
        adapted = True
        num_classes = schema.num_classes
    # Shapes first (header only, model skeleton on the meta device), then weights, then the model.
    _check_declared_shapes(path, meta, meta.num_classes, HEAD_PREFIX if adapted else None)
    try:
        state = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise _open_error(path, exc) from None
    if match == "reordered":  # the same classes at other indices: permute the head's channels
        _reorder_head(state, meta.class_schema(), schema)
        meta.train = dict(meta.train)
        meta.train["reordered_head"] = {"from_ids": meta.class_schema().ids, "to_ids": schema.ids}
        meta.schema = schema.to_dict()
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

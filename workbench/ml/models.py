"""Model factory over ``segmentation_models_pytorch.create_model``.

Names are validated up front so a typo gives a message listing the valid options
(after smp's own encoder registry) instead of a deep KeyError.
"""

from __future__ import annotations

import difflib
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from workbench.errors import WorkbenchError

# User-facing architecture name -> smp's name (``smp.create_model(arch=...)``).
# These are every architecture smp 0.6.0 offers.
ARCHITECTURES: dict[str, str] = {
    "unet": "unet",
    "unetplusplus": "unetplusplus",
    "manet": "manet",
    "linknet": "linknet",
    "fpn": "fpn",
    "pspnet": "pspnet",
    "deeplabv3": "deeplabv3",
    "deeplabv3plus": "deeplabv3plus",
    "pan": "pan",
    "upernet": "upernet",
    "segformer": "segformer",
    "dpt": "dpt",
}
# Spellings people type that mean the same architecture.
ARCHITECTURE_ALIASES: dict[str, str] = {"unet++": "unetplusplus", "deeplabv3+": "deeplabv3plus"}

# Encoders chosen by measurement (docs/decisions/0005-default-encoder.md,
# benchmarks/bench_encoders.py): a light one for CPUs, the customary one for GPUs.
CPU_DEFAULT_ENCODER = "resnet18"
GPU_DEFAULT_ENCODER = "resnet34"

# The ImageNet statistics every smp encoder's "imagenet" weights expect; also used for
# randomly initialised models so that fine-tuning later sees the same input scale.
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


@dataclass
class ModelConfig:
    """What to build: architecture, encoder (None = default for the device), weights."""

    arch: str = "unet"
    encoder: str | None = None
    encoder_weights: str | None = None
    in_channels: int = 3
    decoder_channels: tuple[int, ...] | None = None
    """U-Net (and U-Net++) decoder widths, deepest first; None = smp's (256, 128, 64, 32, 16)."""


DECODER_ARCHS = frozenset({"unet", "unetplusplus"})
"""Architectures whose decoder widths ``decoder_channels`` sets (smp's ``decoder_channels``)."""
SLIM_DECODER: tuple[int, int, int, int, int] = (128, 64, 32, 16, 16)
"""Half-width U-Net decoder: 1.6x faster training steps than smp's default on a 2-core CPU
(8 x 256² crops, resnet18), where the full-resolution decoder stages cost more than the encoder
(BENCHMARKS.md, "CamVid recipe trials")."""


def check_decoder_channels(arch: str, channels: object) -> tuple[int, ...] | None:
    """``channels`` as a tuple of 5 widths (or None), refused with a message when unusable."""
    if channels is None:
        return None
    try:
        widths = tuple(int(c) for c in channels)  # type: ignore[union-attr]
        ok = len(widths) == 5 and all(4 <= c <= 1024 and c == float(v) for c, v in zip(widths, channels))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise WorkbenchError(f"U-Net decoder widths must be 5 numbers from 4 to 1024, deepest first "
                             f"(e.g. 128,64,32,16,16), got {channels!r}")
    if resolve_arch(arch) not in DECODER_ARCHS:
        raise WorkbenchError(f"decoder widths (--decoder) apply to unet and unetplusplus, not {arch}")
    return widths


def default_encoder(device: str | torch.device | None = None) -> str:
    """The default encoder for a device (None = this machine's): light on CPU, resnet34 on GPU."""
    if device is None or str(device) == "auto":
        from workbench.ml.device import resolve_device

        device = resolve_device("auto")
    kind = device.type if isinstance(device, torch.device) else torch.device(str(device)).type
    return CPU_DEFAULT_ENCODER if kind == "cpu" else GPU_DEFAULT_ENCODER


def encoder_names() -> list[str]:
    """Encoders in smp's registry (``tu-<timm model>`` names are accepted as well)."""
    from segmentation_models_pytorch.encoders import get_encoder_names

    return sorted(get_encoder_names())


def resolve_arch(arch: str) -> str:
    """smp's name for a user-facing architecture name; lists the options when unknown."""
    key = arch.strip().lower()
    key = ARCHITECTURE_ALIASES.get(key, key)
    if key not in ARCHITECTURES:
        raise WorkbenchError(f"unknown architecture {arch!r}; choose one of: "
                             + ", ".join(ARCHITECTURES))
    return ARCHITECTURES[key]


def check_encoder(name: str) -> str:
    """Return ``name`` if smp (or timm, for ``tu-`` names) knows it, else list the options."""
    if name.startswith("tu-"):
        import timm

        if timm.is_model(name[3:]):
            return name
        close = difflib.get_close_matches(name[3:], timm.list_models(), n=5)
        hint = f" (did you mean: {', '.join('tu-' + c for c in close)}?)" if close else ""
        raise WorkbenchError(f"unknown timm encoder {name!r}{hint}; 'tu-' must be followed by "
                             "a model name from timm.list_models()")
    names = encoder_names()
    if name in names:
        return name
    close = difflib.get_close_matches(name, names, n=5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise WorkbenchError(f"unknown encoder {name!r}.{hint} Supported encoders: {', '.join(names)} "
                         "(or 'tu-<timm model name>')")


def _normalise_weights(weights: str | None) -> str | None:
    if weights is None:
        return None
    text = str(weights).strip()
    return None if text.lower() in ("", "none", "null", "random") else text


def is_weights_file(weights: str | None) -> bool:
    """True when ``encoder_weights`` names a local file (a path) rather than a tag such as "imagenet"."""
    if weights is None:
        return False
    text = str(weights).strip()
    return text.lower().endswith(".safetensors") or "/" in text or "\\" in text or Path(text).expanduser().is_file()


def load_encoder_weights(encoder: torch.nn.Module, path: str | Path) -> int:
    """Load a local safetensors file into ``encoder``; returns the number of tensors loaded.

    The file holds the encoder's ``state_dict`` (keys such as ``conv1.weight``), or a whole
    smp model's (``encoder.conv1.weight``; only the encoder part is used). Every tensor of
    the encoder must be there with its shape: a file for another encoder is a
    ``WorkbenchError`` naming the file, never a half-loaded model.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path).expanduser()
    if not path.is_file():
        raise WorkbenchError("encoder weights file not found (--encoder-weights PATH wants a .safetensors "
                             "file of the encoder's state_dict)", path)
    try:
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise WorkbenchError(f"not a readable safetensors file ({exc})", path) from None
    if any(k.startswith("encoder.") for k in tensors):
        tensors = {k[len("encoder."):]: v for k, v in tensors.items() if k.startswith("encoder.")}
    own = encoder.state_dict()
    missing = [k for k in own if k not in tensors]
    wrong = [k for k in own if k in tensors and tuple(tensors[k].shape) != tuple(own[k].shape)]
    if missing or wrong:
        detail = []
        if missing:
            detail.append(f"{len(missing)} of its {len(own)} tensors missing (e.g. {missing[0]})")
        if wrong:
            k = wrong[0]
            detail.append(f"{len(wrong)} with another shape (e.g. {k}: {tuple(tensors[k].shape)} in the file, "
                          f"{tuple(own[k].shape)} in the encoder)")
        raise WorkbenchError("these are not weights for this encoder: " + "; ".join(detail), path)
    encoder.load_state_dict({k: tensors[k].to(own[k].dtype) for k in own}, strict=True)
    return len(own)


def build_model(config: ModelConfig, num_classes: int) -> torch.nn.Module:
    """Build an smp model with ``num_classes`` output channels (raw logits).

    ``encoder_weights="imagenet"`` needs a download; when it fails (offline) this
    raises ``WorkbenchError`` saying how to train from random initialisation instead,
    or how to load the weights from a local file: ``encoder_weights`` may be the path of a
    safetensors file holding the encoder's weights (``load_encoder_weights``).
    """
    import segmentation_models_pytorch as smp

    if not isinstance(num_classes, int) or num_classes < 1:
        raise WorkbenchError(f"a model needs at least one class, got {num_classes!r}")
    arch = resolve_arch(config.arch)
    encoder = check_encoder(config.encoder or default_encoder())
    weights = _normalise_weights(config.encoder_weights)
    decoder = check_decoder_channels(config.arch, config.decoder_channels)
    extra = {"decoder_channels": decoder} if decoder is not None else {}
    if is_weights_file(weights):
        model = build_model(ModelConfig(config.arch, encoder, None, config.in_channels, config.decoder_channels),
                            num_classes)
        load_encoder_weights(model.encoder, weights)
        return model
    if weights is not None and encoder.startswith("tu-"):
        weights = True  # timm universal encoders take a flag; the tag is in the name
    try:
        with warnings.catch_warnings():
            # smp warns that timm- names are deprecated aliases of tu- ones; not the user's concern.
            warnings.simplefilter("ignore", DeprecationWarning)
            model = smp.create_model(arch, encoder_name=encoder, encoder_weights=weights,
                                     in_channels=config.in_channels, classes=num_classes, **extra)
    except KeyError as exc:
        # smp raises KeyError for weights an encoder does not offer; its text lists them.
        raise WorkbenchError(f"cannot build {arch} with encoder {encoder}: {exc.args[0]}") from None
    except (ValueError, TypeError, AssertionError, RuntimeError, NotImplementedError) as exc:
        if weights is not None and _looks_like_download_failure(exc):
            raise _offline_error(encoder) from None
        raise WorkbenchError(f"cannot build {arch} with encoder {encoder}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - download errors come from several libraries
        if weights is not None:
            raise _offline_error(encoder) from exc
        raise WorkbenchError(f"cannot build {arch} with encoder {encoder}: {exc}") from None
    return model


def _looks_like_download_failure(exc: BaseException) -> bool:
    text = f"{type(exc).__name__} {exc}".lower()
    return any(w in text for w in ("connection", "resolve", "offline", "hub", "download", "network"))


def _offline_error(encoder: str) -> WorkbenchError:
    return WorkbenchError(
        f"could not download ImageNet weights for {encoder} (no network?): "
        "train with --encoder-weights none to start from random initialisation, or give the weights "
        "as a local file: --encoder-weights PATH.safetensors (the encoder's state_dict, saved with "
        "safetensors.torch.save_file on a machine that can download)")


def count_parameters(model: torch.nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)

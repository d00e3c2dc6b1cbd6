"""Choosing the torch device: CUDA if present, else Apple MPS, else the CPU."""

from __future__ import annotations

import torch

from workbench.errors import WorkbenchError


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def available_devices() -> list[str]:
    """Names a user may pass to ``resolve_device`` on this machine."""
    names = ["cpu"]
    if torch.cuda.is_available():
        count = torch.cuda.device_count()
        names += ["cuda"] + [f"cuda:{i}" for i in range(count)]
    if _mps_available():
        names.append("mps")
    return names


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """Turn "auto" / "cpu" / "cuda" / "cuda:1" / "mps" into a device that exists here.

    "auto" (or None) picks CUDA, then Apple MPS, then the CPU. Asking for a device
    that is absent raises ``WorkbenchError`` naming the devices that are available.
    """
    if isinstance(name, torch.device):
        name = str(name)
    text = (name or "auto").strip().lower()
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise WorkbenchError(f"unknown device {name!r}; choose one of: auto, "
                             + ", ".join(available_devices())) from None
    if device.type == "cpu":
        return torch.device("cpu")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise WorkbenchError(f"device {name!r} asked for, but CUDA is not available here; "
                                 "available: " + ", ".join(available_devices()))
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise WorkbenchError(f"device {name!r} asked for, but this machine has "
                                 f"{torch.cuda.device_count()} CUDA device(s); available: "
                                 + ", ".join(available_devices()))
        return device
    if device.type == "mps":
        if not _mps_available():
            raise WorkbenchError(f"device {name!r} asked for, but Apple MPS is not available here; "
                                 "available: " + ", ".join(available_devices()))
        return device
    raise WorkbenchError(f"unsupported device {name!r}; choose one of: auto, "
                         + ", ".join(available_devices()))


def describe_device(device: str | torch.device) -> str:
    """A human name for the device: "CPU (2 threads)" or the GPU's model name."""
    device = torch.device(device) if not isinstance(device, torch.device) else device
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return torch.cuda.get_device_name(index)
    if device.type == "mps":
        return "Apple GPU (MPS)"
    threads = torch.get_num_threads()
    return f"CPU ({threads} thread{'s' if threads != 1 else ''})"

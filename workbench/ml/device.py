"""Choosing the torch device: CUDA if present, else Apple MPS, else the CPU."""

from __future__ import annotations

import math
import os
import time

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


def choose_threads(busy_self: int = 0, cores: int | None = None, load: float | None = None) -> int:
    """CPU threads for the next steps: the cores that other processes leave free (at least 1).

    On a shared machine an oversubscribed OpenMP team is far slower than a smaller one:
    its threads wait at every barrier for a sibling the scheduler has parked. Measured on
    the 2-core dev box at load ~5: a training step took 2.2 s with 1 thread and 5-15 s
    with 2. ``busy_self`` is how many threads this process itself adds to the load average.
    """
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (OSError, AttributeError):
            return cores
    others = max(0.0, load - busy_self)
    return int(min(cores, max(1, math.floor(cores - others + 0.5))))


class ThreadGovernor:
    """Keeps this process's CPU thread team at the cores other processes leave free.

    Shared by the trainer's loop and the Predictor: ``apply()`` is cheap to call before
    every step or batch and re-reads the load average at most every ``interval_s``.
    Under load on the 2-core dev box, 2 prediction threads ran at half the speed of 1
    (issue 14's walkthrough), as 2 training threads did (decision 0007). ``fixed`` pins the count.
    """

    def __init__(self, fixed: int | None = None, interval_s: float = 30.0, processes: int = 1) -> None:
        self.fixed = fixed
        self.interval_s = interval_s
        self.processes = max(1, processes)
        self._checked: float | None = None
        self.used: set[int] = set()

    def apply(self) -> int:
        """Set (when due) and return the thread count for the next piece of work."""
        if self.fixed is not None:
            if self._checked is None:
                torch.set_num_threads(self.fixed)
                self._checked = time.monotonic()
                self.used.add(self.fixed)
            return self.fixed
        now = time.monotonic()
        if self._checked is not None and now - self._checked < self.interval_s:
            return torch.get_num_threads()
        busy = 0 if self._checked is None else torch.get_num_threads() * self.processes
        self._checked = now
        n = max(1, choose_threads(busy) // self.processes)
        if n != torch.get_num_threads():
            torch.set_num_threads(n)
        self.used.add(n)
        return n

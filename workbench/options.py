"""Validating numeric options up front: one sentence naming the option, never a traceback.

Every command and setting that takes a number checks it here before any work starts,
so ``--seed -1`` or ``--tile nan`` is refused in the first second with
"--seed must be >= 0, got -1", not after a run (or never, as a traceback). Option
names are given as the CLI spells them (``--batch-size``); the GUI and the API get
the same sentences. Counts of processes and threads are capped to what the machine
has, with a note instead of an error (``cap_to_cores``).
"""

from __future__ import annotations

import math
import os
from typing import Any

from workbench.errors import WorkbenchError


def flag(name: str) -> str:
    """The CLI spelling of a setting: ``batch_size`` -> ``--batch-size`` (flags pass through)."""
    return name if name.startswith("-") else "--" + name.replace("_", "-")


def _label(name: str, what: str | None) -> str:
    return f"{flag(name)} ({what})" if what else flag(name)


def check_int(name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None,
              what: str | None = None) -> int:
    """``value`` as an int within [minimum, maximum]; else ``WorkbenchError`` naming the option."""
    label = _label(name, what)
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
        else:
            raise WorkbenchError(f"{label} must be a whole number, got {value!r}")
    if minimum is not None and value < minimum:
        raise WorkbenchError(f"{label} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise WorkbenchError(f"{label} must be <= {maximum}, got {value}")
    return value


def check_float(name: str, value: Any, *, minimum: float | None = None, maximum: float | None = None,
                above: float | None = None, below: float | None = None, what: str | None = None) -> float:
    """``value`` as a finite float within the bounds (``above``/``below`` are exclusive).

    NaN and infinity are always refused: they pass comparisons silently (or fail late,
    when a checkpoint's JSON cannot hold them) and no option means anything with them.
    """
    label = _label(name, what)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise WorkbenchError(f"{label} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise WorkbenchError(f"{label} must be a finite number, got {value}")
    if minimum is not None and value < minimum:
        raise WorkbenchError(f"{label} must be >= {minimum:g}, got {value:g}")
    if above is not None and value <= above:
        raise WorkbenchError(f"{label} must be > {above:g}, got {value:g}")
    if maximum is not None and value > maximum:
        raise WorkbenchError(f"{label} must be <= {maximum:g}, got {value:g}")
    if below is not None and value >= below:
        raise WorkbenchError(f"{label} must be < {below:g}, got {value:g}")
    return value


def check_choice(name: str, value: Any, choices: tuple[Any, ...]) -> Any:
    """``value`` if it is one of ``choices``; else a message listing them."""
    if value not in choices:
        raise WorkbenchError(f"{flag(name)} must be one of {', '.join(map(str, choices))}, got {value!r}")
    return value


def machine_cores() -> int:
    """CPU cores this process may run on (its affinity mask, not the whole machine)."""
    if hasattr(os, "sched_getaffinity"):
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except OSError:
            pass
    return max(1, os.cpu_count() or 1)


def cap_to_cores(name: str, value: int | None, *, cores: int | None = None,
                 unit: str = "processes") -> tuple[int | None, str | None]:
    """(value capped to the machine's cores, a note saying so or None).

    More loader processes or threads than cores only compete for them: 100,000 workers
    once started a thousand processes, exhausted memory and left orphans.
    """
    if value is None:
        return None, None
    limit = machine_cores() if cores is None else cores
    if value <= limit:
        return value, None
    return limit, f"{flag(name)} {value} is more than this machine's {limit} CPU core(s): using {limit} {unit}"


# ----- checks for the inference and evaluation commands (called by workbench/commands) -----
MIN_TILE = 256
MAX_TILE = 16384
MAX_BATCH = 4096


def check_batch_size(value: Any, name: str = "--batch-size") -> int:
    """Images (or tiles) per inference step: 1 .. MAX_BATCH."""
    return check_int(name, value, minimum=1, maximum=MAX_BATCH)


def check_tile(value: Any, name: str = "--tile") -> int:
    """Side in pixels above which inference goes through tiles: MIN_TILE .. MAX_TILE."""
    return check_int(name, value, minimum=MIN_TILE, maximum=MAX_TILE)


def check_overlap(value: Any, tile: int | None = None, name: str = "--overlap") -> int:
    """Tile overlap in pixels: >= 0 and, with ``tile``, at most half of it."""
    overlap = check_int(name, value, minimum=0, maximum=MAX_TILE // 2)
    if tile is not None and overlap * 2 > tile:
        raise WorkbenchError(f"{flag(name)} must be at most half of the tile ({tile}), got {overlap}")
    return overlap

"""Which mask values the stored labels and ground truth hold, and how many pixels of each.

A class change must know what the masks hold: an index that stored masks still use is
never handed to a new class, a class they use is never dropped without an explicit
delete, and the Delete dialog says how many files and pixels change. Decoding every
mask each time would be slow on a large project, so the counts are cached per file in
``state/mask-values.json``, keyed by (mtime, size, inode): only masks written since the last
scan are decoded again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from workbench import masks
from workbench.atomic import atomic_write_text, is_temp_file, read_regular_bytes
from workbench.classes import UNLABELLED, ClassSchema
from workbench.errors import InputError, WorkbenchError

CACHE_NAME = "mask-values.json"
MASK_FOLDERS = ("labels", "groundtruth")


@dataclass
class MaskUsage:
    """Pixel counts per value for every stored mask ("labels/a.png" -> {value: pixels})."""

    counts: dict[str, dict[int, int]] = field(default_factory=dict)
    unreadable: list[str] = field(default_factory=list)

    def values(self) -> set[int]:
        """Every value some stored mask holds (255, not labelled, included)."""
        return {v for per_file in self.counts.values() for v in per_file}

    def files_holding(self, value: int) -> list[str]:
        """The masks ("labels/a.png") that hold ``value``, by name."""
        return sorted(rel for rel, per_file in self.counts.items() if per_file.get(int(value)))

    def pixels(self, value: int) -> int:
        """How many pixels of all stored masks hold ``value``."""
        return sum(per_file.get(int(value), 0) for per_file in self.counts.values())

    def values_outside(self, schema: ClassSchema) -> list[int]:
        """Values the masks hold that ``schema`` does not describe (classes.json edited by hand)."""
        valid = set(schema.valid_values) | {UNLABELLED}
        return sorted(v for v in self.values() if v not in valid)


def _load_cache(path: Path) -> dict:
    try:
        data = json.loads(read_regular_bytes(path).decode("utf-8"))  # never blocks on a pipe
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return {}  # a cache only: a missing or damaged one is rebuilt
    return data if isinstance(data, dict) else {}


def _cached_counts(entry: object, stamp: list[int]) -> dict[int, int] | None:
    if not isinstance(entry, dict) or entry.get("stamp") != stamp:
        return None
    counts = entry.get("counts")
    if not isinstance(counts, dict):
        return None
    try:
        out = {int(k): int(v) for k, v in counts.items()}
    except (TypeError, ValueError):
        return None
    return out if all(0 <= k <= 255 and v > 0 for k, v in out.items()) else None


def count_values(mask: np.ndarray) -> dict[int, int]:
    """{value: pixels} of one mask."""
    hist = np.bincount(mask.reshape(-1), minlength=256)
    return {int(v): int(hist[v]) for v in np.flatnonzero(hist)}


WRITE_AFTER = 32
"""Decoded masks that make the cache worth writing to disk (a small project rescans in
milliseconds; writing the file costs two fsyncs)."""


def scan(state: Path, schema: ClassSchema, *, memory: dict | None = None,
         write_cache: bool = True) -> MaskUsage:
    """Count the values of every stored label and ground-truth mask.

    Counts are reused for files whose (mtime, size, inode) did not change: from
    ``memory`` (a dict the caller keeps between scans, updated here) or from
    ``state/mask-values.json``, which is rewritten when many masks had to be decoded.
    """
    cache_path = state / CACHE_NAME
    cache = memory if memory else _load_cache(cache_path)
    fresh: dict[str, dict] = {}
    usage = MaskUsage()
    decoded = 0
    for sub in MASK_FOLDERS:
        folder = state / sub
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob(f"*{masks.MASK_SUFFIX}")):
            if is_temp_file(path) or not path.is_file():
                continue
            rel = f"{sub}/{path.name}"
            try:
                st = path.stat()
            except OSError:
                continue
            stamp = [st.st_mtime_ns, st.st_size, st.st_ino]  # every atomic write is a new inode
            counts = _cached_counts(cache.get(rel), stamp)
            if counts is None:
                decoded += 1
                try:
                    counts = count_values(masks.decode_mask(path.read_bytes(), schema, path))
                except (InputError, OSError):
                    usage.unreadable.append(rel)  # a damaged mask: its own read names it
                    continue
            usage.counts[rel] = counts
            fresh[rel] = {"stamp": stamp, "counts": {str(k): v for k, v in counts.items()}}
    if memory is not None:
        memory.clear()
        memory.update(fresh)
    if write_cache and decoded >= WRITE_AFTER:
        try:
            atomic_write_text(cache_path, json.dumps(fresh, separators=(",", ":")))
        except (OSError, WorkbenchError):
            pass  # the cache only saves time; the scan result stands
    return usage

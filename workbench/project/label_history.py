"""Bounded per-image label history: the versions that saves, imports, restores and remaps replaced.

History lives in files (the database is not involved), one folder per image::

    state/history/<stem>/000007.png    the replaced label, byte for byte
    state/history/<stem>/000007.json   who made it, its status, when it was made and
                                       replaced, why, the classes it was drawn with

``keep`` writes the PNG, then the JSON sidecar (each atomically) and only then may the
caller replace the label: a crash leaves the old version in place or in history, never
neither. A PNG without its sidecar is the leftover of such a crash; it is not a version
and is removed at the next ``keep``.

Bounds: at most ``MAX_VERSIONS`` versions and ``MAX_BYTES`` of PNG per image; the
oldest go first, but the newest version is always kept, whatever its size.

Coalescing (``coalesces``): autosave writes every few seconds while a person paints.
A person's save does not keep the label it replaces when that label is the person's own
autosave from the same sitting: made by a person, written less than ``COALESCE_S``
seconds before, and the new save changes less than ``BIG_CHANGE`` of its labelled
pixels. Everything else is kept: what an import, a model, a class remap, a clear or a
restore replaced, a person's label from an earlier sitting, and any big change (accept
a whole prediction, clear, a large fill) even within a sitting.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workbench import masks
from workbench.atomic import atomic_write_bytes, atomic_write_text, is_temp_file, read_regular_bytes
from workbench.classes import UNLABELLED, ClassSchema
from workbench.errors import InputError, WorkbenchError

HISTORY_DIR = "history"
MAX_VERSIONS = 20                 # per image
MAX_BYTES = 20 * 2**20            # per image, PNG bytes
COALESCE_S = 300.0                # a person's save this recent belongs to the same sitting
BIG_CHANGE = 0.25                 # ... unless the new save changes this share of its labelled pixels
SIDE_SUFFIX = ".json"
REASONS = ("save", "clear", "import", "import --overwrite", "class remap", "restore")


@dataclass(frozen=True)
class LabelVersion:
    """One kept version of an image's label (``version`` is stable: never renumbered)."""

    version: int
    path: Path                    # the PNG
    source: str | None            # who made it: "person", "import", "model:3" (None: unknown)
    status: str | None            # its status then: "edited", "verified", ...
    made: float | None            # unix time it was written
    replaced: float | None        # unix time it was replaced (kept here)
    reason: str | None            # what replaced it: "save", "clear", "import --overwrite", ...
    labelled: int | None          # pixels that hold a class (not 255)
    pixels: int | None            # all pixels (height x width)
    size: int                     # PNG bytes
    classes: dict | None          # the class schema it was drawn with (ClassSchema.to_dict())

    def describe_source(self) -> str:
        """"person", "import", "model v3" or "unknown", for messages and tables."""
        src = self.source or "unknown"
        if src.startswith("model:"):
            return f"model v{src.split(':', 1)[1]}"
        return src


def folder_name(stem: str) -> str:
    """The history folder name of an image stem (hashed when the stem cannot be a folder name)."""
    if stem in ("", ".", "..") or len(stem.encode("utf-8", "surrogateescape")) > 200:
        digest = hashlib.sha1(stem.encode("utf-8", "surrogateescape")).hexdigest()[:16]
        return f"_{digest}"
    return stem


def history_dir(state_dir: str | Path, stem: str) -> Path:
    """``state/history/<stem>``: where the versions of one image's label live."""
    return Path(state_dir) / HISTORY_DIR / folder_name(stem)


def _check_real_folder(state_dir: str | Path, folder: Path) -> None:
    """Refuse to write through a history folder that is a symbolic link (it may point anywhere)."""
    for path in (Path(state_dir) / HISTORY_DIR, folder):
        if path.is_symlink():
            raise WorkbenchError("the label history folder is a symbolic link; it must be a real folder "
                                 "inside the state folder (move the link away)", path)


def _seq(path: Path) -> int | None:
    digits = path.name.split(".", 1)[0]
    return int(digits) if digits.isdigit() else None


def _entries(folder: Path) -> tuple[dict[int, Path], dict[int, Path]]:
    """({seq: png}, {seq: sidecar}) of a history folder."""
    pngs: dict[int, Path] = {}
    sides: dict[int, Path] = {}
    try:
        with os.scandir(folder) as it:
            names = [e.name for e in it]
    except FileNotFoundError:
        return pngs, sides
    except OSError as exc:
        raise WorkbenchError(f"cannot list the label history: {exc.strerror or exc}", folder) from exc
    for name in names:
        path = folder / name
        if is_temp_file(path):
            continue
        seq = _seq(path)
        if seq is None:
            continue
        if name.endswith(masks.MASK_SUFFIX):
            pngs[seq] = path
        elif name.endswith(SIDE_SUFFIX):
            sides[seq] = path
    return pngs, sides


MAX_TIME = 1e11   # unix seconds (year 5138): a later "made" or "replaced" is not a time


def _num(value: Any) -> float | None:
    # A sidecar is data from disk: NaN, infinity (1e999) or a negative time is no time at all.
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    value = float(value)
    return value if 0.0 <= value <= MAX_TIME else None


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


MAX_SIDECAR_BYTES = 1 << 20   # a sidecar is a few KB; a bigger one is not ours


def _read_version(seq: int, png: Path, side: Path) -> LabelVersion:
    try:
        if side.stat().st_size > MAX_SIDECAR_BYTES:
            raise ValueError("sidecar too large")
        meta = json.loads(read_regular_bytes(side).decode("utf-8"))  # never blocks on a pipe
    except (OSError, ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        meta = {}  # a damaged sidecar: the pixels are still a way back
    if not isinstance(meta, dict):
        meta = {}
    try:
        size = png.stat().st_size
    except OSError:
        size = 0
    classes = meta.get("classes")
    return LabelVersion(seq, png, _str(meta.get("source")), _str(meta.get("status")), _num(meta.get("made")),
                        _num(meta.get("replaced")), _str(meta.get("reason")), _int(meta.get("labelled")),
                        _int(meta.get("pixels")), size, classes if isinstance(classes, dict) else None)


def versions(state_dir: str | Path, stem: str) -> list[LabelVersion]:
    """The kept versions of an image's label, oldest first (a PNG needs its sidecar to count)."""
    pngs, sides = _entries(history_dir(state_dir, stem))
    return [_read_version(seq, pngs[seq], sides[seq]) for seq in sorted(pngs) if seq in sides]


def find(state_dir: str | Path, stem: str, version: int, name: str | None = None) -> LabelVersion:
    """The kept version ``version``; WorkbenchError listing the versions there are."""
    kept = versions(state_dir, stem)
    for v in kept:
        if v.version == int(version):
            return v
    what = name or stem
    if not kept:
        raise WorkbenchError(f"{what} has no earlier label versions")
    listed = ", ".join(str(v.version) for v in kept)
    raise WorkbenchError(f"{what} has no label version {version} (versions kept: {listed})")


def coalesces(*, replaced_source: str | None, replaced_made: float | None, new_source: str,
              reason: str, old: np.ndarray | None, new: np.ndarray, now: float | None = None) -> bool:
    """True when a save need not keep the label it replaces (see the module docstring)."""
    if reason != "save" or new_source != "person" or replaced_source != "person":
        return False
    if replaced_made is None or old is None or old.shape != new.shape:
        return False
    now = time.time() if now is None else now
    if not (0.0 <= now - replaced_made < COALESCE_S):
        return False
    labelled = int(np.count_nonzero(old != UNLABELLED))
    if labelled == 0:
        return True  # an empty label holds nothing to get back
    changed = int(np.count_nonzero(old != new))
    return changed < BIG_CHANGE * labelled


def keep(state_dir: str | Path, stem: str, label_path: str | Path, *, source: str | None,
         status: str | None, reason: str, schema: ClassSchema | None = None,
         data: bytes | None = None, mask: np.ndarray | None = None,
         made: float | None = None) -> LabelVersion | None:
    """Copy the current label file into the image's history before it is replaced.

    Returns the new version, or None when there is no label file or it is byte-identical
    to the newest kept version. ``data`` / ``mask``: the file's bytes and decoded pixels
    when the caller has them already; ``made`` defaults to the file's modification time.
    Call it before replacing (or deleting) the label; the history is pruned afterwards.
    """
    label_path = Path(label_path)
    if data is None:
        try:
            data = read_regular_bytes(label_path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise WorkbenchError(f"cannot keep the label in its history: {exc.strerror or exc}",
                                 label_path) from exc
    if made is None:
        try:
            made = label_path.stat().st_mtime
        except OSError:
            made = None
    folder = history_dir(state_dir, stem)
    _check_real_folder(state_dir, folder)
    pngs, sides = _entries(folder)
    complete = sorted(s for s in pngs if s in sides)
    if complete:
        try:
            if read_regular_bytes(pngs[complete[-1]]) == data:
                return None  # the same version is already the newest one kept
        except OSError:
            pass
    if mask is None and schema is not None:
        try:
            mask = masks.decode_mask(data, schema, label_path)
        except InputError:
            mask = None  # a damaged label is still kept, byte for byte
    seq = max([*pngs, *sides, 0]) + 1
    png = folder / f"{seq:06d}{masks.MASK_SUFFIX}"
    meta = {
        "version": seq, "stem": stem, "source": source, "status": status, "made": made,
        "replaced": time.time(), "reason": reason,
        "labelled": None if mask is None else int(np.count_nonzero(mask != UNLABELLED)),
        "pixels": None if mask is None else int(mask.size),
        "classes": None if schema is None else schema.to_dict(),
    }
    atomic_write_bytes(png, data)
    atomic_write_text(folder / f"{seq:06d}{SIDE_SUFFIX}", json.dumps(meta) + "\n")
    prune(state_dir, stem)
    return _read_version(seq, png, folder / f"{seq:06d}{SIDE_SUFFIX}")


def prune(state_dir: str | Path, stem: str, *, max_versions: int = MAX_VERSIONS,
          max_bytes: int = MAX_BYTES) -> int:
    """Drop the oldest versions beyond the bounds (never the newest) and crash leftovers; returns how many."""
    folder = history_dir(state_dir, stem)
    try:
        _check_real_folder(state_dir, folder)
    except WorkbenchError:
        return 0  # never delete through a link
    pngs, sides = _entries(folder)
    removed = 0
    # A PNG without a sidecar (or the reverse) is a keep() that a crash interrupted.
    for seq in set(pngs) ^ set(sides):
        (pngs.get(seq) or sides[seq]).unlink(missing_ok=True)
    complete = sorted(s for s in pngs if s in sides)
    sizes = {}
    for s in complete:
        try:
            sizes[s] = pngs[s].stat().st_size
        except OSError:
            sizes[s] = 0
    total = sum(sizes.values())
    while len(complete) > 1 and (len(complete) > max_versions or total > max_bytes):
        s = complete.pop(0)
        sides[s].unlink(missing_ok=True)  # the sidecar first: the version is gone at once
        pngs[s].unlink(missing_ok=True)
        total -= sizes[s]
        removed += 1
    return removed


def decode_version(version: LabelVersion, schema: ClassSchema) -> tuple[np.ndarray, list[str]]:
    """The version's pixels in ``schema``'s indices, and the names of classes ``schema`` lacks.

    A version drawn with other classes (before a class move, rename or delete) is
    translated: by class id where both schemas carry ids, else by name, else a class
    renamed in place keeps its index. Pixels of a class the project no longer has become
    255, "not labelled".
    """
    try:
        data = read_regular_bytes(version.path)
    except OSError as exc:
        raise InputError(f"cannot read the label version: {exc.strerror or exc}", version.path) from exc
    old_schema = None
    if version.classes is not None:
        try:
            old_schema = ClassSchema.from_dict(version.classes, version.path)
        except (InputError, ValueError):
            old_schema = None
    raw = masks.decode_mask(data, old_schema or schema, version.path)
    if old_schema is None:
        return raw, []
    old_items = [c for c in version.classes.get("classes", []) if isinstance(c, dict)]
    new_items = schema.to_dict()["classes"]
    if [(c.get("index"), c.get("name")) for c in old_items] == [(c["index"], c["name"]) for c in new_items]:
        return raw, []
    lut = translation(old_items, new_items)
    present = set(np.unique(raw).tolist())
    missing = [str(c.get("name")) for c in old_items if c.get("index") in present and lut[c["index"]] == UNLABELLED]
    return lut[raw], missing


def translation(old: list[dict], new: list[dict]) -> np.ndarray:
    """(256,) lookup from one schema's class indices to another's (see ``decode_version``)."""
    lut = np.full(256, UNLABELLED, np.uint8)
    old_names = {c.get("name") for c in old}
    new_by_index = {c["index"]: c for c in new}
    for c in old:
        index = c.get("index")
        if not isinstance(index, int) or not 0 <= index < UNLABELLED:
            continue
        match = None
        if c.get("id") is not None:
            match = next((n for n in new if n.get("id") == c["id"]), None)
        if match is None and (c.get("id") is None or all(n.get("id") is None for n in new)):
            match = next((n for n in new if n["name"] == c.get("name")), None)
            same_place = new_by_index.get(index)
            if match is None and same_place is not None and same_place["name"] not in old_names:
                match = same_place  # renamed where it stood
        if match is not None:
            lut[index] = match["index"]
    return lut

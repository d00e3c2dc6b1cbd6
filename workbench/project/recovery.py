"""What the files hold, so that a lost ``project.sqlite`` loses nothing.

The database is an index. Everything in it that a person made is also in files:

- a label's status, source and time: a ``workbench`` text chunk in the label PNG
  (``masks.write_mask(..., info=label_info(...))``);
- splits and statuses of every image: ``state/images.json``, rewritten atomically when
  splits or statuses change (not on every label save: the PNG carries those);
- ground truth: ``groundtruth/<stem>.png``;
- models: ``models/vNNNN.safetensors``, whose header metadata holds parent, metrics and
  creation time.

``rebuild`` fills a fresh database from them; ``recover_models`` registers model files
that no database row names (a run killed before it registered its checkpoint). Nothing
here imports torch: the safetensors header is a length-prefixed JSON block.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sqlite3
import struct
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench import masks
from workbench.atomic import TEMP_MARKER, atomic_write_text, is_temp_file, read_regular_bytes
from workbench.errors import InputError, WorkbenchError
from workbench.project.location import DB_NAME, SNAPSHOT_NAME
from workbench.project.records import Split, Status

if TYPE_CHECKING:
    from workbench.project.store import Store

SNAPSHOT_FORMAT = 1
MODEL_NAME = re.compile(r"^v(\d{1,9})\.safetensors$")
MAX_HEADER_BYTES = 64 * 1024 * 1024
"""A safetensors header larger than this is not ours (ours are a few hundred KB)."""
METADATA_KEY = "workbench"   # the key ml/checkpoint.py stores its JSON under
DISK_FULL_BYTES = 1 << 20
"""Free space below which an SQLite I/O error at open is read as "the disk is full"."""


def label_info(status: Status | str, source: str | None, updated: float | None) -> dict[str, Any]:
    """The record a label PNG carries about itself."""
    return {"status": Status(status).value, "source": source, "updated": updated}


# ----- the snapshot of splits and statuses -----------------------------------------------
def snapshot_path(state: Path) -> Path:
    """``state/images.json``."""
    return Path(state) / SNAPSHOT_NAME


def write_snapshot(state: Path, rows: list[tuple[str, str, str, str | None, float | None]]) -> None:
    """Write every image's (split, status, source, updated) that differs from a new image's.

    Images still ``train``/``unlabelled`` are left out, so a fresh project of 10,000
    images writes a few bytes. ``written`` tells a rebuild which labels are newer than
    the snapshot (their PNG then wins).
    """
    images = {name: [split, status, source, updated] for name, split, status, source, updated in rows
              if split != Split.TRAIN.value or status != Status.UNLABELLED.value}
    text = json.dumps({"format": SNAPSHOT_FORMAT, "written": time.time(), "images": images},
                      ensure_ascii=True, separators=(",", ":"))
    atomic_write_text(snapshot_path(state), text)


@dataclass
class Snapshot:
    """A parsed ``images.json``; ``images`` maps a file name to its recorded state."""

    written: float = 0.0
    images: dict[str, tuple[Split, Status, str | None, float | None]] = field(default_factory=dict)


def read_snapshot(state: Path) -> tuple[Snapshot | None, str | None]:
    """(snapshot, problem): None and no problem when there is none; a damaged one is named."""
    path = snapshot_path(state)
    try:
        text = read_regular_bytes(path).decode("utf-8")  # never blocks on a pipe
    except FileNotFoundError:
        return None, None
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"{path}: cannot read the split/status snapshot ({exc})"
    try:
        data = json.loads(text)
        snap = Snapshot(float(data["written"]))
        for name, (split, status, source, updated) in dict(data["images"]).items():
            snap.images[str(name)] = (Split(split), Status(status),
                                      None if source is None else str(source),
                                      None if updated is None else float(updated))
    except (ValueError, TypeError, KeyError, RecursionError) as exc:
        return None, f"{path}: the split/status snapshot is damaged ({type(exc).__name__}); not used"
    return snap, None


# ----- model files --------------------------------------------------------------------
def model_version(path: Path) -> int | None:
    """N for ``vNNNN.safetensors``, else None."""
    found = MODEL_NAME.match(path.name)
    return int(found.group(1)) if found else None


def read_checkpoint_header(path: Path) -> dict[str, Any]:
    """The workbench metadata of a complete safetensors file, read without torch.

    Complete means: the header parses and the file is as long as its tensors say, so
    a file cut short (a copy that stopped, a disk that filled) is refused, named.
    """
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise InputError("not a complete model file (shorter than a safetensors header)", path)
            (length,) = struct.unpack("<Q", head)
            if length > min(MAX_HEADER_BYTES, size - 8):
                raise InputError("not a complete model file (its header is longer than the file)", path)
            header = json.loads(fh.read(length))
    except OSError as exc:
        raise InputError(f"cannot read the model file: {exc.strerror or exc}", path) from None
    except (ValueError, RecursionError):
        raise InputError("not a safetensors model file (its header is not JSON)", path) from None
    if not isinstance(header, dict):
        raise InputError("not a safetensors model file", path)
    end = 0
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        try:
            end = max(end, int(entry["data_offsets"][1]))
        except (TypeError, KeyError, IndexError, ValueError):
            raise InputError(f"not a safetensors model file (tensor {key!r} has no offsets)", path) from None
    if 8 + length + end != size:
        raise InputError(f"not a complete model file ({size:,} bytes; its header describes "
                         f"{8 + length + end:,})", path)
    text = (header.get("__metadata__") or {}).get(METADATA_KEY)
    try:
        meta = json.loads(text) if isinstance(text, str) else None
    except (ValueError, RecursionError):
        meta = None
    if not isinstance(meta, dict) or not all(k in meta for k in ("arch", "encoder", "num_classes")):
        raise InputError("the model file has no workbench metadata", path)
    return meta


def _parent_version(parent: Any) -> int | None:
    if isinstance(parent, int) and not isinstance(parent, bool):
        return parent
    if isinstance(parent, str):
        found = MODEL_NAME.match(Path(parent).name) or re.fullmatch(r"v?(\d{1,9})", parent)
        if found:
            return int(found.group(1))
    return None


def _created(meta: dict[str, Any], path: Path) -> float:
    try:
        return datetime.fromisoformat(str(meta["created"])).timestamp()
    except (KeyError, ValueError):
        return path.stat().st_mtime


def model_files(state: Path) -> list[tuple[int, Path]]:
    """(version, path) of every ``models/vNNNN.safetensors``, by version."""
    folder = Path(state) / "models"
    if not folder.is_dir():
        return []
    found = [(model_version(p), p) for p in folder.iterdir() if not is_temp_file(p)]
    return sorted((v, p) for v, p in found if v is not None and p.is_file())


def recover_models(store: "Store", state: Path, *, why: str) -> tuple[list[int], list[str]]:
    """Register model files no database row names; (versions registered, problems).

    ``why`` goes into each recovered version's metrics (``"recovered"``), so the
    person and the promotion policy can tell it from a finished, registered run.
    A file that is not a complete checkpoint is named and left where it is.
    """
    known = {v for v, *_ in store.models()}
    added: list[int] = []
    problems: list[str] = []
    for version, path in model_files(state):
        if version in known:
            continue
        try:
            meta = read_checkpoint_header(path)
        except InputError as exc:
            problems.append(f"{exc}; not registered (delete it to free the space)")
            continue
        metrics = dict(meta.get("metrics") or {}) if isinstance(meta.get("metrics"), dict) else {}
        metrics["recovered"] = why
        store.add_model(version, path.name, _created(meta, path), _parent_version(meta.get("parent")),
                        metrics)
        added.append(version)
    return added, problems


def schema_from_models(state: Path) -> tuple[dict[str, Any], int] | None:
    """(class schema dict, version) of the newest complete model file, for a lost classes.json."""
    for version, path in reversed(model_files(state)):
        try:
            meta = read_checkpoint_header(path)
        except InputError:
            continue
        if isinstance(meta.get("schema"), dict):
            return meta["schema"], version
    return None


# ----- rebuilding the images table ------------------------------------------------------
@dataclass
class RebuildReport:
    """What ``rebuild`` found in the files."""

    labels: int = 0
    ground_truth: int = 0
    from_snapshot: int = 0
    models: list[int] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)   # label files whose image is gone
    problems: list[str] = field(default_factory=list)

    def message(self, reason: str) -> str:
        """One line for the person: what happened and what came back."""
        got = [f"{self.labels} label(s)", f"{self.ground_truth} ground-truth mask(s)",
               f"{len(self.models)} model version(s)"]
        tail = (f"; splits and statuses from {SNAPSHOT_NAME} ({self.from_snapshot} image(s))"
                if self.from_snapshot else f"; no {SNAPSHOT_NAME}, so every image is in the train split")
        orphans = (f"; {len(self.orphans)} label file(s) match no image and are kept: "
                   + ", ".join(self.orphans[:5]) if self.orphans else "")
        return (f"{reason}: the project database was rebuilt from the files: recovered "
                + ", ".join(got) + tail + orphans
                + " (evaluation history and the chosen current model are not in the files)")


def _mask_stems(folder: Path) -> set[str]:
    if not folder.is_dir():
        return set()
    suffix = masks.MASK_SUFFIX
    with os.scandir(folder) as entries:  # plain string tests: 10,000 Paths would cost 0.2 s
        return {e.name[:-len(suffix)] for e in entries
                if e.name.endswith(suffix) and not e.name.startswith(TEMP_MARKER)
                and not e.name.endswith(".conf.png") and e.is_file()}


def rebuild(store: "Store", state: Path, names_by_stem: dict[str, str]) -> RebuildReport:
    """Fill a fresh images/models table (rows already synced from the folder) from the files."""
    state = Path(state)
    rep = RebuildReport()
    snap, problem = read_snapshot(state)
    if problem:
        rep.problems.append(problem)
    labels_dir = state / "labels"
    label_stems = _mask_stems(labels_dir)
    gt_stems = _mask_stems(state / "groundtruth")
    rep.orphans = sorted(label_stems - set(names_by_stem))
    predicted: dict[str, int] = {}   # stem -> newest model version with a cached prediction
    pred_root = state / "predictions"
    for folder in sorted(pred_root.iterdir()) if pred_root.is_dir() else []:
        version = re.fullmatch(r"v(\d{1,9})", folder.name)
        if version and folder.is_dir():
            predicted.update(dict.fromkeys(_mask_stems(folder), int(version.group(1))))
    updates: list[tuple[str, dict[str, Any]]] = []
    for stem, name in names_by_stem.items():
        cols: dict[str, Any] = {}
        recorded = snap.images.get(name) if snap is not None else None
        if recorded is not None:
            cols["split"] = recorded[0].value
            rep.from_snapshot += 1
        if stem in label_stems:
            rep.labels += 1
            path = labels_dir / f"{stem}{masks.MASK_SUFFIX}"
            info = masks.read_mask_info(path) or {}
            try:
                updated = float(info["updated"]) if info.get("updated") is not None else path.stat().st_mtime
            except (OSError, TypeError, ValueError):
                updated = None
            try:
                status = Status(info.get("status"))
            except ValueError:
                status = None
            newer = snap is None or updated is None or updated > snap.written
            if recorded is not None and recorded[1] != Status.UNLABELLED and not (newer and status):
                status, source, updated = recorded[1], recorded[2], recorded[3] or updated
            else:
                source = info.get("source") if isinstance(info.get("source"), str) else None
            if status in (None, Status.UNLABELLED, Status.PREDICTED):
                status = Status.EDITED  # a label file exists: someone made it; keep it trainable
            cols.update(has_label=1, status=status.value, source=source, updated=updated)
        elif stem in predicted:
            cols.update(status=Status.PREDICTED.value, source=f"model:{predicted[stem]}")
        if stem in gt_stems:
            rep.ground_truth += 1
            cols["has_gt"] = 1
        updates.append((name, cols))
    store.restore_images(updates)
    rep.models, model_problems = recover_models(store, state, why="rebuilt from the model file")
    rep.problems.extend(model_problems)
    problem = recover_notes(store, state)
    if problem:
        rep.problems.append(problem)
    return rep


def recover_notes(store: "Store", state: Path) -> str | None:
    """Put the person's model notes back from ``models/notes.json``; a problem, or None."""
    path = state / "models" / "notes.json"
    try:
        data = json.loads(read_regular_bytes(path).decode("utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, RecursionError) as exc:  # JSON and UTF-8 errors are ValueErrors
        return f"{path}: the model notes are damaged ({type(exc).__name__}); not used"
    if not isinstance(data, dict):
        return f"{path}: the model notes are damaged (not a JSON object); not used"
    known = {v for v, *_ in store.models()}
    for key, note in data.items():
        if isinstance(key, str) and key.isdigit() and int(key) in known and isinstance(note, str) and note:
            try:
                store.set_model_note(int(key), note)
            except WorkbenchError:
                continue
    return None


SNAPSHOT_SEEN_KEY = "snapshot_mtime_ns"
"""kv entry: the mtime of the images.json this database last wrote (or took in)."""


def snapshot_mtime(state: Path) -> int | None:
    """``images.json``'s mtime in ns, None when there is none."""
    try:
        return snapshot_path(state).stat().st_mtime_ns
    except OSError:
        return None


def _label_columns(path: Path, fallback: tuple[Status, str | None, float | None] | None) -> dict[str, Any]:
    info = masks.read_mask_info(path) or {}
    try:
        status = Status(info.get("status"))
    except ValueError:
        status = fallback[0] if fallback else Status.EDITED
    if status in (Status.UNLABELLED, Status.PREDICTED):
        status = Status.EDITED  # a label file exists: someone made it; keep it trainable
    source = info.get("source") if isinstance(info.get("source"), str) else None
    try:
        updated = float(info["updated"]) if info.get("updated") is not None else path.stat().st_mtime
    except (OSError, TypeError, ValueError):
        updated = None
    return {"has_label": 1, "status": status.value, "source": source, "updated": updated}


def reconcile(store: "Store", state: Path) -> str | None:
    """Bring an intact but older database (a backup put back) in line with the files.

    Cheap enough for every open: two folder listings and one query; label headers are
    read only for labels the database does not know, and ``images.json`` is parsed only
    when it changed since this database last wrote it. Returns what changed, or None.
    """
    state = Path(state)
    rows = store.query("SELECT id, name, stem, has_label, has_gt, split, status FROM images")
    from workbench.project.store import py_name

    label_stems = _mask_stems(state / "labels")
    gt_stems = _mask_stems(state / "groundtruth")
    labels, gts, states = [], [], []
    snap = None
    seen = store.get_kv(SNAPSHOT_SEEN_KEY)
    now = snapshot_mtime(state)
    if now is not None and seen != str(now):
        snap, _ = read_snapshot(state)
    for row_id, name, stem, has_label, has_gt, split, status in rows:
        name, stem = py_name(name), py_name(stem)
        recorded = snap.images.get(name, (Split.TRAIN, Status.UNLABELLED, None, None)) if snap else None
        if stem in gt_stems and not has_gt:
            gts.append(row_id)
        if stem in label_stems and not has_label:
            cols = _label_columns(state / "labels" / f"{stem}{masks.MASK_SUFFIX}", None)
            if recorded is not None:  # the snapshot wins where it is newer than the label
                if recorded[0].value != split:
                    cols["split"] = recorded[0].value
                if recorded[1] in (Status.EDITED, Status.VERIFIED) and \
                        (cols["updated"] is None or snap.written > cols["updated"]):
                    cols["status"] = recorded[1].value
            labels.append((row_id, cols))
        elif recorded is not None:
            cols = {}
            if recorded[0].value != split:
                cols["split"] = recorded[0].value
            if recorded[1].value != status and (has_label or stem in label_stems) \
                    and recorded[1] in (Status.EDITED, Status.VERIFIED):
                cols["status"] = recorded[1].value
            if cols:
                states.append((row_id, cols))
    if labels or states or gts:  # one transaction for all of them
        names = {row[0]: py_name(row[1]) for row in rows}
        store.restore_images([(names[i], cols) for i, cols in labels + states]
                             + [(names[i], {"has_gt": 1}) for i in gts])
    if now is not None and seen != str(now):
        store.set_kv(SNAPSHOT_SEEN_KEY, str(now))
    if not (labels or gts or states):
        return None
    return (f"{DB_NAME} was older than the files (a backup put back?): took in {len(labels)} "
            f"label(s), {len(gts)} ground-truth mask(s) and {len(states)} split/status change(s) "
            f"from them")


def has_files_to_rebuild(state: Path) -> bool:
    """True when the state folder holds labels, ground truth, models or a snapshot."""
    state = Path(state)
    return (snapshot_path(state).is_file() or bool(_mask_stems(state / "labels"))
            or bool(_mask_stems(state / "groundtruth")) or bool(model_files(state)))


# ----- the database file itself -----------------------------------------------------
def prepare(state: Path) -> str | None:
    """Before connecting: set aside what would corrupt a new database; the reason, if any.

    A write-ahead log without its database (or beside an empty one) must not be replayed
    into the new file SQLite would create: its pages belong to the lost one.
    """
    db = state / DB_NAME
    wal = state / f"{DB_NAME}-wal"
    missing = not db.is_file() or db.stat().st_size == 0
    if not missing or not wal.exists():
        return None
    what = "missing" if not db.exists() else "empty"
    moved = move_aside(state, "orphaned-log", only=("-wal",))
    with contextlib.suppress(OSError):
        (state / f"{DB_NAME}-shm").unlink()
    return f"{DB_NAME} was {what} (its log was moved to {moved})"


def move_aside(state: Path, kind: str, only: tuple[str, ...] = ("", "-wal", "-shm")) -> Path | None:
    """Rename the database files to ``project.sqlite.<kind>-<time>``; the main one's new path."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    first = None
    for suffix in only:
        src = state / f"{DB_NAME}{suffix}"
        if not src.exists():
            continue
        dest = state / f"{DB_NAME}.{kind}-{stamp}{suffix}"
        n = 1
        while dest.exists():
            dest = state / f"{DB_NAME}.{kind}-{stamp}-{n}{suffix}"
            n += 1
        os.replace(src, dest)
        first = first or dest
    return first


def is_damaged(exc: WorkbenchError) -> bool:
    """True for SQLite's "not a database" / "malformed": the file, not the disk, is bad."""
    cause = exc.__cause__
    text = str(cause).lower() if cause is not None else ""
    return isinstance(cause, sqlite3.DatabaseError) and ("not a database" in text or "malformed" in text)


def disk_full(state: Path, exc: BaseException) -> bool:
    """True when an open failed because the disk is (nearly) full."""
    # the message without its path: a folder named "fullres" must not read as a full disk
    cause = exc.__cause__
    errno_full = isinstance(cause, OSError) and cause.errno == 28  # ENOSPC
    text = f"{getattr(exc, 'problem', exc)} {'' if cause is None else cause}".lower()
    if errno_full or "database or disk is full" in text or "no space left" in text:
        return True
    if "disk i/o error" in text or "cannot create" in text or "cannot write" in text:
        try:
            return shutil.disk_usage(state).free < DISK_FULL_BYTES
        except OSError:
            return False
    return False


def disk_full_reason(state: Path) -> str:
    """The read-only reason for a full disk, with the free bytes when known."""
    try:
        free = f" ({shutil.disk_usage(state).free:,} bytes free)"
    except OSError:
        free = ""
    return f"the disk is full{free}; free some space and reopen to save"

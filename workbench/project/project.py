"""``Project``: an image folder plus its state (labels, statuses, models, metrics).

The project is the single source of truth: widgets, the CLI and the trainer read it
and ask it to change. Opening lists file names only (no image is decoded), syncs
them into SQLite, removes stale temp files and takes the write lock.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sqlite3
import time
import weakref
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from workbench import imageio, masks
from workbench.atomic import (TEMP_MARKER, atomic_open, atomic_write_bytes, atomic_write_text,
                              clean_stale_temps, read_regular_bytes)
from workbench.classes import UNLABELLED, ClassInfo, ClassSchema, default_color, new_class_id
from workbench.errors import InputError, WorkbenchError
from workbench.progress import CancelToken, ProgressCallback
from workbench.project import location, recovery, renumber, seed
from workbench.project.location import DB_NAME, default_state_dir, is_state_dir
from workbench.project import label_history
from workbench.project.lock import ProjectLock
from workbench.project.mask_values import MaskUsage
from workbench.project.records import (ImageRecord, ImportReport, ModelRecord, Split, Status,
                                       parse_split, parse_status)
from workbench.project.store import EMPTIED, Store, to_json

READ_ONLY_MESSAGE = "project is open in another window/process; opened read-only"
DEFAULT_CLASSES = ["background", "foreground"]
MODEL_SUFFIX = ".safetensors"


def model_file_name(version: int) -> str:
    """``v0001.safetensors`` for version 1."""
    return f"v{version:04d}{MODEL_SUFFIX}"


def _model_name(stored: str, version: int) -> str:
    # The database is a file in the project folder: a path in it ("../../x") must not
    # lead outside models/. Only the file name counts.
    name = Path(str(stored)).name
    return name if name not in ("", ".", "..") else model_file_name(version)


def scan_image_names(folder: Path) -> list[str]:
    """Names of the image files directly in ``folder`` (directory entries only, no decoding)."""
    try:
        with os.scandir(folder) as entries:
            return sorted(e.name for e in entries
                          if imageio.is_image_file(e.name) and imageio.entry_is_file(e))
    except OSError as exc:
        raise InputError(f"cannot list the folder: {exc.strerror or exc}", folder) from exc


def _ids(image_ids: int | Iterable[int]) -> list[int]:
    if isinstance(image_ids, (int, np.integer)):
        return [int(image_ids)]
    return [int(i) for i in image_ids]


class Project:
    """An annotation project; open with ``Project.open(folder)``, close with ``close()``."""

    folder: Path
    state_dir: Path
    schema: ClassSchema
    read_only: bool
    problems: list[str]

    def __init__(self, folder: Path, state_dir: Path, store: Store, lock: ProjectLock,
                 schema: ClassSchema, read_only: bool, read_only_reason: str | None = None) -> None:
        # Use Project.open: it validates, locks, syncs and seeds.
        self.folder = folder
        self.state_dir = state_dir
        self.schema = schema
        self.read_only = read_only
        self.read_only_reason: str | None = (read_only_reason or READ_ONLY_MESSAGE) if read_only else None
        """Why the project is read-only (shown by the CLI and the app), None when writable."""
        self.recovered: list[str] = []
        """What was rebuilt or registered from the files at open or at a later write."""
        self.problems: list[str] = []
        self._store = store
        self._lock = lock
        lost = weakref.WeakMethod(self._database_lost)
        store.on_lost = lambda reason: lost()(reason)  # type: ignore[misc]
        # A project dropped without close() still closes its database and frees the lock.
        self._finalizer = weakref.finalize(self, _release, store, lock)

    # ----- opening and closing ---------------------------------------------------------
    @classmethod
    def open(cls, folder: str | Path, *, state_dir: str | Path | None = None,
             schema: ClassSchema | None = None, create: bool = True) -> "Project":
        """Open (or create) the project for an image folder.

        ``state_dir`` overrides where the state lives (default ``FOLDER/.workbench``, or a
        per-user folder when FOLDER is read-only). ``folder`` may also be a state folder,
        which opens the project it belongs to. ``schema`` is used for a new project only.

        A state folder that cannot be written (permissions, read-only mount, full disk)
        opens read-only with ``read_only_reason``. A database that is missing, empty or
        damaged while labels, models or the snapshot are on disk is rebuilt from them
        (``recovered`` says what came back; a damaged file is moved aside, not deleted).
        """
        folder, state = cls.locate(folder, state_dir=state_dir)
        exists = (state / DB_NAME).is_file()
        prior = state.is_dir() and location.has_state(state)
        if not exists and not prior and not create:
            raise WorkbenchError("no project here yet (open it once to create one)", state)
        if prior:
            problem = location.write_problem(state)
            if problem is not None:
                return cls._open_read_only(folder, state, problem)
        # A new project's manifest is checked before anything is created: a bad one
        # leaves no half-made project behind.
        manifest = None if prior else seed.read_manifest(folder)
        try:
            state.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WorkbenchError(f"cannot create the project state folder: {exc.strerror or exc}",
                                 state) from exc
        lock = ProjectLock(state / "lock")
        try:
            read_only = not lock.acquire()
        except WorkbenchError as exc:
            if exists and recovery.disk_full(state, exc):
                return cls._open_read_only(folder, state, recovery.disk_full_reason(state))
            raise
        store = None
        try:
            if not read_only:
                clean_stale_temps(state)
                renumber.recover(state)  # finish a class change a crash interrupted
            lost_reason = None if read_only else recovery.prepare(state)
            try:
                store = Store(state / DB_NAME)
                if not read_only:
                    store.check_integrity()
            except WorkbenchError as exc:
                if store is not None:
                    store.close()
                    store = None
                if read_only or not recovery.is_damaged(exc):
                    raise
                lost_reason = f"{DB_NAME} was damaged ({exc.__cause__}); it was moved to " \
                              f"{recovery.move_aside(state, 'damaged')}"
                store = Store(state / DB_NAME)
            new = store.get_kv("initialised") is None
            rebuild = new and not read_only and recovery.has_files_to_rebuild(state)
            if new and exists and not read_only and not rebuild:  # a creation that crashed before seeding
                manifest = seed.read_manifest(folder)
            project = cls(folder, state, store, lock, ClassSchema.default(DEFAULT_CLASSES), read_only)
            if rebuild and schema is None and not project.classes_path.is_file():
                schema = project._schema_from_models()
            project.schema = project._load_or_create_schema(schema, manifest)
            if not read_only and store.get_kv("image_folder") != str(folder):
                store.set_kv("image_folder", str(folder))
            project.sync()
            if rebuild:
                why = lost_reason or (f"{DB_NAME} was empty" if exists else f"{DB_NAME} was missing")
                project._rebuild(why)
            elif new and not read_only:
                if manifest is not None:
                    project.problems.extend(seed.apply_manifest(project, manifest))
            elif not read_only:
                stale = recovery.reconcile(store, state)
                if stale is not None:
                    project.recovered.append(stale)
                project._recover_unregistered_models()
            if new and not read_only:
                store.set_kv("initialised", str(time.time()))
            if not read_only and not recovery.snapshot_path(state).is_file():
                project._try_write_snapshot()
            project.problems[:0] = [m for m in project.recovered if m not in project.problems]
            return project
        except WorkbenchError as exc:
            if store is not None:
                store.close()
            lock.release()
            if exists and recovery.disk_full(state, exc):  # still show everything, and say why
                return cls._open_read_only(folder, state, recovery.disk_full_reason(state))
            raise
        except BaseException:
            if store is not None:
                store.close()
            lock.release()
            raise

    @classmethod
    def _open_read_only(cls, folder: Path, state: Path, reason: str) -> "Project":
        # Nothing is written: no lock file, no temp clean-up, no WAL switch, no sync.
        if not (state / DB_NAME).is_file():
            raise WorkbenchError(f"{reason}, and it has no {DB_NAME} to show (a lost database "
                                 f"is rebuilt only where it can be written: copy the folder, or "
                                 f"open it with --state-dir on a writable disk)", state)
        store = Store(state / DB_NAME, read_only=True)
        try:
            project = cls(folder, state, store, ProjectLock(state / "lock"),
                          ClassSchema.default(DEFAULT_CLASSES), True, f"opened read-only: {reason}")
            project.schema = project._load_or_create_schema(None, None)
            project.sync()
            return project
        except BaseException:
            store.close()
            raise

    @staticmethod
    def locate(folder: str | Path, *, state_dir: str | Path | None = None) -> tuple[Path, Path]:
        """(image folder, state folder) that ``open`` would use; creates nothing."""
        folder = Path(folder).expanduser()
        if not folder.exists():
            raise InputError("no such folder", folder)
        if not folder.is_dir():
            raise InputError("not a folder (a project is a folder of images)", folder)
        if state_dir is None and is_state_dir(folder):
            state_dir = folder
            folder = _stored_image_folder(folder)
        folder = folder.resolve()
        state = Path(state_dir).expanduser().resolve() if state_dir is not None else default_state_dir(folder)
        if state == folder:
            raise InputError("the state folder cannot be the image folder itself", state)
        return folder, state

    def close(self) -> None:
        """Close the database and release the lock (idempotent).

        A database deleted or replaced since the last write is written back first: the
        open connection is the only copy of what the files do not hold (metrics history).
        """
        if self._finalizer.alive and not self.read_only:
            with contextlib.suppress(WorkbenchError, OSError):
                reason = self._store.lost_reason()
                if reason is not None:
                    self._database_lost(reason)
        self._finalizer()

    def __enter__(self) -> "Project":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        ro = ", read-only" if self.read_only else ""
        return f"Project({str(self.folder)!r}, state_dir={str(self.state_dir)!r}{ro})"

    def _check_writable(self) -> None:
        if self.read_only:
            raise WorkbenchError(self.read_only_reason or READ_ONLY_MESSAGE, self.state_dir)

    def _load_or_create_schema(self, schema: ClassSchema | None, manifest: Any) -> ClassSchema:
        path = self.classes_path
        if os.path.lexists(path):  # a folder, pipe or dangling link is named, never replaced by defaults
            return ClassSchema.load(path)
        if schema is None and manifest is not None and manifest.classes is not None:
            schema = ClassSchema.load(manifest.classes)
        schema = schema.copy() if schema is not None else ClassSchema.default(DEFAULT_CLASSES)
        if not self.read_only:
            schema.save(path)
        return schema

    def sync(self) -> None:
        """Rescan the folder: add new images, hide vanished ones; refreshes ``problems``."""
        result = self._store.sync_images(scan_image_names(self.folder), write=not self._store.read_only)
        self.problems = [*self.recovered, *result.problems]

    # ----- recovery (docs/project-format.md, "What is rebuilt") ------------------------
    def _rebuild(self, why: str) -> None:
        names = {rec.stem: rec.name for rec in self.images()}
        rep = recovery.rebuild(self._store, self.state_dir, names)
        self.recovered.append(rep.message(why))
        self.recovered.extend(rep.problems)
        self._try_write_snapshot()

    def _try_write_snapshot(self) -> None:
        # At open a snapshot that cannot be written (a folder in its place) must not keep
        # the project shut; a full disk still fails, so open falls back to read-only.
        try:
            self._write_snapshot()
        except WorkbenchError as exc:
            if recovery.disk_full(self.state_dir, exc):
                raise
            self.recovered.append(f"{exc}; splits and statuses are kept only in the database "
                                  f"until it can be written")

    def _schema_from_models(self) -> ClassSchema | None:
        found = recovery.schema_from_models(self.state_dir)
        if found is None:
            return None
        try:
            schema = ClassSchema.from_dict(found[0], f"models/{model_file_name(found[1])} (class schema)")
        except (InputError, WorkbenchError, ValueError):
            return None
        self.recovered.append(f"classes.json was missing too: the classes were taken from model "
                              f"v{found[1]} ({', '.join(schema.names)})")
        return schema

    def _recover_unregistered_models(self) -> None:
        # We hold the lock, so no live run is writing these: they are the checkpoints of
        # runs that died before registering. Registered (not deleted): a killed run's best
        # checkpoint is complete (written atomically) and may be hours of work; it is not
        # made current, so a half-trained model never replaces the one in use.
        before = self.current_model()
        added, problems = recovery.recover_models(self._store, self.state_dir,
                                                  why="from a run that ended before registering it")
        if added:
            if before is not None and self._store.get_kv("current_model") is None:
                self._store.set_kv("current_model", str(before.version))
            shown = ", ".join(f"v{v}" for v in added)
            keep = f"; v{before.version} stays current" if before is not None else ""
            self.recovered.append(f"registered {len(added)} model file(s) a stopped run left "
                                  f"unregistered as recovered version(s) {shown}{keep}")
        self.recovered.extend(problems)

    def _write_snapshot(self) -> None:
        recovery.write_snapshot(self.state_dir, self._store.state_rows())
        mtime = recovery.snapshot_mtime(self.state_dir)
        if mtime is not None:  # the next open knows this images.json is already in the database
            self._store.set_kv(recovery.SNAPSHOT_SEEN_KEY, str(mtime))

    def _database_lost(self, reason: str) -> None:
        """The database file vanished or was replaced while open: put ours back, or rebuild."""
        db = self.state_dir / DB_NAME
        if self.read_only:  # only the lock holder may put the database back
            raise WorkbenchError(f"{reason}; not saved (this window is read-only)", db)
        rescue = self.state_dir / f"{TEMP_MARKER}rescue-{os.getpid()}.sqlite"
        rescue.unlink(missing_ok=True)
        if reason != EMPTIED:  # an emptied file has lost its pages: only the files can tell
            try:
                self._store.copy_live_to(rescue)  # our connection still reads the deleted file
            except WorkbenchError:
                rescue.unlink(missing_ok=True)
        aside = recovery.move_aside(self.state_dir, "replaced") if db.exists() else None
        for suffix in ("-wal", "-shm"):  # ours (a deleted database) or the replacement's
            with contextlib.suppress(OSError):
                (self.state_dir / f"{DB_NAME}{suffix}").unlink()
        kept = f"; the file found in its place was moved to {aside}" if aside else ""
        if rescue.is_file():
            os.replace(rescue, db)
            self._store.reconnect()
            self.recovered.append(f"{reason}: it was written back from the open project{kept}")
            return
        try:
            self._store.reconnect()  # a new, empty database at the path
            self._store.set_kv("image_folder", str(self.folder))
            self.sync()
            self._rebuild(reason)
            self._store.set_kv("initialised", str(time.time()))
        except WorkbenchError as exc:
            raise WorkbenchError(f"{reason}, and it could not be rebuilt ({exc}); not saved: the "
                                 f"edits are kept in the window, reopen the project", db) from exc

    # ----- paths ---------------------------------------------------------------------
    @property
    def classes_path(self) -> Path:
        """``state/classes.json``."""
        return self.state_dir / "classes.json"

    @property
    def settings_path(self) -> Path:
        """``state/settings.json``."""
        return self.state_dir / "settings.json"

    def image_path(self, image_id: int) -> Path:
        """The source image file."""
        return self.folder / self.get(image_id).name

    def label_path(self, image_id: int) -> Path:
        """Where the image's label lives (the file may not exist yet)."""
        return self.state_dir / "labels" / f"{self.get(image_id).stem}{masks.MASK_SUFFIX}"

    def ground_truth_path(self, image_id: int) -> Path:
        """Where the image's imported ground truth lives (may not exist)."""
        return self.state_dir / "groundtruth" / f"{self.get(image_id).stem}{masks.MASK_SUFFIX}"

    def prediction_dir(self, version: int) -> Path:
        """``state/predictions/v0001`` for model version 1."""
        return self.state_dir / "predictions" / f"v{int(version):04d}"

    # ----- images --------------------------------------------------------------------
    def images(self, *, status: Status | str | Iterable | None = None,
               split: Split | str | Iterable | None = None) -> list[ImageRecord]:
        """Images present in the folder, by name; filter by status and/or split."""
        statuses = None if status is None else [
            parse_status(s).value for s in ([status] if isinstance(status, str) else status)]
        splits = None if split is None else [
            parse_split(s).value for s in ([split] if isinstance(split, str) else split)]
        return self._store.images(statuses, splits)

    def get(self, image_id: int) -> ImageRecord:
        """The record of one image; KeyError for an unknown id."""
        rec = self._store.image(int(image_id))
        if rec is None:
            raise KeyError(f"no image with id {image_id} in this project")
        return rec

    def find(self, name_or_stem: str) -> ImageRecord | None:
        """A present image by file name or stem, or None."""
        return self._store.find(name_or_stem)

    def read_image(self, image_id: int) -> np.ndarray:
        """The image as (H, W, 3) uint8 RGB; InputError naming the file if unreadable."""
        return imageio.read_image(self.image_path(image_id))

    def image_shape(self, image_id: int) -> tuple[int, int]:
        """(height, width) of the image, read from its header once and cached."""
        path = self.image_path(image_id)
        try:
            mtime = path.stat().st_mtime_ns
        except FileNotFoundError:
            raise InputError("image file is missing", path) from None
        except OSError as exc:
            raise InputError(f"cannot read image: {exc.strerror or exc}", path) from None
        w, h, cached_mtime = self._store.cached_size(image_id)
        if w is not None and h is not None and cached_mtime == mtime:
            return int(h), int(w)
        w, h = imageio.image_size(path)
        if not self.read_only:
            self._store.cache_size(image_id, w, h, mtime)
        return h, w

    def set_status(self, image_ids: int | Iterable[int], status: Status | str) -> None:
        """Set the status of one or more images (also recorded in ``state/images.json``)."""
        self._check_writable()
        self._store.update_images(_ids(image_ids), status=parse_status(status).value)
        self._write_snapshot()

    def set_split(self, image_ids: int | Iterable[int], split: Split | str) -> None:
        """Move one or more images to train / val / test (also recorded in ``state/images.json``)."""
        self._check_writable()
        self._store.update_images(_ids(image_ids), split=parse_split(split).value)
        self._write_snapshot()

    # ----- labels and ground truth -----------------------------------------------------
    def _mask_from_file(self, path: Path, image_id: int) -> np.ndarray | None:
        if not path.is_file():
            return None
        try:
            hw = self.image_shape(image_id)
        except InputError:
            hw = None  # image gone or unreadable: still return the mask, unchecked in size
        return masks.read_mask(path, self.schema, hw)

    def read_label(self, image_id: int) -> np.ndarray | None:
        """The image's label (H, W) uint8, or None; InputError naming a corrupt file."""
        return self._mask_from_file(self.label_path(image_id), image_id)

    def read_ground_truth(self, image_id: int) -> np.ndarray | None:
        """The imported ground truth of the image, or None."""
        return self._mask_from_file(self.ground_truth_path(image_id), image_id)

    def reference_mask(self, image_id: int) -> np.ndarray | None:
        """What to score a prediction against: ground truth, else a verified label, else None."""
        gt = self.read_ground_truth(image_id)
        if gt is not None:
            return gt
        if self.get(image_id).status == Status.VERIFIED:
            return self.read_label(image_id)
        return None

    def _checked_mask(self, image_id: int, mask: Any, what: str) -> np.ndarray:
        arr = np.asarray(mask)
        path = self.image_path(image_id)
        if arr.ndim != 2:
            raise InputError(f"{what} must be a 2-D array of class indices, got shape {arr.shape}", path)
        if arr.dtype != np.uint8:
            if not np.issubdtype(arr.dtype, np.integer) or (arr.size and (arr.min() < 0 or arr.max() > 255)):
                raise InputError(f"{what} must hold integer class indices 0-255, got {arr.dtype}", path)
            arr = arr.astype(np.uint8)
        return masks.validate_mask(np.ascontiguousarray(arr), self.schema, self.image_shape(image_id),
                                   f"{what} for {path.name}")

    def save_label(self, image_id: int, mask: np.ndarray, *, status: Status | str = Status.EDITED,
                   source: str = "person", reason: str = "save") -> None:
        """Validate and save the image's label atomically, then record status and source.

        The label it replaces goes to the image's history first (``label_history``), unless
        it is identical or the person's own autosave from the same sitting
        (``label_history.coalesces``). ``reason`` says what replaced it ("save",
        "import --overwrite", "restore", ...). The database changes only after the file
        is safely written: a failed save leaves the old label and the old state.
        """
        self._check_writable()
        status = parse_status(status)
        arr = self._checked_mask(image_id, mask, "label")
        self._write_label(image_id, arr, status, source, reason)

    def _write_label(self, image_id: int, arr: np.ndarray, status: Status, source: str, reason: str) -> None:
        # save_label after validation; the importer calls it with masks read_mask validated.
        path = self.label_path(image_id)
        self._keep_replaced(image_id, path, arr, source=source, reason=reason)
        updated = time.time()  # the PNG carries its own record: a lost database loses nothing
        masks.write_mask(path, arr, self.schema, info=recovery.label_info(status, source, updated))
        self._store.update_images([image_id], status=status.value, source=source,
                                  updated=updated, has_label=1)

    def clear_label(self, image_id: int) -> None:
        """Delete the image's label (kept in its history first); it becomes unlabelled."""
        self._check_writable()
        path = self.label_path(image_id)
        rec = self.get(image_id)
        try:
            label_history.keep(self.state_dir, rec.stem, path, source=rec.source, status=rec.status.value,
                               reason="clear", schema=self.schema)
        except WorkbenchError as exc:
            raise WorkbenchError(f"cannot delete the label: it could not be kept in its history ({exc})",
                                 path) from exc
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise WorkbenchError(f"cannot delete the label: {exc.strerror or exc}", path) from exc
        self._store.update_images([image_id], status=Status.UNLABELLED.value, source=None,
                                  updated=time.time(), has_label=0)

    def _keep_replaced(self, image_id: int, path: Path, new: np.ndarray, *, source: str, reason: str) -> None:
        # The current label goes to history before it is replaced (see label_history).
        try:
            data = read_regular_bytes(path)  # a pipe in its place would block the save forever
            made = path.stat().st_mtime
        except (FileNotFoundError, NotADirectoryError):
            return  # no label yet (or no labels folder: the write itself will say why)
        except OSError as exc:
            raise WorkbenchError(f"cannot read the label to keep it in its history: {exc.strerror or exc}",
                                 path) from exc
        try:
            old = masks.decode_mask(data, self.schema, path)
        except InputError:
            old = None  # damaged: kept byte for byte, never coalesced
        if old is not None and old.shape == new.shape and np.array_equal(old, new):
            return  # nothing changes in the pixels: nothing to keep
        rec = self.get(image_id)
        if label_history.coalesces(replaced_source=rec.source, replaced_made=made, new_source=source,
                                   reason=reason, old=old, new=new):
            return
        try:
            label_history.keep(self.state_dir, rec.stem, path, source=rec.source, status=rec.status.value,
                               reason=reason, schema=self.schema, data=data, mask=old, made=made)
        except WorkbenchError as exc:  # no way back, no replacing: the label stays as it is
            raise WorkbenchError(f"could not save: the label it replaces could not be kept in its "
                                 f"history ({exc})", path) from exc

    # ----- label history ---------------------------------------------------------------
    def label_history(self, image_id: int) -> list[label_history.LabelVersion]:
        """The kept earlier versions of the image's label, oldest first."""
        return label_history.versions(self.state_dir, self.get(image_id).stem)

    def read_label_version(self, image_id: int, version: int) -> np.ndarray:
        """A kept version's pixels in the current classes; WorkbenchError for an unknown version."""
        rec = self.get(image_id)
        found = label_history.find(self.state_dir, rec.stem, version, rec.name)
        mask, _missing = label_history.decode_version(found, self.schema)
        return mask

    def keep_label_version(self, image_id: int, *, reason: str = "restore") -> label_history.LabelVersion | None:
        """Put the current label into the history now (None: no label, or already the newest kept)."""
        self._check_writable()
        rec = self.get(image_id)
        return label_history.keep(self.state_dir, rec.stem, self.label_path(image_id), source=rec.source,
                                  status=rec.status.value, reason=reason, schema=self.schema)

    def restore_label(self, image_id: int, version: int) -> list[str]:
        """Make a kept version the current label (the current one is kept first).

        The restored label is the person's (source "person"), with the status it had
        (edited unless it was verified). Returns the names of classes the version used
        that the project no longer has (their pixels come back as not labelled).
        """
        self._check_writable()
        rec = self.get(image_id)
        found = label_history.find(self.state_dir, rec.stem, version, rec.name)
        mask, missing = label_history.decode_version(found, self.schema)
        status = Status.VERIFIED if found.status == Status.VERIFIED.value else Status.EDITED
        self.save_label(image_id, mask, status=status, source="person", reason="restore")
        return missing

    def save_ground_truth(self, image_id: int, mask: np.ndarray) -> None:
        """Validate and store reference ground truth (kept apart from labels)."""
        self._check_writable()
        arr = self._checked_mask(image_id, mask, "ground truth")
        masks.write_mask(self.ground_truth_path(image_id), arr, self.schema)
        self._store.update_images([image_id], has_gt=1)

    def save_schema(self, schema: ClassSchema) -> None:
        """Replace the class schema (saved atomically to classes.json), pairing classes by id.

        Old and new classes are paired by ``id``, never by name: renames and recolours
        touch no pixel. A class that kept its id but moved index (``ClassSchema.add_class``
        pushes a void class up) is renumbered in stored labels and ground truth, staged and
        journalled. Refused (``WorkbenchError``) when the new schema would change what
        stored pixels mean: a class left out that masks still hold (use ``delete_class``),
        or a class given an index that masks hold without the old schema describing it.
        Such undescribed values (classes.json edited by hand) are otherwise kept as classes
        of their own, and ``problems`` says so.
        """
        self._check_writable()
        new = schema.copy()
        moves = index_moves(self.schema, new)
        notes: list[str] = []
        if not self.schema.same_ids_as(new):  # only a change of layout needs the masks scanned
            usage = self.mask_usage()
            self._refuse_meaning_changes(new, moves, usage)
            new, notes = _adopt_values(new, usage, usage.values_outside(self.schema), self.classes_path)
        self._commit_schema(new, moves)
        self.problems.extend(notes)

    def add_class(self, name: str, color: tuple[int, int, int] | None = None) -> ClassInfo:
        """Append a trainable class and save the schema (remapping masks if a void class moves).

        The new class never takes an index that stored masks hold: values the masks hold
        but classes.json does not describe become classes of their own first (named
        "class N (found in labels)"; ``problems`` says so), and the new class comes after.
        """
        self._check_writable()
        usage = self.mask_usage()
        stray = usage.values_outside(self.schema)
        if stray:
            adopted, notes = _adopt_values(self.schema.copy(), usage, stray, self.classes_path)
            self._commit_schema(adopted, {})
            self.problems.extend(notes)
        if self.schema.ignore_index == self.schema.num_classes:
            described = self.schema.copy()  # an ignore_index no class holds, right where the new class goes
            if described.describe_ignore_index() is not None:
                self._commit_schema(described, {})
        schema = self.schema.copy()
        try:
            info = schema.add_class(name, color)
        except ValueError as exc:
            raise WorkbenchError(f"cannot add class {name.strip()!r}: {exc}") from exc
        self.save_schema(schema)
        return self.schema.by_id(info.id) or info

    def mask_usage(self) -> MaskUsage:
        """Pixel counts per value of every stored label and ground truth (cached by mtime)."""
        from workbench.project.mask_values import scan

        if not hasattr(self, "_mask_values"):
            # counts per file between scans (state/mask-values.json keeps them across sessions)
            self._mask_values: dict = {}
        return scan(self.state_dir, self.schema, memory=self._mask_values, write_cache=not self.read_only)

    def class_usage(self, class_id: str) -> tuple[list[str], int]:
        """(stored masks holding the class, as "labels/a.png"; its pixel count) for a confirm dialog."""
        c = self._class_by_id(class_id)
        usage = self.mask_usage()
        return usage.files_holding(c.index), usage.pixels(c.index)

    def delete_class(self, class_id: str, *, merge_into: str | None = None) -> list[Path]:
        """Remove a class; its pixels become not labelled (255) or the class ``merge_into``.

        Trainable classes above it move down one index (their pixels are renumbered).
        An explicit, journalled remap: a crash half-way is finished at the next open.
        Returns the masks rewritten. The app asks the person first (how many files and
        pixels change).
        """
        self._check_writable()
        gone = self._class_by_id(class_id)
        new = self.schema.copy()
        target = None
        if merge_into is not None:
            target = self._class_by_id(merge_into)
            if target.id == gone.id:
                raise WorkbenchError(f"cannot merge {self.schema.describe(gone)} into itself")
        try:
            new.remove_class(gone.id)
        except ValueError as exc:
            raise WorkbenchError(str(exc)) from exc
        moves = index_moves(self.schema, new)
        moves[gone.index] = UNLABELLED if target is None else new.by_id(target.id).index
        return self._commit_schema(new, moves)

    def move_class(self, class_id: str, index: int) -> list[Path]:
        """Give a trainable class another index (0..K-1); the classes between shift by one.

        Every stored mask holding an affected class is renumbered (journalled), so every
        pixel keeps its class. Returns the masks rewritten.
        """
        self._check_writable()
        c = self._class_by_id(class_id)
        new = self.schema.copy()
        try:
            new.move_class(c.id, int(index))
        except ValueError as exc:
            raise WorkbenchError(f"cannot move {self.schema.describe(c)}: {exc}") from exc
        return self._commit_schema(new, index_moves(self.schema, new))

    def _class_by_id(self, class_id: str) -> ClassInfo:
        c = self.schema.by_id(str(class_id))
        if c is None:
            known = ", ".join(f"{x.id} ({x.name})" for x in self.schema.classes)
            raise WorkbenchError(f"no class with id {class_id!r} (classes: {known})", self.classes_path)
        return c

    def _commit_schema(self, new: ClassSchema, moves: dict[int, int]) -> list[Path]:
        moves = {src: dst for src, dst in moves.items() if src != dst}
        rewritten: list[Path] = []
        if moves:  # staged + journalled: a crash half-way is finished at the next open
            rewritten = renumber.renumber_masks(self.state_dir, self.schema, new, moves)
        else:
            new.save(self.classes_path)
            renumber.save_layout(self.state_dir, new)
        self.schema = new
        return rewritten

    def class_file_changes(self) -> list[str]:
        """What a hand edit of classes.json renumbered without the stored masks (empty: nothing).

        Workbench records the numbering the masks use (``classes.layout.json``) with every
        class change; a classes.json whose classes (by id) sit at other indices was edited
        outside workbench, and the labels' pixels now show as other classes. Cheap (no mask
        is read); the Classes panel shows it when a project opens.
        """
        layout = renumber.read_layout(self.state_dir)
        if layout is None:
            if not self.read_only:  # start recording from here (older projects had no record)
                try:
                    renumber.save_layout(self.state_dir, self.schema)
                except WorkbenchError:
                    pass
            return []
        moved = [(c, layout[c.id]) for c in self.schema.classes if c.id in layout and layout[c.id] != c.index]
        if not moved:
            return []
        shown = ", ".join(f"{c.name!r} {old} → {c.index}" for c, old in moved[:6])
        more = f" and {len(moved) - 6} more" if len(moved) > 6 else ""
        return [f"{self.classes_path}: classes were renumbered outside workbench ({shown}{more}) but the "
                "stored labels were not: their pixels keep the old numbers, so they now show as other "
                "classes. Put the classes back at their old indices in classes.json (workbench moves "
                "classes with Up / Down, renumbering the labels with them)"]

    def _refuse_meaning_changes(self, new: ClassSchema, moves: dict[int, int], usage: MaskUsage) -> None:
        old = self.schema
        new_ids = {c.id for c in new.classes}
        for value in sorted(usage.values() - {UNLABELLED}):
            files = usage.files_holding(value)
            held = f"{len(files)} stored mask(s) hold it ({_some(files)})"
            was = old.by_index(value)
            if was is not None and was.id not in new_ids:
                raise WorkbenchError(
                    f"cannot save the classes: {old.describe(was)} is left out but {held}; delete it "
                    "explicitly (Classes panel: Delete, or Project.delete_class) to choose what its "
                    "pixels become", self.classes_path)
            if was is None:
                taker = new.by_index(value)
                if taker is not None and not (value in old.ignore_values and taker.void):
                    raise WorkbenchError(
                        f"cannot save the classes: mask value {value} is not in the current classes but "
                        f"{held}; the new classes would give it to {taker.name!r}, changing what those "
                        "pixels mean (add classes with add_class, which keeps them apart)",
                        self.classes_path)

    # ----- models ----------------------------------------------------------------------
    def _next_version(self) -> int:
        # A deleted version's number is never given out again: caches, notes and the
        # person's memory all key on it ("last_model_version" is the high-water mark).
        top = max(self._store.max_model_version(), int(self._store.get_kv("last_model_version") or 0))
        models_dir = self.state_dir / "models"
        if models_dir.is_dir():  # a file a trainer wrote but nobody registered still counts
            for p in models_dir.glob(f"v*{MODEL_SUFFIX}"):
                digits = p.name[1:-len(MODEL_SUFFIX)]
                if digits.isdigit():
                    top = max(top, int(digits))
        return top + 1

    def next_model_path(self) -> Path:
        """Where a trainer may write the next model version (``models/v000N.safetensors``)."""
        self._check_writable()
        path = self.state_dir / "models" / model_file_name(self._next_version())
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def register_model(self, checkpoint: str | Path, *, parent: int | None = None,
                       metrics: dict | None = None, make_current: bool = True) -> ModelRecord:
        """Record a checkpoint as the next model version; it becomes current if ``make_current``.

        A checkpoint already at ``next_model_path()`` is recorded in place; any other
        file is copied (atomically) into ``state/models/``. With ``make_current=False``
        the version is kept as a candidate and the current model stays what it was.
        """
        self._check_writable()
        try:
            metrics = json.loads(to_json(dict(metrics or {})))
        except (TypeError, ValueError) as exc:
            raise WorkbenchError(f"model metrics must be plain JSON data: {exc}") from exc
        src = Path(checkpoint).expanduser()
        if not src.is_file():
            raise InputError("checkpoint file not found", src)
        previous = self.current_model()
        models_dir = self.state_dir / "models"
        version = None
        if src.resolve().parent == models_dir.resolve():
            digits = src.name[1:-len(MODEL_SUFFIX)] if src.name.startswith("v") and \
                src.name.endswith(MODEL_SUFFIX) else ""
            if digits.isdigit() and int(digits) > self._store.max_model_version():
                version = int(digits)
        if version is None:
            version = self._next_version()
            dest = models_dir / model_file_name(version)
            try:
                with open(src, "rb") as fin, atomic_open(dest, "wb") as fout:
                    shutil.copyfileobj(fin, fout, 1 << 20)
            except OSError as exc:
                raise InputError(f"cannot read checkpoint: {exc.strerror or exc}", src) from exc
        else:
            dest = models_dir / src.name
        created = time.time()
        self._store.add_model(version, dest.name, created, parent, metrics)
        if version > int(self._store.get_kv("last_model_version") or 0):
            self._store.set_kv("last_model_version", str(version))
        if make_current or previous is None:
            self._store.set_kv("current_model", None)  # the newest is current again
        else:  # pin the model that was current, or the newest (this one) would take over
            self._store.set_kv("current_model", str(previous.version))
        return ModelRecord(version, dest, created, parent, metrics)

    def models(self) -> list[ModelRecord]:
        """Registered model versions, oldest first."""
        models_dir = self.state_dir / "models"
        return [ModelRecord(v, models_dir / _model_name(p, v), c, parent, json.loads(m))
                for v, p, c, parent, m in self._store.models()]

    def model(self, version: int) -> ModelRecord:
        """One registered model version; WorkbenchError listing the registered ones otherwise."""
        models = self.models()
        for m in models:
            if m.version == int(version):
                return m
        known = ", ".join(str(m.version) for m in models) or "none"
        raise WorkbenchError(f"no model version {version} (registered: {known})")

    def current_model(self) -> ModelRecord | None:
        """The model in use: the one chosen with ``set_current_model``, else the newest."""
        models = self.models()
        if not models:
            return None
        chosen = self._store.get_kv("current_model")
        if chosen is not None:
            for m in models:
                if m.version == int(chosen):
                    return m
        return models[-1]

    def set_current_model(self, version: int) -> None:
        """Use an older (or the newest) model version."""
        self._check_writable()
        self.model(version)
        self._store.set_kv("current_model", str(int(version)))

    def model_notes(self) -> dict[int, str]:
        """{version: the person's note} ("" when none)."""
        return self._store.model_notes()

    @property
    def model_notes_path(self) -> Path:
        """``state/models/notes.json``: the notes as a file, so a lost database loses none."""
        return self.state_dir / "models" / "notes.json"

    def set_model_note(self, version: int, note: str) -> None:
        """Attach a note to a model version (replaces the previous note).

        A note is something a person wrote: it is kept in ``models/notes.json`` (atomic)
        as well as in the database, which is only an index (GUIDE 2).
        """
        self._check_writable()
        self.model(version)
        note = str(note)
        try:  # a note typed on a console in another encoding arrives with undecodable bytes
            note.encode("utf-8")
        except UnicodeEncodeError as exc:
            code = ord(note[exc.start])
            what = f"byte 0x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"U+{code:04X}"
            raise WorkbenchError(f"the note for model v{version} is not UTF-8 text ({what} at position "
                                 f"{exc.start}); not saved: set the console to UTF-8 and write it again") from None
        self._store.set_model_note(int(version), note)
        self._write_notes()

    def _write_notes(self) -> None:
        notes = {str(v): n for v, n in sorted(self._store.model_notes().items()) if n}
        if notes or self.model_notes_path.exists():
            atomic_write_text(self.model_notes_path, to_json(notes, indent=2, sort_keys=True) + "\n")

    def update_model_metrics(self, version: int, metrics: dict) -> None:
        """Merge ``metrics`` into a registered version's metrics."""
        self._check_writable()
        merged = dict(self.model(version).metrics)
        merged.update(metrics)
        try:
            merged = json.loads(to_json(merged))
        except (TypeError, ValueError) as exc:
            raise WorkbenchError(f"model metrics must be plain JSON data: {exc}") from exc
        self._store.update_model_metrics(int(version), merged)

    def delete_model(self, version: int) -> None:
        """Delete a model version that is not current: its file, cached predictions and scores.

        The database row goes first, so a failure removing files leaves no registered
        version without its file; leftover files are removed on the next try or open.
        """
        self._check_writable()
        rec = self.model(version)
        current = self.current_model()
        if current is not None and current.version == rec.version:
            raise WorkbenchError(f"model v{rec.version} is the current model and cannot be deleted; "
                                 "make another version current first")
        self._store.delete_model(rec.version)
        self._write_notes()
        for path in (rec.path,):
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                raise WorkbenchError(f"model v{rec.version} was unregistered but its file could not be "
                                     f"removed: {exc.strerror or exc}", path) from exc
        folder = self.prediction_dir(rec.version)
        if folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)

    # ----- predictions cache -------------------------------------------------------------
    def _prediction_paths(self, image_id: int, version: int) -> tuple[Path, Path]:
        folder = self.prediction_dir(version)
        stem = self.get(image_id).stem
        return folder / f"{stem}{masks.MASK_SUFFIX}", folder / f"{stem}.conf.png"

    def save_prediction(self, image_id: int, version: int, mask: np.ndarray,
                        confidence: np.ndarray | None = None) -> None:
        """Cache a model's prediction (and confidence, 0..1 float or 0..255 uint8).

        An unlabelled image becomes PREDICTED; a person's label is never touched.
        """
        self._check_writable()
        self.write_prediction_files(image_id, version, mask, confidence)
        self._store.mark_predicted(image_id, f"model:{int(version)}")

    def write_prediction_files(self, image_id: int, version: int, mask: np.ndarray,
                               confidence: np.ndarray | None = None) -> None:
        """Write the prediction cache files only (no database change), atomically.

        For the other ranks of a distributed ``predict``: the project is read-only for
        them (rank 0 holds the lock) and rank 0 records what they wrote
        (``record_predictions``). Everyone else calls ``save_prediction``.
        """
        arr = self._checked_mask(image_id, mask, "prediction")
        mask_path, conf_path = self._prediction_paths(image_id, version)
        if confidence is not None:
            conf = np.asarray(confidence)
            if conf.shape != arr.shape:
                raise InputError(f"confidence has shape {conf.shape}, the prediction {arr.shape}",
                                 self.image_path(image_id))
            if conf.dtype != np.uint8:
                conf = np.clip(np.nan_to_num(conf.astype(np.float32)), 0.0, 1.0)
                conf = np.rint(conf * 255.0).astype(np.uint8)
            from PIL import Image

            buf = io.BytesIO()
            Image.fromarray(np.ascontiguousarray(conf), mode="L").save(buf, format="PNG", compress_level=3)
            atomic_write_bytes(conf_path, buf.getvalue())
        else:
            conf_path.unlink(missing_ok=True)
        masks.write_mask(mask_path, arr, self.schema)

    def record_predictions(self, version: int, image_ids: Iterable[int]) -> None:
        """Mark images whose prediction files ``version`` wrote as PREDICTED (unlabelled ones only)."""
        self._check_writable()
        for image_id in _ids(image_ids):
            self._store.mark_predicted(image_id, f"model:{int(version)}")

    def read_prediction(self, image_id: int, version: int) -> tuple[np.ndarray, np.ndarray | None] | None:
        """(mask, confidence float32 0..1 or None) cached for this model version, or None."""
        mask_path, conf_path = self._prediction_paths(image_id, version)
        if not mask_path.is_file():
            return None
        mask = masks.read_mask(mask_path, self.schema)
        conf = None
        if conf_path.is_file():
            from PIL import Image, UnidentifiedImageError

            try:
                with Image.open(conf_path) as img:
                    raw = np.asarray(img.convert("L"), dtype=np.uint8)
            except (OSError, UnidentifiedImageError) as exc:
                raise InputError(f"not a readable confidence image ({exc})", conf_path) from None
            if raw.shape == mask.shape:
                conf = raw.astype(np.float32) / 255.0
        return mask, conf

    def set_image_scores(self, image_id: int, *, version: int | None = None, miou: float | None = None,
                         uncertainty: float | None = None) -> None:
        """Record an image's mIoU and/or uncertainty under model ``version`` (None: unchanged).

        ``version`` None means the current model's (WorkbenchError when there is none).
        """
        self._check_writable()
        if version is None:
            current = self.current_model()
            if current is None:
                raise WorkbenchError("no model yet: scores belong to a model version")
            version = current.version
        if miou is None and uncertainty is None:
            return
        self._store.set_scores(int(image_id), int(version), None if miou is None else float(miou),
                               None if uncertainty is None else float(uncertainty))

    def image_scores(self, version: int) -> dict[int, tuple[float | None, float | None]]:
        """{image id: (mIoU, uncertainty)} recorded for model ``version``."""
        return self._store.scores(int(version))

    # ----- metrics history and settings --------------------------------------------------
    def record_metrics(self, version: int | None, split: str, report: dict) -> None:
        """Append an evaluation (e.g. ``EvaluationReport.to_json()``) to the history."""
        self._check_writable()
        try:
            self._store.add_metrics(None if version is None else int(version), str(split), dict(report))
        except (TypeError, ValueError) as exc:
            raise WorkbenchError(f"metrics must be plain JSON data: {exc}") from exc

    def metrics_history(self) -> list[dict]:
        """Every recorded evaluation, oldest first: {"version", "split", "time", **report}."""
        out = []
        for version, split, t, text in self._store.metrics():
            entry = json.loads(text)
            entry.update(version=version, split=split, time=t)
            out.append(entry)
        return out

    def settings(self) -> dict:
        """Training settings and UI state of this project ({} when none saved)."""
        path = self.settings_path
        try:
            text = read_regular_bytes(path).decode("utf-8")  # never blocks on a pipe
        except FileNotFoundError:
            return {}
        except UnicodeDecodeError as exc:
            raise InputError(f"settings are not UTF-8 text ({exc.reason} at byte {exc.start})", path) from None
        except OSError as exc:
            raise InputError(f"cannot read settings: {exc.strerror or exc}", path) from exc
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"settings are not valid JSON (line {exc.lineno}: {exc.msg})", path) from exc
        except RecursionError:
            raise InputError("settings are not valid settings: JSON nested too deeply", path) from None
        if not isinstance(data, dict):
            raise InputError("settings must be a JSON object", path)
        return data

    def save_settings(self, d: dict) -> None:
        """Save settings atomically (replaces the whole file)."""
        self._check_writable()
        try:
            text = to_json(d, indent=2, sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise WorkbenchError(f"settings must be plain JSON data: {exc}") from exc
        atomic_write_text(self.settings_path, text + "\n")

    # ----- import and training data ------------------------------------------------------
    def import_masks(self, mask_dir: str | Path, *, as_: str = "labels", overwrite: bool = False,
                     on_progress: ProgressCallback | None = None,
                     cancel: CancelToken | None = None) -> ImportReport:
        """Import a folder of masks (paired by stem) as labels or as ground truth.

        Labels a person made are kept (``ImportReport.kept``) unless ``overwrite``; what
        an import replaces goes to the label history.
        """
        from workbench.project.importer import import_masks

        self._check_writable()
        return import_masks(self, mask_dir, as_=as_, on_progress=on_progress, cancel=cancel,
                            overwrite=overwrite)

    def training_pairs(self, split: Split | str | None = "train",
                       statuses: Iterable[Status | str] = (Status.VERIFIED, Status.EDITED),
                       ) -> list[tuple[Path, Path]]:
        """(image_path, label_path) of images in ``split`` whose label has one of ``statuses``."""
        pairs = []
        for rec in self.images(status=list(statuses), split=split):
            if not rec.has_label:
                continue
            label = self.state_dir / "labels" / f"{rec.stem}{masks.MASK_SUFFIX}"
            if label.is_file():
                pairs.append((self.folder / rec.name, label))
        return pairs

    # used by the importer and the seeder: record an imported mask in one statement
    def _record_label(self, image_id: int, status: Status, source: str) -> None:
        self._store.update_images([image_id], status=status.value, source=source,
                                  updated=time.time(), has_label=1)

    def _record_ground_truth(self, image_id: int) -> None:
        self._store.update_images([image_id], has_gt=1)


def index_moves(old: ClassSchema, new: ClassSchema) -> dict[int, int]:
    """{old index: new index} for classes (paired by id, never by name) whose index changed."""
    moves = {}
    for c in old.classes:
        kept = new.by_id(c.id)
        if kept is not None and kept.index != c.index:
            moves[c.index] = kept.index
    return moves


def _some(names: list[str], limit: int = 3) -> str:
    shown = ", ".join(Path(n).name for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _adopt_values(schema: ClassSchema, usage: MaskUsage, values: list[int],
                  where: Path) -> tuple[ClassSchema, list[str]]:
    """Give mask values no class describes a class of their own, so no new class takes them.

    A value right after the trainable classes becomes a trainable class ("class 3
    (found in labels)": rename it, or delete it to clear its pixels); any other becomes a
    retired void class (ignored by training, never given to a new class). No pixel changes.
    """
    notes = []
    classes = list(schema.classes)
    ignore = schema.ignore_index
    trainable = schema.num_classes
    taken = {c.id for c in classes}
    names = {c.name.casefold() for c in classes}
    for value in sorted(values):
        if any(c.index == value for c in classes) or value == UNLABELLED:
            continue
        name = f"class {value} (found in labels)"
        while name.casefold() in names:
            name += "*"
        names.add(name.casefold())
        files = usage.files_holding(value)
        cid = new_class_id(taken)
        taken.add(cid)
        if value == trainable and value != ignore:
            classes.append(ClassInfo(value, name, default_color(value), id=cid))
            trainable += 1
            kept = f"kept as the class {name!r} (rename it, or delete it to clear those pixels)"
        else:
            classes.append(ClassInfo(value, name, default_color(value), void=True, id=cid, retired=True))
            kept = "kept apart as a retired value (ignored by training; no new class will take it)"
        notes.append(f"{where}: {len(files)} stored mask(s) hold value {value}, which the classes did "
                     f"not describe (classes.json edited by hand?): {_some(files)}; {kept}")
    return ClassSchema(classes, ignore, schema.name, dict(schema.extra)), notes


def _release(store: Store, lock: ProjectLock) -> None:
    store.close()
    lock.release()


def _stored_image_folder(state: Path) -> Path:
    """The image folder a state folder belongs to, read from its database."""
    db = state / DB_NAME
    try:
        conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=10.0)
        try:
            row = conn.execute("SELECT value FROM kv WHERE key = 'image_folder'").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise WorkbenchError(f"cannot read the project database: {exc}", db) from exc
    if row is None or not row[0]:
        raise WorkbenchError("this state folder does not say which image folder it belongs to", state)
    folder = Path(os.fsdecode(row[0]) if isinstance(row[0], bytes) else row[0])
    if not folder.is_dir():
        raise InputError("the image folder of this project is gone (moved or deleted?)", folder)
    return folder

"""``Project``: an image folder plus its state (labels, statuses, models, metrics).

The project is the single source of truth: widgets, the CLI and the trainer read it
and ask it to change. Opening lists file names only (no image is decoded), syncs
them into SQLite, removes stale temp files and takes the write lock.
"""

from __future__ import annotations

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
from workbench.atomic import atomic_open, atomic_write_bytes, atomic_write_text, clean_stale_temps
from workbench.classes import ClassInfo, ClassSchema
from workbench.errors import InputError, WorkbenchError
from workbench.progress import CancelToken, ProgressCallback
from workbench.project.location import DB_NAME, default_state_dir, is_state_dir
from workbench.project import renumber, seed
from workbench.project.lock import ProjectLock
from workbench.project.records import (ImageRecord, ImportReport, ModelRecord, Split, Status,
                                       parse_split, parse_status)
from workbench.project.store import Store, to_json

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
                 schema: ClassSchema, read_only: bool) -> None:
        # Use Project.open: it validates, locks, syncs and seeds.
        self.folder = folder
        self.state_dir = state_dir
        self.schema = schema
        self.read_only = read_only
        self.problems: list[str] = []
        self._store = store
        self._lock = lock
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
        """
        folder, state = cls.locate(folder, state_dir=state_dir)
        exists = (state / DB_NAME).is_file()
        if not exists and not create:
            raise WorkbenchError("no project here yet (open it once to create one)", state)
        # A new project's manifest is checked before anything is created: a bad one
        # leaves no half-made project behind.
        manifest = None if exists else seed.read_manifest(folder)
        try:
            state.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WorkbenchError(f"cannot create the project state folder: {exc.strerror or exc}",
                                 state) from exc
        lock = ProjectLock(state / "lock")
        read_only = not lock.acquire()
        store = None
        try:
            if not read_only:
                clean_stale_temps(state)
                renumber.recover(state)  # finish a class change a crash interrupted
            store = Store(state / DB_NAME)
            new = store.get_kv("initialised") is None
            if new and exists and not read_only:  # a creation that crashed before seeding
                manifest = seed.read_manifest(folder)
            project = cls(folder, state, store, lock, ClassSchema.default(DEFAULT_CLASSES), read_only)
            project.schema = project._load_or_create_schema(schema, manifest)
            if not read_only:
                store.set_kv("image_folder", str(folder))
            project.sync()
            if new and not read_only:
                if manifest is not None:
                    project.problems.extend(seed.apply_manifest(project, manifest))
                store.set_kv("initialised", str(time.time()))
            return project
        except BaseException:
            if store is not None:
                store.close()
            lock.release()
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
        """Close the database and release the lock (idempotent)."""
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
            raise WorkbenchError(READ_ONLY_MESSAGE)

    def _load_or_create_schema(self, schema: ClassSchema | None, manifest: Any) -> ClassSchema:
        path = self.classes_path
        if path.is_file():
            return ClassSchema.load(path)
        if schema is None and manifest is not None and manifest.classes is not None:
            schema = ClassSchema.load(manifest.classes)
        schema = schema.copy() if schema is not None else ClassSchema.default(DEFAULT_CLASSES)
        if not self.read_only:
            schema.save(path)
        return schema

    def sync(self) -> None:
        """Rescan the folder: add new images, hide vanished ones; refreshes ``problems``."""
        result = self._store.sync_images(scan_image_names(self.folder))
        self.problems = result.problems

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
        """Set the status of one or more images."""
        self._check_writable()
        self._store.update_images(_ids(image_ids), status=parse_status(status).value)

    def set_split(self, image_ids: int | Iterable[int], split: Split | str) -> None:
        """Move one or more images to train / val / test."""
        self._check_writable()
        self._store.update_images(_ids(image_ids), split=parse_split(split).value)

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
                   source: str = "person") -> None:
        """Validate and save the image's label atomically, then record status and source.

        The database changes only after the file is safely written: a failed save leaves
        the old label and the old state.
        """
        self._check_writable()
        status = parse_status(status)
        arr = self._checked_mask(image_id, mask, "label")
        masks.write_mask(self.label_path(image_id), arr, self.schema)
        self._store.update_images([image_id], status=status.value, source=source,
                                  updated=time.time(), has_label=1)

    def clear_label(self, image_id: int) -> None:
        """Delete the image's label; it becomes unlabelled."""
        self._check_writable()
        path = self.label_path(image_id)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise WorkbenchError(f"cannot delete the label: {exc.strerror or exc}", path) from exc
        self._store.update_images([image_id], status=Status.UNLABELLED.value, source=None,
                                  updated=time.time(), has_label=0)

    def save_ground_truth(self, image_id: int, mask: np.ndarray) -> None:
        """Validate and store reference ground truth (kept apart from labels)."""
        self._check_writable()
        arr = self._checked_mask(image_id, mask, "ground truth")
        masks.write_mask(self.ground_truth_path(image_id), arr, self.schema)
        self._store.update_images([image_id], has_gt=1)

    def save_schema(self, schema: ClassSchema) -> None:
        """Replace the class schema (saved atomically to classes.json).

        When a class keeps its name but moves to another index (``ClassSchema.add_class``
        moves a void class out of the way), stored labels and ground truth are remapped
        first, so no pixel silently changes meaning.
        """
        self._check_writable()
        schema = schema.copy()
        moves = index_moves(self.schema, schema)
        if moves:  # staged + journalled: a crash half-way is finished at the next open
            renumber.renumber_masks(self.state_dir, self.schema, schema, moves)
        else:
            schema.save(self.classes_path)
        self.schema = schema

    def add_class(self, name: str, color: tuple[int, int, int] | None = None) -> ClassInfo:
        """Append a trainable class and save the schema (remapping masks if a void class moves)."""
        schema = self.schema.copy()
        try:
            info = schema.add_class(name, color)
        except ValueError as exc:
            raise WorkbenchError(f"cannot add class {name!r}: {exc}") from exc
        self.save_schema(schema)
        return info

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
        self._store.set_model_note(int(version), str(note))
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
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise InputError(f"cannot read settings: {exc.strerror or exc}", path) from exc
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"settings are not valid JSON (line {exc.lineno}: {exc.msg})", path) from exc
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
    def import_masks(self, mask_dir: str | Path, *, as_: str = "labels",
                     on_progress: ProgressCallback | None = None,
                     cancel: CancelToken | None = None) -> ImportReport:
        """Import a folder of masks (paired by stem) as labels or as ground truth."""
        from workbench.project.importer import import_masks

        self._check_writable()
        return import_masks(self, mask_dir, as_=as_, on_progress=on_progress, cancel=cancel)

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
    """{old index: new index} for classes that kept name and kind but changed index."""
    moves = {}
    for c in old.classes:
        kept = new.by_index(c.index)
        if kept is not None and kept.name == c.name and kept.void == c.void:
            continue
        same = [n for n in new.classes if n.name == c.name and n.void == c.void and n.index != c.index]
        if len(same) == 1:
            moves[c.index] = same[0].index
    return moves


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
    folder = Path(row[0])
    if not folder.is_dir():
        raise InputError("the image folder of this project is gone (moved or deleted?)", folder)
    return folder

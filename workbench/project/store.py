"""The project database: per-image state, models and metrics history in SQLite.

One connection per project, opened with ``check_same_thread=False`` and guarded by a
re-entrant lock, so the thread that owns the project and a worker reading from it
cannot interleave statements. WAL mode lets another process read while we write.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.project.records import ImageRecord, Split, Status

SCHEMA_VERSION = 2

_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS images (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    stem        TEXT NOT NULL UNIQUE,
    status      TEXT NOT NULL DEFAULT 'unlabelled',
    split       TEXT NOT NULL DEFAULT 'train',
    source      TEXT,
    updated     REAL,
    has_label   INTEGER NOT NULL DEFAULT 0,
    has_gt      INTEGER NOT NULL DEFAULT 0,
    miou        REAL,
    uncertainty REAL,
    present     INTEGER NOT NULL DEFAULT 1,   -- 0: the file disappeared (row and label kept)
    width       INTEGER,                      -- cached image size (header read once)
    height      INTEGER,
    mtime_ns    INTEGER                       -- file mtime when the size was cached
);
CREATE TABLE IF NOT EXISTS models (
    version      INTEGER PRIMARY KEY,
    path         TEXT NOT NULL,               -- relative to the state folder
    created      REAL NOT NULL,
    parent       INTEGER,
    metrics_json TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS metrics_history (
    id      INTEGER PRIMARY KEY,
    version INTEGER,
    split   TEXT NOT NULL,
    time    REAL NOT NULL,
    json    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS kv (
    key   TEXT PRIMARY KEY,
    value TEXT
);
"""

# Per-image scores keyed by model version (issue 9.3): evaluating v1 while v2 is current
# must not change the numbers the list shows for v2. The images.miou/uncertainty columns of
# version 1 are no longer read; their values belong to the model current when they were made.
_SCORES_TABLE = """
CREATE TABLE IF NOT EXISTS image_scores (
    image_id    INTEGER NOT NULL,
    version     INTEGER NOT NULL,
    miou        REAL,
    uncertainty REAL,
    PRIMARY KEY (image_id, version)
)
"""

# The model the list shows: the chosen one (kv current_model) when it is registered, else the newest.
CURRENT_VERSION_SQL = ("COALESCE((SELECT m.version FROM models m WHERE m.version = "
                       "(SELECT CAST(k.value AS INTEGER) FROM kv k WHERE k.key = 'current_model')), "
                       "(SELECT MAX(m2.version) FROM models m2))")

# Schema changes: _MIGRATIONS[N] holds the statements that migrate version N to N + 1.
_MIGRATIONS: dict[int, str] = {
    1: _SCORES_TABLE + ";\n"
       "ALTER TABLE models ADD COLUMN note TEXT NOT NULL DEFAULT '';\n"
       "INSERT OR REPLACE INTO image_scores(image_id, version, miou, uncertainty) "
       f"SELECT id, {CURRENT_VERSION_SQL}, miou, uncertainty FROM images "
       f"WHERE (miou IS NOT NULL OR uncertainty IS NOT NULL) AND {CURRENT_VERSION_SQL} IS NOT NULL",
}

# Image rows with the current model's scores: one LEFT JOIN on (image, version), the
# version bound as the first parameter (Store._current_version), 10,000 rows in ~30 ms.
_IMAGE_SELECT = (
    "SELECT images.id, name, stem, status, split, source, updated, has_label, has_gt, "
    "s.miou, s.uncertainty FROM images "
    "LEFT JOIN image_scores s ON s.image_id = images.id AND s.version = ?")


def _finite(data: Any) -> Any:
    # NaN and infinity are not JSON: Python writes them anyway, and every other reader
    # (and `workbench models --json`) then fails on the file. They are stored as null.
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_finite(v) for v in data]
    if hasattr(data, "tolist"):  # numpy scalar or array
        return _finite(data.tolist())
    return data


def to_json(data: Any, **kw: Any) -> str:
    """JSON text of plain data; numpy scalars and arrays become numbers and lists, NaN and infinity null."""
    def default(obj: Any) -> Any:
        raise TypeError(f"{type(obj).__name__} is not JSON data")

    return json.dumps(_finite(data), default=default, allow_nan=False, **kw)


def db_name(name: str) -> str | bytes:
    """A file name as stored: text when it is valid UTF-8, else its bytes (a BLOB).

    ``os.fsdecode`` turns Latin-1 bytes in a name (``caf\\xe9.png``) into surrogate
    escapes, which SQLite cannot store as text; the bytes round-trip losslessly.
    """
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(name)
    return name


def py_name(value: str | bytes) -> str:
    """The inverse of ``db_name``: the name as ``os.fsdecode`` gives it."""
    return os.fsdecode(value) if isinstance(value, bytes) else value


def _to_record(row: Sequence[Any]) -> ImageRecord:
    return ImageRecord(
        id=row[0], name=py_name(row[1]), stem=py_name(row[2]), status=Status(row[3]), split=Split(row[4]),
        source=row[5], updated=row[6], has_label=bool(row[7]), has_ground_truth=bool(row[8]),
        miou=row[9], uncertainty=row[10])


EMPTIED = "the project database was emptied while the project was open"


def file_identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of a file, None when it does not exist: tells a replaced file apart."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


@dataclass
class SyncResult:
    """What a folder scan changed: counts and problems to show the user."""

    added: int = 0
    missing: int = 0
    problems: list[str] = field(default_factory=list)


class Store:
    """Thread-safe access to ``project.sqlite``; every statement runs under one lock."""

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._identity: tuple[int, int] | None = None
        # Called (under the lock) when the file at ``path`` is no longer the one we opened
        # (deleted or replaced while open); it must make ``path`` right again or raise.
        self.on_lost: Callable[[str], None] | None = None
        try:
            self._connect()
        except sqlite3.DatabaseError as exc:
            self.close()
            raise WorkbenchError(f"cannot open the project database: {exc}", self.path) from exc
        except WorkbenchError:  # _migrate's transaction already named the database
            self.close()
            raise

    def _connect(self) -> None:
        if self.read_only:
            # A read-only open writes nothing: no WAL switch, no migration. Without a
            # write-ahead log (a cleanly closed project) immutable=1 reads the file and
            # creates no -wal/-shm; with one, mode=ro reads it too (SQLite needs its -shm).
            uri = self.path.resolve().as_uri()
            wal = Path(f"{self.path}-wal")
            has_log = wal.is_file() and wal.stat().st_size > 0
            modes = ["mode=ro", "immutable=1"] if has_log else ["immutable=1"]
            for i, mode in enumerate(modes):
                try:
                    self._conn = sqlite3.connect(f"{uri}?{mode}", uri=True, timeout=10.0,
                                                 check_same_thread=False, isolation_level=None)
                    self._conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
                    break
                except sqlite3.OperationalError:
                    if self._conn is not None:
                        self._conn.close()
                        self._conn = None
                    if i == len(modes) - 1:
                        raise
            self._check_version()
        else:
            self._conn = sqlite3.connect(str(self.path), timeout=10.0, check_same_thread=False,
                                         isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: durable at checkpoints, never corrupt; one fsync per
            # commit would make importing thousands of labels crawl.
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._identity = file_identity(self.path)  # the WAL switch has created the file
            self._migrate()
        self._identity = file_identity(self.path)

    def _check_version(self) -> None:
        rows = self.conn.execute("SELECT name FROM sqlite_master WHERE name = 'schema_version'").fetchall()
        if not rows:
            raise WorkbenchError("the project database is empty and the state folder cannot be "
                                 "written, so it cannot be rebuilt here", self.path)
        version = int(self.conn.execute("SELECT version FROM schema_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise WorkbenchError(
                f"this project was saved by a newer Segmentation Workbench (database version "
                f"{version}, this one reads up to {SCHEMA_VERSION}); please update", self.path)
        if version < SCHEMA_VERSION:
            # An older database opened read-only: the file is never written, so migrate a copy
            # in memory and read that (reads then see the current tables and columns).
            mem = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
            self.conn.backup(mem)
            self.conn.close()
            self._conn = mem
            while version < SCHEMA_VERSION:
                for stmt in _MIGRATIONS[version].split(";"):
                    if stmt.strip():
                        mem.execute(stmt)
                version += 1
            mem.execute("UPDATE schema_version SET version = ?", (version,))

    def check_integrity(self) -> None:
        """Raise ``WorkbenchError`` (caused by the SQLite error) when the file is damaged.

        A database cut short opens fine and fails at the first read of a lost page;
        ``quick_check`` finds that at open (about 10 ms for 10,000 images).
        """
        with self._lock:
            try:
                rows = self.conn.execute("PRAGMA quick_check(1)").fetchall()
                if rows != [("ok",)]:
                    raise sqlite3.DatabaseError(f"database disk image is malformed ({rows[0][0]})")
            except sqlite3.DatabaseError as exc:
                raise WorkbenchError(f"cannot open the project database: {exc}", self.path) from exc

    # ----- the file we opened ----------------------------------------------------------
    def lost_reason(self) -> str | None:
        """Why ``path`` is not the database we opened (deleted, replaced), or None."""
        now = file_identity(self.path)
        if now is None:
            return "the project database was deleted while the project was open"
        if self._identity is not None and now != self._identity:
            return "the project database was replaced by another file while the project was open"
        try:
            emptied = os.stat(self.path).st_size == 0  # truncated in place (same inode)
        except OSError:
            emptied = False
        return EMPTIED if emptied else None

    def copy_live_to(self, dest: Path) -> None:
        """Write the database as this connection sees it (deleted files included) to ``dest``."""
        with self._lock:
            self.conn.execute("VACUUM INTO ?", (str(dest),))

    def reconnect(self) -> None:
        """Close and open ``path`` again (after it was restored)."""
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.close()
                self._conn = None
            try:
                self._connect()
            except sqlite3.DatabaseError as exc:
                raise WorkbenchError(f"cannot open the project database: {exc}", self.path) from exc

    def _check_identity(self) -> None:
        if self.read_only:
            return
        reason = self.lost_reason()
        if reason is None:
            return
        handler, self.on_lost = self.on_lost, None  # a write made while handling it must not recurse
        if handler is None:
            raise WorkbenchError(f"{reason}; not saved (reopen the project)", self.path)
        try:
            handler(reason)
        finally:
            self.on_lost = handler

    # ----- plumbing ------------------------------------------------------------------
    @property
    def conn(self) -> sqlite3.Connection:
        """The live connection; WorkbenchError once the project is closed."""
        if self._conn is None:
            raise WorkbenchError("the project is closed", self.path)
        return self._conn

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.close()
                self._conn = None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Hold the lock and run the block as one transaction (rolled back on error).

        An SQLite failure (disk full, I/O error) becomes a ``WorkbenchError`` naming the
        database, so the CLI prints it and the app keeps the edit marked unsaved.
        """
        with self._lock:
            if self.read_only:
                raise WorkbenchError("the project is open read-only; nothing was saved", self.path)
            self._check_identity()
            conn = self.conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                    raise
                try:
                    conn.execute("COMMIT")
                except sqlite3.Error:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise WorkbenchError(f"cannot write the project database: {exc}", self.path) from exc

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self.conn
            except sqlite3.Error as exc:
                raise WorkbenchError(f"cannot read the project database: {exc}", self.path) from exc

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        """Run a read statement and return all rows."""
        with self._lock:
            try:
                return self.conn.execute(sql, params).fetchall()
            except sqlite3.DatabaseError as exc:
                # A file emptied or damaged under us fails reads too: restore it, then retry once.
                if self.read_only or self.on_lost is None or self.lost_reason() is None:
                    raise WorkbenchError(f"cannot read the project database: {exc}", self.path) from exc
            self._check_identity()
            try:
                return self.conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise WorkbenchError(f"cannot read the project database: {exc}", self.path) from exc

    def write(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one write statement in its own transaction; returns the rows changed."""
        with self.transaction() as conn:
            return conn.execute(sql, params).rowcount

    def _migrate(self) -> None:
        with self.transaction() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = conn.execute("SELECT version FROM schema_version").fetchone()
            if row is None:  # a new database: version 1, then the same migrations as an old one
                for stmt in _SCHEMA_V1.split(";"):
                    if stmt.strip():
                        conn.execute(stmt)
                conn.execute("INSERT INTO schema_version VALUES (1)")
                row = (1,)
            version = int(row[0])
            if version > SCHEMA_VERSION:
                raise WorkbenchError(
                    f"this project was saved by a newer Segmentation Workbench (database version "
                    f"{version}, this one reads up to {SCHEMA_VERSION}); please update", self.path)
            while version < SCHEMA_VERSION:
                for stmt in _MIGRATIONS[version].split(";"):
                    if stmt.strip():
                        conn.execute(stmt)
                version += 1
            conn.execute("UPDATE schema_version SET version = ?", (version,))

    # ----- key/value -----------------------------------------------------------------
    def get_kv(self, key: str, default: str | None = None) -> str | None:
        """A stored project setting (internal: folder path, current model, ...)."""
        rows = self.query("SELECT value FROM kv WHERE key = ?", (key,))
        return py_name(rows[0][0]) if rows and rows[0][0] is not None else (None if rows else default)

    def set_kv(self, key: str, value: str | None) -> None:
        """Store or (with None) remove an internal setting."""
        if value is None:
            self.write("DELETE FROM kv WHERE key = ?", (key,))
        else:
            self.write("INSERT INTO kv(key, value) VALUES (?, ?) "   # a folder path may not be UTF-8
                       "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, db_name(value)))

    # ----- images --------------------------------------------------------------------
    def sync_images(self, names: Iterable[str], *, write: bool = True) -> SyncResult:
        """Bring the images table in line with the file names now in the folder.

        New files become unlabelled/train rows; rows whose file vanished are hidden
        (``present = 0``) but kept, with their labels. Files sharing a stem: a stem that
        already has a row keeps its file (its label belongs to it), otherwise the
        first name in sort order wins; the others are reported.
        """
        result = SyncResult()
        by_stem: dict[str, list[str]] = {}
        for name in sorted(names):
            # os.path.splitext: same stem as Path(name).stem, without building 10,000 Paths
            by_stem.setdefault(os.path.splitext(name)[0], []).append(name)
        with (self.transaction() if write else self._reading()) as conn:
            rows = [(r[0], py_name(r[1]), py_name(r[2]), r[3])
                    for r in conn.execute("SELECT id, name, stem, present FROM images").fetchall()]
            row_by_name = {r[1]: r for r in rows}
            row_by_stem = {r[2]: r for r in rows}
            inserts: list[tuple[str, str]] = []
            renames: list[tuple[str, int]] = []
            present_ids: set[int] = set()
            for stem, group in by_stem.items():
                chosen = next((n for n in group if n in row_by_name), group[0])
                for other in group:
                    if other != chosen:
                        result.problems.append(
                            f"{other}: has the same stem as {chosen!s}; only {chosen} is used "
                            f"(rename one of them to work on both)")
                row = row_by_name.get(chosen) or row_by_stem.get(stem)
                if row is None:
                    inserts.append((chosen, stem))
                    continue
                if row[1] != chosen:
                    renames.append((chosen, row[0]))  # same stem, new file (e.g. png -> jpg)
                present_ids.add(row[0])
            now_missing = [r for r in rows if r[0] not in present_ids]
            for r in now_missing:
                result.problems.append(f"{r[1]}: image file is missing; its label is kept and "
                                       f"it is hidden until the file is back")
            reappeared = [(r[0],) for r in rows if r[0] in present_ids and not r[3]]
            if not write:
                if inserts:
                    shown = ", ".join(n for n, _ in inserts[:5]) + (" ..." if len(inserts) > 5 else "")
                    result.problems.append(f"{len(inserts)} image(s) new since the project was last "
                                           f"written are not listed while it is read-only: {shown}")
                return result
            conn.executemany("UPDATE images SET present = 0 WHERE id = ?",
                             [(r[0],) for r in now_missing if r[3]])
            conn.executemany("UPDATE images SET present = 1 WHERE id = ?", reappeared)
            conn.executemany("UPDATE images SET name = ?, width = NULL, height = NULL, "
                             "mtime_ns = NULL WHERE id = ?", [(db_name(n), i) for n, i in renames])
            conn.executemany("INSERT INTO images(name, stem) VALUES (?, ?)",
                             [(db_name(n), db_name(st)) for n, st in inserts])
        result.added = len(inserts)
        result.missing = len(now_missing)
        return result

    def images(self, status: Sequence[str] | None = None, split: Sequence[str] | None = None,
               include_missing: bool = False) -> list[ImageRecord]:
        """Image records ordered by name, optionally filtered."""
        where, params = [], []
        if not include_missing:
            where.append("present = 1")
        if status is not None:
            where.append(f"status IN ({','.join('?' * len(status))})")
            params.extend(status)
        if split is not None:
            where.append(f"split IN ({','.join('?' * len(split))})")
            params.extend(split)
        sql = _IMAGE_SELECT
        if where:
            sql += " WHERE " + " AND ".join(where)
        records = [_to_record(r) for r in self.query(sql + " ORDER BY name", [self._current_version(), *params])]
        # SQLite orders BLOB names (not UTF-8) after all text; an already sorted list
        # costs timsort one pass.
        records.sort(key=lambda r: r.name)
        return records

    def image(self, image_id: int) -> ImageRecord | None:
        """The record with this id (present or not), or None."""
        rows = self.query(f"{_IMAGE_SELECT} WHERE images.id = ?", (self._current_version(), int(image_id)))
        return _to_record(rows[0]) if rows else None

    def find(self, name_or_stem: str) -> ImageRecord | None:
        """A present image by file name, else by stem."""
        key = db_name(name_or_stem)
        rows = self.query(f"{_IMAGE_SELECT} WHERE present = 1 AND "
                          f"(name = ? OR stem = ?) ORDER BY name = ? DESC LIMIT 1",
                          (self._current_version(), key, key, key))
        return _to_record(rows[0]) if rows else None

    def cached_size(self, image_id: int) -> tuple[int | None, int | None, int | None]:
        """(width, height, mtime_ns) as cached, any of them None when unknown."""
        rows = self.query("SELECT width, height, mtime_ns FROM images WHERE id = ?", (int(image_id),))
        return rows[0] if rows else (None, None, None)

    def cache_size(self, image_id: int, width: int, height: int, mtime_ns: int) -> None:
        """Remember an image's size so it is read from the header only once."""
        self.write("UPDATE images SET width = ?, height = ?, mtime_ns = ? WHERE id = ?",
                   (width, height, mtime_ns, int(image_id)))

    def update_images(self, image_ids: Iterable[int], **columns: Any) -> None:
        """Set the same column values on several images in one transaction."""
        allowed = {"status", "split", "source", "updated", "has_label", "has_gt", "miou", "uncertainty"}
        unknown = set(columns) - allowed
        if unknown:
            raise ValueError(f"cannot set image columns {sorted(unknown)}")
        assignments = ", ".join(f"{c} = ?" for c in columns)
        values = list(columns.values())
        with self.transaction() as conn:
            conn.executemany(f"UPDATE images SET {assignments} WHERE id = ?",
                             [(*values, int(i)) for i in image_ids])

    def mark_predicted(self, image_id: int, source: str) -> None:
        """Status PREDICTED, but only for an image nobody has labelled."""
        self.write("UPDATE images SET status = ?, source = ? WHERE id = ? AND status = ?",
                   (Status.PREDICTED.value, source, int(image_id), Status.UNLABELLED.value))

    def state_rows(self) -> list[tuple[str, str, str, str | None, float | None]]:
        """(name, split, status, source, updated) of every image row, for the snapshot."""
        return [(py_name(r[0]), r[1], r[2], r[3], r[4]) for r in
                self.query("SELECT name, split, status, source, updated FROM images")]

    def restore_images(self, rows: Iterable[tuple[str, dict[str, Any]]]) -> None:
        """Set recovered columns by file name, all in one transaction (rebuild)."""
        with self.transaction() as conn:
            for name, cols in rows:
                if not cols:
                    continue
                assignments = ", ".join(f"{c} = ?" for c in cols)
                conn.execute(f"UPDATE images SET {assignments} WHERE name = ?",
                             (*cols.values(), db_name(name)))

    # ----- models --------------------------------------------------------------------
    def models(self) -> list[tuple[int, str, float, int | None, str]]:
        """Rows (version, path, created, parent, metrics_json) ordered by version."""
        return self.query("SELECT version, path, created, parent, metrics_json FROM models ORDER BY version")

    def max_model_version(self) -> int:
        """The highest registered version, 0 when none."""
        return int(self.query("SELECT COALESCE(MAX(version), 0) FROM models")[0][0])

    def add_model(self, version: int, path: str, created: float, parent: int | None,
                  metrics: dict) -> None:
        """Record a model version."""
        self.write("INSERT INTO models(version, path, created, parent, metrics_json) VALUES (?, ?, ?, ?, ?)",
                   (version, path, created, parent, to_json(metrics)))

    def model_notes(self) -> dict[int, str]:
        """{version: note} of every registered model."""
        return {int(v): n or "" for v, n in self.query("SELECT version, note FROM models")}

    def set_model_note(self, version: int, note: str) -> int:
        """Set one model's note; returns the rows changed (0: no such version)."""
        return self.write("UPDATE models SET note = ? WHERE version = ?", (note, int(version)))

    def update_model_metrics(self, version: int, metrics: dict) -> None:
        """Replace one model's metrics JSON."""
        self.write("UPDATE models SET metrics_json = ? WHERE version = ?", (to_json(metrics), int(version)))

    def delete_model(self, version: int) -> None:
        """Forget a model version and its per-image scores (one transaction).

        Its evaluations stay in the metrics history: they happened, and the number is
        never given to another model.
        """
        with self.transaction() as conn:
            conn.execute("DELETE FROM models WHERE version = ?", (int(version),))
            conn.execute("DELETE FROM image_scores WHERE version = ?", (int(version),))

    # ----- per-image scores by model version -----------------------------------------------
    def _current_version(self) -> int | None:
        """The model whose scores image rows show (None: no model; nothing matches)."""
        return self.query(f"SELECT {CURRENT_VERSION_SQL}")[0][0]

    def set_scores(self, image_id: int, version: int, miou: float | None,
                   uncertainty: float | None) -> None:
        """Set (image, version)'s mIoU and/or uncertainty; None keeps a stored value."""
        self.write("INSERT INTO image_scores(image_id, version, miou, uncertainty) VALUES (?, ?, ?, ?) "
                   "ON CONFLICT(image_id, version) DO UPDATE SET "
                   "miou = COALESCE(excluded.miou, image_scores.miou), "
                   "uncertainty = COALESCE(excluded.uncertainty, image_scores.uncertainty)",
                   (int(image_id), int(version), miou, uncertainty))

    def scores(self, version: int) -> dict[int, tuple[float | None, float | None]]:
        """{image id: (miou, uncertainty)} stored for one model version."""
        return {int(i): (m, u) for i, m, u in self.query(
            "SELECT image_id, miou, uncertainty FROM image_scores WHERE version = ?", (int(version),))}

    # ----- metrics history -----------------------------------------------------------
    def add_metrics(self, version: int | None, split: str, report: dict) -> None:
        """Append one evaluation to the history."""
        self.write("INSERT INTO metrics_history(version, split, time, json) VALUES (?, ?, ?, ?)",
                   (version, split, time.time(), to_json(report)))

    def metrics(self) -> list[tuple[int | None, str, float, str]]:
        """Rows (version, split, time, json) in the order they were recorded."""
        return self.query("SELECT version, split, time, json FROM metrics_history ORDER BY time, id")

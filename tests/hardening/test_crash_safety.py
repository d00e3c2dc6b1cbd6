"""Crash safety: SIGKILL at random moments of saving never leaves a torn mask or project.

``save_loop.py`` runs as a child that forks writers and kills each at a random moment
(delays from a seeded RNG, bounded by the duration of an unkilled run measured on this
machine at the start of each test, so the test holds on a busy machine too). After
each batch this test checks that every mask on disk is exactly version A or B, that
reopening removes the crash's temp files, and that the project opens and lists its
images. Then: saving into a full disk or a location that
cannot be written fails loudly, names the file and keeps the old label and state.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.hardening import save_loop
from workbench import masks
from workbench.atomic import TEMP_MARKER, clean_stale_temps
from workbench.classes import ClassInfo, ClassSchema
from workbench.errors import WorkbenchError
from workbench.project import Project, Status

SAVE_LOOP = Path(save_loop.__file__)
N = save_loop.N_MASKS
# (mode, saves, (ready ms, total ms)) of every calibration run, printed at the end of the
# module (``pytest -s``) so a slow machine's numbers can be read off a CI log.
TIMINGS: list[tuple[str, int, tuple[float, float]]] = []


@pytest.fixture(scope="module", autouse=True)
def _report_timings() -> object:
    yield
    for mode, saves, (ready_ms, total_ms) in TIMINGS:
        print(f"\ncalibration {mode}: {saves} save(s): ready {ready_ms:.1f} ms, total {total_ms:.1f} ms")


class Killer:
    """Drives one ``save_loop.py`` child: ``run`` kills writers -> (killed, exited, torn)."""

    def __init__(self, folder: Path, mode: str, log: Path) -> None:
        self.mode = mode
        self.log = log.open("w")
        self.proc = subprocess.Popen([sys.executable, str(SAVE_LOOP), str(folder), mode],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
                                     text=True, bufsize=1)
        assert self.proc.stdout.readline().strip() == "ready", self._stderr()

    def run(self, n: int, seed: int, max_ms: float) -> tuple[int, int, int]:
        self.proc.stdin.write(f"run {n} {seed} {max_ms}\n")
        self.proc.stdin.flush()
        reply = self.proc.stdout.readline().split()
        assert reply and reply[0] == "done", f"save loop died: {self._stderr()}"
        return int(reply[1]), int(reply[2]), int(reply[3])

    def measure(self, saves: int, runs: int = 2) -> tuple[float, float]:
        """(ready ms, total ms) of the slowest of ``runs`` unkilled writers (``saves`` saves each)."""
        worst = (0.0, 0.0)
        for _ in range(runs):
            self.proc.stdin.write(f"measure {saves}\n")
            self.proc.stdin.flush()
            reply = self.proc.stdout.readline().split()
            assert reply and reply[0] == "measured", f"save loop died: {self._stderr()}"
            ready_ms, total_ms = float(reply[1]), float(reply[2])
            worst = (max(worst[0], ready_ms), max(worst[1], total_ms))
        TIMINGS.append((self.mode, saves, worst))
        return worst

    def kill_window(self, saves_in_window: int, floor_ms: float) -> float:
        """Longest kill delay: set-up plus ``saves_in_window`` saves as measured now, at least
        ``floor_ms`` (the bound used on a quiet machine), so that kills land inside saves and
        some saves complete whatever the load."""
        saves = 10
        ready_ms, total_ms = self.measure(saves)
        per_save = max(0.0, total_ms - ready_ms) / saves
        return max(floor_ms, ready_ms + saves_in_window * per_save)

    def _stderr(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text()

    def close(self) -> str:
        if self.proc.poll() is None:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        self.log.close()
        return Path(self.log.name).read_text()


def _versions() -> dict[int, tuple[bytes, bytes]]:
    sch = save_loop.schema()
    return {i: (masks.encode_mask(save_loop.version(i, 0), sch),
                masks.encode_mask(save_loop.version(i, 1), sch)) for i in range(N)}


def _without_record(data: bytes) -> bytes:
    """The PNG without the label's own record (its "workbench" tEXt chunk holds the save time)."""
    out, pos = [data[:8]], 8
    while pos + 8 <= len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        chunk = data[pos:pos + 12 + length]
        if not (data[pos + 4:pos + 8] == b"tEXt" and data[pos + 8:pos + 8 + length].startswith(b"workbench\0")):
            out.append(chunk)
        pos += 12 + length
    return b"".join(out)


def _temps(folder: Path) -> list[Path]:
    return list(folder.rglob(f"{TEMP_MARKER}*"))


def _assert_masks_whole(labels: Path, versions: dict[int, tuple[bytes, bytes]]) -> set[tuple[int, int]]:
    """Every mask file is byte-for-byte version A or B, and decodes to it; returns (mask, version)s."""
    seen = set()
    sch = save_loop.schema()
    for i, (a, b) in versions.items():
        path = labels / f"{save_loop.mask_name(i)}.png"
        data = path.read_bytes()
        assert data in (a, b), f"{path.name}: torn or unknown content ({len(data)} bytes)"
        mask = masks.read_mask(path, sch, save_loop.MASK_HW)
        expected = save_loop.version(i, 0 if data == a else 1)
        np.testing.assert_array_equal(mask, expected)
        seen.add((i, 0 if data == a else 1))
    return seen


@pytest.mark.slow
def test_sigkill_during_mask_writes(tmp_path: Path) -> None:
    """240 kills in the middle of ``write_mask``: every mask stays A or B."""
    labels = tmp_path / "labels"
    sch = save_loop.schema()
    for i in range(N):
        masks.write_mask(labels / f"{save_loop.mask_name(i)}.png", save_loop.version(i, 0), sch)
    versions = _versions()
    killer = Killer(tmp_path, "masks", tmp_path / "child.log")
    total = temps_seen = 0
    seen: set[tuple[int, int]] = set()
    try:
        max_ms = killer.kill_window(saves_in_window=10, floor_ms=50)
        for batch in range(4):
            killed, exited, torn = killer.run(60, seed=batch, max_ms=max_ms)
            assert exited == 0, killer._stderr()
            total += killed
            seen |= _assert_masks_whole(labels, versions)
            temps_seen += torn
    finally:
        log = killer.close()
    assert total == 240, log
    assert any(which == 1 for _, which in seen), "no writer ever finished a save"
    # Evidence that kills landed inside saves (a temp file was being written), and that
    # the leftovers are recognised and removed.
    assert temps_seen > 0
    clean_stale_temps(tmp_path)
    assert _temps(tmp_path) == []
    _assert_masks_whole(labels, versions)


def _make_project(folder: Path) -> None:
    h, w = save_loop.MASK_HW
    rng = np.random.default_rng(0)
    folder.mkdir()
    for i in range(N):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(
            folder / f"{save_loop.mask_name(i)}.png")
    with Project.open(folder, schema=save_loop.schema()) as project:
        for rec in project.images():
            project.save_label(rec.id, save_loop.version(int(rec.stem.split()[-1]), 0))


def _assert_project_whole(folder: Path, versions: dict[int, tuple[bytes, bytes]]) -> tuple[int, int]:
    """Reopen after a crash: temps removed, 6 images, every label A or B.

    Returns (temp files found before the reopen, labels now in version B).
    """
    state = folder / ".workbench"
    in_b = 0
    temps_before = len(_temps(state))
    with Project.open(folder) as project:
        assert not project.read_only, "the killed writer's lock outlived it"
        assert _temps(state) == [], "stale temp files survived the reopen"
        records = project.images()
        assert [r.stem for r in records] == [save_loop.mask_name(i) for i in range(N)]
        for rec in records:
            i = int(rec.stem.split()[-1])
            label = project.read_label(rec.id)
            assert label is not None and rec.has_label
            data = _without_record(project.label_path(rec.id).read_bytes())
            assert data in versions[i], f"{rec.name}: torn label"
            np.testing.assert_array_equal(label, save_loop.version(i, versions[i].index(data)))
            in_b += versions[i].index(data)
            assert rec.status in (Status.EDITED, Status.VERIFIED)
        settings = project.settings()  # valid JSON, old or new
        assert settings == {} or isinstance(settings.get("round"), int)
    return temps_before, in_b


@pytest.mark.slow
def test_sigkill_during_project_saves(tmp_path: Path) -> None:
    """160 kills during Project.open / save_label / set_status / save_settings."""
    folder = tmp_path / "images"
    _make_project(folder)
    versions = _versions()
    killer = Killer(folder, "project", tmp_path / "child.log")
    total = temps_seen = saved_b = 0
    try:
        max_ms = killer.kill_window(saves_in_window=5, floor_ms=120)
        for batch in range(4):
            killed, exited, torn = killer.run(40, seed=100 + batch, max_ms=max_ms)
            assert exited == 0, killer._stderr()
            total += killed
            _, in_b = _assert_project_whole(folder, versions)
            temps_seen += torn
            saved_b += in_b
    finally:
        log = killer.close()
    assert total == 160, log
    assert saved_b > 0, "no writer ever finished a save"
    assert temps_seen > 0, "no kill landed inside a file write"


@pytest.mark.slow
def test_sigkill_during_checkpoint_saves(tmp_path: Path) -> None:
    """60 kills while ``save_checkpoint`` rewrites a model: the file is always A or B, and loads."""
    from safetensors.torch import save as safetensors_bytes

    from workbench.ml import checkpoint

    def blob(which: int) -> bytes:
        model, meta = save_loop.checkpoint_version(which)
        state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
        return safetensors_bytes(state, metadata={checkpoint.METADATA_KEY: meta.to_json()})

    versions = (blob(0), blob(1))
    path = tmp_path / "model.safetensors"
    path.write_bytes(versions[0])
    killer = Killer(tmp_path, "checkpoint", tmp_path / "child.log")
    torn_total = 0
    try:
        max_ms = killer.kill_window(saves_in_window=5, floor_ms=60)
        for batch in range(2):
            killed, exited, torn = killer.run(30, seed=200 + batch, max_ms=max_ms)
            assert (killed, exited) == (30, 0), killer._stderr()
            torn_total += torn
            data = path.read_bytes()
            assert data in versions, f"torn checkpoint ({len(data)} bytes)"
            assert checkpoint.read_meta(path).metrics == {"version": versions.index(data)}
    finally:
        killer.close()
    assert torn_total > 0, "no kill landed inside a checkpoint write"
    clean_stale_temps(tmp_path)
    assert _temps(tmp_path) == []


def test_sigkill_right_before_and_after_rename(tmp_path: Path) -> None:
    """The narrowest windows: killed just before or just after ``os.replace``."""
    labels = tmp_path / "labels"
    sch = save_loop.schema()
    for i in range(N):
        masks.write_mask(labels / f"{save_loop.mask_name(i)}.png", save_loop.version(i, 0), sch)
    killer = Killer(tmp_path, "replace-kill", tmp_path / "child.log")
    try:
        killed, exited, torn = killer.run(24, seed=7, max_ms=0)
    finally:
        log = killer.close()
    assert (killed, exited) == (24, 0), log
    assert torn > 0
    assert _temps(labels), "a kill before the rename must leave its temp file behind"
    _assert_masks_whole(labels, _versions())
    assert clean_stale_temps(tmp_path) > 0 and _temps(tmp_path) == []


# ----- full disk, read-only location ---------------------------------------------------------
@pytest.fixture
def project(tmp_path: Path) -> Project:
    folder = tmp_path / "images"
    _make_project(folder)
    with Project.open(folder) as p:
        yield p


def _fail_with(monkeypatch: pytest.MonkeyPatch, name: str, err: int) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise OSError(err, os.strerror(err))

    monkeypatch.setattr(os, name, fail)


@pytest.mark.parametrize(("call", "err", "words"), [
    ("fsync", errno.ENOSPC, "No space left on device"),
    ("replace", errno.EROFS, "Read-only file system"),
    ("replace", errno.EACCES, "Permission denied"),
])
def test_failed_label_save_keeps_old_label_and_state(project: Project, monkeypatch: pytest.MonkeyPatch,
                                                     call: str, err: int, words: str) -> None:
    """Full disk / read-only / no permission: loud error naming the file, nothing lost."""
    rec = project.images()[0]
    path = project.label_path(rec.id)
    before_bytes = path.read_bytes()
    before_rec = project.get(rec.id)
    new = save_loop.version(0, 1)
    _fail_with(monkeypatch, call, err)
    with pytest.raises(WorkbenchError) as info:
        project.save_label(rec.id, new, status=Status.VERIFIED)
    monkeypatch.undo()
    message = str(info.value)
    assert path.name in message and words in message and "could not save" in message
    assert path.read_bytes() == before_bytes
    after = project.get(rec.id)
    assert (after.status, after.updated, after.source) == (before_rec.status, before_rec.updated,
                                                          before_rec.source)
    assert _temps(project.state_dir) == []
    # The same save succeeds once the disk has room again: the edit was not lost.
    project.save_label(rec.id, new, status=Status.VERIFIED)
    np.testing.assert_array_equal(project.read_label(rec.id), new)


def test_failed_settings_save_keeps_old_settings(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    project.save_settings({"epochs": 3})
    _fail_with(monkeypatch, "fsync", errno.ENOSPC)
    with pytest.raises(WorkbenchError, match="settings.json: could not save: No space left"):
        project.save_settings({"epochs": 9})
    monkeypatch.undo()
    assert project.settings() == {"epochs": 3}
    assert json.loads(project.settings_path.read_text()) == {"epochs": 3}


def test_label_folder_cannot_be_created(project: Project) -> None:
    """``labels`` blocked by a file (a location that cannot be written, even by root)."""
    labels = project.state_dir / "labels"
    for p in labels.iterdir():
        p.unlink()
    labels.rmdir()
    labels.write_text("not a folder")
    rec = project.images()[0]
    before = project.get(rec.id)
    with pytest.raises(WorkbenchError, match="could not save") as info:
        project.save_label(rec.id, save_loop.version(0, 1))
    assert project.label_path(rec.id).name in str(info.value)
    assert project.get(rec.id).status == before.status


class _FullDatabase:
    """Stands in for the SQLite connection of a disk that filled up: writes fail, reads work."""

    def __init__(self, conn: object) -> None:
        self._conn = conn

    @staticmethod
    def _refuse(sql: str) -> None:
        if sql.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE", "REPLACE")):
            raise sqlite3.OperationalError("database or disk is full")

    def execute(self, sql: str, *params: object) -> object:
        self._refuse(sql)
        return self._conn.execute(sql, *params)

    def executemany(self, sql: str, *params: object) -> object:
        self._refuse(sql)
        return self._conn.executemany(sql, *params)

    def __getattr__(self, name: str) -> object:
        return getattr(self._conn, name)


def test_database_full_is_a_workbench_error(project: Project) -> None:
    """The database cannot grow (disk full): a WorkbenchError naming it, and the old state kept."""
    rec = project.images()[0]
    before = project.get(rec.id)
    store = project._store
    real = store._conn
    store._conn = _FullDatabase(real)
    try:
        with pytest.raises(WorkbenchError, match="project.sqlite.*full"):
            project.set_status(rec.id, Status.VERIFIED)
        with pytest.raises(WorkbenchError, match="project.sqlite.*full"):
            project.save_label(rec.id, save_loop.version(0, 1), status=Status.VERIFIED)
    finally:
        store._conn = real
    assert project.get(rec.id).status == before.status


def _void_schema() -> ClassSchema:
    return ClassSchema([ClassInfo(0, "background", (0, 0, 0)), ClassInfo(1, "object", (250, 0, 0)),
                        ClassInfo(2, "void", (9, 9, 9), void=True)], ignore_index=2)


def _labelled_void_project(folder: Path) -> dict[str, np.ndarray]:
    """Six images with labels holding background, object, void (2) and not-labelled pixels."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    h, w = save_loop.MASK_HW
    originals = {}
    for i in range(N):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / f"im{i}.png")
    with Project.open(folder, schema=_void_schema()) as project:
        for rec in project.images():
            mask = rng.choice(np.array([0, 1, 2, 255], np.uint8), size=(h, w))
            project.save_label(rec.id, mask)
            originals[rec.name] = mask
    return originals


def _assert_labels_mean_the_same(folder: Path, originals: dict[str, np.ndarray]) -> None:
    """Every label reads, void pixels sit at the schema's void index, the others are unchanged."""
    with Project.open(folder) as project:
        void = [c.index for c in project.schema.classes if c.void]
        assert len(void) == 1
        for rec in project.images():
            label = project.read_label(rec.id)  # InputError here = a half-renumbered label
            original = originals[rec.name]
            np.testing.assert_array_equal(label[original == 2], void[0])
            np.testing.assert_array_equal(label[original != 2], original[original != 2])


@pytest.mark.parametrize("cut", [2, 7, 9, 14])
def test_crash_in_the_middle_of_add_class_renumbering(tmp_path: Path, cut: int) -> None:
    """Killed right after the Nth file rename of add_class (6 labels change, then classes.json).

    Whatever the moment, the project opens afterwards and every label means what it meant.
    """
    folder = tmp_path / "images"
    originals = _labelled_void_project(folder)
    killer = Killer(folder, f"add-class-cut-{cut}", tmp_path / "child.log")
    try:
        killed, exited, _ = killer.run(1, seed=0, max_ms=0)
    finally:
        log = killer.close()
    assert (killed, exited) == (1, 0), log
    _assert_labels_mean_the_same(folder, originals)


@pytest.mark.slow
def test_sigkill_at_random_moments_of_add_class(tmp_path: Path) -> None:
    """30 kills at random moments of add_class, each checked right after: labels keep their meaning.

    The moments are drawn from [0, 1.5 x] the duration of an unkilled add_class measured
    on this machine just before (re-measured every 10 kills, as the load may change),
    so about a third of the writers finish and the rest die somewhere inside the
    change. A fixed 120 ms bound killed 30 of 30 on a busy 2-core machine (issue 8.12).
    """
    folder = tmp_path / "images"
    originals = _labelled_void_project(folder)
    killer = Killer(folder, "add-class", tmp_path / "child.log")
    outcomes = {"killed": 0, "finished": 0}
    try:
        for k in range(30):
            if k % 10 == 0:
                _, total_ms = killer.measure(1)
                _assert_labels_mean_the_same(folder, originals)  # the measured runs added classes
            killed, exited, _ = killer.run(1, seed=300 + k, max_ms=1.5 * total_ms)
            outcomes["killed"] += killed
            outcomes["finished"] += exited
            _assert_labels_mean_the_same(folder, originals)
    finally:
        log = killer.close()
    assert outcomes["killed"] >= 5 and outcomes["finished"] >= 1, (outcomes, TIMINGS, log)

"""Issue 8.5 / 8.10: a state folder that cannot be written opens read-only, never empty.

Permission bits that deny writing to everyone count as "not writable" even for root
(location.folder_is_writable), so these tests mean the same when run as root. The
read-only mount and the full disk use a small tmpfs when this process may mount one.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workbench.cli import main
from workbench.errors import WorkbenchError
from workbench.project import Project, Status

HW = (8, 10)
N = 20


def _make(folder: Path, n: int = N) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(np.full((*HW, 3), i, np.uint8)).save(folder / f"im{i:02d}.png")
    with Project.open(folder) as p:
        for rec in p.images():
            p.save_label(rec.id, np.full(HW, rec.id % 2, np.uint8))
        p.set_status([r.id for r in p.images()][:3], Status.VERIFIED)
    return folder


def _listing(state: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(state)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(state.rglob("*")) if p.is_file()}


@contextlib.contextmanager
def _mode(path: Path, mode: int) -> Iterator[None]:
    before = path.stat().st_mode & 0o777
    path.chmod(mode)
    try:
        yield
    finally:
        path.chmod(before)


def test_unwritable_state_folder_opens_read_only_with_every_label(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("WORKBENCH_STATE_HOME", str(tmp_path / "home"))
    folder = _make(tmp_path / "imgs")
    state = folder / ".workbench"
    before = _listing(state)
    with _mode(state, 0o555), Project.open(folder) as p:
        assert p.state_dir == state                     # not a new per-user folder
        assert p.read_only
        assert p.read_only_reason == "opened read-only: the state folder is not writable (permissions)"
        assert sum(r.has_label for r in p.images()) == N
        assert len(p.images(status=Status.VERIFIED)) == 3
        assert p.read_label(p.images()[1].id) is not None
        with pytest.raises(WorkbenchError, match="not writable \\(permissions\\)"):
            p.save_label(p.images()[0].id, np.zeros(HW, np.uint8))
        with pytest.raises(WorkbenchError, match="not writable"):
            p.set_split(p.images()[0].id, "val")
    assert _listing(state) == before                    # nothing at all was written
    assert not (tmp_path / "home").exists()


def test_cli_says_why_it_is_read_only(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = _make(tmp_path / "imgs", n=4)
    masks = tmp_path / "masks"
    masks.mkdir()
    Image.fromarray(np.zeros(HW, np.uint8)).save(masks / "im00.png")
    with _mode(folder / ".workbench", 0o555):
        assert main(["import", str(folder), "--masks", str(masks)]) == 2
        err = capsys.readouterr().err
        assert "cannot import: the project opened read-only: the state folder is not writable" in err
        assert main(["train", str(folder), "--epochs", "1", "--device", "cpu"]) == 2
        assert "cannot train: the project opened read-only: the state folder is not writable" in \
            capsys.readouterr().err


def test_empty_unwritable_state_still_falls_back(tmp_path: Path, monkeypatch) -> None:
    """No state exists yet: the per-user folder is used, as before."""
    monkeypatch.setenv("WORKBENCH_STATE_HOME", str(tmp_path / "home"))
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.fromarray(np.zeros((*HW, 3), np.uint8)).save(folder / "a.png")
    (folder / ".workbench").mkdir()
    with _mode(folder / ".workbench", 0o555), Project.open(folder) as p:
        assert not p.read_only and str(p.state_dir).startswith(str(tmp_path / "home"))


def test_unwritable_state_without_database_is_a_clear_error(tmp_path: Path) -> None:
    folder = _make(tmp_path / "imgs", n=2)
    state = folder / ".workbench"
    for f in state.glob("project.sqlite*"):
        f.unlink()
    with _mode(state, 0o555), pytest.raises(WorkbenchError, match="not writable.*no project.sqlite"):
        Project.open(folder)


def test_app_banner_names_the_reason(tmp_path: Path, qtbot, monkeypatch) -> None:  # noqa: ANN001
    from workbench.gui.main_window import MainWindow

    monkeypatch.setenv("WORKBENCH_STATE_HOME", str(tmp_path / "home"))
    folder = _make(tmp_path / "imgs", n=3)
    before = _listing(folder / ".workbench")
    with _mode(folder / ".workbench", 0o555):
        window = MainWindow(device="cpu")
        qtbot.addWidget(window, before_close_func=lambda w: w.close_project(ask=False))
        window.show()
        assert window.open_project(folder)
        assert "[read-only]" in window.windowTitle()
        assert "the state folder is not writable (permissions)" in window.notifier.last_error
        assert window.list_panel is not None and window.project.read_only
        window.close_project(ask=False)
    assert _listing(folder / ".workbench") == before  # the app wrote nothing either


# ----- read-only mount and full disk (a small tmpfs) ---------------------------------------
def _mount_tmpfs(where: Path, size: str) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    try:
        return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                              capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _umount(where: Path) -> None:
    subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=30)


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "mnt"
    if os.geteuid() != 0 or not _mount_tmpfs(where, "3m"):
        pytest.skip("needs to mount a tmpfs (root)")
    try:
        yield where
    finally:
        _umount(where)


def test_read_only_mount_opens_read_only(tmpfs: Path) -> None:
    folder = _make(tmpfs / "imgs", n=5)
    assert subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], capture_output=True).returncode == 0
    with Project.open(folder) as p:
        assert p.read_only_reason == "opened read-only: the state folder is on a read-only file system"
        assert sum(r.has_label for r in p.images()) == 5


def test_full_disk_opens_read_only_and_says_so(tmpfs: Path) -> None:
    folder = _make(tmpfs / "imgs", n=5)
    filler = tmpfs / "filler"
    with open(filler, "wb", buffering=0) as fh:  # fill the disk to the last byte
        for chunk in (65536, 1):
            with contextlib.suppress(OSError):
                while True:
                    fh.write(b"\0" * chunk)
    with Project.open(folder) as p:
        assert p.read_only and p.read_only_reason.startswith("opened read-only: the disk is full")
        assert sum(r.has_label for r in p.images()) == 5
        with pytest.raises(WorkbenchError, match="disk is full|No space left"):
            p.save_label(p.images()[0].id, np.zeros(HW, np.uint8))
    filler.unlink()
    with Project.open(folder) as p:  # space is back: a normal, writable open, nothing lost
        assert not p.read_only and sum(r.has_label for r in p.images()) == 5


def test_an_older_database_opened_read_only_is_migrated_in_memory_not_on_disk(tmp_path: Path,
                                                                              monkeypatch) -> None:
    """A version-1 database (from before per-version scores) in an unwritable state folder:
    every image and label reads back, and the file is left exactly as it was."""
    import sqlite3

    monkeypatch.setenv("WORKBENCH_STATE_HOME", str(tmp_path / "home"))
    folder = _make(tmp_path / "imgs", n=4)
    state = folder / ".workbench"
    db = state / "project.sqlite"
    conn = sqlite3.connect(db)   # take it back to version 1: no image_scores table, no models.note
    conn.execute("DROP TABLE image_scores")
    conn.execute("ALTER TABLE models DROP COLUMN note")
    conn.execute("UPDATE schema_version SET version = 1")
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    before = _listing(state)
    with _mode(state, 0o555), Project.open(folder) as p:
        assert p.read_only
        records = p.images()
        assert len(records) == 4 and all(r.has_label for r in records)
        assert all(r.miou is None for r in records)
        assert p.models() == [] and p.current_model() is None
        np.testing.assert_array_equal(p.read_label(records[1].id), np.full(HW, records[1].id % 2, np.uint8))
    assert _listing(state) == before
    conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
    assert conn.execute("SELECT version FROM schema_version").fetchone() == (1,)
    conn.close()

"""Damaged project state: each file of ``.workbench/`` broken in turn.

Opening either works (the damage only affects the damaged part) or fails with a message
naming the damaged file. A damaged label is never silently replaced by a blank one:
the app refuses to open that image, says why, and leaves the file as it was.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.hardening import corpus
from workbench.errors import InputError, WorkbenchError
from workbench.project import Project

HW = (24, 32)
SCHEMA = corpus.corpus_schema()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Three images, each with a label."""
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(3):
        (folder / f"im{i}.png").write_bytes(corpus.good_image_bytes(*HW, seed=i))
    with Project.open(folder, schema=SCHEMA) as project:
        for rec in project.images():
            project.save_label(rec.id, np.full(HW, rec.id % 2, np.uint8))
        project.save_settings({"epochs": 3})
    return folder


def _state(folder: Path) -> Path:
    return folder / ".workbench"


@pytest.mark.parametrize("content", [b"", b"{not json", b'{"classes": []}'], ids=["empty", "garbage", "no_class"])
def test_damaged_schema_is_named(folder: Path, content: bytes) -> None:
    (_state(folder) / "classes.json").write_bytes(content)
    with pytest.raises(InputError, match="classes.json"):
        Project.open(folder)


@pytest.mark.parametrize("content", [b"", b"\x00\x01garbage" * 100], ids=["empty", "garbage"])
def test_damaged_database_is_named(folder: Path, content: bytes) -> None:
    db = _state(folder) / "project.sqlite"
    for extra in db.parent.glob("project.sqlite-*"):
        extra.unlink()
    db.write_bytes(content)
    try:
        project = Project.open(folder)
    except WorkbenchError as exc:
        assert "project.sqlite" in str(exc)
        return
    with project:  # SQLite may treat an empty file as a new database: then it rebuilds
        assert [r.name for r in project.images()] == ["im0.png", "im1.png", "im2.png"]


def test_garbage_wal_file_is_ignored(folder: Path) -> None:
    """A write-ahead log with garbage (a half-written WAL frame) is discarded by SQLite."""
    (_state(folder) / "project.sqlite-wal").write_bytes(b"\x37\x7f\x06\x82" + b"\xab" * 5000)
    with Project.open(folder) as project:
        assert len(project.images()) == 3 and all(r.has_label for r in project.images())


def test_damaged_settings_do_not_block_the_project(folder: Path) -> None:
    (_state(folder) / "settings.json").write_text("{oops")
    with Project.open(folder) as project:
        assert len(project.images()) == 3
        with pytest.raises(InputError, match="settings.json"):
            project.settings()


def test_lock_that_is_a_folder(folder: Path) -> None:
    lock = _state(folder) / "lock"
    lock.unlink(missing_ok=True)
    lock.mkdir()
    with pytest.raises(WorkbenchError, match="lock"):
        Project.open(folder)


@pytest.mark.parametrize("damage", ["truncated", "text", "wrong_size", "bad_values"])
def test_damaged_label_is_named_and_kept(folder: Path, damage: str) -> None:
    with Project.open(folder) as project:
        rec = project.find("im1.png")
        path = project.label_path(rec.id)
        good = path.read_bytes()
        data = {"truncated": good[: len(good) // 2], "text": b"label", "wrong_size": None,
                "bad_values": None}[damage]
        if damage == "wrong_size":
            from workbench.masks import encode_mask

            data = encode_mask(np.zeros((10, 10), np.uint8), SCHEMA)
        elif damage == "bad_values":
            from PIL import Image

            data = corpus.encoded(Image.fromarray(np.full(HW, 77, np.uint8)), "PNG")
        path.write_bytes(data)
        with pytest.raises(InputError, match="im1.png"):
            project.read_label(rec.id)
        # The other labels are fine, and the damaged file is left for the person to recover.
        assert project.read_label(project.find("im0.png").id) is not None
        assert path.read_bytes() == data


def test_damaged_label_in_the_app(folder: Path, qtbot) -> None:  # noqa: ANN001
    """The app says which label is damaged, does not open it blank, and never overwrites it."""
    from workbench.gui.main_window import MainWindow

    label = _state(folder) / "labels" / "im1.png"
    label.write_bytes(label.read_bytes()[:40])
    damaged = label.read_bytes()
    window = MainWindow(device="cpu")
    qtbot.addWidget(window)
    window.show()
    assert window.open_project(folder)
    try:
        project = window.project
        assert window.workspace.open_image(project.find("im0.png").id)
        assert window.workspace.open_image(project.find("im1.png").id) is False
        assert "im1.png" in window.notifier.last_error
        assert window.workspace.open_image(project.find("im2.png").id)
    finally:
        window.close_project(ask=False)
        window.close()
    assert label.read_bytes() == damaged


def test_read_only_image_folder_is_never_written(tmp_path: Path) -> None:
    """A folder whose permission bits deny writing: state goes elsewhere, the folder is untouched."""
    folder = tmp_path / "shared data"
    folder.mkdir()
    for i in range(2):
        (folder / f"im{i}.png").write_bytes(corpus.good_image_bytes(*HW, seed=i))
    before = corpus.tree_digest(folder)
    folder.chmod(0o555)
    try:
        with Project.open(folder, schema=SCHEMA) as project:
            assert folder.resolve() not in project.state_dir.parents
            rec = project.images()[0]
            project.save_label(rec.id, np.ones(HW, np.uint8))
            project.save_settings({"x": 1})
        assert sorted(p.name for p in folder.iterdir()) == ["im0.png", "im1.png"]
        assert corpus.tree_digest(folder) == before
    finally:
        folder.chmod(0o755)


def test_app_refuses_a_missing_folder_or_a_file(tmp_path: Path, qtbot) -> None:  # noqa: ANN001
    from workbench.gui.main_window import MainWindow

    window = MainWindow(device="cpu")
    qtbot.addWidget(window)
    window.show()
    try:
        assert window.open_project(tmp_path / "nowhere") is False
        assert "nowhere" in window.notifier.last_error and "no such folder" in window.notifier.last_error
        (tmp_path / "photo.png").write_bytes(corpus.good_image_bytes())
        assert window.open_project(tmp_path / "photo.png") is False
        assert "photo.png" in window.notifier.last_error and "not a folder" in window.notifier.last_error
        assert window.project is None
    finally:
        window.close()

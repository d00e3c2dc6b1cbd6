"""workbench.atomic: replace semantics, failures keep the old file, stale temps are cleaned."""

from __future__ import annotations

import os

import pytest

import workbench.atomic as atomic
from workbench.atomic import (TEMP_MARKER, atomic_open, atomic_write_bytes, atomic_write_text,
                              clean_stale_temps, is_temp_file)
from workbench.errors import WorkbenchError


def test_writes_new_file_and_creates_parent_folders(tmp_path):
    path = tmp_path / "a" / "b" / "f.bin"
    atomic_write_bytes(path, b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"
    assert os.listdir(path.parent) == ["f.bin"]


def test_replaces_existing_content(tmp_path):
    path = tmp_path / "f.txt"
    path.write_text("old and longer than the new text")
    atomic_write_text(path, "néw")
    assert path.read_text(encoding="utf-8") == "néw"
    assert os.listdir(tmp_path) == ["f.txt"]


def test_text_mode_defaults_to_utf8(tmp_path):
    with atomic_open(tmp_path / "t.txt", "w") as fh:
        fh.write("µm")
    assert (tmp_path / "t.txt").read_bytes() == "µm".encode("utf-8")


def test_exception_in_body_keeps_old_file_and_removes_temp(tmp_path):
    path = tmp_path / "f.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_open(path, "w") as fh:
            fh.write("half of the new")
            assert is_temp_file(fh.name) and os.path.dirname(fh.name) == str(tmp_path)
            raise RuntimeError("boom")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["f.txt"]


def test_failed_replace_is_a_workbench_error_and_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "f.txt"
    path.write_text("old")

    def failing_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "replace", failing_replace)
    with pytest.raises(WorkbenchError) as err:
        atomic_write_text(path, "new")
    assert str(err.value) == f"{path}: could not save: No space left on device"
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["f.txt"]


def test_unwritable_location_names_the_file(tmp_path):
    (tmp_path / "file").write_text("x")
    target = tmp_path / "file" / "sub" / "f.txt"  # parent is a file, not a folder
    with pytest.raises(WorkbenchError) as err:
        atomic_write_bytes(target, b"data")
    assert str(err.value).startswith(f"{target}: could not save")


def test_clean_stale_temps(tmp_path):
    (tmp_path / "sub").mkdir()
    keep = [tmp_path / "f.png", tmp_path / "sub" / "g.png", tmp_path / "wbtmp-lookalike.png"]
    stale = [tmp_path / f"{TEMP_MARKER}1a2b-f.png", tmp_path / "sub" / f"{TEMP_MARKER}3c4d-g.png"]
    for p in keep + stale:
        p.write_bytes(b"x")
    assert clean_stale_temps(tmp_path, recursive=False) == 1
    assert not stale[0].exists() and stale[1].exists()
    assert clean_stale_temps(tmp_path) == 1
    assert not stale[1].exists()
    assert all(p.exists() for p in keep)
    assert clean_stale_temps(tmp_path / "nowhere") == 0
    assert clean_stale_temps(keep[0]) == 0

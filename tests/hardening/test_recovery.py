"""Issue 8.3 / 8.8: a lost, damaged or replaced project.sqlite loses nothing the files hold.

Every case builds the same project (labels with statuses, a verified one, splits, ground
truth, a prediction, two model versions), damages the database, reopens, and checks that
what the files hold came back and that the person is told.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from safetensors.numpy import save_file

from workbench.errors import WorkbenchError
from workbench.project import Project, Split, Status
from workbench.project.recovery import read_checkpoint_header

HW = (12, 16)


def write_model(path: Path, parent: str | None = None, val: float = 0.5) -> None:
    """A small but complete workbench checkpoint, written without torch."""
    meta = {"arch": "unet", "encoder": "resnet18", "num_classes": 2,
            "schema": {"classes": []}, "metrics": {"val_miou": val}, "parent": parent,
            "created": "2026-01-02T03:04:05+00:00"}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"w": np.zeros((4, 3), np.float32)}, str(path), metadata={"workbench": json.dumps(meta)})


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(5):
        Image.fromarray(np.full((*HW, 3), 40 * i, np.uint8)).save(folder / f"im{i}.png")
    with Project.open(folder) as p:
        ids = {r.name: r.id for r in p.images()}
        p.save_label(ids["im0.png"], np.zeros(HW, np.uint8))
        p.save_label(ids["im1.png"], np.ones(HW, np.uint8))
        p.set_status(ids["im1.png"], Status.VERIFIED)
        p.save_label(ids["im2.png"], np.ones(HW, np.uint8), source="model:1")
        p.set_split([ids["im1.png"], ids["im3.png"]], Split.VAL)
        p.set_split(ids["im4.png"], Split.TEST)
        p.save_ground_truth(ids["im3.png"], np.ones(HW, np.uint8))
        for v in (1, 2):
            path = p.next_model_path()
            write_model(path, parent=None if v == 1 else "v0001.safetensors", val=0.4 + v / 10)
            p.register_model(path, parent=None if v == 1 else 1)
        p.save_prediction(ids["im4.png"], 2, np.zeros(HW, np.uint8))
    return folder


def state_of(folder: Path) -> dict:
    with Project.open(folder) as p:
        return {"images": {r.name: (r.status, r.split, r.source, r.has_label, r.has_ground_truth)
                           for r in p.images()},
                "models": [(m.version, m.parent, m.path.name) for m in p.models()],
                "pairs": [(a.name, b.name) for a, b in p.training_pairs("train")]}


def expected_state() -> dict:
    return {"images": {
        "im0.png": (Status.EDITED, Split.TRAIN, "person", True, False),
        "im1.png": (Status.VERIFIED, Split.VAL, "person", True, False),
        "im2.png": (Status.EDITED, Split.TRAIN, "model:1", True, False),
        "im3.png": (Status.UNLABELLED, Split.VAL, None, False, True),
        "im4.png": (Status.PREDICTED, Split.TEST, "model:2", False, False)},
        "models": [(1, None, "v0001.safetensors"), (2, 1, "v0002.safetensors")],
        "pairs": [("im0.png", "im0.png"), ("im2.png", "im2.png")]}


def db_files(folder: Path) -> list[Path]:
    db = folder / ".workbench" / "project.sqlite"
    return [db, Path(f"{db}-wal"), Path(f"{db}-shm")]


def test_fixture_state_is_what_the_cases_expect(project_dir: Path) -> None:
    assert state_of(project_dir) == expected_state()


@pytest.mark.parametrize("damage", ["truncated_empty", "truncated_half", "deleted_with_wal",
                                    "deleted_keeping_wal", "garbage"])
def test_lost_database_is_rebuilt_from_files(project_dir: Path, damage: str) -> None:
    db, wal, shm = db_files(project_dir)
    if damage == "truncated_half":  # a checkpointed file, cut in half: opens, then pages are missing
        with Project.open(project_dir) as p:
            p._store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        data = db.read_bytes()
        db.write_bytes(data[: len(data) // 2])
    elif damage == "truncated_empty":
        db.write_bytes(b"")
        wal.unlink(missing_ok=True)
        shm.unlink(missing_ok=True)
    elif damage == "deleted_with_wal":
        for f in (db, wal, shm):
            f.unlink(missing_ok=True)
    elif damage == "deleted_keeping_wal":
        # the -wal of a lost database must not be replayed into the new one
        with Project.open(project_dir) as p:
            conn = p._store.conn
            conn.execute("PRAGMA wal_autocheckpoint=0")
            p.set_split(p.find("im0").id, Split.TRAIN)  # leaves frames in the log
            shutil.copy(wal, project_dir / "wal.keep")
        db.unlink()
        shutil.copy(project_dir / "wal.keep", wal)
        (project_dir / "wal.keep").unlink()
    else:
        for f in (wal, shm):
            f.unlink(missing_ok=True)
        db.write_bytes(b"\x00garbage" * 500)
    with Project.open(project_dir) as p:
        message = p.problems[0]
        assert "rebuilt from the files" in message and "recovered 3 label(s)" in message, message
        assert "1 ground-truth mask(s), 2 model version(s)" in message
        assert p.recovered == [message]
    assert state_of(project_dir) == expected_state()
    if damage in ("truncated_half", "garbage"):  # the damaged file is kept for the person
        assert list(db.parent.glob("project.sqlite.damaged-*"))
    # the next open is an ordinary one: nothing more to recover
    with Project.open(project_dir) as p:
        assert p.recovered == []


def test_labels_saved_after_the_snapshot_keep_their_own_status(project_dir: Path) -> None:
    with Project.open(project_dir) as p:
        rec = p.find("im1")
        p.save_label(rec.id, np.zeros(HW, np.uint8), status=Status.EDITED)  # newer than images.json
    for f in db_files(project_dir):
        f.unlink(missing_ok=True)
    with Project.open(project_dir) as p:
        rec = p.find("im1")
        assert (rec.status, rec.split) == (Status.EDITED, Split.VAL)


def test_rebuild_without_a_snapshot_still_recovers_labels(project_dir: Path) -> None:
    (project_dir / ".workbench" / "images.json").unlink()
    for f in db_files(project_dir):
        f.unlink(missing_ok=True)
    with Project.open(project_dir) as p:
        assert "no images.json" in p.problems[0]
        got = {r.name: r.status for r in p.images() if r.has_label}
    # the PNGs carry edited / edited / edited (verified was only in the snapshot)
    assert got == {"im0.png": Status.EDITED, "im1.png": Status.EDITED, "im2.png": Status.EDITED}


def test_label_without_an_image_is_kept_and_named(project_dir: Path) -> None:
    (project_dir / "im0.png").unlink()
    for f in db_files(project_dir):
        f.unlink(missing_ok=True)
    with Project.open(project_dir) as p:
        assert "1 label file(s) match no image and are kept: im0" in p.problems[0]
    assert (project_dir / ".workbench" / "labels" / "im0.png").is_file()


def test_database_deleted_while_open_then_a_save(project_dir: Path) -> None:
    with Project.open(project_dir) as p:
        p.record_metrics(2, "val", {"miou": 0.61})
        for f in db_files(project_dir):
            f.unlink(missing_ok=True)
        rec = p.find("im3")
        p.save_label(rec.id, np.ones(HW, np.uint8))  # the next write notices and restores
        assert any("deleted while the project was open" in m and "written back" in m
                   for m in p.recovered)
        assert db_files(project_dir)[0].is_file()
        p.set_split(rec.id, Split.TRAIN)
        assert p.metrics_history()[0]["miou"] == 0.61
    with Project.open(project_dir) as p:
        assert p.recovered == []
        assert p.find("im3").status == Status.EDITED and p.find("im3").split == Split.TRAIN
        assert p.find("im1").status == Status.VERIFIED
        assert p.metrics_history()[0]["miou"] == 0.61  # everything, not just what files hold


def test_database_replaced_while_open(project_dir: Path) -> None:
    db = db_files(project_dir)[0]
    stale = project_dir.parent / "old.sqlite"
    with Project.open(project_dir) as p:
        p._store.copy_live_to(stale)             # a backup of now ...
        p.set_split(p.find("im0").id, Split.TEST)  # ... then more work
        for f in db_files(project_dir):
            f.unlink(missing_ok=True)
        shutil.copy(stale, db)                   # someone restores the old backup over it
        p.set_status(p.find("im2").id, Status.VERIFIED)
        assert any("replaced by another file" in m and "moved to" in m for m in p.recovered)
    with Project.open(project_dir) as p:
        assert p.find("im0").split == Split.TEST and p.find("im2").status == Status.VERIFIED
    aside = list(db.parent.glob("project.sqlite.replaced-*"))
    assert len([a for a in aside if a.name.count("-") == 2]) == 1  # the replacement, kept


def test_lost_database_that_cannot_be_restored_fails_loudly(project_dir: Path, monkeypatch) -> None:
    with Project.open(project_dir) as p:
        for f in db_files(project_dir):
            f.unlink(missing_ok=True)

        def refuse(dest: Path) -> None:
            raise WorkbenchError("no live copy")

        monkeypatch.setattr(p._store, "copy_live_to", refuse)
        rec = p.find("im3")
        p.save_label(rec.id, np.ones(HW, np.uint8))  # rebuilt from the files instead
        assert any("rebuilt from the files" in m for m in p.recovered)
        assert p.find("im3").status == Status.EDITED and p.find("im1").split == Split.VAL
        for f in db_files(project_dir):
            f.unlink(missing_ok=True)

        def cannot_open() -> None:  # nowhere to rebuild either: the write must say so
            raise WorkbenchError("cannot open the project database: unable to open database file")

        monkeypatch.setattr(p._store, "reconnect", cannot_open)
        with pytest.raises(WorkbenchError, match="deleted while the project was open.*not saved"):
            p.set_split(rec.id, Split.TEST)


# ----- model files a stopped run left behind (issue 8.8) ---------------------------------
def test_unregistered_model_file_is_registered_as_recovered_not_current(project_dir: Path) -> None:
    models = project_dir / ".workbench" / "models"
    write_model(models / "v0003.safetensors", parent="v0002.safetensors", val=0.2)
    (models / "v0004.safetensors").write_bytes((models / "v0001.safetensors").read_bytes()[:-10])
    with Project.open(project_dir) as p:
        assert [m.version for m in p.models()] == [1, 2, 3]
        v3 = p.models()[-1]
        assert v3.parent == 2 and v3.metrics["recovered"].startswith("from a run that ended")
        assert p.current_model().version == 2          # a half-trained run never takes over
        notes = " | ".join(p.problems)
        assert "registered 1 model file(s)" in notes and "v2 stays current" in notes
        assert "v0004.safetensors: not a complete model file" in notes
        assert p.next_model_path().name == "v0005.safetensors"
    with Project.open(project_dir) as p:  # registered once; the damaged file is named until removed
        notes = " | ".join(p.problems)
        assert "registered 1 model" not in notes and "v0004.safetensors" in notes
        assert [m.version for m in p.models()] == [1, 2, 3]


def test_checkpoint_header_is_read_without_torch(project_dir: Path) -> None:
    for f in db_files(project_dir):
        f.unlink(missing_ok=True)
    code = ("import sys; from workbench.project import Project; "
            f"p = Project.open({str(project_dir)!r}); assert len(p.models()) == 2, p.models(); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "False"


def test_header_reader_refuses_what_is_not_a_complete_checkpoint(tmp_path: Path) -> None:
    from workbench.errors import InputError

    good = tmp_path / "v0001.safetensors"
    write_model(good, parent="v0009.safetensors")
    assert read_checkpoint_header(good)["parent"] == "v0009.safetensors"
    cases = {"pickle": b"PK\x03\x04" + b"\0" * 64, "empty": b"", "huge_header": (2**40).to_bytes(8, "little"),
             "longer": good.read_bytes() + b"\0", "shorter": good.read_bytes()[:-1]}
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": np.zeros(2, np.float32)}, str(foreign))
    cases["no_metadata"] = foreign.read_bytes()
    for name, data in cases.items():
        path = tmp_path / f"{name}.safetensors"
        path.write_bytes(data)
        with pytest.raises(InputError) as err:
            read_checkpoint_header(path)
        assert path.name in str(err.value), name


def test_snapshot_cost_for_10000_images(tmp_path: Path) -> None:
    """images.json for 10,000 labelled images stays small (measured in docs/reliability.md)."""
    from workbench.project.recovery import read_snapshot, write_snapshot

    rows = [(f"frame_{i:05d}.png", "val" if i % 5 == 0 else "train", "edited", "person", 1.7e9 + i)
            for i in range(10_000)]
    write_snapshot(tmp_path, rows)
    size = os.path.getsize(tmp_path / "images.json")
    snap, problem = read_snapshot(tmp_path)
    assert problem is None and len(snap.images) == 10_000
    assert size < 1_000_000


def test_cli_says_what_was_recovered(project_dir: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    from workbench.cli import main

    for f in db_files(project_dir):
        f.unlink(missing_ok=True)
    gt = tmp_path / "gt"
    gt.mkdir()
    Image.fromarray(np.zeros(HW, np.uint8)).save(gt / "im0.png")
    assert main(["import", str(project_dir), "--masks", str(gt), "--as", "ground-truth"]) == 0
    err = capsys.readouterr().err
    assert "note: project.sqlite was missing: the project database was rebuilt from the files: " \
           "recovered 3 label(s)" in err


def test_database_deleted_while_open_then_close(project_dir: Path) -> None:
    """No write after the deletion: closing writes the database back (history included)."""
    with Project.open(project_dir) as p:
        p.record_metrics(2, "val", {"miou": 0.61})
        for f in db_files(project_dir):
            f.unlink(missing_ok=True)
    with Project.open(project_dir) as p:
        assert p.recovered == [] and p.metrics_history()[0]["miou"] == 0.61
        assert p.find("im1").status == Status.VERIFIED


def test_lost_classes_json_comes_back_from_the_newest_model(project_dir: Path) -> None:
    from workbench.classes import ClassSchema

    schema = ClassSchema.from_dict({"name": "cells", "ignore_index": 255, "classes": [
        {"index": 0, "name": "background", "color": [0, 0, 0]},
        {"index": 1, "name": "nucleus", "color": [200, 30, 30]}]})
    models = project_dir / ".workbench" / "models"
    meta = {"arch": "unet", "encoder": "resnet18", "num_classes": 2, "schema": schema.to_dict()}
    save_file({"w": np.zeros(3, np.float32)}, str(models / "v0002.safetensors"),
              metadata={"workbench": json.dumps(meta)})
    (project_dir / ".workbench" / "classes.json").unlink()
    for f in db_files(project_dir):
        f.unlink(missing_ok=True)
    with Project.open(project_dir) as p:
        assert p.schema.names == ["background", "nucleus"]
        assert any("classes were taken from model v2" in m for m in p.recovered)
        assert p.read_label(p.find("im1").id) is not None


def test_app_banner_says_what_was_recovered(project_dir: Path, qtbot, monkeypatch) -> None:  # noqa: ANN001
    from workbench.gui.main_window import MainWindow

    monkeypatch.setenv("WORKBENCH_STATE_HOME", str(project_dir.parent / "home"))
    for f in db_files(project_dir):
        f.unlink(missing_ok=True)
    window = MainWindow(device="cpu")
    qtbot.addWidget(window, before_close_func=lambda w: w.close_project(ask=False))
    window.show()
    assert window.open_project(project_dir)
    assert "the project database was rebuilt from the files: recovered 3 label(s)" in \
        window.notifier.last_error
    assert window.project.find("im1").status == Status.VERIFIED
    window.close_project(ask=False)


def test_database_emptied_in_place_while_open(project_dir: Path) -> None:
    """Truncated to 0 bytes (same inode): its pages are gone, so it is rebuilt from the files."""
    with Project.open(project_dir) as p:
        p._store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        os.truncate(db_files(project_dir)[0], 0)
        rec = p.find("im3")
        p.save_label(rec.id, np.ones(HW, np.uint8))
        assert any(m.startswith("the project database was emptied while the project was open: the "
                                "project database was rebuilt from the files") for m in p.recovered)
    with Project.open(project_dir) as p:
        assert p.recovered == []
        assert p.find("im3").status == Status.EDITED and p.find("im1").status == Status.VERIFIED
        assert [m.version for m in p.models()] == [1, 2]


def test_old_database_put_back_takes_in_what_the_files_say(project_dir: Path, tmp_path: Path) -> None:
    """A backup of project.sqlite restored over a newer project: labels, ground truth,
    splits and statuses made since the backup come back from the files."""
    backup = tmp_path / "backup.sqlite"
    with Project.open(project_dir) as p:
        p._store.copy_live_to(backup)
        p.save_label(p.find("im3").id, np.ones(HW, np.uint8))
        p.set_status(p.find("im0").id, Status.VERIFIED)
        p.set_split(p.find("im2").id, Split.TEST)
        p.save_ground_truth(p.find("im0").id, np.zeros(HW, np.uint8))
    for f in db_files(project_dir):
        f.unlink(missing_ok=True)
    shutil.copy(backup, db_files(project_dir)[0])
    with Project.open(project_dir) as p:
        assert p.recovered == ["project.sqlite was older than the files (a backup put back?): took in "
                               "1 label(s), 1 ground-truth mask(s) and 2 split/status change(s) from them"]
        assert p.find("im3").has_label and p.find("im3").status == Status.EDITED
        assert p.find("im0").status == Status.VERIFIED and p.find("im0").has_ground_truth
        assert p.find("im2").split == Split.TEST
    with Project.open(project_dir) as p:
        assert p.recovered == []


def test_snapshot_that_cannot_be_written_does_not_keep_the_project_shut(project_dir: Path) -> None:
    snap = project_dir / ".workbench" / "images.json"
    snap.unlink()
    snap.mkdir()
    with Project.open(project_dir) as p:
        assert any("images.json" in m and "kept only in the database" in m for m in p.problems)
        assert p.find("im1").status == Status.VERIFIED
        with pytest.raises(WorkbenchError, match="images.json"):  # a change says it, loudly
            p.set_split(p.find("im0").id, Split.VAL)
    snap.rmdir()
    (snap.parent / "images.json").write_text("{garbage")
    for f in db_files(project_dir):
        f.unlink(missing_ok=True)
    with Project.open(project_dir) as p:  # a damaged snapshot is named, the labels still come back
        assert any("images.json: the split/status snapshot is damaged" in m for m in p.problems)
        assert sum(r.has_label for r in p.images()) == 3

"""workbench.project: opening, syncing, labels, schema, models, predictions, lock, fallback."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workbench import atomic
from workbench.classes import ClassSchema
from workbench.errors import InputError, WorkbenchError
from workbench.project import ImageRecord, Project, Split, Status
from workbench.project.location import STATE_HOME_ENV, fallback_state_dir

H, W = 24, 32


@pytest.fixture(autouse=True)
def state_home(tmp_path, monkeypatch) -> Path:
    """Per-user state goes to a tmp folder, never to the real home."""
    home = tmp_path / "state-home"
    monkeypatch.setenv(STATE_HOME_ENV, str(home))
    return home


def make_images(folder: Path, names, hw=(H, W)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in names:
        Image.fromarray(rng.integers(0, 256, (*hw, 3), dtype=np.uint8)).save(folder / name)
    return folder


@pytest.fixture
def folder(tmp_path) -> Path:
    return make_images(tmp_path / "imgs", ["a.png", "b.jpg", "c.bmp", "d.tif", "e.webp"])


def some_mask(value: int = 1) -> np.ndarray:
    m = np.zeros((H, W), np.uint8)
    m[:8] = value
    m[-3:, -3:] = 255
    return m


def test_create_and_reopen_persists(folder):
    with Project.open(folder) as p:
        assert p.state_dir == folder.resolve() / ".workbench"
        assert not p.read_only and p.problems == []
        assert [r.name for r in p.images()] == ["a.png", "b.jpg", "c.bmp", "d.tif", "e.webp"]
        assert p.schema.names == ["background", "foreground"]
        assert all(r.status == Status.UNLABELLED and r.split == Split.TRAIN for r in p.images())
        b = p.find("b")
        p.save_label(b.id, some_mask())
        p.set_split(b.id, "val")
        p.set_status([p.find("c.bmp").id], Status.VERIFIED)
        p.save_settings({"lr": 0.001, "ui": {"opacity": 0.5}})
        p.record_metrics(1, "val", {"miou": np.float32(0.5), "per_class_iou": np.array([0.25, 0.75])})
    with Project.open(folder, create=False) as p:
        b = p.find("b.jpg")
        assert isinstance(b, ImageRecord)
        assert (b.status, b.split, b.source, b.has_label) == (Status.EDITED, Split.VAL, "person", True)
        assert b.updated is not None
        np.testing.assert_array_equal(p.read_label(b.id), some_mask())
        assert p.find("c").status == Status.VERIFIED
        assert [r.name for r in p.images(split="val")] == ["b.jpg"]
        assert {r.name for r in p.images(status=[Status.EDITED, "verified"])} == {"b.jpg", "c.bmp"}
        assert p.settings() == {"lr": 0.001, "ui": {"opacity": 0.5}}
        (entry,) = p.metrics_history()
        assert entry["version"] == 1 and entry["split"] == "val" and entry["miou"] == 0.5
        assert entry["per_class_iou"] == [0.25, 0.75] and entry["time"] > 0
    # opening the state folder itself opens the same project
    with Project.open(folder / ".workbench") as p:
        assert p.folder == folder.resolve() and p.find("b").has_label


def test_create_false_and_bad_folders(tmp_path):
    empty = make_images(tmp_path / "x", [])
    with pytest.raises(WorkbenchError, match="no project here"):
        Project.open(empty, create=False)
    assert not (empty / ".workbench").exists()
    with pytest.raises(InputError, match="no such folder"):
        Project.open(tmp_path / "missing")


def test_open_decodes_nothing(tmp_path, monkeypatch):
    folder = make_images(tmp_path / "many", [f"img{i:03d}.png" for i in range(60)], hw=(4, 4))

    def boom(*a, **k):
        raise AssertionError("an image was decoded while opening")

    import PIL.Image

    import workbench.imageio

    monkeypatch.setattr(workbench.imageio, "read_image", boom)
    monkeypatch.setattr(workbench.imageio, "image_size", boom)
    monkeypatch.setattr(PIL.Image, "open", boom)
    with Project.open(folder) as p:
        assert len(p.images()) == 60
    with Project.open(folder) as p:  # re-open (sync against an existing database)
        assert len(p.images()) == 60 and p.find("img059").name == "img059.png"


def test_sync_new_and_removed_files(folder):
    with Project.open(folder) as p:
        a = p.find("a")
        p.save_label(a.id, some_mask())
    (folder / "a.png").rename(folder.parent / "a.png")
    make_images(folder, ["f.png"])
    with Project.open(folder) as p:
        assert [r.name for r in p.images()] == ["b.jpg", "c.bmp", "d.tif", "e.webp", "f.png"]
        assert any("a.png" in s and "missing" in s for s in p.problems)
        assert p.find("f").status == Status.UNLABELLED
        assert (p.state_dir / "labels" / "a.png").is_file()  # label kept on disk
        assert p.get(a.id).has_label  # the hidden record is still reachable by id
    (folder.parent / "a.png").rename(folder / "a.png")
    with Project.open(folder) as p:
        back = p.find("a.png")
        assert back.id == a.id and back.status == Status.EDITED and p.problems == []
        np.testing.assert_array_equal(p.read_label(back.id), some_mask())


def test_duplicate_stems(tmp_path):
    folder = make_images(tmp_path / "dup", ["a.png", "a.jpg", "b.png"])
    with Project.open(folder) as p:
        assert [r.name for r in p.images()] == ["a.jpg", "b.png"]  # the first by name is used
        assert len(p.problems) == 1 and "a.png" in p.problems[0] and "a.jpg" in p.problems[0]
    # files that are not images, hidden files and sub-folders are ignored
    (folder / "notes.txt").write_text("x")
    (folder / ".hidden.png").write_bytes(b"")
    (folder / "sub.png").mkdir()
    with Project.open(folder) as p:
        assert [r.name for r in p.images()] == ["a.jpg", "b.png"]


def test_label_round_trip_and_clear(folder):
    with Project.open(folder) as p:
        rec = p.find("d.tif")
        assert p.read_label(rec.id) is None
        mask = some_mask()
        p.save_label(rec.id, mask.astype(np.int64), status="verified", source="import")
        got = p.read_label(rec.id)
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, mask)
        assert Image.open(p.label_path(rec.id)).mode == "P"  # palette PNG, viewable in colour
        r = p.get(rec.id)
        assert (r.status, r.source, r.has_label) == (Status.VERIFIED, "import", True)
        assert p.reference_mask(rec.id) is not None
        p.clear_label(rec.id)
        r = p.get(rec.id)
        assert (r.status, r.has_label) == (Status.UNLABELLED, False)
        assert p.read_label(rec.id) is None and p.reference_mask(rec.id) is None


@pytest.mark.parametrize("bad, match", [
    (np.zeros((H + 1, W), np.uint8), "pixels but its image"),
    (np.full((H, W), 7, np.uint8), "outside the class schema"),
    (np.zeros((H, W, 3), np.uint8), "2-D"),
    (np.full((H, W), -1, np.int16), "class indices"),
])
def test_save_label_rejects_bad_masks_and_leaves_state(folder, bad, match):
    with Project.open(folder) as p:
        rec = p.find("a")
        p.save_label(rec.id, some_mask(), status=Status.VERIFIED)
        before = p.get(rec.id)
        with pytest.raises(InputError, match=match):
            p.save_label(rec.id, bad)
        assert p.get(rec.id) == before
        np.testing.assert_array_equal(p.read_label(rec.id), some_mask())
        assert not list((p.state_dir / "labels").glob(f"{atomic.TEMP_MARKER}*"))


def test_corrupt_label_names_the_file(folder):
    with Project.open(folder) as p:
        rec = p.find("a")
        p.save_label(rec.id, some_mask())
        p.label_path(rec.id).write_bytes(b"not a png")
        with pytest.raises(InputError) as err:
            p.read_label(rec.id)
        assert "a.png" in str(err.value)


def test_schema_given_for_new_project_and_saved(folder, tmp_path):
    schema = ClassSchema.default(["bg", "cell", "edge"])
    with Project.open(folder, schema=schema) as p:
        assert p.schema.names == ["bg", "cell", "edge"]
        assert json.loads((p.state_dir / "classes.json").read_text())["classes"][2]["name"] == "edge"
        p.save_schema(ClassSchema.default(["bg", "cell", "edge", "debris"]))
    with Project.open(folder, schema=ClassSchema.default(["ignored"])) as p:  # existing: kept
        assert p.schema.names == ["bg", "cell", "edge", "debris"]


def test_read_only_folder_falls_back_to_user_state(folder, state_home):
    os.chmod(folder, 0o555)
    try:
        with Project.open(folder) as p:
            assert p.state_dir == fallback_state_dir(folder)
            assert state_home in p.state_dir.parents
            assert p.state_dir.name.startswith("imgs-")
            assert not p.read_only
            p.save_label(p.find("a").id, some_mask())
        assert not (folder / ".workbench").exists()
        with Project.open(folder) as p:  # the same fallback folder again
            assert p.find("a").has_label
        with Project.open(fallback_state_dir(folder)) as p:  # opening the state folder itself
            assert p.folder == folder.resolve() and p.find("a").has_label
        with Project.open(folder, state_dir=folder.parent / "explicit") as p:  # explicit wins
            assert p.state_dir == (folder.parent / "explicit").resolve()
            assert not p.find("a").has_label
    finally:
        os.chmod(folder, 0o755)


HOLD_LOCK = """
import sys
from workbench.project import Project
p = Project.open(sys.argv[1])
print("read_only" if p.read_only else "locked", flush=True)
sys.stdin.readline()
p.close()
"""


def test_second_process_opens_read_only(folder):
    Project.open(folder).close()
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(folder)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with Project.open(folder) as p:
            assert p.read_only
            assert len(p.images()) == 5  # reading works
            with pytest.raises(WorkbenchError, match="opened read-only"):
                p.save_label(p.find("a").id, some_mask())
            for write in (lambda: p.set_status(1, "verified"), lambda: p.save_settings({}),
                          lambda: p.register_model(folder / "a.png"), lambda: p.import_masks(folder)):
                with pytest.raises(WorkbenchError, match="read-only"):
                    write()
    finally:
        holder.communicate("\n", timeout=60)
    assert holder.returncode == 0
    with Project.open(folder) as p:  # the lock went away with the other process
        assert not p.read_only


def test_close_releases_lock_and_blocks_use(folder):
    p = Project.open(folder)
    p.close()
    p.close()  # idempotent
    with pytest.raises(WorkbenchError, match="closed"):
        p.images()
    with Project.open(folder) as q:
        assert not q.read_only


def test_stale_temp_files_removed_on_open(folder):
    Project.open(folder).close()
    stale = folder / ".workbench" / "labels" / f"{atomic.TEMP_MARKER}dead-a.png"
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_bytes(b"half")
    Project.open(folder).close()
    assert not stale.exists()


def test_models_registration_and_current(folder, tmp_path):
    with Project.open(folder) as p:
        assert p.models() == [] and p.current_model() is None
        ckpt = tmp_path / "trained.safetensors"
        ckpt.write_bytes(b"weights-1")
        m1 = p.register_model(ckpt, metrics={"miou": 0.4})
        assert m1.version == 1 and m1.path == p.state_dir / "models" / "v0001.safetensors"
        assert m1.path.read_bytes() == b"weights-1" and ckpt.exists()
        target = p.next_model_path()
        assert target.name == "v0002.safetensors"
        target.write_bytes(b"weights-2")
        m2 = p.register_model(target, parent=1, metrics={"miou": 0.6})
        assert (m2.version, m2.parent, m2.path) == (2, 1, target)
        assert p.current_model().version == 2
        p.set_current_model(1)
        assert p.current_model().version == 1
        with pytest.raises(WorkbenchError, match="no model version 9"):
            p.set_current_model(9)
        with pytest.raises(InputError, match="not found"):
            p.register_model(tmp_path / "missing.safetensors")
    with Project.open(folder) as p:
        assert [(m.version, m.parent, m.metrics) for m in p.models()] == \
            [(1, None, {"miou": 0.4}), (2, 1, {"miou": 0.6})]
        assert p.current_model().version == 1
        ckpt.write_bytes(b"weights-3")
        assert p.register_model(ckpt).version == 3 and p.current_model().version == 3


def test_predictions_cache_never_overrides_a_label(folder):
    with Project.open(folder) as p:
        a, b = p.find("a"), p.find("b")
        p.save_label(b.id, some_mask(), status=Status.VERIFIED)
        pred = some_mask(value=0)
        pred[:, :4] = 1
        conf = np.linspace(0, 1, H * W, dtype=np.float32).reshape(H, W)
        p.save_prediction(a.id, 1, pred, conf)
        p.save_prediction(b.id, 1, pred)
        assert (p.get(a.id).status, p.get(a.id).source) == (Status.PREDICTED, "model:1")
        assert (p.get(b.id).status, p.get(b.id).source) == (Status.VERIFIED, "person")
        np.testing.assert_array_equal(p.read_label(b.id), some_mask())
        mask, c = p.read_prediction(a.id, 1)
        np.testing.assert_array_equal(mask, pred)
        assert c.dtype == np.float32 and np.abs(c - conf).max() <= 0.5 / 255 + 1e-6
        assert (p.state_dir / "predictions" / "v0001" / "a.conf.png").is_file()
        assert p.read_prediction(b.id, 1)[1] is None
        assert p.read_prediction(a.id, 2) is None
        with pytest.raises(WorkbenchError, match="no model yet"):
            p.set_image_scores(a.id, miou=0.25)
        weights = p.next_model_path()
        weights.write_bytes(b"weights")
        p.register_model(weights)
        p.set_image_scores(a.id, miou=0.25, uncertainty=0.1)
        p.set_image_scores(a.id, miou=0.5)
        assert (p.get(a.id).miou, p.get(a.id).uncertainty) == (0.5, 0.1)
        assert p.image_scores(1) == {a.id: (0.5, 0.1)}
        with pytest.raises(InputError):
            p.save_prediction(a.id, 1, pred, conf[:-1])


def test_training_pairs_and_reference_mask(folder):
    with Project.open(folder) as p:
        a, b, c = p.find("a"), p.find("b"), p.find("c")
        p.save_label(a.id, some_mask(), status=Status.VERIFIED)
        p.save_label(b.id, some_mask(), status=Status.EDITED)
        p.save_label(c.id, some_mask(), status=Status.VERIFIED)
        p.set_split(c.id, Split.VAL)
        p.save_prediction(p.find("d").id, 1, some_mask())
        assert p.training_pairs() == [(folder.resolve() / "a.png", p.label_path(a.id)),
                                      (folder.resolve() / "b.jpg", p.label_path(b.id))]
        assert [x.name for x, _ in p.training_pairs("val")] == ["c.bmp"]
        assert [x.name for x, _ in p.training_pairs(statuses=[Status.VERIFIED])] == ["a.png"]
        assert p.reference_mask(b.id) is None  # edited, not verified
        gt = some_mask(value=0)
        p.save_ground_truth(b.id, gt)
        np.testing.assert_array_equal(p.reference_mask(b.id), gt)
        assert p.get(b.id).status == Status.EDITED


def test_worker_thread_can_read_while_owner_writes(folder):
    with Project.open(folder) as p:
        errors, counts = [], []

        def reader():
            try:
                for _ in range(200):
                    counts.append(len(p.images()))
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

        t = threading.Thread(target=reader)
        t.start()
        for i in range(40):
            p.set_status(p.find("a").id, "verified" if i % 2 else "edited")
        t.join(timeout=60)
        assert not errors and set(counts) == {5}


def test_corrupt_settings_named(folder):
    with Project.open(folder) as p:
        p.settings_path.write_text("{oops")
        with pytest.raises(InputError, match="settings.json"):
            p.settings()


def test_read_only_permission_bits_detected_even_for_root(tmp_path):
    from workbench.project.location import folder_is_writable

    d = tmp_path / "ro"
    d.mkdir()
    assert folder_is_writable(d)
    d.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP)
    try:
        assert not folder_is_writable(d)
    finally:
        d.chmod(0o755)


def test_dropped_project_frees_its_lock(folder):
    import gc

    p = Project.open(folder)
    assert not p.read_only
    del p
    gc.collect()
    with Project.open(folder) as q:
        assert not q.read_only


def test_corrupt_database_is_moved_aside_and_rebuilt(folder):
    with Project.open(folder) as project:
        project.set_split(project.find("a").id, "test")
    db = folder / ".workbench" / "project.sqlite"
    for extra in ("-wal", "-shm"):
        Path(f"{db}{extra}").unlink(missing_ok=True)
    db.write_bytes(b"this is not a database" * 100)
    with Project.open(folder) as project:
        assert project.find("a").split == Split.TEST
        assert "project.sqlite was damaged" in project.problems[0]
    aside = list(db.parent.glob("project.sqlite.damaged-*"))
    assert [p.read_bytes() for p in aside] == [b"this is not a database" * 100]


def test_second_open_in_the_same_process_is_read_only(folder):
    with Project.open(folder) as first, Project.open(folder) as second:
        assert not first.read_only and second.read_only
        first.set_split(first.find("a").id, "test")
        assert second.find("a").split == Split.TEST  # both read the same database


def test_adding_a_class_renumbers_a_moved_void_class_in_stored_masks(folder):
    schema = ClassSchema.from_dict({"ignore_index": 2, "classes": [
        {"index": 0, "name": "bg", "color": [0, 0, 0]}, {"index": 1, "name": "fg", "color": [9, 9, 9]},
        {"index": 2, "name": "void", "color": [1, 1, 1], "void": True}]})
    with Project.open(folder, schema=schema) as p:
        mask = np.zeros((H, W), np.uint8)
        mask[:5] = 1
        mask[-5:] = 2   # void pixels
        mask[0, 0] = 255
        a = p.find("a")
        p.save_label(a.id, mask, status=Status.VERIFIED)
        p.save_ground_truth(a.id, mask)
        info = p.add_class("new")
        assert info.index == 2 and p.schema.by_index(3).name == "void" and p.schema.ignore_index == 3
        expected = np.where(mask == 2, 3, mask).astype(np.uint8)
        np.testing.assert_array_equal(p.read_label(a.id), expected)
        np.testing.assert_array_equal(p.read_ground_truth(a.id), expected)
        p.save_schema(p.schema.copy())  # nothing moved: masks untouched
        np.testing.assert_array_equal(p.read_label(a.id), expected)
    with Project.open(folder) as p:
        assert p.schema.names == ["bg", "fg", "new"]

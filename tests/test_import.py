"""Importing masks (labels / ground truth), the seed manifest and `workbench import`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workbench import cli
from workbench.classes import ClassSchema
from workbench.errors import InputError
from workbench.progress import CancelToken
from workbench.project import Project, Status
from workbench.project.location import STATE_HOME_ENV

NAMES = ["0001TP_006690.png", "0001TP_006720.png", "0001TP_006750.png"]


@pytest.fixture(autouse=True)
def state_home(tmp_path, monkeypatch):
    monkeypatch.setenv(STATE_HOME_ENV, str(tmp_path / "state-home"))


@pytest.fixture
def cam(tmp_path, camvid) -> tuple[Path, Path, ClassSchema]:
    """3 CamVid images and their index masks copied into tmp (the schema beside them)."""
    images, masks_dir = tmp_path / "train", tmp_path / "trainannot"
    images.mkdir()
    masks_dir.mkdir()
    for n in NAMES:
        shutil.copy(camvid / "train" / n, images / n)
        shutil.copy(camvid / "trainannot" / n, masks_dir / n)
    shutil.copy(camvid / "classes.json", tmp_path / "classes.json")
    return images, masks_dir, ClassSchema.load(camvid / "classes.json")


def source(masks_dir: Path, name: str) -> np.ndarray:
    return np.array(Image.open(masks_dir / name))


def test_import_labels_reads_back_identically(cam):
    images, masks_dir, schema = cam
    seen = []
    with Project.open(images, schema=schema) as p:
        rep = p.import_masks(masks_dir, on_progress=seen.append)
        assert (rep.imported, rep.total, rep.problems, rep.unmatched, rep.cancelled) == (3, 3, [], [], False)
        assert [s.done for s in seen] == [0, 1, 2, 3] and seen[-1].total == 3
        for rec in p.images():
            assert (rec.status, rec.source, rec.has_label, rec.has_ground_truth) == \
                (Status.VERIFIED, "import", True, False)
            np.testing.assert_array_equal(p.read_label(rec.id), source(masks_dir, rec.name))
        assert len(p.training_pairs()) == 3


def test_import_ground_truth_keeps_labels_apart(cam):
    images, masks_dir, schema = cam
    with Project.open(images, schema=schema) as p:
        rep = p.import_masks(masks_dir, as_="ground-truth")
        assert rep.imported == 3 and rep.kind == "ground-truth"
        for rec in p.images():
            assert (rec.status, rec.has_label, rec.has_ground_truth) == (Status.UNLABELLED, False, True)
            assert p.read_label(rec.id) is None
            np.testing.assert_array_equal(p.reference_mask(rec.id), source(masks_dir, rec.name))
        assert p.training_pairs() == []


def test_import_rgb_colour_masks(cam, tmp_path):
    images, masks_dir, schema = cam
    colour_dir = tmp_path / "colour"
    colour_dir.mkdir()
    lut = np.zeros((256, 3), np.uint8)
    for c in schema.classes:
        lut[c.index] = c.color
    for n in NAMES:
        Image.fromarray(lut[source(masks_dir, n)]).save(colour_dir / n)
    with Project.open(images, schema=schema) as p:
        rep = p.import_masks(colour_dir)
        assert rep.imported == 3 and not rep.problems
        for rec in p.images():
            np.testing.assert_array_equal(p.read_label(rec.id), source(masks_dir, rec.name))


def test_bad_masks_reported_and_the_rest_go_on(cam, tmp_path):
    images, masks_dir, schema = cam
    bad = tmp_path / "bad"
    bad.mkdir()
    shutil.copy(masks_dir / NAMES[0], bad / NAMES[0])
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(bad / NAMES[1])            # wrong size
    Image.fromarray(np.full((360, 480), 40, np.uint8)).save(bad / NAMES[2])       # not a class
    (bad / "orphan.png").write_bytes(b"")                                          # no image
    with Project.open(images, schema=schema) as p:
        p.save_label(p.find(NAMES[1]).id, source(masks_dir, NAMES[1]), status=Status.EDITED)
        rep = p.import_masks(bad, overwrite=True)   # a person's label: only replaced with overwrite
        assert rep.imported == 1 and rep.unmatched == ["orphan.png"]
        problems = dict((Path(f).name, msg) for f, msg in rep.problems)
        assert set(problems) == {NAMES[1], NAMES[2]}
        assert "10x10" in problems[NAMES[1]] and "outside the class schema" in problems[NAMES[2]]
        # the failed mask left the existing label and its status alone
        assert p.find(NAMES[1]).status == Status.EDITED
        np.testing.assert_array_equal(p.read_label(p.find(NAMES[1]).id), source(masks_dir, NAMES[1]))
        assert p.find(NAMES[2]).status == Status.UNLABELLED
        (bad / NAMES[2]).write_bytes(b"garbage")
        rep = p.import_masks(bad)
        assert "not a readable mask" in dict((Path(f).name, m) for f, m in rep.problems)[NAMES[2]]
        with pytest.raises(InputError, match="not found"):
            p.import_masks(tmp_path / "nowhere")


def test_cancel_keeps_what_was_imported(cam):
    images, masks_dir, schema = cam
    token = CancelToken()

    def on_progress(prog):
        if prog.done == 1:
            token.cancel()

    with Project.open(images, schema=schema) as p:
        rep = p.import_masks(masks_dir, on_progress=on_progress, cancel=token)
        assert rep.cancelled and rep.imported == 1
    with Project.open(images) as p:
        assert [r.has_label for r in p.images()] == [True, False, False]


def write_manifest(folder: Path, data: dict) -> None:
    (folder / "workbench.json").write_text(json.dumps(data))


def test_seed_manifest(cam):
    images, masks_dir, schema = cam
    shutil.copy(images.parent / "classes.json", images / "classes.json")
    (images / "gt").mkdir()
    (images / "labels").mkdir()
    for n in NAMES:
        shutil.copy(masks_dir / n, images / "gt" / n)
    shutil.copy(masks_dir / NAMES[0], images / "labels" / NAMES[0])
    shutil.copy(masks_dir / NAMES[1], images / "labels" / NAMES[1])
    write_manifest(images, {"classes": "classes.json", "ground_truth": "gt", "labels": "labels",
                            "seed": 7,
                            "images": {NAMES[0]: {"split": "val", "status": "edited"},
                                       NAMES[2]: {"split": "test", "status": "unlabelled"},
                                       "ghost.png": {"split": "val"}}})
    with Project.open(images) as p:
        assert p.schema.num_classes == 11
        a, b, c = (p.find(n) for n in NAMES)
        assert (a.split, a.status, a.source) == ("val", Status.EDITED, "import")
        assert (b.split, b.status) == ("train", Status.VERIFIED)  # default status for a seeded label
        assert (c.split, c.status, c.has_label) == ("test", Status.UNLABELLED, False)
        assert all(r.has_ground_truth for r in (a, b, c))
        np.testing.assert_array_equal(p.read_ground_truth(c.id), source(masks_dir, NAMES[2]))
        assert any("ghost.png" in s for s in p.problems)
        p.set_status(a.id, Status.VERIFIED)
    # seeding happens once: re-opening keeps the project's own state
    with Project.open(images) as p:
        assert p.find(NAMES[0]).status == Status.VERIFIED


@pytest.mark.parametrize("labels", ["../trainannot", "/tmp", "labels/../../trainannot"])
def test_seed_manifest_refuses_paths_outside_the_folder(cam, labels):
    images, _, _ = cam
    write_manifest(images, {"labels": labels})
    with pytest.raises(InputError, match="outside the project folder|absolute path") as err:
        Project.open(images)
    assert "workbench.json" in str(err.value)
    assert not (images / ".workbench" / "project.sqlite").exists()


def test_seed_manifest_bad_values(cam):
    images, _, _ = cam
    write_manifest(images, {"images": {NAMES[0]: {"split": "holdout"}}})
    with pytest.raises(InputError, match="unknown split 'holdout'"):
        Project.open(images)
    write_manifest(images, {"labels": "nolabels"})
    with pytest.raises(InputError, match="folder not found"):
        Project.open(images)


def test_cli_import_camvid_layout(cam, tmp_path, capsys):
    images, masks_dir, _ = cam
    state = tmp_path / "state"
    rc = cli.main(["import", str(images), "--masks", str(masks_dir), "--state-dir", str(state)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "imported 3 of 3" in out and str(state) in out and "classes: 11" in out
    assert not (images / ".workbench").exists()
    with Project.open(images, state_dir=state) as p:
        assert all(r.status == Status.VERIFIED for r in p.images()) and p.schema.num_classes == 11
    # again as ground truth into the same (existing) project: its schema is used
    rc = cli.main(["import", str(images), "--masks", str(masks_dir), "--as", "ground-truth",
                   "--state-dir", str(state)])
    assert rc == 0 and "the project's" in capsys.readouterr().out


def test_cli_exit_1_on_problems_and_inferred_classes(tmp_path, capsys):
    images = tmp_path / "imgs"
    masks_dir = tmp_path / "m"
    images.mkdir()
    masks_dir.mkdir()
    for i in range(3):
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(images / f"im{i}.png")
        Image.fromarray(np.full((8, 8), i, np.uint8)).save(masks_dir / f"im{i}.png")
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(masks_dir / "im1.png")  # wrong size
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(masks_dir / "stray.png")
    rc = cli.main(["import", str(images), "--masks", str(masks_dir)])
    captured = capsys.readouterr()
    assert rc == 1
    assert "imported 2 of 4" in captured.out and "unmatched (1" in captured.out
    assert "im1.png" in captured.err and "5x5" in captured.err
    assert "inferred" in captured.out
    with Project.open(images) as p:
        assert p.schema.num_classes == 3  # values 0..2 seen
    assert cli.main(["import", str(images), "--masks", str(tmp_path / "none")]) == 2

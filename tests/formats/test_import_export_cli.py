"""`workbench import --format` and `workbench export`, and a CamVid round trip through every format."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from workbench import cli
from workbench.project import Project
from workbench.project.location import STATE_HOME_ENV

from fmt_helpers import CAMVID, labelled_project, names_per_pixel

MY_FORMATS = ["index", "voc", "coco", "cityscapes"]


@pytest.fixture(autouse=True)
def state_home(tmp_path, monkeypatch):
    monkeypatch.setenv(STATE_HOME_ENV, str(tmp_path / "state-home"))


@pytest.mark.parametrize("fmt", MY_FORMATS)
def test_cli_export_then_import_into_a_fresh_state(tmp_path, capsys, fmt):
    folder, masks = labelled_project(tmp_path)
    out = tmp_path / "out"
    rc = cli.main(["export", str(folder), "--format", fmt, "--out", str(out), "--images", "none"])
    text = capsys.readouterr().out
    assert rc == 0 and f"exported 3 of 3 label(s) to {out} ({fmt})" in text
    src = out / "annotations" / "instances_train.json" if fmt == "coco" else out
    fresh = tmp_path / "fresh"
    rc = cli.main(["import", str(folder), "--masks", str(src), "--state-dir", str(fresh)])
    text = capsys.readouterr().out
    want = 1 if fmt == "coco" else 3                  # one COCO file holds one split
    assert rc == 0 and f"imported {want} of {want} labels (verified)" in text and "(detected)" in text
    with Project.open(folder) as a, Project.open(folder, state_dir=fresh) as b:
        for rec in b.images():
            if rec.has_label:
                assert np.array_equal(names_per_pixel(b.read_label(rec.id), b.schema),
                                      names_per_pixel(a.read_label(a.find(rec.name).id), a.schema))


def test_cli_messages_and_exit_codes(tmp_path, capsys):
    folder, _ = labelled_project(tmp_path)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    assert cli.main(["export", str(folder), "--format", "voc", "--out", str(mine)]) == 2
    assert "not empty" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main(["import", str(folder), "--masks", str(empty)]) == 2
    err = capsys.readouterr().err
    assert str(empty) in err and "--format" in err and "Traceback" not in err
    assert cli.main(["import", str(folder), "--masks", str(tmp_path / "nope")]) == 2
    assert "not found" in capsys.readouterr().err
    assert cli.main(["export", str(folder), "--format", "voc", "--out", str(tmp_path / "o2"),
                     "--split", "val", "--status", "verified"]) == 0
    assert "exported 1 of 1" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(["export", str(folder), "--format", "pascal", "--out", str(tmp_path / "o3")])
    capsys.readouterr()
    assert cli.main(["export", str(folder), "--format", "voc", "--out", str(tmp_path / "o5"),
                     "--coco-polygons"]) == 2
    assert "--coco-polygons is for --format coco" in capsys.readouterr().err
    bare = tmp_path / "bare"
    bare.mkdir()
    assert cli.main(["export", str(bare), "--format", "voc", "--out", str(tmp_path / "o4")]) == 2
    assert "no project here yet" in capsys.readouterr().err and not (bare / ".workbench").exists()


def test_cli_import_lists_unknown_classes_with_exit_1(tmp_path, capsys):
    folder, _ = labelled_project(tmp_path)
    out = tmp_path / "voc"
    cli.main(["export", str(folder), "--format", "voc", "--out", str(out), "--images", "none"])
    (out / "class_names.txt").write_text("sky\nboat\ncar\n")
    capsys.readouterr()
    rc = cli.main(["import", str(folder), "--masks", str(out), "--format", "voc", "--as", "ground-truth"])
    text = capsys.readouterr().out
    assert rc == 1 and "boat: 3 file(s)" in text
    rc = cli.main(["import", str(folder), "--masks", str(out), "--as", "ground-truth", "--add-classes"])
    text = capsys.readouterr().out
    assert rc == 0 and "classes added from the dataset (1): boat" in text
    with Project.open(folder) as project:
        assert "boat" in project.schema.names


def test_cli_names_file_for_classes(tmp_path, capsys):
    folder = tmp_path / "images"
    masks = tmp_path / "masks"
    folder.mkdir()
    masks.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / "a.png")
    Image.fromarray(np.array([[0, 1] * 4] * 8, np.uint8)).save(masks / "a.png")
    (tmp_path / "labels.txt").write_text("__ignore__\n_background_\nleaf\n")
    rc = cli.main(["import", str(folder), "--masks", str(masks), "--classes", str(tmp_path / "labels.txt")])
    assert rc == 0, capsys.readouterr()
    with Project.open(folder) as project:
        assert project.schema.names == ["background", "leaf"]


@pytest.mark.skipif(not (CAMVID / "trainannot").is_dir(), reason="../shared/camvid not present")
def test_camvid_index_import_then_every_format_round_trips(tmp_path, capsys):
    """4 CamVid images, downscaled: import the index masks, export to each format, re-import."""
    images, ds = tmp_path / "images", tmp_path / "camvid"
    images.mkdir()
    ds.mkdir()
    shutil.copy(CAMVID / "classes.json", ds / "classes.json")
    for split, count in (("train", 3), ("val", 1)):
        (ds / f"{split}annot").mkdir()
        for p in sorted((CAMVID / split).iterdir())[:count]:
            Image.open(p).resize((120, 90), Image.BILINEAR).save(images / p.name)
            Image.open(CAMVID / f"{split}annot" / p.name).resize((120, 90), Image.NEAREST).save(
                ds / f"{split}annot" / p.name)
    assert cli.main(["import", str(images), "--masks", str(ds)]) == 0
    assert "imported 4 of 4" in capsys.readouterr().out
    with Project.open(images) as project:
        assert project.schema.by_index(11).void and project.schema.num_classes == 11
        assert project.find(sorted(p.name for p in (ds / "valannot").iterdir())[0]).split.value == "val"
        ref = {r.name: names_per_pixel(project.read_label(r.id), project.schema) for r in project.images()}
        src = {n: np.array(Image.open(ds / "trainannot" / n)) for n in (p.name for p in (ds / "trainannot").iterdir())}
        for n, m in src.items():
            assert np.array_equal(project.read_label(project.find(n).id), m)   # index import: exact
    for fmt in MY_FORMATS:
        out = tmp_path / f"out-{fmt}"
        assert cli.main(["export", str(images), "--format", fmt, "--out", str(out), "--images", "link"]) == 0
        state = tmp_path / f"state-{fmt}"
        for src_path in ([out] if fmt != "coco" else sorted((out / "annotations").glob("*.json"))):
            assert cli.main(["import", str(images), "--masks", str(src_path), "--state-dir", str(state)]) == 0
        capsys.readouterr()
        with Project.open(images, state_dir=state) as back:
            for rec in back.images():
                assert np.array_equal(names_per_pixel(back.read_label(rec.id), back.schema), ref[rec.name]), fmt
    # COCO as polygons: pycocotools-compatible rings, every labelled pixel back on these frames
    out = tmp_path / "out-coco-polygons"
    assert cli.main(["export", str(images), "--format", "coco", "--coco-polygons", "--out", str(out),
                     "--images", "none"]) == 0
    state = tmp_path / "state-coco-polygons"
    for src_path in sorted((out / "annotations").glob("*.json")):
        assert cli.main(["import", str(images), "--masks", str(src_path), "--state-dir", str(state)]) == 0
    with Project.open(images, state_dir=state) as back:
        for rec in back.images():
            got, want = names_per_pixel(back.read_label(rec.id), back.schema), ref[rec.name]
            assert (got[want != ""] == want[want != ""]).mean() >= 0.99


def test_cli_dry_run_says_what_the_source_is_and_writes_nothing(tmp_path, capsys):
    folder, _ = labelled_project(tmp_path)
    out = tmp_path / "voc"
    cli.main(["export", str(folder), "--format", "voc", "--out", str(out), "--images", "none"])
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(folder / "img00.png", other / "img00.png")
    capsys.readouterr()
    assert cli.main(["import", str(other), "--masks", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "format: Pascal VOC (voc)" in text and "masks: 3 (test 1, train 1, val 1)" in text
    assert "no project at" in text and not (other / ".workbench").exists()
    assert cli.main(["import", str(folder), "--masks", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "images in the project: 3; not in the project: 0" in text

"""The polygon formats through the CLI: `workbench export --format F` then `workbench import`."""

from __future__ import annotations

import shutil

import pytest

from workbench import cli
from workbench.project import Project
from workbench.project.location import STATE_HOME_ENV

from fmt_helpers import labelled_project, names_per_pixel


@pytest.fixture(autouse=True)
def state_home(tmp_path, monkeypatch):
    monkeypatch.setenv(STATE_HOME_ENV, str(tmp_path / "state-home"))


@pytest.mark.parametrize("fmt", ["labelme", "cvat", "yolo"])
def test_export_then_import_gives_each_pixel_its_class(tmp_path, fmt, capsys):
    folder, masks = labelled_project(tmp_path, n=3)
    out = tmp_path / f"out-{fmt}"
    assert cli.main(["export", str(folder), "--format", fmt, "--out", str(out)]) == 0
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    for name in masks:
        shutil.copy(folder / name, fresh / name)
    src = out / "annotations.xml" if fmt == "cvat" else out
    assert cli.main(["import", str(fresh), "--masks", str(src)]) == 0   # --format auto
    printed = capsys.readouterr().out
    assert f"({fmt})" in printed and "imported 3 of 3" in printed
    with Project.open(folder) as ref, Project.open(fresh) as got:
        for rec in ref.images():
            mine = got.find(rec.name)
            a = names_per_pixel(ref.read_label(rec.id), ref.schema)
            b = names_per_pixel(got.read_label(mine.id), got.schema)
            labelled = a != ""
            assert (a[labelled] == b[labelled]).mean() >= 0.99, rec.name
            if fmt in ("cvat", "yolo"):   # labelme files carry no split
                assert mine.split.value == rec.split.value


@pytest.mark.parametrize("fmt", ["labelme", "cvat", "yolo"])
def test_import_lists_problems_naming_the_file(tmp_path, fmt, capsys):
    folder, masks = labelled_project(tmp_path, n=2)
    out = tmp_path / "out"
    assert cli.main(["export", str(folder), "--format", fmt, "--out", str(out), "--images", "none"]) == 0
    # damage one exported file per format
    if fmt == "labelme":
        bad = sorted(out.glob("img*.json"))[0]
        bad.write_text('{"version": "5.5.0", "shapes": [{"label": "road", "points": [[1, 1]], '
                       '"shape_type": "polygon"}], "imagePath": "%s", "imageHeight": 24, "imageWidth": 32}'
                       % bad.with_suffix(".png").name)
    elif fmt == "cvat":
        bad = out / "annotations.xml"
        text = bad.read_text()
        bad.write_text(text.replace('<polygon label="road"', '<polygon label="lorry"', 1))
    else:
        bad = sorted((out / "labels").rglob("*.txt"))[0]
        bad.write_text(bad.read_text() + "1 0.5 0.5 1.5\n")
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    for name in masks:
        shutil.copy(folder / name, fresh / name)
    rc = cli.main(["import", str(fresh), "--masks", str(out), "--format", fmt])
    printed = capsys.readouterr()
    assert rc in (0, 1)
    assert bad.name in printed.out + printed.err
    assert "Traceback" not in printed.out + printed.err


# ----- void classes (CamVid's "Unlabelled") through the polygon formats ---------------------
def _fresh_copy(tmp_path, folder, masks, name="fresh"):
    fresh = tmp_path / name
    fresh.mkdir()
    for image in masks:
        shutil.copy(folder / image, fresh / image)
    return fresh


def _src(out, fmt):
    return out / "annotations.xml" if fmt == "cvat" else out


@pytest.mark.parametrize("fmt", ["labelme", "cvat", "yolo"])
def test_void_class_round_trips_as_not_labelled_never_trainable(tmp_path, fmt, capsys):
    folder, masks = labelled_project(tmp_path, n=3)      # schema3: "Unlabelled" is void, value 3
    out = tmp_path / f"out-{fmt}"
    assert cli.main(["export", str(folder), "--format", fmt, "--out", str(out)]) == 0
    written = "\n".join(p.read_text() for p in out.rglob("*") if p.suffix in (".json", ".xml", ".txt", ".yaml"))
    assert "Unlabelled" not in written                   # no shape, no class entry
    fresh = _fresh_copy(tmp_path, folder, masks)
    assert cli.main(["import", str(fresh), "--masks", str(_src(out, fmt))]) == 0
    capsys.readouterr()
    with Project.open(folder) as ref, Project.open(fresh) as got:
        assert [c.name for c in got.schema.classes if not c.void] == ["sky", "road", "car"]
        assert got.schema.by_name("Unlabelled") is None
        for rec in ref.images():
            mine = got.find(rec.name)
            a, b = ref.read_label(rec.id), got.read_label(mine.id)
            void = a == 3
            assert void.any()
            assert (b[void] == 255).all(), rec.name      # void pixels: not labelled
            pa, pb = names_per_pixel(a, ref.schema), names_per_pixel(b, got.schema)
            labelled = pa != ""
            assert (pa[labelled] == pb[labelled]).mean() >= 0.99, rec.name
            assert (pb[~labelled] == "").all(), rec.name  # nothing not labelled comes back labelled


@pytest.mark.parametrize("fmt", ["labelme", "cvat", "yolo"])
def test_void_class_into_a_project_that_has_it_stays_out_of_training(tmp_path, fmt, capsys):
    # re-import into a CamVid-like project (its schema names "Unlabelled" as void)
    folder, masks = labelled_project(tmp_path, n=2)
    out = tmp_path / "out"
    assert cli.main(["export", str(folder), "--format", fmt, "--out", str(out), "--images", "none"]) == 0
    again, _ = labelled_project(tmp_path / "again", n=2)
    assert cli.main(["import", str(again), "--masks", str(_src(out, fmt)), "--format", fmt,
                     "--overwrite"]) == 0
    capsys.readouterr()
    with Project.open(again) as got:
        assert [(c.name, c.void) for c in got.schema.classes][-1] == ("Unlabelled", True)
        for rec in got.images():
            m = got.read_label(rec.id)
            want = masks[rec.name]
            assert (m[want == 3] == 255).all()
            keep = want < 3
            assert (m[keep] == want[keep]).mean() >= 0.99


@pytest.mark.parametrize("fmt", ["labelme", "cvat", "yolo"])
def test_a_class_named_unlabelled_in_a_file_reads_as_void(tmp_path, fmt, capsys):
    # files written with the void class under its name (older exports, other tools): the
    # class comes back void, by its name; a --classes file that marks it void does the same
    from workbench.formats import registry
    from workbench.formats.base import ExportClass

    from fmt_helpers import export_items, schema3

    folder, masks = labelled_project(tmp_path, n=2)
    as_named = [ExportClass(c.name, c.index, c.color, False) for c in schema3().classes]
    out = tmp_path / "out"
    registry.get(fmt).write(out, export_items(folder, masks), as_named, images="none")
    written = "\n".join(p.read_text() for p in out.rglob("*") if p.suffix in (".json", ".xml", ".txt", ".yaml"))
    assert "Unlabelled" in written
    fresh = _fresh_copy(tmp_path, folder, masks)
    assert cli.main(["import", str(fresh), "--masks", str(_src(out, fmt)), "--format", fmt]) == 0
    capsys.readouterr()
    with Project.open(fresh) as got:
        unl = got.schema.by_name("Unlabelled")
        assert unl is not None and unl.void
        assert [c.name for c in got.schema.classes if not c.void] == ["sky", "road", "car"]
        for rec in got.images():
            m = got.read_label(rec.id)
            assert (m[masks[rec.name] == 3] == unl.index).mean() >= 0.99


@pytest.mark.parametrize("fmt", ["labelme", "cvat", "yolo"])
def test_classes_file_marking_a_class_void_is_honoured(tmp_path, fmt, capsys):
    import json

    from workbench.formats.base import ExportClass
    from workbench.formats import registry

    from fmt_helpers import export_items

    folder, masks = labelled_project(tmp_path, n=2)
    # a void class under a name no rule knows: only the classes file says it is void
    named = [ExportClass("sky", 0, (1, 1, 1)), ExportClass("road", 1, (2, 2, 2)),
             ExportClass("car", 2, (3, 3, 3)), ExportClass("clutter", 3, (4, 4, 4))]
    out = tmp_path / "out"
    registry.get(fmt).write(out, export_items(folder, masks), named, images="none")
    classes = tmp_path / "classes.json"
    classes.write_text(json.dumps({"classes": [
        {"index": 0, "name": "sky", "color": [1, 1, 1]}, {"index": 1, "name": "road", "color": [2, 2, 2]},
        {"index": 2, "name": "car", "color": [3, 3, 3]},
        {"index": 3, "name": "clutter", "color": [4, 4, 4], "void": True}]}))
    fresh = _fresh_copy(tmp_path, folder, masks)
    assert cli.main(["import", str(fresh), "--masks", str(_src(out, fmt)), "--format", fmt,
                     "--classes", str(classes)]) == 0
    capsys.readouterr()
    with Project.open(fresh) as got:
        assert [(c.name, c.void) for c in got.schema.classes] == [
            ("sky", False), ("road", False), ("car", False), ("clutter", True)]
        for rec in got.images():
            m = got.read_label(rec.id)
            assert (m[masks[rec.name] == 3] == 3).mean() >= 0.99

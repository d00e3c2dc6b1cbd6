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

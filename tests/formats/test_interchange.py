"""The import/export workflow: class mapping by name, a person's labels kept, reports, out folders."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from workbench.classes import ClassInfo, ClassSchema
from workbench.errors import WorkbenchError
from workbench.formats import voc
from workbench.formats.base import NOT_LABELLED
from workbench.progress import CancelToken
from workbench.project import Project
from workbench.project.location import STATE_HOME_ENV
from workbench.workflows import interchange as ix

from fmt_helpers import labelled_project, make_images, names_per_pixel, schema3, synthetic_mask


@pytest.fixture(autouse=True)
def state_home(tmp_path, monkeypatch):
    monkeypatch.setenv(STATE_HOME_ENV, str(tmp_path / "state-home"))


def _voc_source(root, names, h=24, w=32, values=(0, 15)):
    """A VOC folder with a mask per name: left half values[0], right half values[1]."""
    seg = root / "SegmentationClass"
    seg.mkdir(parents=True)
    masks = {}
    for n in names:
        m = np.full((h, w), values[0], np.uint8)
        m[:, w // 2:] = values[1]
        m[0, :] = NOT_LABELLED
        img = Image.new("P", (w, h))
        img.putpalette(voc.voc_palette())
        img.frombytes(m.tobytes())
        img.save(seg / (n.rsplit(".", 1)[0] + ".png"))
        masks[n] = m
    return masks


@pytest.mark.parametrize("fmt", ["index", "voc", "coco", "cityscapes"])
def test_round_trip_through_each_format_keeps_every_pixel(tmp_path, fmt):
    folder, masks = labelled_project(tmp_path)
    out = tmp_path / f"out-{fmt}"
    with Project.open(folder) as project:
        rep = ix.export_labels(project, out, format=fmt)
        assert (rep.written, rep.selected, rep.cancelled) == (3, 3, False) and rep.ok
        before = {r.name: r.split for r in project.images()}
        schema = project.schema
    with Project.open(folder, state_dir=tmp_path / "fresh") as fresh:
        found = ix.detect_source(out, fresh)
        assert found.format == fmt and found.masks == 3 and found.matched == 3
        back = ix.import_labels(fresh, out)
        assert back.imported == 3 and back.ok, back.summary_lines()
        assert back.adopted_classes                               # a fresh project takes the dataset's classes
        for rec in fresh.images():
            assert rec.split == before[rec.name]                    # splits travel with the format
            assert np.array_equal(names_per_pixel(fresh.read_label(rec.id), fresh.schema),
                                  names_per_pixel(masks[rec.name], schema))


def test_voc_names_are_adopted_by_a_new_project(tmp_path):
    folder = tmp_path / "images"
    names = make_images(folder, 2)
    _voc_source(tmp_path / "voc", names)
    with Project.open(folder) as project:
        rep = ix.import_labels(project, tmp_path / "voc", format="auto")
        assert rep.imported == 2 and rep.format == "voc"
        assert project.schema.names[:3] == ["background", "aeroplane", "bicycle"]
        assert project.schema.by_index(15).name == "person"      # not "class 15"
        label = project.read_label(project.find(names[0]).id)
        assert label[5, 0] == 0 and label[5, -1] == 15 and (label[0] == NOT_LABELLED).all()


def test_unknown_classes_are_listed_and_left_not_labelled(tmp_path):
    folder, masks = labelled_project(tmp_path, n=2)
    with Project.open(folder) as project:
        extra = tmp_path / "extra"
        extra.mkdir()
        (extra / "names.txt").write_text("sky\nboat\n")
        for n in masks:
            m = np.zeros((24, 32), np.uint8)
            m[:, 16:] = 1
            Image.fromarray(m).save(extra / n)
        schema_before = project.schema.to_dict()
        rep = ix.import_labels(project, extra, format="index", classes=extra / "names.txt",
                               as_="ground-truth")
        assert project.schema.to_dict() == schema_before             # the project's classes did not change
        assert list(rep.unknown_classes) == ["boat"] and len(rep.unknown_classes["boat"]) == 2
        assert rep.imported == 2 and not rep.ok
        gt = project.read_ground_truth(project.find("img00.png").id)
        assert (gt[:, :16] == 0).all() and (gt[:, 16:] == NOT_LABELLED).all()
        text = "\n".join(rep.summary_lines())
        assert "boat: 2 file(s)" in text and "left not labelled" in text
        # labels were not touched by a ground-truth import
        assert np.array_equal(project.read_label(project.find("img00.png").id), masks["img00.png"])


def test_a_persons_label_is_kept_unless_overwrite_and_then_in_history(tmp_path):
    folder = tmp_path / "images"
    names = make_images(folder, 2)
    src = tmp_path / "voc"
    _voc_source(src, names)
    with Project.open(folder) as project:
        ix.import_labels(project, src)
        rec = project.find(names[0])
        mine = project.read_label(rec.id)
        mine[5:10, 5:10] = 3
        project.save_label(rec.id, mine, status="edited")          # a person's edit
        rep = ix.import_labels(project, src)
        assert rep.kept == [names[0]] and rep.imported == 1
        assert np.array_equal(project.read_label(rec.id), mine)
        assert "kept 1 label(s)" in "\n".join(rep.summary_lines())
        rep = ix.import_labels(project, src, overwrite=True)
        assert rep.overwritten == [names[0]] and rep.imported == 2
        history = project.label_history(rec.id)
        assert any(np.array_equal(project.read_label_version(rec.id, v.version), mine) for v in history)


def test_missing_images_wrong_sizes_and_bad_values_are_named(tmp_path):
    folder = tmp_path / "images"
    make_images(folder, 2)
    src = tmp_path / "voc"
    _voc_source(src, ["img00.png", "nothere.png"])
    _voc_source(tmp_path / "small", ["img01.png"], h=10, w=10)
    os.replace(tmp_path / "small" / "SegmentationClass" / "img01.png", src / "SegmentationClass" / "img01.png")
    seg = src / "SegmentationClass"
    bad = np.full((24, 32), 200, np.uint8)
    Image.fromarray(bad).save(seg / "img02.png")
    (seg / "junk.png").write_bytes(b"not a png")
    make_images(tmp_path / "more", 3)
    os.replace(tmp_path / "more" / "img02.png", folder / "img02.png")
    with Project.open(folder) as project:
        rep = ix.import_labels(project, src)
        assert rep.imported == 1 and rep.total == 4
        assert rep.unmatched and "nothere" in rep.unmatched[0]
        reasons = {os.path.basename(p.file): p.reason for p in rep.problems}
        assert "is 10x10 but image img01.png is 32x24" in reasons["img01.png"]
        assert "values that no class of the dataset names: 200" in reasons["img02.png"]
        assert "junk.png" in reasons
        assert not project.find("img01.png").has_label


def test_cancel_keeps_what_was_done(tmp_path):
    folder = tmp_path / "images"
    names = make_images(folder, 3)
    _voc_source(tmp_path / "voc", names)
    token = CancelToken()
    seen = []

    def progress(p):
        seen.append(p.done)
        if p.done == 1:
            token.cancel()

    with Project.open(folder) as project:
        rep = ix.import_labels(project, tmp_path / "voc", on_progress=progress, cancel=token)
        assert rep.cancelled and rep.imported == 1
        assert sum(r.has_label for r in project.images()) == 1


def test_only_the_chosen_images(tmp_path):
    folder = tmp_path / "images"
    names = make_images(folder, 3)
    _voc_source(tmp_path / "voc", names)
    with Project.open(folder) as project:
        rep = ix.import_labels(project, tmp_path / "voc", images=[names[1]])
        assert rep.imported_names == [names[1]] and rep.total == 1


def test_a_source_naming_none_of_the_images_changes_no_class(tmp_path):
    folder = tmp_path / "images"
    make_images(folder, 2)
    _voc_source(tmp_path / "voc", ["other.png"])
    with Project.open(folder) as project:
        before = project.schema.to_dict()
        rep = ix.import_labels(project, tmp_path / "voc")
        assert rep.imported == 0 and rep.unmatched and not rep.adopted_classes
        assert project.schema.to_dict() == before


def test_export_selects_by_status_and_split(tmp_path):
    folder, masks = labelled_project(tmp_path)
    with Project.open(folder) as project:
        project.set_status(project.find("img00.png").id, "edited")
        assert [r.name for r in ix.select_images(project, "verified")] == ["img01.png", "img02.png"]
        assert len(ix.select_images(project, "labelled")) == 3
        assert [r.name for r in ix.select_images(project, "labelled", "val")] == ["img01.png"]
        with pytest.raises(WorkbenchError, match="unknown status"):
            ix.select_images(project, "done")
        rep = ix.export_labels(project, tmp_path / "out", format="index", status="all", split="test",
                               images="none")
        assert rep.written == 1 and not (tmp_path / "out" / "test").exists()
        assert (tmp_path / "out" / "testannot" / "img02.png").is_file()


def test_export_refuses_a_users_folder_and_the_project_folders(tmp_path):
    folder, _ = labelled_project(tmp_path)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.docx").write_text("precious")
    with Project.open(folder) as project:
        with pytest.raises(WorkbenchError, match="not empty and is not an earlier export"):
            ix.export_labels(project, mine, format="voc")
        assert sorted(os.listdir(mine)) == ["thesis.docx"]
        for bad in (folder, project.state_dir, project.state_dir / "x"):
            with pytest.raises(WorkbenchError, match="image or state folder"):
                ix.export_labels(project, bad, format="index")
        out = tmp_path / "out"
        ix.export_labels(project, out, format="voc")
        again = ix.export_labels(project, out, format="voc")       # an earlier export of the same format
        assert again.written == 3
        assert json.loads((out / ix.EXPORT_MARKER).read_text())["format"] == "voc"
        with pytest.raises(WorkbenchError, match="another format"):
            ix.export_labels(project, out, format="coco")


def test_export_never_writes_through_a_link_into_the_image_folder(tmp_path):
    folder, _ = labelled_project(tmp_path)
    original = (folder / "img00.png").read_bytes()
    with Project.open(folder) as project:
        out = tmp_path / "out"
        ix.export_labels(project, out, format="voc", images="link")
        assert (out / "JPEGImages" / "img00.png").is_symlink()
        ix.export_labels(project, out, format="voc", images="copy")
        assert not (out / "JPEGImages" / "img00.png").is_symlink()
    assert (folder / "img00.png").read_bytes() == original


def test_detect_source_reports_classes_counts_and_unmatched(tmp_path):
    folder = tmp_path / "images"
    make_images(folder, 1)
    _voc_source(tmp_path / "voc", ["img00.png", "other.png"])
    with Project.open(folder) as project:
        found = ix.detect_source(tmp_path / "voc", project)
        assert (found.format, found.masks, found.matched, len(found.unmatched)) == ("voc", 2, 1, 1)
        text = "\n".join(found.summary_lines())
        assert "Pascal VOC" in text and "person" in text and "not in the project: 1" in text
        assert not project.find("img00.png").has_label            # detecting changes nothing


def test_summary_lines_cut_long_lists(tmp_path):
    rep = ix.InterchangeReport("voc", "labels", tmp_path, unmatched=[f"m{i}.png" for i in range(45)])
    lines = rep.summary_lines(limit=20)
    assert "  ... and 25 more" in lines and sum(line.startswith("  m") for line in lines) == 20


def test_existing_classes_are_matched_by_name_not_number(tmp_path):
    folder = tmp_path / "images"
    names = make_images(folder, 1)
    # project: car=0, sky=1, road=2 -- a different numbering from the dataset's
    schema = ClassSchema([ClassInfo(0, "car", (1, 1, 1)), ClassInfo(1, "Sky", (2, 2, 2)),
                          ClassInfo(2, "road", (3, 3, 3))])
    ds = tmp_path / "ds"
    ds.mkdir()
    schema3().save(ds / "classes.json")                            # sky=0, road=1, car=2, void=3
    m = synthetic_mask(24, 32, 0)
    Image.fromarray(m).save(ds / names[0])
    with Project.open(folder, schema=schema) as project:
        project.save_label(project.find(names[0]).id, np.zeros((24, 32), np.uint8), status="predicted",
                           source="model:1")
        rep = ix.import_labels(project, ds)
        assert rep.imported == 1 and not rep.adopted_classes and not rep.unknown_classes
        got = project.read_label(project.find(names[0]).id)
        assert np.array_equal(names_per_pixel(got, project.schema), names_per_pixel(m, schema3()))
        assert (got[m == 3] == NOT_LABELLED).all()                  # a void class the project lacks


@pytest.mark.parametrize("fmt", ["labelme", "cvat", "yolo"])
def test_round_trip_through_the_polygon_formats(tmp_path, fmt):
    """fmt-poly's formats through this workflow: >= 99 % of labelled pixels come back."""
    from workbench.formats import registry

    if fmt not in registry.names():
        pytest.skip(f"the {fmt} format is not on this branch yet")
    folder, masks = labelled_project(tmp_path)
    out = tmp_path / f"out-{fmt}"
    with Project.open(folder) as project:
        assert ix.export_labels(project, out, format=fmt).written == 3
        schema = project.schema
    with Project.open(folder, state_dir=tmp_path / "fresh") as fresh:
        back = ix.import_labels(fresh, out)
        assert back.format == fmt and back.imported == 3 and not back.problems, back.summary_lines()
        for rec in fresh.images():
            want = names_per_pixel(masks[rec.name], schema)
            got = names_per_pixel(fresh.read_label(rec.id), fresh.schema)
            labelled = want != ""
            assert (got[labelled] == want[labelled]).mean() >= 0.99


def test_a_reader_that_fails_midway_keeps_what_was_imported(tmp_path, monkeypatch):
    from workbench.errors import InputError
    from workbench.formats import registry
    from workbench.formats.base import DatasetClass, FormatSpec, ReadItem, ReadResult

    folder = tmp_path / "images"
    make_images(folder, 2)

    def read(src, *, image_size=None):
        def items():
            yield ReadItem("img00.png", np.zeros((24, 32), np.uint8), "a.json")
            raise InputError("folder vanished", src / "b.json")
        return ReadResult([DatasetClass("x", 0)], items())

    spec = FormatSpec("flaky", "Flaky", lambda p: True, read, lambda *a, **k: None)
    monkeypatch.setattr(registry, "get", lambda name: spec)
    with Project.open(folder) as project:
        rep = ix.import_labels(project, tmp_path, format="flaky")
        assert rep.imported == 1 and rep.problems[-1].reason == "reading stopped: folder vanished"
        assert rep.problems[-1].file.endswith("b.json")
        # detect reads the same way: the mask read before the failure counts, the failure is named
        found = ix.detect_source(tmp_path, project, format="flaky")
        assert found.masks == 1 and found.problems[-1].reason == "reading stopped: folder vanished"
        assert found.problems[-1].file.endswith("b.json")


def test_retired_values_leave_as_not_labelled(tmp_path):
    folder = tmp_path / "images"
    names = make_images(folder, 1)
    schema = ClassSchema([ClassInfo(0, "a", (1, 1, 1)), ClassInfo(1, "b", (2, 2, 2)),
                          ClassInfo(7, "class 7 (found in labels)", (0, 0, 0), True, retired=True)])
    m = np.zeros((24, 32), np.uint8)
    m[:, 10:] = 1
    m[:5, :5] = 7
    with Project.open(folder, schema=schema) as project:
        project.save_label(project.find(names[0]).id, m, status="verified")
        ix.export_labels(project, tmp_path / "out", format="index", images="none")
    written = np.array(Image.open(tmp_path / "out" / "trainannot" / "img00.png"))
    assert (written[:5, :5] == NOT_LABELLED).all() and (written[5:, 10:] == 1).all()


def test_add_classes_adds_what_the_masks_use_and_keeps_the_rest(tmp_path):
    folder, masks = labelled_project(tmp_path, n=2)
    src = tmp_path / "voc"
    _voc_source(src, list(masks), values=(0, 15))          # background | person (VOC names)
    with Project.open(folder) as project:
        before = [(c.id, c.index, c.name) for c in project.schema.classes]
        rep = ix.import_labels(project, src, as_="ground-truth", add_classes=True)
        assert rep.added_classes == ["background", "person"] and not rep.unknown_classes and rep.ok
        names = [c.name for c in project.schema.trainable]
        assert names == ["sky", "road", "car", "background", "person"]      # only what the masks use
        kept = {c.id: c.name for c in project.schema.classes}
        assert all(kept[cid] == name for cid, _, name in before)
        gt = project.read_ground_truth(project.find("img00.png").id)
        assert project.schema.by_index(int(gt[5, -1])).name == "person"
        # the labels were renumbered with the void class, not changed in meaning
        label = project.read_label(project.find("img00.png").id)
        assert np.array_equal(names_per_pixel(label, project.schema), names_per_pixel(masks["img00.png"], schema3()))
        assert "classes added from the dataset (2)" in "\n".join(rep.summary_lines())


def test_a_held_out_image_keeps_its_split_unless_overwrite(tmp_path):
    folder = tmp_path / "images"
    names = make_images(folder, 2)
    src = tmp_path / "voc"
    _voc_source(src, names)
    sets = src / "ImageSets" / "Segmentation"
    sets.mkdir(parents=True)
    (sets / "train.txt").write_text("img00\n")
    (sets / "val.txt").write_text("img01\n")
    with Project.open(folder) as project:
        project.set_split(project.find("img00.png").id, "test")           # held out by a person
        rep = ix.import_labels(project, src)
        assert project.find("img00.png").split.value == "test" and project.find("img01.png").split.value == "val"
        assert rep.splits_set == 1 and rep.splits_kept == ["img00.png (test; the dataset says train)"]
        ix.import_labels(project, src, overwrite=True)
        assert project.find("img00.png").split.value == "train"

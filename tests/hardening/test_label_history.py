"""Label history (issue 8.4): every path that replaces a label keeps the version it replaced.

Paths: a save, a clear, an import (and import --overwrite), accepting a prediction over
an edited label, a restore, a class remap. Bounds: 20 versions and a size cap per image,
oldest first. Crash safety: the old version is in history before the label is replaced.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workbench import cli, masks
from workbench.classes import UNLABELLED, ClassSchema
from workbench.editing import LabelEditor
from workbench.errors import WorkbenchError
from workbench.project import Project, Status
from workbench.project import label_history

H, W = 24, 32


def _schema() -> ClassSchema:
    return ClassSchema.from_dict({"classes": [
        {"index": 0, "name": "sky", "color": [0, 0, 255]},
        {"index": 1, "name": "road", "color": [128, 64, 128]},
        {"index": 2, "name": "tree", "color": [0, 128, 0]},
        {"index": 3, "name": "void", "color": [0, 0, 0], "void": True}]})


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a", "b", "c"):
        Image.fromarray(rng.integers(0, 255, (H, W, 3), dtype=np.uint8)).save(images / f"{name}.png")
    return images


@pytest.fixture
def project(folder: Path):
    with Project.open(folder, schema=_schema()) as p:
        yield p


def _mask(value: int, rows: int = H) -> np.ndarray:
    m = np.full((H, W), UNLABELLED, np.uint8)
    m[:rows] = value
    return m


def _age(path: Path, seconds: float) -> None:
    """Make a label file look ``seconds`` old (an earlier sitting)."""
    t = path.stat().st_mtime - seconds
    os.utime(path, (t, t))


def test_a_save_over_an_import_keeps_the_import(project: Project) -> None:
    a = project.find("a").id
    imported = _mask(1)
    project.save_label(a, imported, status=Status.VERIFIED, source="import")
    assert project.label_history(a) == []  # nothing was replaced
    project.save_label(a, _mask(2, 5))
    (v,) = project.label_history(a)
    assert (v.version, v.source, v.status, v.reason, v.labelled, v.pixels) == \
        (1, "import", "verified", "save", H * W, H * W)
    assert v.made is not None and v.replaced is not None and v.made <= v.replaced
    np.testing.assert_array_equal(project.read_label_version(a, 1), imported)
    rec = project.get(a)
    assert (rec.source, rec.status) == ("person", Status.EDITED)


def test_an_identical_save_adds_nothing(project: Project) -> None:
    a = project.find("a").id
    project.save_label(a, _mask(1), source="import")
    project.save_label(a, _mask(1), status=Status.VERIFIED)
    assert project.label_history(a) == []
    assert project.get(a).status == Status.VERIFIED


def test_autosaves_of_one_sitting_coalesce_but_earlier_sittings_and_big_changes_are_kept(project: Project) -> None:
    a = project.find("a").id
    path = project.label_path(a)
    project.save_label(a, _mask(1, 10))            # the person's first label
    first = project.read_label(a)
    small = first.copy()
    small[10, :4] = 2                              # a small stroke, seconds later: same sitting
    project.save_label(a, small)
    assert project.label_history(a) == []
    _age(path, 2 * label_history.COALESCE_S)       # the person comes back the next day
    later = small.copy()
    later[11, :4] = 2
    project.save_label(a, later)
    (v,) = project.label_history(a)
    assert (v.source, v.reason) == ("person", "save")
    np.testing.assert_array_equal(project.read_label_version(a, v.version), small)
    # Within a sitting, a change of most labelled pixels (accept a whole prediction) is kept.
    prediction = np.zeros((H, W), np.uint8)
    editor = LabelEditor(project.read_label(a).copy())
    assert editor.accept_prediction(prediction) is not None
    project.save_label(a, editor.mask.copy())
    versions = project.label_history(a)
    assert len(versions) == 2
    np.testing.assert_array_equal(project.read_label_version(a, versions[-1].version), later)
    np.testing.assert_array_equal(project.read_label(a), prediction)
    # The app's Clear label saves an empty mask: within a sitting too, the label is kept.
    project.save_label(a, np.full((H, W), UNLABELLED, np.uint8))
    np.testing.assert_array_equal(project.read_label_version(a, project.label_history(a)[-1].version), prediction)


def test_clear_keeps_the_label_and_restore_brings_it_back_undoably(project: Project) -> None:
    a = project.find("a").id
    label = _mask(2, 7)
    project.save_label(a, label, status=Status.VERIFIED)
    project.clear_label(a)
    assert project.read_label(a) is None and project.get(a).status == Status.UNLABELLED
    (v,) = project.label_history(a)
    assert (v.reason, v.source, v.status) == ("clear", "person", "verified")
    assert project.restore_label(a, v.version) == []
    np.testing.assert_array_equal(project.read_label(a), label)
    rec = project.get(a)
    assert (rec.status, rec.source, rec.has_label) == (Status.VERIFIED, "person", True)
    # A restore over a label keeps that label first (reason "restore"): restores undo each other.
    other = _mask(0, 3)
    project.save_label(a, other, source="import")
    project.restore_label(a, v.version)
    newest = project.label_history(a)[-1]
    assert (newest.reason, newest.source) == ("restore", "import")
    project.restore_label(a, newest.version)
    np.testing.assert_array_equal(project.read_label(a), other)


def test_unknown_versions_and_images_give_clear_messages(project: Project) -> None:
    a = project.find("a").id
    with pytest.raises(WorkbenchError, match="a.png has no earlier label versions"):
        project.restore_label(a, 1)
    project.save_label(a, _mask(1), source="import")
    project.save_label(a, _mask(2))
    with pytest.raises(WorkbenchError, match=r"a.png has no label version 7 \(versions kept: 1\)"):
        project.read_label_version(a, 7)


def test_history_is_bounded_oldest_first_with_stable_numbers(project: Project) -> None:
    a = project.find("a").id
    for i in range(label_history.MAX_VERSIONS + 5):
        project.save_label(a, _mask(i % 3, 1 + i % H), source=f"model:{i}")
    versions = project.label_history(a)
    assert len(versions) == label_history.MAX_VERSIONS
    # 25 saves replaced 24 labels; the 4 oldest went, the numbers of the rest did not change.
    assert [v.version for v in versions] == list(range(5, 25))
    assert [v.source for v in versions] == [f"model:{i}" for i in range(4, 24)]
    assert len(list(label_history.history_dir(project.state_dir, "a").iterdir())) == 2 * label_history.MAX_VERSIONS


def test_the_size_cap_drops_oldest_but_never_the_newest(project: Project, monkeypatch) -> None:
    a = project.find("a").id
    rng = np.random.default_rng(1)
    for i in range(6):
        project.save_label(a, rng.integers(0, 3, (H, W), dtype=np.uint8), source="import")
    sizes = [v.size for v in project.label_history(a)]
    assert len(sizes) == 5
    removed = label_history.prune(project.state_dir, "a", max_bytes=sizes[-1] + sizes[-2])
    assert removed == 3 and [v.version for v in project.label_history(a)] == [4, 5]
    assert label_history.prune(project.state_dir, "a", max_bytes=1) == 1
    assert [v.version for v in project.label_history(a)] == [5]   # the newest stays, whatever its size


def test_the_old_version_is_in_history_before_the_label_is_replaced(project: Project, monkeypatch) -> None:
    a = project.find("a").id
    project.save_label(a, _mask(1), source="import")
    seen = []
    real = masks.write_mask

    def crash(path, mask, schema, info=None):
        seen.append([v.source for v in project.label_history(a)])
        raise WorkbenchError("could not save: No space left on device", path)

    monkeypatch.setattr(masks, "write_mask", crash)
    with pytest.raises(WorkbenchError, match="No space left"):
        project.save_label(a, _mask(2))
    monkeypatch.setattr(masks, "write_mask", real)
    assert seen == [["import"]]                     # kept before the write was tried
    np.testing.assert_array_equal(project.read_label(a), _mask(1))   # the old label is intact
    assert project.get(a).source == "import"


def test_a_crash_while_keeping_leaves_the_label_and_no_half_version(project: Project, monkeypatch) -> None:
    a = project.find("a").id
    project.save_label(a, _mask(1), source="import")

    def fail(path, text):
        raise WorkbenchError("could not save: Input/output error", path)

    monkeypatch.setattr(label_history, "atomic_write_text", fail)
    with pytest.raises(WorkbenchError, match="Input/output error"):
        project.save_label(a, _mask(2))
    monkeypatch.undo()
    np.testing.assert_array_equal(project.read_label(a), _mask(1))   # not replaced: no way back yet
    folder = label_history.history_dir(project.state_dir, "a")
    assert [p.name for p in folder.iterdir()] == ["000001.png"]       # a PNG without its sidecar
    assert project.label_history(a) == []                            # ... is not a version
    project.save_label(a, _mask(2))
    assert [v.version for v in project.label_history(a)] == [2]
    assert sorted(p.name for p in folder.iterdir()) == ["000002.json", "000002.png"]


def test_a_damaged_label_is_kept_byte_for_byte_and_a_damaged_sidecar_still_lists(project: Project) -> None:
    a = project.find("a").id
    path = project.label_path(a)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n broken")
    project.save_label(a, _mask(1))
    (v,) = project.label_history(a)
    assert v.path.read_bytes() == b"\x89PNG\r\n\x1a\n broken" and v.labelled is None
    project.save_label(a, _mask(2), source="import")
    side = project.label_history(a)[-1].path.with_suffix(".json")
    side.write_text("{not json", encoding="utf-8")
    newest = project.label_history(a)[-1]
    assert (newest.source, newest.reason) == (None, None) and newest.describe_source() == "unknown"
    np.testing.assert_array_equal(project.read_label_version(a, newest.version), _mask(1))


def test_a_class_remap_keeps_the_label_and_old_versions_translate(project: Project) -> None:
    a = project.find("a").id
    label = _mask(1, 6)
    label[6:9] = 3                                   # void pixels: class "void" moves from 3 to 4
    project.save_label(a, label, source="import")
    project.save_label(a, _mask(2, 4) | 0)           # a person's label, the import kept
    project.save_label(a, label)                     # back to the import's pixels (kept: big change)
    before = len(project.label_history(a))
    project.add_class("car")                         # void 3 -> 4, car = 3
    versions = project.label_history(a)
    assert len(versions) == before + 1 and versions[-1].reason == "class remap"
    remapped = project.read_label(a)
    assert (remapped[6:9] == 4).all()
    # Every version, old schema or new, reads back in today's classes.
    np.testing.assert_array_equal(project.read_label_version(a, versions[-1].version), remapped)
    np.testing.assert_array_equal(project.read_label_version(a, versions[0].version), remapped)


def test_a_renamed_class_keeps_its_pixels_in_old_versions(project: Project) -> None:
    a = project.find("a").id
    project.save_label(a, _mask(2, 5), source="import")
    project.save_label(a, _mask(1, 5))
    schema = project.schema.copy()
    schema.rename_class(2, "forest")
    project.save_schema(schema)
    np.testing.assert_array_equal(project.read_label_version(a, 1), _mask(2, 5))


# ----- import: a person's labels are kept unless --overwrite (issue 8.2) ----------------------
@pytest.fixture
def mask_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "masks"
    folder.mkdir()
    for name, value in (("a", 1), ("b", 2), ("c", 0)):
        Image.fromarray(_mask(value)).save(folder / f"{name}.png")
    return folder


def test_reimport_skips_a_persons_label_and_overwrite_keeps_it_in_history(project: Project, mask_dir: Path) -> None:
    rep = project.import_masks(mask_dir)
    assert (rep.imported, rep.kept) == (3, [])
    a, b = project.find("a").id, project.find("b").id
    fixed = _mask(1, 12)
    project.save_label(a, fixed, status=Status.VERIFIED)      # the person fixed and verified a.png
    rep = project.import_masks(mask_dir)
    assert rep.kept == ["a.png"] and rep.imported == 2 and rep.ok
    np.testing.assert_array_equal(project.read_label(a), fixed)
    assert (project.get(a).source, project.get(a).status) == ("person", Status.VERIFIED)
    assert project.label_history(b) == []                     # the same mask again: nothing to keep
    rep = project.import_masks(mask_dir, overwrite=True)
    assert rep.kept == [] and rep.overwritten == ["a.png"] and rep.imported == 3
    np.testing.assert_array_equal(project.read_label(a), _mask(1))
    newest = project.label_history(a)[-1]
    assert (newest.source, newest.status, newest.reason) == ("person", "verified", "import --overwrite")
    project.restore_label(a, newest.version)
    np.testing.assert_array_equal(project.read_label(a), fixed)


def test_ground_truth_import_never_touches_labels(project: Project, mask_dir: Path) -> None:
    a = project.find("a").id
    project.save_label(a, _mask(2, 3))
    rep = project.import_masks(mask_dir, as_="ground-truth")
    assert rep.imported == 3 and rep.kept == []
    np.testing.assert_array_equal(project.read_label(a), _mask(2, 3))
    assert project.label_history(a) == []


@pytest.mark.parametrize("ext", ["png", "jpg"])
def test_import_names_a_truncated_image(tmp_path: Path, mask_dir: Path, ext: str) -> None:
    images = tmp_path / "imgs"
    images.mkdir()
    rng = np.random.default_rng(2)
    for name in ("a", "b", "c"):
        Image.fromarray(rng.integers(0, 255, (H, W, 3), dtype=np.uint8)).save(images / f"{name}.{ext}")
    whole = (images / f"b.{ext}").read_bytes()
    (images / f"b.{ext}").write_bytes(whole[: len(whole) * 2 // 3])   # header intact, end missing
    with Project.open(images, schema=_schema()) as p:
        assert p.image_shape(p.find("b").id) == (H, W)             # the header alone passes
        rep = p.import_masks(mask_dir)
        assert rep.imported == 2 and len(rep.problems) == 1
        where, problem = rep.problems[0]
        assert where.endswith("b.png") and f"b.{ext}" in problem and "truncated" in problem
        assert not p.get(p.find("b").id).has_label


def _cli(argv: list[str], capsys) -> tuple[int, str, str]:
    rc = cli.main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return rc, out, err


def test_cli_import_lists_kept_labels_and_overwrite_replaces_them(folder: Path, mask_dir: Path, tmp_path: Path,
                                                                  capsys) -> None:
    classes = tmp_path / "classes.json"
    _schema().save(classes)
    rc, out, _ = _cli(["import", str(folder), "--masks", str(mask_dir), "--classes", str(classes)], capsys)
    assert rc == 0 and "imported 3 of 3" in out and "edited by a person" not in out
    with Project.open(folder) as p:
        p.save_label(p.find("a").id, _mask(2, 2), status=Status.VERIFIED)
    rc, out, _ = _cli(["import", str(folder), "--masks", str(mask_dir)], capsys)
    assert rc == 0 and "imported 2 of 3" in out
    assert "kept 1 label(s) edited by a person: a.png; use --overwrite to replace" in out
    rc, out, _ = _cli(["import", str(folder), "--masks", str(mask_dir), "--overwrite"], capsys)
    assert rc == 0 and "imported 3 of 3" in out and "replaced 1 label(s) edited by a person: a.png" in out
    with Project.open(folder) as p:
        np.testing.assert_array_equal(p.read_label(p.find("a").id), _mask(1))


def test_cli_labels_history_and_restore(project: Project, capsys) -> None:
    a = project.find("a").id
    project.save_label(a, _mask(1), status=Status.VERIFIED, source="import")
    project.save_label(a, _mask(2, 6))
    folder = str(project.folder)
    project.close()
    rc, out, _ = _cli(["labels", folder], capsys)
    assert rc == 0 and "a.png" in out and "b.png" not in out
    rc, out, _ = _cli(["labels", folder, "--json"], capsys)
    assert rc == 0 and json.loads(out) == [{"image": "a.png", "has_label": True, "status": "edited",
                                           "source": "person", "updated": json.loads(out)[0]["updated"],
                                           "versions": 1}]
    rc, out, _ = _cli(["labels", folder, "--history", "a"], capsys)
    assert rc == 0 and "current label edited, made by person" in out
    row = next(line for line in out.splitlines() if line.startswith("   1  "))
    assert "import" in row and "verified" in row and "save" in row and f"{H * W} of {H * W} (100%)" in row
    rc, out, _ = _cli(["labels", folder, "--history", "a.png", "--json"], capsys)
    data = json.loads(out)
    assert data["image"] == "a.png" and [v["made_by"] for v in data["versions"]] == ["import"]
    rc, out, _ = _cli(["labels", folder, "--restore", "a.png", "--version", "1"], capsys)
    assert rc == 0 and "restored version 1 of a.png (made by import" in out and "kept as version 2" in out
    with Project.open(folder) as p:
        np.testing.assert_array_equal(p.read_label(p.find("a").id), _mask(1))
        assert p.get(p.find("a").id).status == Status.VERIFIED
    rc, _, err = _cli(["labels", folder, "--restore", "a.png", "--version", "9"], capsys)
    assert rc == 2 and "a.png has no label version 9 (versions kept: 1, 2)" in err
    rc, _, err = _cli(["labels", folder, "--history", "nope.png"], capsys)
    assert rc == 2 and "no image named 'nope.png'" in err
    with pytest.raises(SystemExit) as exc:
        cli.main(["labels", folder, "--restore", "a.png"])
    assert exc.value.code == 2 and "--version K" in capsys.readouterr().err


def test_a_read_only_project_shows_history_but_cannot_restore(project: Project) -> None:
    a = project.find("a").id
    project.save_label(a, _mask(1), source="import")
    project.save_label(a, _mask(2))
    with Project.open(project.folder) as other:
        assert other.read_only
        assert [v.source for v in other.label_history(a)] == ["import"]
        with pytest.raises(WorkbenchError, match="read-only"):
            other.restore_label(a, 1)
    np.testing.assert_array_equal(project.read_label(a), _mask(2))


@pytest.mark.parametrize("sidecar", [b"[" * 100_000, b"\xff\xfe not utf-8", b'{"classes": {"classes": 5}}',
                                     b'{"version": "x", "made": "yesterday", "labelled": -1.5}'])
def test_hostile_sidecars_leave_the_version_usable(project: Project, sidecar: bytes) -> None:
    a = project.find("a").id
    project.save_label(a, _mask(1), source="import")
    project.save_label(a, _mask(2))
    (v,) = project.label_history(a)
    v.path.with_suffix(".json").write_bytes(sidecar)
    (v,) = project.label_history(a)
    np.testing.assert_array_equal(project.read_label_version(a, v.version), _mask(1))
    project.restore_label(a, v.version)
    np.testing.assert_array_equal(project.read_label(a), _mask(1))


class _Stop(BaseException):
    """Stands for the process dying at a file rename (nothing after it runs)."""


@pytest.mark.parametrize("cut", [1, 2, 3])
def test_stopped_at_any_rename_of_a_save_the_old_label_is_somewhere(folder: Path, monkeypatch, cut: int) -> None:
    """A replacing save renames 3 files (history PNG, sidecar, label): die right after each, reopen."""
    import workbench.atomic as atomic

    with Project.open(folder, schema=_schema()) as p:
        a = p.find("a").id
        p.save_label(a, _mask(1), source="import")
    real = os.replace
    calls = []

    def replace(src, dst):
        real(src, dst)
        calls.append(dst)
        if len(calls) == cut:
            raise _Stop()

    with Project.open(folder) as p:
        monkeypatch.setattr(atomic.os, "replace", replace)
        with pytest.raises(_Stop):
            p.save_label(a, _mask(2))
        monkeypatch.setattr(atomic.os, "replace", real)
    with Project.open(folder) as p:                           # the next open, as after a crash
        label = p.read_label(a)
        kept = [p.read_label_version(a, v.version) for v in p.label_history(a)]
        assert np.array_equal(label, _mask(2) if cut == 3 else _mask(1))
        assert any(np.array_equal(k, _mask(1)) for k in kept) == (cut >= 2)   # 1: the PNG alone is no version
        p.save_label(a, _mask(2))                              # saving works again ...
        versions = p.label_history(a)
        assert len(versions) == 1 and np.array_equal(p.read_label_version(a, versions[0].version), _mask(1))

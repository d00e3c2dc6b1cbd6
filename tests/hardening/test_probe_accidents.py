"""Second probe of issue 8: ordinary accidents of the issue's kinds that its tests do not try.

Each case checks the issue's rules: no traceback (only ``WorkbenchError`` from the API,
``workbench: error:`` from the CLI), a message naming the file or option and the problem,
no label silently lost or changed (label pixels compared byte for byte), the project still opens, and a
replaced label can be restored from its history. The cases are listed in
docs/reliability.md, "Second probe (issue 8)".
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

from workbench import cli, masks
from workbench.classes import UNLABELLED, ClassSchema
from workbench.errors import InputError, WorkbenchError
from workbench.project import Project, Status

H, W = 24, 32


def _schema() -> ClassSchema:
    return ClassSchema.from_dict({"classes": [
        {"index": 0, "name": "sky", "color": [0, 0, 255]},
        {"index": 1, "name": "road", "color": [128, 64, 128]},
        {"index": 2, "name": "tree", "color": [0, 128, 0]},
        {"index": 3, "name": "void", "color": [0, 0, 0], "void": True}]})


def _mask(value: int, rows: int = H) -> np.ndarray:
    m = np.full((H, W), UNLABELLED, np.uint8)
    m[:rows] = value
    return m


def _write_images(folder: Path, names: list[str | bytes]) -> None:
    rng = np.random.default_rng(0)
    for name in names:
        path = os.path.join(os.fsencode(folder), name if isinstance(name, bytes) else os.fsencode(name))
        Image.fromarray(rng.integers(0, 255, (H, W, 3), dtype=np.uint8)).save(os.fsdecode(path), format="PNG")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    images = tmp_path / "images"
    images.mkdir()
    _write_images(images, ["a.png", "b.png", "c.png"])
    return images


@pytest.fixture
def labelled(folder: Path) -> Path:
    """A closed project: a (person, edited), b (import, verified), c unlabelled."""
    with Project.open(folder, schema=_schema()) as p:
        p.save_label(p.find("a").id, _mask(1), status=Status.EDITED, source="person")
        p.save_label(p.find("b").id, _mask(2), status=Status.VERIFIED, source="import")
    return folder


def _pixels(folder: Path) -> dict[str, bytes]:
    """Pixel values of every stored label (not the record chunk)."""
    out = {}
    for p in sorted((folder / ".workbench" / "labels").glob("*.png")):
        out[p.name] = np.asarray(Image.open(p)).tobytes()
    return out


def _cli(capsys: pytest.CaptureFixture, *argv: object) -> tuple[int, str, str]:
    try:
        rc = cli.main([str(a) for a in argv])
    except SystemExit as exc:  # argparse usage errors
        rc = int(exc.code or 0)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return rc, out, err


def _reopens(folder: Path, n_labels: int | None = None) -> None:
    with Project.open(folder) as p:
        if n_labels is not None:
            assert sum(r.has_label for r in p.images()) == n_labels


def _edit_classes(folder: Path, edit) -> None:
    path = folder / ".workbench" / "classes.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


# ----- 1. classes: renames and adds with odd names --------------------------------------------

@pytest.mark.parametrize("name", ["   ", "", "\t\n"], ids=["spaces", "empty", "tab-newline"])
def test_rename_to_a_blank_name_keeps_the_old_name(labelled: Path, name: str) -> None:
    # ClassSchema.rename_class: "a blank name keeps the old one" (the panel's edit reverts)
    before = _pixels(labelled)
    with Project.open(labelled) as p:
        s = p.schema.copy()
        s.rename_class(0, name)
        p.save_schema(s)
        assert p.schema.class_name(0) == "sky"
    assert _pixels(labelled) == before
    _reopens(labelled, 2)


def test_rename_to_own_name_in_other_case_keeps_pixels(labelled: Path) -> None:
    before = _pixels(labelled)
    with Project.open(labelled) as p:
        s = p.schema.copy()
        s.rename_class(1, "ROAD")
        p.save_schema(s)
        assert p.schema.class_name(1) == "ROAD"
    assert _pixels(labelled) == before
    _reopens(labelled, 2)


@pytest.mark.parametrize("name", ["x" * 5000, "caf\u00e9 \u65e5\u672c \U0001F600", "two\nlines", "nul\x00byte"],
                         ids=["very-long", "unicode-emoji", "newline", "nul"])
def test_add_class_with_odd_names_keeps_the_project_openable(labelled: Path, name: str) -> None:
    before = _pixels(labelled)
    with Project.open(labelled) as p:
        try:
            p.add_class(name)
        except WorkbenchError as exc:
            assert "class" in str(exc)
    assert _pixels(labelled) == before
    _reopens(labelled, 2)


def test_unicode_names_equal_after_normalisation_are_one_name(labelled: Path) -> None:
    # "café" typed with a precomposed é and with e + combining accent look identical
    with Project.open(labelled) as p:
        p.add_class("caf\u00e9")
        with pytest.raises(WorkbenchError, match="unique|already"):
            p.add_class("cafe\u0301")
    _reopens(labelled, 2)


def test_add_delete_add_never_reuses_pixels(labelled: Path) -> None:
    before = _pixels(labelled)
    with Project.open(labelled) as p:
        c = p.add_class("car")
        p.delete_class(c.id)
        c2 = p.add_class("car")
        assert c2.id != c.id
        assert p.read_label(p.find("a").id)[0, 0] == 1
    assert _pixels(labelled) == before


def test_delete_class_merged_into_an_unknown_id_is_refused(labelled: Path) -> None:
    before = _pixels(labelled)
    with Project.open(labelled) as p:
        with pytest.raises(WorkbenchError):
            p.delete_class(p.schema.by_index(1).id, merge_into="no-such-id")
    assert _pixels(labelled) == before


@pytest.mark.parametrize("index", [-1, 3, 200, 999])
def test_move_class_out_of_range_is_refused(labelled: Path, index: int) -> None:
    before = _pixels(labelled)
    with Project.open(labelled) as p:
        with pytest.raises(WorkbenchError):
            p.move_class(p.schema.by_index(0).id, index)
    assert _pixels(labelled) == before
    _reopens(labelled, 2)


# ----- 2. classes.json hand edits ---------------------------------------------------------------

def test_classes_json_ids_on_some_entries_only(labelled: Path) -> None:
    def edit(d):
        for c in d["classes"]:
            if c["index"] % 2:
                c.pop("id", None)
    _edit_classes(labelled, edit)
    before = _pixels(labelled)
    with Project.open(labelled) as p:
        ids = [c.id for c in p.schema.classes]
        assert all(ids) and len(set(ids)) == len(ids)
        p.add_class("car")
    assert _pixels(labelled) == before
    _reopens(labelled, 2)


def test_classes_json_void_class_removed_by_hand(labelled: Path) -> None:
    with Project.open(labelled) as p:
        p.save_label(p.find("c").id, _mask(3, rows=4), source="person")
    before = _pixels(labelled)
    _edit_classes(labelled, lambda d: d.update(classes=[c for c in d["classes"] if not c.get("void")]))
    with Project.open(labelled) as p:
        new = p.add_class("car")
        assert new.index != 3
        assert p.read_label(p.find("c").id)[0, 0] == 3
    assert _pixels(labelled) == before


def test_classes_json_index_gap_names_the_file(labelled: Path) -> None:
    def edit(d):
        for c in d["classes"]:
            if c["index"] == 2:
                c["index"] = 5
    _edit_classes(labelled, edit)
    with pytest.raises(InputError, match="classes.json"):
        Project.open(labelled)


def test_classes_json_with_10000_classes_names_the_file(labelled: Path) -> None:
    _edit_classes(labelled, lambda d: d.update(classes=[
        {"index": i, "name": f"c{i}", "color": [0, 0, 0]} for i in range(10_000)]))
    with pytest.raises(InputError, match="classes.json"):
        Project.open(labelled)


def test_classes_json_that_is_a_pipe_does_not_hang(labelled: Path) -> None:
    path = labelled / ".workbench" / "classes.json"
    path.unlink()
    os.mkfifo(path)
    code = ("import sys\nfrom workbench.project import Project\nfrom workbench.errors import WorkbenchError\n"
            "try:\n    Project.open(sys.argv[1])\nexcept WorkbenchError as e:\n    print('ERR', e)\n")
    r = subprocess.run([sys.executable, "-c", code, str(labelled)], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert "Traceback" not in r.stderr and "classes.json" in r.stdout


# ----- 3. re-import variants ----------------------------------------------------------------------

@pytest.fixture
def mask_dir(tmp_path: Path) -> Path:
    d = tmp_path / "masks"
    d.mkdir()
    for name, v in (("a", 0), ("b", 0), ("c", 0)):
        Image.fromarray(_mask(v)).save(d / f"{name}.png")
    return d


def test_ground_truth_import_never_touches_labels(labelled: Path, mask_dir: Path, capsys) -> None:
    before = _pixels(labelled)
    rc, out, err = _cli(capsys, "import", labelled, "--masks", mask_dir, "--as", "ground-truth")
    assert rc == 0
    assert _pixels(labelled) == before
    with Project.open(labelled) as p:
        assert all(r.has_ground_truth for r in p.images())


def test_second_import_of_the_same_masks_adds_no_version(labelled: Path, mask_dir: Path, capsys) -> None:
    _cli(capsys, "import", labelled, "--masks", mask_dir)
    with Project.open(labelled) as p:
        n = len(p.label_history(p.find("c").id))
    _cli(capsys, "import", labelled, "--masks", mask_dir)
    with Project.open(labelled) as p:
        assert len(p.label_history(p.find("c").id)) == n


def test_overwrite_then_restore_brings_back_the_persons_label(labelled: Path, mask_dir: Path, capsys) -> None:
    before = _pixels(labelled)["a.png"]
    rc, out, err = _cli(capsys, "import", labelled, "--masks", mask_dir, "--overwrite")
    assert rc == 0 and "a.png" in out + err
    with Project.open(labelled) as p:
        versions = p.label_history(p.find("a").id)
        k = versions[-1].version
    rc, out, err = _cli(capsys, "labels", labelled, "--restore", "a.png", "--version", k)
    assert rc == 0
    assert _pixels(labelled)["a.png"] == before


def test_import_from_the_projects_own_labels_folder(labelled: Path, capsys) -> None:
    before = _pixels(labelled)
    rc, out, err = _cli(capsys, "import", labelled, "--masks", labelled / ".workbench" / "labels", "--overwrite")
    assert rc in (0, 1, 2)
    assert _pixels(labelled) == before
    _reopens(labelled, 2)


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_import_masks_not_a_folder(labelled: Path, tmp_path: Path, capsys, kind: str) -> None:
    target = tmp_path / "nowhere"
    if kind == "file":
        target.write_text("x")
    before = _pixels(labelled)
    rc, out, err = _cli(capsys, "import", labelled, "--masks", target)
    assert rc == 2 and "nowhere" in err
    assert _pixels(labelled) == before


def test_import_masks_with_non_utf8_and_case_twins(labelled: Path, tmp_path: Path, capsys) -> None:
    d = tmp_path / "odd"
    d.mkdir()
    Image.fromarray(_mask(0)).save(os.fsdecode(os.fsencode(d) + b"/caf\xe9.png"), format="PNG")
    Image.fromarray(_mask(0)).save(d / "C.png")
    Image.fromarray(_mask(1)).save(d / "c.png")
    before = _pixels(labelled)
    rc, out, err = _cli(capsys, "import", labelled, "--masks", d)
    assert rc in (0, 1)
    after = _pixels(labelled)
    assert after["a.png"] == before["a.png"] and after["b.png"] == before["b.png"]
    _reopens(labelled)


def test_import_while_the_app_holds_the_project(labelled: Path, mask_dir: Path, capsys) -> None:
    before = _pixels(labelled)
    with Project.open(labelled):
        code = ("import sys\nfrom workbench import cli\nraise SystemExit(cli.main(sys.argv[1:]))\n")
        r = subprocess.run([sys.executable, "-c", code, "import", str(labelled), "--masks", str(mask_dir)],
                           capture_output=True, text=True, timeout=120,
                           env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert "Traceback" not in r.stderr and r.returncode == 2 and "open in another window/process" in r.stderr
    assert _pixels(labelled) == before


# ----- 4. the database in odd states -----------------------------------------------------------------

def test_database_replaced_by_a_directory(labelled: Path) -> None:
    db = labelled / ".workbench" / "project.sqlite"
    db.unlink()
    for suffix in ("-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    db.mkdir()
    before = _pixels(labelled)
    try:
        with Project.open(labelled) as p:
            assert sum(r.has_label for r in p.images()) == 2
    except WorkbenchError as exc:
        assert "project.sqlite" in str(exc)
    assert _pixels(labelled) == before


def test_database_from_another_project_copied_in(labelled: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    _write_images(other, ["x.png", "y.png"])
    with Project.open(other, schema=_schema()) as p:
        p.save_label(p.find("x").id, _mask(0), source="person")
    for suffix in ("", "-wal", "-shm"):
        Path(str(labelled / ".workbench" / "project.sqlite") + suffix).unlink(missing_ok=True)
    shutil.copy(other / ".workbench" / "project.sqlite", labelled / ".workbench" / "project.sqlite")
    before = _pixels(labelled)
    with Project.open(labelled) as p:
        names = sorted(r.name for r in p.images())
        assert names == ["a.png", "b.png", "c.png"]
        assert p.get(p.find("a").id).has_label and p.get(p.find("b").id).has_label
        assert not p.get(p.find("c").id).has_label
        assert p.get(p.find("b").id).status == Status.VERIFIED
    assert _pixels(labelled) == before


def _drop_db(folder: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(str(folder / ".workbench" / "project.sqlite") + suffix).unlink(missing_ok=True)


@pytest.mark.parametrize("forged", [
    {"format": 1, "written": 0, "images": {"a.png": ["nope", "bogus", None, None]}},
    {"format": 1, "written": "x", "images": {"../../etc/passwd": ["val", "verified", "import", 0]}},
    {"format": 1, "written": 0, "images": [1, 2, 3]},
    {"format": 99, "written": 0, "images": {"a.png": "val"}},
    {"format": 1, "written": 1e308, "images": {"a.png": ["val", "verified", "x" * 100_000, "NaN"]}},
], ids=["bad-values", "outside-name", "list", "future-format", "huge-fields"])
def test_forged_images_json_at_a_rebuild(labelled: Path, forged: dict) -> None:
    (labelled / ".workbench" / "images.json").write_text(json.dumps(forged))
    _drop_db(labelled)
    before = _pixels(labelled)
    with Project.open(labelled) as p:
        assert sum(r.has_label for r in p.images()) == 2
        for r in p.images():
            assert r.split.value in ("train", "val", "test")
            assert r.status in tuple(Status)
    assert not (labelled.parent / "etc").exists()
    assert _pixels(labelled) == before


@pytest.mark.parametrize("record", [
    {"status": "hacked", "source": "person", "updated": 1.0},
    {"status": "verified", "source": "x" * 1_000_000, "updated": "never"},
    {"status": ["verified"], "source": {"a": 1}, "updated": float("nan")},
], ids=["bad-status", "huge-source", "wrong-types"])
def test_forged_label_record_chunk_at_a_rebuild(labelled: Path, record: dict) -> None:
    path = labelled / ".workbench" / "labels" / "a.png"
    arr = np.asarray(Image.open(path))
    from PIL import PngImagePlugin
    info = PngImagePlugin.PngInfo()
    info.add_text("workbench", json.dumps(record))
    im = Image.fromarray(arr, mode="L")
    im.save(path, pnginfo=info)
    _drop_db(labelled)
    with Project.open(labelled) as p:
        r = p.get(p.find("a").id)
        assert r.has_label and r.status in (Status.EDITED, Status.VERIFIED)
        assert r.source is None or len(r.source) <= 4096
        p.save_label(r.id, _mask(2), source="person")
        assert p.read_label(r.id)[0, 0] == 2


def test_wal_left_alone_after_a_clean_close_is_harmless(labelled: Path) -> None:
    wal = Path(str(labelled / ".workbench" / "project.sqlite") + "-wal")
    wal.write_bytes(b"\0" * 4096)
    _reopens(labelled, 2)


# ----- 5. history folder damaged or forged --------------------------------------------------------

@pytest.fixture
def with_history(labelled: Path) -> Path:
    with Project.open(labelled) as p:
        p.save_label(p.find("b").id, _mask(0), source="person")  # keeps b's import as version 1
        assert len(p.label_history(p.find("b").id)) == 1
    return labelled


def _hist(folder: Path) -> Path:
    return folder / ".workbench" / "history" / "b"


@pytest.mark.parametrize("text", ["[" * 100_000, "[1, 2]", '{"version": "one"}', '{"version": 99, "stem": "zzz"}',
                                  '{"version": 1, "made": 1e999, "labelled": -5, "classes": 7}', "\xff\xfe"],
                         ids=["deep", "list", "version-string", "version-mismatch", "odd-numbers", "not-utf8"])
def test_hostile_history_sidecar(with_history: Path, capsys, text: str) -> None:
    side = next(_hist(with_history).glob("*.json"))
    side.write_text(text, errors="surrogateescape") if text != "\xff\xfe" else side.write_bytes(b"\xff\xfe")
    rc, out, err = _cli(capsys, "labels", with_history, "--history", "b.png")
    assert rc in (0, 2)
    rc, out, err = _cli(capsys, "labels", with_history, "--restore", "b.png", "--version", 1)
    assert rc in (0, 2)
    with Project.open(with_history) as p:  # saving still works and keeps a version
        p.save_label(p.find("b").id, _mask(1), source="import")


def test_history_sidecar_symlinked_outside(with_history: Path, tmp_path: Path, capsys) -> None:
    outside = tmp_path / "secret.json"
    outside.write_text(json.dumps({"version": 1, "source": "SECRET"}))
    side = next(_hist(with_history).glob("*.json"))
    side.unlink()
    side.symlink_to(outside)
    rc, out, err = _cli(capsys, "labels", with_history, "--history", "b.png")
    assert rc in (0, 2)
    with Project.open(with_history) as p:
        for _ in range(3):
            p.save_label(p.find("b").id, _mask(1), source="import")
            p.save_label(p.find("b").id, _mask(2), source="import")
    assert json.loads(outside.read_text())["source"] == "SECRET"


def test_history_folder_symlinked_outside_is_not_written_through(with_history: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    hist = _hist(with_history)
    shutil.rmtree(hist)
    hist.symlink_to(outside, target_is_directory=True)
    with Project.open(with_history) as p:
        before = _pixels(with_history)["b.png"]
        with pytest.raises(WorkbenchError, match="symbolic link"):
            p.save_label(p.find("b").id, _mask(1), source="import")
    assert _pixels(with_history)["b.png"] == before  # not replaced: it could not be kept
    assert list(outside.iterdir()) == []


def test_history_png_huge_garbage(with_history: Path, capsys) -> None:
    png = next(_hist(with_history).glob("*.png"))
    with open(png, "wb") as f:
        f.truncate(30 * 1024 * 1024)
    rc, out, err = _cli(capsys, "labels", with_history, "--history", "b.png")
    assert rc == 0
    before = _pixels(with_history)
    rc, out, err = _cli(capsys, "labels", with_history, "--restore", "b.png", "--version", 1)
    assert rc == 2 and "000001.png" in err
    assert _pixels(with_history) == before


def test_history_stem_folder_is_a_file(with_history: Path) -> None:
    hist = _hist(with_history)
    shutil.rmtree(hist)
    hist.write_text("oops")
    before = _pixels(with_history)["b.png"]
    with Project.open(with_history) as p:
        with pytest.raises(WorkbenchError, match="history"):
            p.save_label(p.find("b").id, _mask(1), source="import")
    assert _pixels(with_history)["b.png"] == before


def test_history_with_a_huge_version_number(with_history: Path) -> None:
    hist = _hist(with_history)
    png = next(hist.glob("*.png"))
    side = next(hist.glob("*.json"))
    big = 10 ** 30
    data = json.loads(side.read_text())
    data["version"] = big
    (hist / f"{big}.json").write_text(json.dumps(data))
    shutil.copy(png, hist / f"{big}.png")
    with Project.open(with_history) as p:
        p.save_label(p.find("b").id, _mask(1), source="import")
        versions = p.label_history(p.find("b").id)
        assert versions


# ----- 6. names ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["new\nline.png", "x" * 240 + ".png", " .png", "A.png"],
                         ids=["newline", "very-long", "space-stem", "case-twin"])
def test_odd_image_names_label_history_and_cli(folder: Path, capsys, name: str) -> None:
    _write_images(folder, [name])
    with Project.open(folder, schema=_schema()) as p:
        i = p.find(name).id
        p.save_label(i, _mask(1), source="import")
        p.save_label(i, _mask(2), source="person")
        assert len(p.label_history(i)) == 1
        if name == "A.png":
            assert p.find("a.png").id != i
    rc, out, err = _cli(capsys, "labels", folder)
    assert rc == 0
    rc, out, err = _cli(capsys, "labels", folder, "--restore", name, "--version", 1)
    assert rc == 0
    with Project.open(folder) as p:
        assert p.read_label(p.find(name).id)[0, 0] == 1


def test_non_utf8_image_name_history_and_restore(folder: Path, capsys) -> None:
    _write_images(folder, [b"caf\xe9.png"])
    name = os.fsdecode(b"caf\xe9.png")
    with Project.open(folder, schema=_schema()) as p:
        i = p.find(name).id
        p.save_label(i, _mask(1), source="import")
        p.save_label(i, _mask(2), source="person")
    rc, out, err = _cli(capsys, "labels", folder, "--history", name)
    assert rc == 0
    rc, out, err = _cli(capsys, "labels", folder, "--restore", name, "--version", 1)
    assert rc == 0


# ----- 7. read-only states (simulated: the test runs as root) -------------------------------------

def test_labels_folder_replaced_by_a_file(labelled: Path) -> None:
    labels = labelled / ".workbench" / "labels"
    saved = labelled.parent / "labels-backup"
    shutil.move(labels, saved)
    labels.write_text("not a folder")
    try:
        with Project.open(labelled) as p:
            with pytest.raises(WorkbenchError, match="labels"):
                p.save_label(p.find("c").id, _mask(1), source="person")
    except WorkbenchError as exc:
        assert "labels" in str(exc)
    labels.unlink()
    shutil.move(saved, labels)
    _reopens(labelled, 2)


# ----- 8. checkpoints with forged metadata ---------------------------------------------------------

@pytest.fixture(scope="module")
def good_ckpt(tmp_path_factory) -> tuple[Path, dict, dict]:
    from safetensors.torch import load_file
    from workbench.ml import checkpoint
    from workbench.ml.models import ModelConfig, build_model
    folder = tmp_path_factory.mktemp("ckpt")
    s = _schema()
    model = build_model(ModelConfig("unet", "resnet18"), s.num_classes)
    meta = checkpoint.CheckpointMeta(arch="unet", encoder="resnet18", num_classes=s.num_classes,
                                     schema=s.to_dict(), train={"crop": 64, "batch_size": 2})
    path = folder / "good.safetensors"
    checkpoint.save_checkpoint(path, model, meta)
    return path, json.loads(meta.to_json()), load_file(str(path))


def _forge(folder: Path, data: dict, weights: dict, name: str = "forged") -> Path:
    from safetensors.torch import save_file
    from workbench.ml import checkpoint
    path = folder / f"{name}.safetensors"
    save_file(weights, str(path), metadata={checkpoint.METADATA_KEY: json.dumps(data)})
    return path


FORGED_META = [
    ("history", [{"epoch": 1, "loss": [[[0.1] * 1000] * 1000]}]),
    ("history", [{"k": "x" * 20_000_000}]),
    ("schema", {"classes": [{"index": i, "name": f"c{i}", "color": [0, 0, 0]} for i in range(10_000)]}),
    ("num_classes", -3),
    ("train", {"crop": -64, "batch_size": -2}),
    ("metrics", {"val_miou": float("nan")}),
    ("mean", [float("nan"), 0.5, 0.5]),
    ("std", [0.0, 0.0, 0.0]),
]


@pytest.mark.parametrize(("field", "value"), FORGED_META,
                         ids=["nested-history", "huge-history-string", "10000-classes", "negative-classes",
                              "negative-train", "nan-metric", "nan-mean", "zero-std"])
def test_forged_checkpoint_fields(good_ckpt, tmp_path: Path, capsys, field: str, value: object) -> None:
    from workbench.ml import checkpoint
    from workbench.ml.inference import Predictor
    _, data, weights = good_ckpt
    path = _forge(tmp_path, {**data, field: value}, weights)
    try:
        meta = checkpoint.read_meta(path)
    except InputError as exc:
        assert "forged.safetensors" in str(exc)
        return
    if field in ("mean", "std"):  # accepted metadata must not predict garbage silently
        with pytest.raises(InputError, match=field):
            Predictor.from_checkpoint(path, device="cpu")
    if field == "metrics":  # registered (here: recovered from its file), the project's JSON stays valid
        folder = tmp_path / "p"
        folder.mkdir()
        _write_images(folder, ["a.png"])
        with Project.open(folder, schema=_schema()):
            pass
        shutil.copy(path, folder / ".workbench" / "models" / "v0001.safetensors") \
            if (folder / ".workbench" / "models").is_dir() else \
            ((folder / ".workbench" / "models").mkdir(), shutil.copy(path, folder / ".workbench" / "models" / "v0001.safetensors"))
        with Project.open(folder) as p:
            assert [m.version for m in p.models()] == [1]
        rc = cli.main(["models", str(folder), "--json"])
        out = capsys.readouterr().out
        assert rc == 0
        json.loads(out, parse_constant=lambda c: pytest.fail(f"invalid JSON constant {c}"))


def _project_with_models(folder: Path, good_ckpt, n: int = 2, metrics: dict | None = None) -> None:
    with Project.open(folder, schema=_schema()) as p:
        for _ in range(n):
            p.register_model(good_ckpt[0], metrics=metrics or {})


def test_forged_model_file_claiming_another_version(labelled: Path, good_ckpt, tmp_path: Path) -> None:
    _, data, weights = good_ckpt
    _project_with_models(labelled, good_ckpt, 1)
    models = labelled / ".workbench" / "models"
    forged = {**data, "metrics": {"registered": {"version": 1, "current": True}, "val_miou": 0.99},
              "version": 1, "parent": 7}
    path = _forge(models, forged, weights, name="v0002")
    assert path.name == "v0002.safetensors"
    with Project.open(labelled) as p:
        versions = [m.version for m in p.models()]
        assert versions == [1, 2]
        assert p.current_model().version == 1


def test_models_json_with_nan_metrics(labelled: Path, good_ckpt, capsys) -> None:
    _project_with_models(labelled, good_ckpt, 1)
    with Project.open(labelled) as p:
        try:
            p.update_model_metrics(1, {"val_miou": float("nan")})
        except WorkbenchError:
            pass
    rc, out, err = _cli(capsys, "models", labelled, "--json")
    assert rc == 0
    json.loads(out, parse_constant=lambda c: pytest.fail(f"invalid JSON constant {c}"))


# ----- 9. models CLI misuse ------------------------------------------------------------------------------

def test_use_a_deleted_version(labelled: Path, good_ckpt, capsys) -> None:
    _project_with_models(labelled, good_ckpt, 2)
    rc, out, err = _cli(capsys, "models", labelled, "--delete", 1)
    assert rc == 0
    rc, out, err = _cli(capsys, "models", labelled, "--use", 1)
    assert rc == 2 and "no model version 1" in err


def test_note_with_huge_text(labelled: Path, good_ckpt, capsys) -> None:
    _project_with_models(labelled, good_ckpt, 1)
    rc, out, err = _cli(capsys, "models", labelled, "--note", 1, "x" * 2_000_000)
    assert rc in (0, 2)
    if rc == 2:
        assert "--note" in err or "note" in err
    rc, out, err = _cli(capsys, "models", labelled)
    assert rc == 0 and len(out) < 200_000


@pytest.mark.parametrize("text", ["", "line1\nline2\x00", "\udce9 bad"], ids=["empty", "control", "surrogate"])
def test_note_with_odd_text(labelled: Path, good_ckpt, capsys, text: str) -> None:
    _project_with_models(labelled, good_ckpt, 1)
    rc, out, err = _cli(capsys, "models", labelled, "--note", 1, text)
    if text.startswith("\udce9"):  # undecodable byte from a non-UTF-8 console: named, not a traceback
        assert rc == 2 and "not UTF-8 text (byte 0xe9" in err
    else:
        assert rc == 0
    rc, out, err = _cli(capsys, "models", labelled, "--json")
    assert rc == 0
    json.loads(out)


def test_use_and_delete_the_same_version_at_once(labelled: Path, good_ckpt, capsys) -> None:
    _project_with_models(labelled, good_ckpt, 2)
    rc, out, err = _cli(capsys, "models", labelled, "--use", 1, "--delete", 1)
    assert rc == 2
    with Project.open(labelled) as p:
        assert [m.version for m in p.models()] == [1, 2]


# ----- 10. training options ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("flag", "value"), [("--epochs", "0"), ("--minutes", "0"), ("--lr", "0"), ("--crop", "7"),
                                             ("--batch-size", "0"), ("--crop", "-64"), ("--lr", "-1e-3"),
                                             ("--epochs", "1e3")])
def test_bad_training_option_is_refused_up_front(labelled: Path, capsys, flag: str, value: str) -> None:
    rc, out, err = _cli(capsys, "train", labelled, flag, value, "--encoder-weights", "none", "--crop" if flag != "--crop" else "--seed",
                        "64" if flag != "--crop" else "0")
    assert rc == 2 and flag in err
    assert not list((labelled / ".workbench" / "models").glob("*.safetensors")) if (labelled / ".workbench" / "models").exists() else True


def test_train_when_val_has_no_labels(labelled: Path, capsys) -> None:
    with Project.open(labelled) as p:
        p.set_split(p.find("c").id, "val")  # c has no label
    rc, out, err = _cli(capsys, "train", labelled, "--encoder-weights", "none", "--encoder", "resnet18",
                        "--crop", "64", "--epochs", "1", "--batch-size", "2", "--threads", "1", "--workers", "0")
    assert rc in (0, 2)
    if rc == 0:
        assert "val" in out + err
    _reopens(labelled, 2)


# ----- 11. more: odd files where the project expects a label, a version or a record ---------------

_ROOT = Path(__file__).resolve().parents[2]

_SAVE_B = ("import sys\nimport numpy as np\nfrom workbench.project import Project\n"
           "from workbench.errors import WorkbenchError\n"
           "try:\n    with Project.open(sys.argv[1]) as p:\n"
           "        m = np.full((24, 32), 255, np.uint8); m[:] = 1\n"
           "        p.save_label(p.find('b').id, m, source='import')\n    print('SAVED')\n"
           "except WorkbenchError as e:\n    print('ERR', e)\n")


def _run(code: str, *args: object, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONPATH": str(_ROOT)})


def test_newest_history_version_that_is_a_pipe_does_not_hang_a_save(with_history: Path) -> None:
    png = next(_hist(with_history).glob("*.png"))
    png.unlink()
    os.mkfifo(png)
    r = _run(_SAVE_B, with_history)
    assert "Traceback" not in r.stderr and ("SAVED" in r.stdout or "ERR" in r.stdout)


def test_label_file_that_is_a_pipe_does_not_hang_a_save(labelled: Path) -> None:
    label = labelled / ".workbench" / "labels" / "b.png"
    label.unlink()
    os.mkfifo(label)
    r = _run(_SAVE_B, labelled)
    assert "Traceback" not in r.stderr and "ERR" in r.stdout and "b.png" in r.stdout
    assert label.is_fifo()  # not replaced: it could not be kept in the history


def test_restore_of_a_version_that_is_a_pipe_does_not_hang(with_history: Path) -> None:
    png = next(_hist(with_history).glob("*.png"))
    png.unlink()
    os.mkfifo(png)
    code = ("import sys\nfrom workbench import cli\nraise SystemExit(cli.main(sys.argv[1:]))\n")
    r = _run(code, "labels", with_history, "--restore", "b.png", "--version", 1)
    assert "Traceback" not in r.stderr and r.returncode == 2 and "000001.png" in r.stderr


def test_classes_json_dangling_link_is_named_not_replaced(labelled: Path) -> None:
    path = labelled / ".workbench" / "classes.json"
    path.unlink()
    path.symlink_to(labelled / "gone.json")
    with pytest.raises(InputError, match="class file not found"):
        Project.open(labelled)
    assert path.is_symlink()


def test_history_version_of_another_size(with_history: Path, capsys) -> None:
    png = next(_hist(with_history).glob("*.png"))
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(png)
    before = _pixels(with_history)
    rc, out, err = _cli(capsys, "labels", with_history, "--restore", "b.png", "--version", 1)
    assert rc == 2 and "10x10" in err
    assert _pixels(with_history) == before


@pytest.mark.parametrize("name", ["classes.layout.json", "mask-values.json", "schema-change.json",
                                  "models/notes.json", "settings.json"])
@pytest.mark.parametrize("content", [b"\x00garbage{", b"[" * 100_000, b'{"a": NaN}'], ids=["garbage", "deep", "nan"])
def test_damaged_side_files_open_and_add_class(labelled: Path, name: str, content: bytes, capsys) -> None:
    path = labelled / ".workbench" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(content)
    before = _pixels(labelled)
    try:
        with Project.open(labelled) as p:
            assert sum(r.has_label for r in p.images()) == 2
            p.add_class("car")
    except WorkbenchError as exc:
        assert name.split("/")[-1] in str(exc)
    assert _pixels(labelled) == before
    rc, out, err = _cli(capsys, "labels", labelled)
    assert rc in (0, 2)
    rc, out, err = _cli(capsys, "models", labelled)
    assert rc in (0, 2)


def test_history_name_starting_with_a_dash(folder: Path, capsys) -> None:
    _write_images(folder, ["-rf.png"])
    with Project.open(folder, schema=_schema()) as p:
        i = p.find("-rf.png").id
        p.save_label(i, _mask(1), source="import")
        p.save_label(i, _mask(2), source="person")
    rc, out, err = _cli(capsys, "labels", folder, "--history=-rf.png")
    assert rc == 0 and "import" in out


def test_current_model_file_deleted_by_hand(labelled: Path, good_ckpt, capsys) -> None:
    _project_with_models(labelled, good_ckpt, 2)
    (labelled / ".workbench" / "models" / "v0002.safetensors").unlink()
    rc, out, err = _cli(capsys, "models", labelled)
    assert rc in (0, 2)
    rc, out, err = _cli(capsys, "predict", labelled)
    assert rc == 2 and "v0002.safetensors" in err
    rc, out, err = _cli(capsys, "models", labelled, "--use", 2)
    assert rc == 2 and "v0002.safetensors" in err
    _reopens(labelled, 2)


def test_clear_a_label_whose_file_was_deleted_by_hand(labelled: Path) -> None:
    (labelled / ".workbench" / "labels" / "a.png").unlink()
    with Project.open(labelled) as p:
        a = p.find("a").id
        p.clear_label(a)
        assert not p.get(a).has_label
    _reopens(labelled, 1)


def test_restore_while_the_image_file_is_gone(with_history: Path, capsys) -> None:
    (with_history / "b.png").unlink()
    rc, out, err = _cli(capsys, "labels", with_history, "--restore", "b.png", "--version", 1)
    assert rc == 2 and "b.png" in err
    assert (with_history / ".workbench" / "labels" / "b.png").exists()


def test_model_notes_survive_a_lost_database(labelled: Path, good_ckpt, capsys) -> None:
    _project_with_models(labelled, good_ckpt, 2)
    rc, out, err = _cli(capsys, "models", labelled, "--note", 1, "the good one, caf\u00e9")
    assert rc == 0
    _drop_db(labelled)
    with Project.open(labelled) as p:
        assert [m.version for m in p.models()] == [1, 2]
        assert p.model_notes()[1] == "the good one, caf\u00e9"


_OPEN_AND_USE = ("import sys\nfrom workbench.project import Project\nfrom workbench.errors import WorkbenchError\n"
                 "try:\n    with Project.open(sys.argv[1]) as p:\n"
                 "        n = sum(r.has_label for r in p.images())\n"
                 "        try:\n            p.settings()\n        except WorkbenchError as e:\n            print('ERR', e)\n"
                 "        p.add_class('car'); p.set_split(p.find('c').id, 'val'); print('LABELS', n)\n"
                 "except WorkbenchError as e:\n    print('ERR', e)\n")


@pytest.mark.parametrize("name", ["images.json", "settings.json", "classes.layout.json", "mask-values.json",
                                  "schema-change.json", "models/notes.json", "project.sqlite"])
def test_state_file_that_is_a_pipe_does_not_hang(labelled: Path, name: str) -> None:
    path = labelled / ".workbench" / name
    path.parent.mkdir(exist_ok=True)
    if name == "project.sqlite":
        _drop_db(labelled)
    path.unlink(missing_ok=True)
    os.mkfifo(path)
    r = _run(_OPEN_AND_USE, labelled, timeout=60)
    assert "Traceback" not in r.stderr, r.stderr[-2000:]
    assert "LABELS 2" in r.stdout or name.split("/")[-1] in r.stdout

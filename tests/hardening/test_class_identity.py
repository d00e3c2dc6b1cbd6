"""Issue 8.1: classes have a stable identity; pixels change meaning only by an explicit move or delete.

The reported failure: classes were paired by name, so renaming class 0 to the name of
class 3 and then class 3 to another name read as a class move and rewrote every label.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from workbench.classes import UNLABELLED, ClassInfo, ClassSchema
from workbench.errors import InputError, WorkbenchError
from workbench.ml.checkpoint import CheckpointMeta, class_match, load_checkpoint, save_checkpoint
from workbench.ml.models import ModelConfig, build_model
from workbench.project import Project

REPO = Path(__file__).resolve().parents[2]
H, W = 24, 32
NAMES = ["Sky", "Building", "Pole", "Road"]


def _schema(void: bool = False) -> ClassSchema:
    infos = [ClassInfo(i, n, (40 * i, 200 - 40 * i, 90)) for i, n in enumerate(NAMES)]
    if void:
        infos.append(ClassInfo(len(NAMES), "Void", (0, 0, 0), void=True))
    return ClassSchema(infos, len(NAMES) if void else None)


def _masks(n: int = 3, values=(0, 1, 2, 3, 255)) -> list[np.ndarray]:
    rng = np.random.default_rng(8)
    out = []
    for _ in range(n):
        m = rng.choice(np.array(values, np.uint8), size=(H, W))
        m[0, : len(values)] = values  # every value present in every mask
        out.append(m)
    return out


@pytest.fixture
def project_folder(tmp_path: Path):
    """Three images labelled with every class (and 255); ground truth for the first."""
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8)).save(folder / f"im{i}.png")

    def make(schema: ClassSchema | None = None,
             masks: list[np.ndarray] | None = None) -> dict[str, np.ndarray]:
        masks = masks if masks is not None else _masks()
        with Project.open(folder, schema=schema or _schema()) as p:
            for rec, m in zip(p.images(), masks):
                p.save_label(rec.id, m)
            p.save_ground_truth(p.images()[0].id, masks[0])
            return {rec.name: m for rec, m in zip(p.images(), masks)}

    make.folder = folder
    return make


def _label_bytes(folder: Path) -> dict[str, bytes]:
    state = folder / ".workbench"
    return {p.relative_to(state).as_posix(): p.read_bytes()
            for sub in ("labels", "groundtruth") for p in sorted((state / sub).glob("*.png"))}


def _remap(mask: np.ndarray, moves: dict[int, int]) -> np.ndarray:
    lut = np.arange(256, dtype=np.uint8)
    for src, dst in moves.items():
        lut[src] = dst
    return lut[mask]


def _names(p: Project, mask: np.ndarray) -> np.ndarray:
    """What each pixel means, by class id ('' = not labelled)."""
    lut = np.array([""] * 256, dtype=object)
    for c in p.schema.classes:
        lut[c.index] = c.id
    return lut[mask]


# ----- the reported sequence ---------------------------------------------------------------
def test_renaming_class_0_to_the_name_of_class_3_is_refused(project_folder):
    project_folder()
    folder = project_folder.folder
    before = _label_bytes(folder)
    with Project.open(folder) as p:
        schema = p.schema.copy()
        with pytest.raises(ValueError) as err:
            schema.rename_class(0, "Road")
        assert "'Sky' (class 0)" in str(err.value) and "class 3 is already called 'Road'" in str(err.value)
        # A schema built by hand with the duplicate cannot even exist, so it cannot be saved.
        data = p.schema.to_dict()
        data["classes"][0]["name"] = "road "
        with pytest.raises(InputError, match="two classes are named"):
            ClassSchema.from_dict(data, "edited schema")
        assert p.schema.names == NAMES
    assert _label_bytes(folder) == before


def test_rename_3_away_then_0_to_its_old_name_changes_no_pixel(project_folder):
    originals = project_folder()
    folder = project_folder.folder
    before = _label_bytes(folder)
    with Project.open(folder) as p:
        ids = [c.id for c in p.schema.classes]
        for index, name in [(3, "Highway"), (0, "Road")]:
            schema = p.schema.copy()
            schema.rename_class(index, name)
            p.save_schema(schema)
        assert p.schema.names == ["Road", "Building", "Pole", "Highway"]
        assert [c.id for c in p.schema.classes] == ids  # renames never change identity
        for rec in p.images():
            np.testing.assert_array_equal(p.read_label(rec.id), originals[rec.name])
    assert _label_bytes(folder) == before  # not one mask file rewritten
    with Project.open(folder) as p:  # and it is what is on disk
        assert p.schema.names == ["Road", "Building", "Pole", "Highway"]
        assert [c.id for c in p.schema.classes] == ids


def test_swapping_two_names_in_one_save_changes_no_pixel(project_folder):
    project_folder()
    folder = project_folder.folder
    before = _label_bytes(folder)
    with Project.open(folder) as p:
        data = p.schema.to_dict()
        data["classes"][0]["name"], data["classes"][3]["name"] = "Road", "Sky"
        p.save_schema(ClassSchema.from_dict(data))
        assert p.schema.names == ["Road", "Building", "Pole", "Sky"]
    assert _label_bytes(folder) == before


def test_a_class_moves_only_when_its_id_moves(project_folder):
    """save_schema with the same ids at other indices is a move: pixels follow their class."""
    originals = project_folder()
    with Project.open(project_folder.folder) as p:
        before = {rec.name: _names(p, p.read_label(rec.id)) for rec in p.images()}
        data = p.schema.to_dict()
        for item in data["classes"]:
            item["index"] = 3 - item["index"]
        p.save_schema(ClassSchema.from_dict(data))
        assert p.schema.names == NAMES[::-1]
        for rec in p.images():
            label = p.read_label(rec.id)
            assert not np.array_equal(label, originals[rec.name])
            np.testing.assert_array_equal(_names(p, label), before[rec.name])


# ----- values the schema lost: never reused ------------------------------------------------
def _drop_by_hand(folder: Path, keep: int) -> None:
    path = folder / ".workbench" / "classes.json"
    data = json.loads(path.read_text())
    data["classes"] = data["classes"][:keep]
    path.write_text(json.dumps(data))


def test_add_class_after_a_hand_edit_dropped_a_used_class(project_folder):
    originals = project_folder()
    folder = project_folder.folder
    _drop_by_hand(folder, keep=3)  # "Road" (3) removed from classes.json; labels still hold 3
    with Project.open(folder) as p:
        assert p.schema.names == NAMES[:3]
        held = p.mask_usage().values()
        assert 3 in held
        info = p.add_class("Car")
        assert info.index not in held  # the new class takes no value stored masks hold
        assert info.index == 4
        assert p.schema.names == ["Sky", "Building", "Pole", "class 3 (found in labels)", "Car"]
        assert any("hold value 3" in line and "classes.json edited by hand" in line for line in p.problems)
        for rec in p.images():  # no pixel changed, and none is "Car"
            label = p.read_label(rec.id)
            np.testing.assert_array_equal(label, originals[rec.name])
            assert not (label == info.index).any()
    with Project.open(folder) as p:  # the found class is in classes.json now: the person can rename it
        assert p.schema.by_index(3).name == "class 3 (found in labels)"


def test_a_lost_value_far_from_the_classes_is_retired_and_stays_apart(project_folder):
    masks = _masks(values=(0, 1, 2, 3, 6, 255))
    with_other = ClassSchema([*_schema().classes, ClassInfo(6, "Other", (5, 5, 5), void=True)])
    originals = project_folder(schema=with_other, masks=masks)
    folder = project_folder.folder
    _drop_by_hand(folder, keep=2)  # classes 0, 1 left; labels hold 2, 3 and 6
    with Project.open(folder) as p:
        p.add_class("Car")  # 2 and 3 become found classes, 6 a retired (void) value
        assert p.schema.names[-1] == "Car" and p.schema.by_name("Car").index == 4
        assert p.schema.retired == [6] and 6 in p.schema.ignore_values
        for name in ("Bus", "Truck"):  # Truck needs index 6: the retired value moves out of its way
            p.add_class(name)
        truck = p.schema.by_name("Truck")
        assert truck.index == 6 and p.schema.retired == [7]
        for rec in p.images():
            label = p.read_label(rec.id)
            assert not (label == truck.index).any()
            np.testing.assert_array_equal(label == 7, originals[rec.name] == 6)  # still apart, never Truck


def test_leaving_out_a_class_masks_hold_is_refused(project_folder):
    project_folder()
    folder = project_folder.folder
    before = _label_bytes(folder)
    with Project.open(folder) as p:
        data = p.schema.to_dict()
        data["classes"] = data["classes"][:3]
        with pytest.raises(WorkbenchError) as err:
            p.save_schema(ClassSchema.from_dict(data))
        assert "'Road' (class 3) is left out" in str(err.value) and "delete_class" in str(err.value)
        assert "classes.json" in str(err.value)
        assert p.schema.names == NAMES
    assert _label_bytes(folder) == before
    with Project.open(folder) as p:
        assert p.schema.names == NAMES


def test_a_new_class_on_a_value_masks_hold_is_refused(project_folder):
    project_folder()
    folder = project_folder.folder
    _drop_by_hand(folder, keep=3)
    with Project.open(folder) as p:
        schema = ClassSchema([*p.schema.classes, ClassInfo(3, "Car", (1, 1, 1))])
        with pytest.raises(WorkbenchError, match="would give it to 'Car'"):
            p.save_schema(schema)
        assert p.schema.names == NAMES[:3]


def test_leaving_out_an_unused_class_is_fine(project_folder):
    project_folder(masks=_masks(values=(0, 1, 2, 255)))
    with Project.open(project_folder.folder) as p:
        data = p.schema.to_dict()
        data["classes"] = data["classes"][:3]
        p.save_schema(ClassSchema.from_dict(data))
        assert p.schema.names == NAMES[:3]


# ----- explicit delete and move -----------------------------------------------------------------
def test_delete_makes_pixels_unlabelled_and_shifts_the_classes_above(project_folder):
    originals = project_folder()
    with Project.open(project_folder.folder) as p:
        ids = {c.name: c.id for c in p.schema.classes}
        files, pixels = p.class_usage(ids["Building"])
        assert files == ["groundtruth/im0.png", "labels/im0.png", "labels/im1.png", "labels/im2.png"]
        in_gt = int((originals["im0.png"] == 1).sum())
        assert pixels == sum(int((m == 1).sum()) for m in originals.values()) + in_gt
        rewritten = p.delete_class(ids["Building"])
        assert len(rewritten) == 4
        assert p.schema.names == ["Sky", "Pole", "Road"] and p.schema.by_name("Road").id == ids["Road"]
        for rec in p.images():
            o = originals[rec.name]
            expected = _remap(o, {1: UNLABELLED, 2: 1, 3: 2})
            np.testing.assert_array_equal(p.read_label(rec.id), expected)
        np.testing.assert_array_equal(p.read_ground_truth(p.images()[0].id),
                                      p.read_label(p.images()[0].id))


def test_delete_merging_into_another_class(project_folder):
    originals = project_folder()
    with Project.open(project_folder.folder) as p:
        ids = {c.name: c.id for c in p.schema.classes}
        p.delete_class(ids["Pole"], merge_into=ids["Road"])
        assert p.schema.names == ["Sky", "Building", "Road"]
        for rec in p.images():
            o = originals[rec.name]
            expected = np.where((o == 2) | (o == 3), 2, o).astype(np.uint8)
            np.testing.assert_array_equal(p.read_label(rec.id), expected)
        with pytest.raises(WorkbenchError, match="into itself"):
            p.delete_class(ids["Sky"], merge_into=ids["Sky"])
        with pytest.raises(WorkbenchError, match="no class with id 'nope'"):
            p.delete_class("nope")


def test_delete_a_void_class_and_the_last_class(project_folder):
    originals = project_folder(schema=_schema(void=True), masks=_masks(values=(0, 1, 2, 3, 4, 255)))
    with Project.open(project_folder.folder) as p:
        p.delete_class(p.schema.by_name("Void").id)
        assert p.schema.ignore_index is None and p.schema.names == NAMES
        for rec in p.images():
            o = originals[rec.name]
            np.testing.assert_array_equal(p.read_label(rec.id), np.where(o == 4, UNLABELLED, o))
        for name in NAMES[1:]:
            p.delete_class(p.schema.by_name(name).id)
        with pytest.raises(WorkbenchError, match="only class that is not void"):
            p.delete_class(p.schema.by_name("Sky").id)


def test_move_class_renumbers_and_every_pixel_keeps_its_class(project_folder):
    project_folder()
    with Project.open(project_folder.folder) as p:
        before = {rec.name: _names(p, p.read_label(rec.id)) for rec in p.images()}
        p.move_class(p.schema.by_name("Road").id, 0)
        assert p.schema.names == ["Road", "Sky", "Building", "Pole"]
        for rec in p.images():
            np.testing.assert_array_equal(_names(p, p.read_label(rec.id)), before[rec.name])
        with pytest.raises(WorkbenchError, match="index must be 0..3"):
            p.move_class(p.schema.by_name("Road").id, 9)


def test_read_only_project_refuses_class_changes(project_folder):
    project_folder()
    with Project.open(project_folder.folder) as first, Project.open(project_folder.folder) as second:
        assert second.read_only
        first_id = second.schema.classes[0].id
        for change in (lambda: second.add_class("x"), lambda: second.delete_class(first_id),
                       lambda: second.move_class(first_id, 1)):
            with pytest.raises(WorkbenchError, match="read-only"):
                change()
        assert first.schema.names == NAMES


# ----- a crash in the middle of a delete -------------------------------------------------------
CRASH_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    from workbench.project import Project
    folder, cut, log = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    real, done = os.replace, [0]
    def replace_then_maybe_die(src, dst):
        real(src, dst)
        done[0] += 1
        with open(log, "a") as f:  # what was replaced before the kill: the parent reads it
            f.write(os.path.basename(os.fsdecode(dst)) + "\\n")
        if done[0] >= cut:
            os.kill(os.getpid(), signal.SIGKILL)
    with Project.open(folder) as p:
        os.replace = replace_then_maybe_die
        p.delete_class(p.schema.by_name("Building").id, merge_into=p.schema.by_name("Road").id)
    print("finished")
""")


@pytest.mark.parametrize("cut", [1, 3, 5, 7, 9, 10, 11, 13, 15, 50])
def test_a_crash_during_delete_is_finished_or_undone_at_the_next_open(project_folder, cut, tmp_path):
    """Killed after the Nth file replace of a delete (label history, masks staged, journal, renames,
    schema): all of it or none of it, and the journal's replace is the commit point."""
    originals = project_folder()
    folder = project_folder.folder
    env = dict(os.environ, PYTHONPATH=str(REPO))
    log = tmp_path / "replaced.txt"
    run = subprocess.run([sys.executable, "-c", CRASH_SCRIPT, str(folder), str(cut), str(log)],
                         cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode in (-9, 0), run.stderr
    assert (run.returncode == 0) == (cut == 50), (cut, run.returncode, run.stderr)
    with Project.open(folder) as p:
        done = p.schema.by_name("Building") is None
        assert (folder / ".workbench" / "schema-change.json").exists() is False
        assert not list((folder / ".workbench").rglob("*.renumber"))
        for rec in p.images():
            o = originals[rec.name]
            if done:   # all of it: Building merged into Road, Pole and Road one index down
                expected = _remap(o, {1: 2, 2: 1, 3: 2})
            else:      # none of it
                expected = o
            np.testing.assert_array_equal(p.read_label(rec.id), expected)
            if rec.has_ground_truth:
                np.testing.assert_array_equal(p.read_ground_truth(rec.id), expected)
        assert p.schema.names == (["Sky", "Pole", "Road"] if done else NAMES)
    replaced = log.read_text().split() if log.exists() else []
    assert done == ("schema-change.json" in replaced)  # the journal's replace is the commit point


# ----- old files without ids -------------------------------------------------------------------
def test_an_old_classes_json_without_ids_gets_stable_ids_saved_on_the_next_save(project_folder):
    project_folder()
    folder = project_folder.folder
    path = folder / ".workbench" / "classes.json"
    data = json.loads(path.read_text())
    for item in data["classes"]:
        item.pop("id")
    path.write_text(json.dumps(data))
    with Project.open(folder) as p:
        ids = [c.id for c in p.schema.classes]
    assert "id" not in path.read_text()  # opening writes nothing
    with Project.open(folder) as p:
        assert [c.id for c in p.schema.classes] == ids  # the same ids every time
        schema = p.schema.copy()
        schema.rename_class(0, "Heaven")
        p.save_schema(schema)
    assert [item["id"] for item in json.loads(path.read_text())["classes"]] == ids


# ----- checkpoints: matched by id --------------------------------------------------------------
@pytest.fixture(scope="module")
def small_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(ModelConfig("unet", "resnet18"), len(NAMES)).eval()


def _save(path: Path, model: torch.nn.Module, schema: ClassSchema, *, strip_ids: bool = False) -> Path:
    data = schema.to_dict()
    if strip_ids:
        for item in data["classes"]:
            item.pop("id")
    meta = CheckpointMeta(arch="unet", encoder="resnet18", num_classes=schema.num_classes, schema=data)
    save_checkpoint(path, model, meta)
    return path


def test_checkpoint_carries_ids_and_a_renamed_class_still_matches(tmp_path, small_model):
    schema = _schema()
    path = _save(tmp_path / "m.safetensors", small_model, schema)
    renamed = schema.copy()
    renamed.rename_class(3, "Highway")
    _, meta = load_checkpoint(path, schema=renamed)
    assert [c["id"] for c in meta.schema["classes"]] == [c.id for c in schema.classes]
    assert class_match(meta, renamed) == "same"


def test_same_names_but_other_classes_do_not_match(tmp_path, small_model):
    schema = _schema()
    path = _save(tmp_path / "m.safetensors", small_model, schema)
    again = schema.copy()  # Road deleted, then a new "Road" added: another class
    again.remove_class(again.by_name("Road").id)
    again.add_class("Road")
    assert again.names == schema.names
    with pytest.raises(WorkbenchError, match="names match but they are other classes"):
        load_checkpoint(path, schema=again)
    model, meta = load_checkpoint(path, schema=again, adapt_head=True)
    assert meta.train["adapted_head"]["to_classes"] == NAMES


def test_a_moved_class_gets_the_head_channels_permuted(tmp_path, small_model):
    schema = _schema()
    path = _save(tmp_path / "m.safetensors", small_model, schema)
    moved = schema.copy()
    moved.move_class(moved.by_name("Road").id, 0)
    model, meta = load_checkpoint(path, schema=moved)
    assert meta.class_schema().names == moved.names
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        a, b = small_model(x), model(x)
    order = [schema.ids.index(cid) for cid in moved.ids]  # new channel i = old channel order[i]
    torch.testing.assert_close(b, a[:, order])


def test_an_old_checkpoint_without_ids_is_matched_by_index_and_name(tmp_path, small_model):
    path = _save(tmp_path / "old.safetensors", small_model, _schema(), strip_ids=True)
    other = ClassSchema.default(NAMES)  # other ids, same names and order: matches as before ids
    load_checkpoint(path, schema=other)
    renamed = other.copy()
    renamed.rename_class(0, "Heaven")
    with pytest.raises(WorkbenchError, match="trained for 4 classes"):
        load_checkpoint(path, schema=renamed)


def test_add_class_over_a_bare_ignore_index_keeps_those_pixels_ignored(project_folder):
    """CamVid-style ignore_index 4 with no class at 4: the new class must not take the ignored pixels."""
    schema = ClassSchema(_schema().classes, ignore_index=4)
    originals = project_folder(schema=schema, masks=_masks(values=(0, 1, 2, 3, 4, 255)))
    with Project.open(project_folder.folder) as p:
        by_hand = ClassSchema([*p.schema.classes, ClassInfo(4, "Car", (1, 1, 1))])  # 4 no longer ignored
        with pytest.raises(WorkbenchError, match="would give it to 'Car'"):
            p.save_schema(by_hand)
        car = p.add_class("Car")
        assert car.index == 4 and p.schema.ignore_index == 5 and p.schema.by_index(5).void
        for rec in p.images():
            o = originals[rec.name]
            label = p.read_label(rec.id)
            np.testing.assert_array_equal(label == 5, o == 4)  # still ignored, never Car
            assert not (label == car.index).any()
    with Project.open(project_folder.folder) as p:
        assert p.schema.names == NAMES + ["Car"]


def test_cached_predictions_are_renumbered_with_the_labels_and_confidence_is_left_alone(project_folder):
    originals = project_folder()
    with Project.open(project_folder.folder) as p:
        rec = p.images()[0]
        conf = np.linspace(0, 1, H * W, dtype=np.float32).reshape(H, W)
        p.save_prediction(rec.id, 1, originals[rec.name], conf)
        conf_file = p.prediction_dir(1) / f"{rec.stem}.conf.png"
        conf_bytes = conf_file.read_bytes()
        p.move_class(p.schema.by_name("Road").id, 0)
        mask, _ = p.read_prediction(rec.id, 1)
        np.testing.assert_array_equal(mask, p.read_label(rec.id))  # the same meaning as the label
        assert conf_file.read_bytes() == conf_bytes
        p.delete_class(p.schema.by_name("Sky").id)
        mask, _ = p.read_prediction(rec.id, 1)
        np.testing.assert_array_equal(mask, p.read_label(rec.id))


def test_a_predictor_for_the_project_follows_a_class_move(tmp_path, small_model):
    from workbench.ml.inference import Predictor

    schema = _schema()
    path = _save(tmp_path / "m.safetensors", small_model, schema)
    image = np.random.default_rng(3).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    before = Predictor.from_checkpoint(path, device="cpu").predict(image).mask
    moved = schema.copy()
    moved.move_class(moved.by_name("Road").id, 0)
    after = Predictor.from_checkpoint(path, device="cpu", schema=moved).predict(image).mask
    lut = np.array([moved.by_id(cid).index for cid in schema.ids], np.uint8)
    np.testing.assert_array_equal(after, lut[before])  # every pixel: the same class, at its new index
    gone = moved.copy()
    gone.remove_class(gone.by_name("Sky").id)
    with pytest.raises(WorkbenchError, match="trained for 4 classes"):
        Predictor.from_checkpoint(path, device="cpu", schema=gone)


def test_an_old_checkpoint_with_duplicate_names_still_loads(tmp_path, small_model):
    data = _schema().to_dict()
    for item in data["classes"]:
        item.pop("id")
    data["classes"][3]["name"] = "sky"  # allowed before names had to be unique
    save_checkpoint(tmp_path / "dup.safetensors", small_model,
                    CheckpointMeta(arch="unet", encoder="resnet18", num_classes=4, schema=data))
    _, meta = load_checkpoint(tmp_path / "dup.safetensors")
    assert meta.class_schema().names == ["Sky", "Building", "Pole", "sky (2)"]


def test_the_mask_value_cache_follows_every_write_and_survives_damage(project_folder, monkeypatch):
    from workbench.project import mask_values

    originals = project_folder(masks=_masks(values=(0, 1, 255)))
    monkeypatch.setattr(mask_values, "WRITE_AFTER", 1)  # write the file even for this small project
    with Project.open(project_folder.folder) as p:
        rec = p.images()[1]
        assert p.mask_usage().files_holding(3) == []
        cache = p.state_dir / "mask-values.json"
        mask = originals[rec.name].copy()
        mask[:2] = 3
        p.save_label(rec.id, mask)
        usage = p.mask_usage()
        assert usage.files_holding(3) == [f"labels/{rec.stem}.png"] and usage.pixels(3) == 2 * W
    with Project.open(project_folder.folder) as p, monkeypatch.context() as m:
        m.setattr(mask_values.masks, "decode_mask", lambda *a: pytest.fail("decoded a cached mask"))
        assert p.mask_usage().pixels(3) == 2 * W  # another session: counts come from the file
    with Project.open(project_folder.folder) as p:
        cache.write_text("{not json")
        assert p.mask_usage().pixels(3) == 2 * W
        p.clear_label(rec.id)
        assert p.mask_usage().files_holding(3) == []
        label = p.label_path(p.images()[0].id)
        label.write_bytes(b"broken")  # a damaged label is listed, never fatal to the scan
        assert p.mask_usage().unreadable == [f"labels/{label.name}"]


def test_a_delete_over_a_damaged_label_is_refused_naming_it_and_changes_nothing(project_folder):
    project_folder()
    folder = project_folder.folder
    with Project.open(folder) as p:
        broken = p.label_path(p.images()[2].id)
        broken.write_bytes(b"\x89PNG\r\n\x1a\n cut short")
        before = _label_bytes(folder)
        with pytest.raises(InputError) as err:
            p.delete_class(p.schema.by_name("Pole").id)
        assert broken.name in str(err.value)
        assert p.schema.names == NAMES
    assert _label_bytes(folder) == before
    assert not list((folder / ".workbench").rglob("*.renumber"))
    with Project.open(folder) as p:
        assert p.schema.names == NAMES


def _swap_by_hand(folder: Path, a: int, b: int) -> None:
    path = folder / ".workbench" / "classes.json"
    data = json.loads(path.read_text())
    for item in data["classes"]:
        if item["index"] in (a, b):
            item["index"] = b if item["index"] == a else a
    path.write_text(json.dumps(data))


def test_classes_renumbered_by_hand_are_reported_and_moves_made_here_are_not(project_folder):
    project_folder()
    folder = project_folder.folder
    with Project.open(folder) as p:
        assert p.class_file_changes() == []
        p.move_class(p.schema.by_name("Road").id, 0)  # a move workbench makes renumbers the labels too
        assert p.class_file_changes() == []
    _swap_by_hand(folder, 0, 3)
    with Project.open(folder) as p:
        (line,) = p.class_file_changes()
        assert "classes.json: classes were renumbered outside workbench" in line
        assert "'Road' 0 → 3" in line and "'Pole' 3 → 0" in line and "stored labels were not" in line
    _swap_by_hand(folder, 0, 3)  # put back: nothing to report
    with Project.open(folder) as p:
        assert p.class_file_changes() == []


def test_a_project_without_a_layout_record_starts_one(project_folder):
    project_folder()
    folder = project_folder.folder
    assert not (folder / ".workbench" / "classes.layout.json").exists()  # made before any class change
    _swap_by_hand(folder, 0, 1)  # unknowable without a record: not reported, and recorded from here
    with Project.open(folder) as p:
        assert p.class_file_changes() == []
    _swap_by_hand(folder, 0, 1)
    with Project.open(folder) as p:
        assert len(p.class_file_changes()) == 1

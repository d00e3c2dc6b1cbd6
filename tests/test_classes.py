"""workbench.classes: loading, validation messages, editing, lookup tables."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from workbench.classes import DEFAULT_COLORS, UNLABELLED, ClassInfo, ClassSchema, default_color
from workbench.errors import InputError


@pytest.fixture
def camvid_schema(camvid) -> ClassSchema:
    return ClassSchema.load(camvid / "classes.json")


def test_loads_camvid(camvid_schema):
    s = camvid_schema
    assert s.num_classes == 11 and len(s.classes) == 12
    assert s.names[0] == "Sky" and s.names[-1] == "Bicyclist"
    assert s.ignore_index == 11 and s.by_index(11).void
    assert s.ignore_values == (11, 255)
    assert s.valid_values == tuple(range(12)) + (255,)
    assert s.by_index(4).color == (60, 40, 222)
    assert s.class_name(255) == "not labelled" and s.class_name(8) == "Car"
    assert s.class_name(40) == "unknown (40)" and s.by_index(40) is None


def test_round_trip_keeps_the_camvid_layout_plus_ids(camvid, camvid_schema, tmp_path):
    camvid_schema.save(tmp_path / "c.json")
    again = ClassSchema.load(tmp_path / "c.json")
    assert again == camvid_schema
    saved = json.loads((tmp_path / "c.json").read_text())
    assert all(item.pop("id") for item in saved["classes"])  # the only addition: every class's id
    assert saved == json.loads((camvid / "classes.json").read_text())


def _write(tmp_path, data) -> str:
    path = tmp_path / "classes.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def _cls(index, name="x", color=(1, 2, 3), **kw):
    return {"index": index, "name": name, "color": list(color), **kw}


@pytest.mark.parametrize("data, message", [
    ("{not json", "not valid JSON (line 1"),
    ([1, 2], 'expected a JSON object with a "classes" list'),
    ({"classes": "abc"}, 'expected a JSON object with a "classes" list'),
    ({"classes": [7]}, "classes[0] is not an object"),
    ({"classes": [_cls(-1)]}, "classes[0].index must be an integer 0-254, got -1"),
    ({"classes": [_cls(255)]}, "classes[0].index must be an integer 0-254, got 255"),
    ({"classes": [_cls(True)]}, "classes[0].index must be an integer"),
    ({"classes": [_cls(0, name="  ")]}, "classes[0].name must be a non-empty string"),
    ({"classes": [_cls(0, color=(1, 2))]}, "classes[0].color must be three integers 0-255"),
    ({"classes": [_cls(0, color=(1, 2, 256))]}, "classes[0].color must be three integers 0-255"),
    ({"classes": [_cls(0, void="yes")]}, "classes[0].void must be true or false"),
    ({"classes": [_cls(0)], "ignore_index": 300}, "ignore_index must be an integer 0-255 or null"),
    ({"classes": [_cls(0), _cls(0, "y")]}, "class indices must be unique"),
    ({"classes": [_cls(0), _cls(2, "y")]}, "non-void class indices must be 0..1, got [0, 2]"),
    ({"classes": [_cls(0, void=True)]}, "at least one class that is not void"),
    ({"classes": [_cls(0), _cls(1, "y")], "ignore_index": 0}, "non-void class indices must be 0..0"),
])
def test_validation_errors_name_the_file(tmp_path, data, message):
    path = _write(tmp_path, data)
    with pytest.raises(InputError) as err:
        ClassSchema.load(path)
    assert str(err.value).startswith(f"{path}: ")
    assert message in str(err.value)


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(InputError, match="class file not found") as err:
        ClassSchema.load(tmp_path / "nope.json")
    assert "nope.json" in str(err.value)
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(InputError, match="cannot read class file"):
        ClassSchema.load(tmp_path / "bin.json")


def test_ignore_index_makes_its_class_void_and_order_is_by_index():
    s = ClassSchema.from_dict({"ignore_index": 2, "classes": [
        _cls(2, "edge"), _cls(1, "b"), _cls(0, "a")]})
    assert [c.index for c in s.classes] == [0, 1, 2]
    assert s.by_index(2).void and s.num_classes == 2 and s.ignore_values == (2, 255)
    assert s.to_dict()["classes"][2]["void"] is True


def test_add_class_moves_a_blocking_void_class(camvid_schema):
    void_id = camvid_schema.by_index(11).id
    info = camvid_schema.add_class("Animal", (1, 2, 3))
    assert (info.index, info.name, info.color, info.void) == (11, "Animal", (1, 2, 3), False)
    assert info.id and info.id not in [c.id for c in camvid_schema.classes if c.index != 11]
    assert camvid_schema.by_index(12).id == void_id  # moved, same class
    assert camvid_schema.num_classes == 12
    assert camvid_schema.by_index(12).name == "Unlabelled" and camvid_schema.by_index(12).void
    assert camvid_schema.ignore_index == 12 and camvid_schema.ignore_values == (12, 255)


def test_add_rename_recolor_on_a_new_schema():
    s = ClassSchema.default(["bg", "cell"], name="cells")
    assert [c.color for c in s.classes] == list(DEFAULT_COLORS[:2]) and s.ignore_index is None
    added = s.add_class("  ")
    assert added.index == 2 and added.name == "class 2" and added.color == DEFAULT_COLORS[2]
    s.rename_class(1, "  nucleus ")
    s.rename_class(0, "   ")  # blank keeps the old name
    s.recolor_class(2, (9.0, 8, 7))
    assert s.names == ["bg", "nucleus", "class 2"]
    assert s.by_index(2).color == (9, 8, 7)
    with pytest.raises(KeyError):
        s.rename_class(5, "x")
    assert ClassSchema.default(3).names == ["class 0", "class 1", "class 2"]


def test_copy_is_independent():
    s = ClassSchema.default(["a", "b"])
    c = s.copy()
    c.add_class("c")
    c.rename_class(0, "z")
    assert s.names == ["a", "b"] and c.names == ["z", "b", "c"]


def test_lut_and_palette(camvid_schema):
    lut = camvid_schema.lut_rgba(alpha=128)
    assert lut.shape == (256, 4) and lut.dtype == np.uint8
    assert lut[3].tolist() == [128, 64, 128, 128]
    assert lut[11, 3] == 0 and lut[UNLABELLED, 3] == 0  # void and unlabelled are transparent
    labels = np.array([[0, 11], [255, 3]], np.uint8)
    assert lut[labels].shape == (2, 2, 4)
    pal = camvid_schema.palette()
    assert len(pal) == 768
    assert pal[3 * 4:3 * 4 + 3] == [60, 40, 222]
    assert pal[3 * 255:] == [255, 255, 255]


def test_default_colors_beyond_the_palette_are_stable():
    assert default_color(0) == DEFAULT_COLORS[0]
    far = default_color(len(DEFAULT_COLORS) + 3)
    assert far == default_color(len(DEFAULT_COLORS) + 3)
    assert all(40 <= v <= 255 for v in far)


# ----- identity: ids and unique names (issue 8.1) -------------------------------------------
def test_files_without_ids_get_the_same_ids_every_time(camvid):
    a, b = ClassSchema.load(camvid / "classes.json"), ClassSchema.load(camvid / "classes.json")
    assert [c.id for c in a.classes] == [c.id for c in b.classes]
    assert len({c.id for c in a.classes}) == len(a.classes) and all(c.id for c in a.classes)
    # derived from index and name: another file's classes are other classes
    other = ClassSchema.from_dict({"classes": [_cls(0, "Sky"), _cls(1, "Cat")]})
    assert other.by_index(0).id == a.by_index(0).id and other.by_index(1).id != a.by_index(1).id


def test_ids_survive_rename_recolor_save_and_load(tmp_path):
    s = ClassSchema.default(["bg", "cell", "debris"])
    ids = [c.id for c in s.classes]
    s.rename_class(1, "nucleus")
    s.recolor_class(2, (1, 2, 3))
    assert [c.id for c in s.classes] == ids
    s.save(tmp_path / "c.json")
    assert [c.id for c in ClassSchema.load(tmp_path / "c.json").classes] == ids


def test_added_classes_get_fresh_ids():
    a, b = ClassSchema.default(["x"]), ClassSchema.default(["x"])
    assert a.add_class("y").id != b.add_class("y").id  # two new classes are two identities


@pytest.mark.parametrize("first, second", [("Road", "Road"), ("Road", "road"), ("Road", "  ROAD "),
                                           ("Straße", "STRASSE")])
def test_duplicate_names_are_refused_naming_both(first, second):
    with pytest.raises(ValueError) as err:
        ClassSchema([ClassInfo(0, first, (1, 1, 1)), ClassInfo(1, second, (2, 2, 2))])
    assert "class 0" in str(err.value) and "class 1" in str(err.value) and "unique" in str(err.value)


def test_rename_to_a_taken_name_is_refused_and_changes_nothing():
    s = ClassSchema.default(["Sky", "Building", "Pole", "Road"])
    before = s.copy()
    with pytest.raises(ValueError) as err:
        s.rename_class(0, " road")
    assert "'Sky' (class 0)" in str(err.value) and "class 3 is already called 'Road'" in str(err.value)
    assert s == before
    s.rename_class(3, "Road")  # its own name (same class) is fine
    s.rename_class(3, "ROAD")  # and so is a change of case
    assert s.by_index(3).name == "ROAD"
    with pytest.raises(ValueError, match="already called 'Sky'"):
        s.add_class("sky")


def test_a_file_with_duplicate_names_names_the_file(tmp_path):
    path = _write(tmp_path, {"classes": [_cls(0, "Road"), _cls(1, "road ")]})
    with pytest.raises(InputError) as err:
        ClassSchema.load(path)
    assert str(err.value).startswith(f"{path}: ") and "two classes are named" in str(err.value)


@pytest.mark.parametrize("ids, message", [
    (["a", "a"], "class id 'a' is used by more than one class"),
    (["a", ""], "classes[1].id must be a non-empty string"),
    (["a", 7], "classes[1].id must be a non-empty string"),
    (["a", "x" * 65], "classes[1].id must be a non-empty string of at most 64"),
])
def test_bad_ids_in_a_file_are_refused(tmp_path, ids, message):
    path = _write(tmp_path, {"classes": [_cls(0, "a", id=ids[0]), _cls(1, "b", id=ids[1])]})
    with pytest.raises(InputError, match=re.escape(message)):
        ClassSchema.load(path)


def test_remove_and_move_keep_ids_and_shift_indices():
    s = ClassSchema.from_dict({"ignore_index": 4, "classes": [
        _cls(0, "a"), _cls(1, "b"), _cls(2, "c"), _cls(3, "d"), _cls(4, "void", void=True)]})
    ids = {c.name: c.id for c in s.classes}
    s.remove_class(ids["b"])
    assert [(c.index, c.name) for c in s.classes] == [(0, "a"), (1, "c"), (2, "d"), (4, "void")]
    assert {c.name: c.id for c in s.classes} == {k: v for k, v in ids.items() if k != "b"}
    s.move_class(ids["d"], 0)
    assert s.names == ["d", "a", "c"] and s.by_index(0).id == ids["d"]
    with pytest.raises(ValueError, match="only classes that are trained"):
        s.move_class(ids["void"], 0)
    with pytest.raises(ValueError, match="index must be 0..2"):
        s.move_class(ids["a"], 3)
    with pytest.raises(KeyError):
        s.remove_class("nope")
    only = ClassSchema.default(["x"])
    with pytest.raises(ValueError, match="only class that is not void"):
        only.remove_class(only.classes[0].id)


def test_retired_classes_are_void_and_kept_in_the_file(tmp_path):
    path = _write(tmp_path, {"classes": [_cls(0, "a"), _cls(5, "gone", retired=True, id="r5")]})
    s = ClassSchema.load(path)
    assert s.by_index(5).void and s.retired == [5] and 5 in s.ignore_values and s.num_classes == 1
    s.save(path)
    assert json.loads(path.read_text())["classes"][1] == {"index": 5, "name": "gone", "color": [1, 2, 3],
                                                          "void": True, "retired": True, "id": "r5"}

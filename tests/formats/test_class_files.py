"""Class files: classes.json and names files (labelme labels.txt, VOC class_names.txt)."""

from __future__ import annotations

import pytest

from workbench.errors import InputError
from workbench.formats.base import DatasetClass, ExportClass
from workbench.formats.class_files import (parse_names, read_class_file, schema_from_classes,
                                           write_classes_json, write_names)


def test_labelme_labels_txt(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("__ignore__\n_background_\ncat\n\n# a comment\ndog\n", encoding="utf-8")
    classes = read_class_file(path)
    assert [(c.name, c.value) for c in classes] == [("background", 0), ("cat", 1), ("dog", 2)]


def test_voc_class_names_txt_with_bom(tmp_path):
    path = tmp_path / "class_names.txt"
    path.write_bytes("\ufeffbackground\naeroplane\nbicycle\n".encode("utf-8"))
    assert [c.name for c in read_class_file(path)] == ["background", "aeroplane", "bicycle"]


def test_classes_json_keeps_void_and_colours(camvid):
    classes = read_class_file(camvid / "classes.json")
    assert len(classes) == 12
    assert classes[11] == DatasetClass("Unlabelled", 11, (0, 0, 0), True)
    assert classes[0].color == (128, 128, 128)


@pytest.mark.parametrize("text, problem", [
    ("cat\nCat\n", "listed twice"),
    ("__ignore__\n\n", "names no class"),
])
def test_bad_names_files_are_named(tmp_path, text, problem):
    path = tmp_path / "names.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as err:
        read_class_file(path)
    assert problem in str(err.value) and str(path) in str(err.value)


def test_not_json_json_is_named(tmp_path):
    path = tmp_path / "classes.json"
    path.write_text("{nope", encoding="utf-8")
    with pytest.raises(InputError, match="not valid JSON"):
        read_class_file(path)
    with pytest.raises(InputError, match="not found"):
        read_class_file(tmp_path / "missing.txt")


def test_schema_from_classes_puts_void_after_trainable():
    schema = schema_from_classes([DatasetClass("unlabeled", 0, (0, 0, 0), True), DatasetClass("road", 7),
                                  DatasetClass("car", 26, (0, 0, 142))])
    assert [(c.index, c.name, c.void) for c in schema.classes] == [
        (0, "road", False), (1, "car", False), (2, "unlabeled", True)]
    assert schema.classes[1].color == (0, 0, 142)


def test_write_and_read_back(tmp_path):
    classes = [ExportClass("sky", 0, (1, 2, 3)), ExportClass("road", 1, (4, 5, 6)),
               ExportClass("void", 2, (0, 0, 0), True)]
    write_classes_json(tmp_path / "classes.json", classes)
    back = read_class_file(tmp_path / "classes.json")
    assert [(c.name, c.value, c.color, c.void) for c in back] == [
        ("sky", 0, (1, 2, 3), False), ("road", 1, (4, 5, 6), False), ("void", 2, (0, 0, 0), True)]
    write_names(tmp_path / "labels.txt", ["_background_", "cat"], ignore_line=True)
    assert (tmp_path / "labels.txt").read_text() == "__ignore__\n_background_\ncat\n"
    assert [c.name for c in parse_names((tmp_path / "labels.txt").read_text(), "x")] == ["background", "cat"]


def test_schema_from_classes_merges_a_name_listed_twice_and_refuses_all_void():
    schema = schema_from_classes([DatasetClass("car", 1), DatasetClass("Car ", 2), DatasetClass("", 3)])
    assert [c.name for c in schema.classes] == ["car", "class 3"]
    with pytest.raises(InputError, match="all void"):
        schema_from_classes([DatasetClass("void", 0, None, True)])

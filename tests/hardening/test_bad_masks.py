"""Every mask and class schema of the corpus: reads fine, or InputError naming the file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.hardening import corpus
from workbench import masks
from workbench.atomic import TEMP_MARKER, atomic_write_bytes, clean_stale_temps
from workbench.classes import ClassSchema
from workbench.errors import InputError, WorkbenchError

HW = (24, 32)


@pytest.fixture(scope="module")
def mask_corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, corpus.Case]:
    return {c.name: c for c in corpus.mask_cases(tmp_path_factory.mktemp("masks"), HW)}


@pytest.fixture(scope="module")
def schema_corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, corpus.Case]:
    return {c.name: c for c in corpus.schema_cases(tmp_path_factory.mktemp("schemas"))}


MASK_NAMES = corpus.case_names(corpus.mask_cases)
SCHEMA_NAMES = corpus.case_names(corpus.schema_cases)


@pytest.mark.parametrize("name", MASK_NAMES)
def test_read_mask(mask_corpus: dict[str, corpus.Case], name: str) -> None:
    case = mask_corpus[name]
    schema = corpus.corpus_schema()
    mask = corpus.check(case, lambda p: masks.read_mask(p, schema, HW))
    if case.expect == corpus.OK:
        assert mask.dtype == np.uint8
        assert set(np.unique(mask).tolist()) <= set(schema.valid_values)


def test_ok_masks_agree(mask_corpus: dict[str, corpus.Case]) -> None:
    """Palette, grey, RGB, RGBA and 16-bit encodings of one mask decode to the same indices."""
    schema = corpus.corpus_schema()
    ok = [c for c in mask_corpus.values() if c.expect == corpus.OK]
    decoded = [masks.read_mask(c.path, schema, HW) for c in ok]
    for case, mask in zip(ok[1:], decoded[1:], strict=True):
        np.testing.assert_array_equal(mask, decoded[0], err_msg=case.name)


def test_values_outside_lists_them(mask_corpus: dict[str, corpus.Case]) -> None:
    """The message lists the bad values and the valid ones so the user can fix the file."""
    with pytest.raises(InputError) as info:
        masks.read_mask(mask_corpus["values_outside"].path, corpus.corpus_schema(), HW)
    assert "valid: 0, 1, 2, 255" in str(info.value)


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_load_schema(schema_corpus: dict[str, corpus.Case], name: str) -> None:
    case = schema_corpus[name]
    schema = corpus.check(case, ClassSchema.load)
    if case.expect == corpus.OK:
        assert schema.num_classes == 2 and schema.ignore_values == (2, 255)


def test_schema_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="nothing.json: class file not found"):
        ClassSchema.load(tmp_path / "nothing.json")


def test_schema_folder_instead_of_file(tmp_path: Path) -> None:
    (tmp_path / "classes.json").mkdir()
    with pytest.raises(InputError, match="classes.json"):
        ClassSchema.load(tmp_path / "classes.json")


def test_write_mask_rejects_wrong_dtype_without_touching_file(tmp_path: Path) -> None:
    """A programming slip (float or 3-D mask) never replaces a good label file."""
    schema = corpus.corpus_schema()
    path = tmp_path / "label.png"
    masks.write_mask(path, np.ones(HW, np.uint8), schema)
    before = path.read_bytes()
    with pytest.raises(ValueError):
        masks.write_mask(path, np.ones(HW, np.float32), schema)
    with pytest.raises(ValueError):
        masks.write_mask(path, np.ones((*HW, 3), np.uint8), schema)
    assert path.read_bytes() == before
    assert not list(tmp_path.glob(f"{TEMP_MARKER}*"))


def test_mask_round_trip_keeps_every_value(tmp_path: Path) -> None:
    """Write then read gives back exactly the same indices, 255 included."""
    schema = corpus.corpus_schema()
    mask = np.random.default_rng(0).choice(np.array([0, 1, 2, 255], np.uint8), size=(37, 53))
    masks.write_mask(tmp_path / "m.png", mask, schema)
    np.testing.assert_array_equal(masks.read_mask(tmp_path / "m.png", schema, (37, 53)), mask)


def test_atomic_write_into_impossible_folder(tmp_path: Path) -> None:
    """A parent that is a file: WorkbenchError naming the target, nothing left behind."""
    (tmp_path / "blocker").write_text("x")
    with pytest.raises(WorkbenchError, match="label.png: could not save") as info:
        atomic_write_bytes(tmp_path / "blocker" / "label.png", b"data")
    assert f"{tmp_path / 'blocker'} is a file, not a folder" in str(info.value)
    with pytest.raises(WorkbenchError, match="blocker is a file, not a folder"):
        atomic_write_bytes(tmp_path / "blocker" / "deeper" / "label.png", b"data")


def test_clean_stale_temps_keeps_real_files(tmp_path: Path) -> None:
    """Only files carrying the temp marker are removed, in sub-folders too."""
    (tmp_path / "labels").mkdir()
    keep = tmp_path / "labels" / "a.png"
    keep.write_bytes(b"x")
    (tmp_path / "labels" / f"{TEMP_MARKER}1234-a.png").write_bytes(b"half")
    (tmp_path / f"{TEMP_MARKER}99-project.json").write_text(json.dumps({}))
    assert clean_stale_temps(tmp_path) == 2
    assert keep.exists() and sorted(p.name for p in tmp_path.rglob("*")) == ["a.png", "labels"]


def test_atomic_write_of_a_longest_name(tmp_path: Path) -> None:
    """A target name near the 255-byte limit: the temp-file prefix must not push it over."""
    name = "é" * 120 + ".png"  # 244 bytes in UTF-8
    masks.write_mask(tmp_path / name, np.zeros(HW, np.uint8), corpus.corpus_schema())
    assert (tmp_path / name).is_file()
    assert [p.name for p in tmp_path.iterdir()] == [name]

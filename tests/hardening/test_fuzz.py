"""Property-based fuzzing: decoders of untrusted bytes raise only ``InputError``.

Mask decoding, image reading, class-schema parsing and checkpoint metadata are fed
random and mutated inputs. The property: the call either returns a value that passes
its own validation, or raises ``InputError`` (a ``WorkbenchError``) naming the source.
Any other exception (``KeyError``, ``RecursionError``, ``struct.error``, PIL's
``DecompressionBombError``...) would reach the user as a traceback and fails the test.

Examples are derandomised so CI runs are reproducible; ``max_examples`` bounds time.
"""

from __future__ import annotations

import io
import json
import struct
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from safetensors.torch import save as safetensors_bytes

from tests.hardening import corpus
from workbench import imageio, masks
from workbench.classes import ClassSchema
from workbench.errors import InputError
from workbench.ml import checkpoint

# PIL warns (UserWarning) about corrupt TIFF tags while still refusing or reading the file.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

SCHEMA = corpus.corpus_schema()
_MASK = np.random.default_rng(5).choice(np.array([0, 1, 2, 255], np.uint8), size=(12, 16))
SEEDS = {
    "palette": masks.encode_mask(_MASK, SCHEMA),
    "gray": corpus.encoded(Image.fromarray(_MASK), "PNG"),
    "rgb": corpus.encoded(Image.fromarray(np.stack([_MASK] * 3, -1)), "PNG"),
    "tiff16": corpus.encoded(Image.fromarray(_MASK.astype(np.uint16)), "TIFF"),
    "jpeg": corpus.encoded(Image.fromarray(np.stack([_MASK] * 3, -1)), "JPEG"),
    "bmp": corpus.encoded(Image.fromarray(_MASK), "BMP"),
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-300, 300) | st.floats(allow_nan=True)
    | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children,
                                                                       max_size=4),
    max_leaves=20)


@st.composite
def mutated(draw: st.DrawFn, seeds: dict[str, bytes]) -> bytes:
    """A seed file with a few bytes flipped, a slice cut out or inserted, or truncated."""
    data = bytearray(seeds[draw(st.sampled_from(sorted(seeds)))])
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "truncate"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] ^= draw(st.integers(1, 255))
        elif op == "cut":
            del data[pos:pos + draw(st.integers(1, 64))]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        else:
            del data[pos:]
    return bytes(data)


def _decode_and_validate(data: bytes) -> None:
    try:
        mask = masks.decode_mask(data, SCHEMA, "fuzz.png")
    except InputError as exc:
        assert "fuzz.png" in str(exc)
        return
    assert mask.dtype == np.uint8 and mask.ndim == 2
    try:
        masks.validate_mask(mask, SCHEMA, path="fuzz.png")
    except InputError as exc:
        assert "fuzz.png" in str(exc)


@FUZZ
@given(st.binary(max_size=512))
def test_decode_mask_random_bytes(data: bytes) -> None:
    _decode_and_validate(data)


@FUZZ
@given(mutated(SEEDS))
def test_decode_mask_mutated_files(data: bytes) -> None:
    _decode_and_validate(data)


@FUZZ
@given(st.integers(1, 70_000), st.integers(1, 70_000), st.sampled_from([0, 2, 3, 4, 6]))
def test_decode_mask_forged_png_header(width: int, height: int, colour_type: int) -> None:
    """A PNG header may claim any size: refused or decoded, never an allocation blow-up."""
    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    data = (b"\x89PNG\r\n\x1a\n" + corpus.png_chunk(b"IHDR", header)
            + corpus.png_chunk(b"IDAT", b"x\x9c\x03\x00\x00\x00\x00\x01") + corpus.png_chunk(b"IEND", b""))
    _decode_and_validate(data)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(mutated({"png": corpus.good_image_bytes(12, 16), "jpeg": corpus.encoded(
    Image.fromarray(corpus.photo(12, 16)), "JPEG"), "tiff": corpus.encoded(
    Image.fromarray(corpus.photo(12, 16)), "TIFF")}))
def test_read_image_mutated_files(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz image.png"
        path.write_bytes(data)
        try:
            arr = imageio.read_image(path)
        except InputError as exc:
            assert "fuzz image.png" in str(exc)
            return
        assert arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == 3


# ----- class schema ---------------------------------------------------------------------------
GOOD_SCHEMA = corpus.corpus_schema().to_dict()


@st.composite
def mutated_schema(draw: st.DrawFn) -> Any:
    """The good schema with a field of one class, or a top-level key, replaced by junk."""
    data = json.loads(json.dumps(GOOD_SCHEMA))
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(["class", "top", "drop", "append"]))
        classes = data.get("classes")
        dicts = [c for c in classes if isinstance(c, dict)] if isinstance(classes, list) else []
        if where == "class" and dicts:
            item = draw(st.sampled_from(dicts))
            item[draw(st.sampled_from(["index", "name", "color", "void", "extra"]))] = draw(json_values)
        elif where == "top":
            data[draw(st.sampled_from(["classes", "ignore_index", "name"]))] = draw(json_values)
        elif where == "drop" and isinstance(data.get("classes"), list) and data["classes"]:
            data["classes"].pop(draw(st.integers(0, len(data["classes"]) - 1)))
        elif isinstance(data.get("classes"), list):
            data["classes"].append(draw(json_values))
    return data


def _schema_property(data: Any) -> None:
    try:
        schema = ClassSchema.from_dict(data, "fuzz.json")
    except InputError as exc:
        assert "fuzz.json" in str(exc)
        return
    # Accepted: it is a consistent schema and survives a round trip.
    assert schema.num_classes >= 1
    assert ClassSchema.from_dict(schema.to_dict()).to_dict() == schema.to_dict()


@FUZZ
@given(json_values)
def test_schema_random_json(data: Any) -> None:
    _schema_property(data)


@FUZZ
@given(mutated_schema())
def test_schema_mutated(data: Any) -> None:
    _schema_property(data)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.text(max_size=200) | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
def test_schema_file_random_text(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "classes.json"
        path.write_text(text, encoding="utf-8")
        try:
            ClassSchema.load(path)
        except InputError as exc:
            assert "classes.json" in str(exc)


# ----- checkpoint metadata ----------------------------------------------------------------------
def good_meta() -> dict[str, Any]:
    """Metadata of a valid 2-class checkpoint, as stored in the header."""
    return json.loads(checkpoint.CheckpointMeta(arch="unet", encoder="resnet18", num_classes=2,
                                                schema=GOOD_SCHEMA).to_json())


META_FIELDS = sorted(good_meta())


@st.composite
def mutated_meta(draw: st.DrawFn) -> Any:
    """Valid metadata with one to three fields replaced by random JSON or removed."""
    data = good_meta()
    for _ in range(draw(st.integers(1, 3))):
        name = draw(st.sampled_from(META_FIELDS))
        if draw(st.booleans()):
            data[name] = draw(json_values)
        else:
            data.pop(name, None)
    return data


def _read_meta_of(metadata: dict[str, str] | None) -> None:
    blob = safetensors_bytes({"w": torch.zeros(2)}, metadata=metadata)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.safetensors"
        path.write_bytes(blob)
        _read_meta_file(path)


def _read_meta_file(path: Path) -> None:
    try:
        meta = checkpoint.read_meta(path)
    except InputError as exc:
        assert path.name in str(exc)
        return
    assert isinstance(meta, checkpoint.CheckpointMeta)
    assert meta.class_schema().num_classes == meta.num_classes


@FUZZ
@given(mutated_meta())
def test_checkpoint_meta_mutated_fields(data: Any) -> None:
    _read_meta_of({checkpoint.METADATA_KEY: json.dumps(data)})


@FUZZ
@given(json_values | st.text(max_size=40))
def test_checkpoint_meta_random_json(data: Any) -> None:
    text = data if isinstance(data, str) else json.dumps(data)
    _read_meta_of({checkpoint.METADATA_KEY: text})


@settings(max_examples=100, deadline=None, derandomize=True)
@given(st.data())
def test_checkpoint_file_mutated_bytes(data: st.DataObject) -> None:
    """Flip, cut or insert bytes anywhere in a real checkpoint file (header included)."""
    blob = safetensors_bytes({"w": torch.zeros(4)}, metadata={checkpoint.METADATA_KEY: json.dumps(good_meta())})
    bad = data.draw(mutated({"ckpt": blob}))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.safetensors"
        path.write_bytes(bad)
        _read_meta_file(path)


@settings(max_examples=80, deadline=None, derandomize=True)
@given(json_values)
def test_checkpoint_header_random_json(header: Any) -> None:
    """A safetensors header (the JSON before the weights) that is any JSON at all."""
    text = json.dumps(header).encode()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.safetensors"
        path.write_bytes(struct.pack("<Q", len(text)) + text + b"\x00" * 16)
        _read_meta_file(path)


def test_checkpoint_meta_nested_too_deep(tmp_path: Path) -> None:
    """Metadata JSON nested 100,000 levels deep is refused, not a RecursionError."""
    blob = safetensors_bytes({"w": torch.zeros(2)}, metadata={checkpoint.METADATA_KEY: "[" * 100_000 + "]" * 100_000})
    path = tmp_path / "deep.safetensors"
    path.write_bytes(blob)
    _read_meta_file(path)


def test_decoders_are_exercised() -> None:
    """The seeds themselves decode (so the mutations start from real files)."""
    for name, blob in SEEDS.items():
        if name != "jpeg":
            masks.validate_mask(masks.decode_mask(blob, SCHEMA), SCHEMA)
    assert imageio.to_rgb8(Image.open(io.BytesIO(corpus.good_image_bytes()))).shape == (24, 32, 3)
    blob = safetensors_bytes({"w": torch.zeros(2)}, metadata={checkpoint.METADATA_KEY: json.dumps(good_meta())})
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "ok.safetensors").write_bytes(blob)
        assert checkpoint.read_meta(Path(tmp) / "ok.safetensors").num_classes == 2

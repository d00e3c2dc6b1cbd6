"""workbench.masks: reading every mask flavour, palette PNG writing, rejection messages."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from workbench.classes import UNLABELLED, ClassSchema
from workbench.errors import InputError
from workbench.masks import (decode_mask, encode_mask, ignore_lut, read_mask, rgb_to_index,
                             to_training_target, validate_mask, write_mask)


@pytest.fixture
def schema(camvid) -> ClassSchema:
    return ClassSchema.load(camvid / "classes.json")


@pytest.fixture
def mask() -> np.ndarray:
    m = np.zeros((5, 7), np.uint8)
    m[1:3, 2:6] = 3
    m[4] = 11
    m[0, 0] = UNLABELLED
    m[2, 0] = 10
    return m


def _colour(mask: np.ndarray, schema: ClassSchema) -> np.ndarray:
    return np.array(schema.palette(), np.uint8).reshape(256, 3)[mask]


def test_reads_camvid_grayscale_masks(camvid, schema):
    path = camvid / "valannot" / "0016E5_07959.png"
    m = read_mask(path, schema, expected_hw=(360, 480))
    assert m.shape == (360, 480) and m.dtype == np.uint8
    assert np.array_equal(m, np.array(Image.open(path)))
    assert set(np.unique(m).tolist()) <= set(range(12))


def test_write_mask_is_a_palette_png_with_class_colours(tmp_path, schema, mask):
    path = tmp_path / "sub" / "m.png"
    write_mask(path, mask, schema)
    img = Image.open(path)
    assert img.format == "PNG" and img.mode == "P"
    assert np.array_equal(np.array(img), mask)  # pixel values are the class indices
    pal = np.array(img.getpalette()[:768], np.uint8).reshape(-1, 3)
    assert pal[3].tolist() == [128, 64, 128] and pal[10].tolist() == [0, 128, 192]
    assert pal[UNLABELLED].tolist() == [255, 255, 255]
    assert np.array_equal(np.array(img.convert("RGB")), _colour(mask, schema))
    assert np.array_equal(read_mask(path, schema), mask)
    assert [p.name for p in path.parent.iterdir()] == ["m.png"]  # no temp file left


def test_reads_palette_png_by_index_not_colour(tmp_path, schema, mask):
    # a VOC-style palette whose colours mean nothing to our schema: indices still count
    img = Image.fromarray(mask, mode="L").convert("P")
    img.putpalette([(i * 37) % 256 for i in range(768)])
    img.save(tmp_path / "voc.png")
    assert np.array_equal(read_mask(tmp_path / "voc.png", schema), mask)


def test_reads_rgb_colour_coded_masks(tmp_path, schema, mask):
    rgb = _colour(mask, schema)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    got = read_mask(tmp_path / "rgb.png", schema)
    assert np.array_equal(got, mask)  # white (255,255,255) -> 255, black -> void 11
    # CamVid's Sky is grey (128,128,128): a grey colour mask is not mistaken for indices
    sky = np.full((3, 3, 3), 128, np.uint8)
    Image.fromarray(sky).save(tmp_path / "sky.png")
    assert np.array_equal(read_mask(tmp_path / "sky.png", schema), np.zeros((3, 3), np.uint8))


def test_grey_rgb_index_mask_reads_as_indices(tmp_path, schema, mask):
    Image.fromarray(np.repeat(mask[..., None], 3, axis=2)).save(tmp_path / "grey.png")
    assert np.array_equal(read_mask(tmp_path / "grey.png", schema), mask)


def test_rgba_transparent_pixels_are_unlabelled(tmp_path, schema, mask):
    rgba = np.dstack([_colour(mask, schema), np.full(mask.shape, 255, np.uint8)])
    rgba[0, :, 3] = 0
    rgba[0, :, :3] = (1, 2, 3)  # the colour under a transparent pixel is irrelevant
    Image.fromarray(rgba).save(tmp_path / "alpha.png")
    expected = mask.copy()
    expected[0] = UNLABELLED
    assert np.array_equal(read_mask(tmp_path / "alpha.png", schema), expected)


def test_unknown_colours_are_listed(tmp_path, schema):
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[0, 0] = (1, 2, 3)
    rgb[1, 1] = (9, 9, 250)
    Image.fromarray(rgb).save(tmp_path / "bad.png")
    with pytest.raises(InputError) as err:
        read_mask(tmp_path / "bad.png", schema)
    msg = str(err.value)
    assert msg.startswith(str(tmp_path / "bad.png"))
    assert "colours that match no class: (1, 2, 3), (9, 9, 250)" in msg


def test_sixteen_bit_masks(tmp_path, schema, mask):
    Image.fromarray(mask.astype(np.uint16)).save(tmp_path / "m16.png")
    assert np.array_equal(read_mask(tmp_path / "m16.png", schema), mask)
    big = mask.astype(np.uint16)
    big[0, 0] = 1000
    Image.fromarray(big).save(tmp_path / "big.png")
    with pytest.raises(InputError, match="16-bit mask holds values up to 1000"):
        read_mask(tmp_path / "big.png", schema)


def test_size_and_value_rejections_name_the_file(tmp_path, schema, mask):
    write_mask(tmp_path / "m.png", mask, schema)
    with pytest.raises(InputError) as err:
        read_mask(tmp_path / "m.png", schema, expected_hw=(6, 7))
    assert str(err.value) == f"{tmp_path / 'm.png'}: mask is 7x5 pixels but its image is 7x6"
    bad = mask.copy()
    bad[0, 1], bad[0, 2] = 12, 200
    write_mask(tmp_path / "v.png", bad, schema)
    with pytest.raises(InputError) as err:
        read_mask(tmp_path / "v.png", schema)
    assert str(err.value).startswith(f"{tmp_path / 'v.png'}: mask holds values outside the class schema: 12, 200")
    assert "(valid: 0, 1, 2" in str(err.value)
    with pytest.raises(InputError, match="must be single-channel"):
        validate_mask(np.zeros((2, 2, 3), np.uint8), schema)


def test_unreadable_mask_files(tmp_path, schema):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("hello")
    (tmp_path / "dir.png").mkdir()
    cases = {"empty.png": "empty file (0 bytes)", "text.png": "not a readable mask image",
             "dir.png": "is a folder", "missing.png": "mask file not found"}
    for name, message in cases.items():
        with pytest.raises(InputError) as err:
            read_mask(tmp_path / name, schema)
        assert str(err.value).startswith(str(tmp_path / name)) and message in str(err.value), name


def test_truncated_mask_is_an_input_error(tmp_path, schema, mask):
    write_mask(tmp_path / "m.png", np.tile(mask, (20, 20)), schema)
    data = (tmp_path / "m.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="not a readable mask image") as err:
        read_mask(tmp_path / "cut.png", schema)
    assert "cut.png" in str(err.value)


def test_decode_other_modes(schema):
    assert decode_mask(Image.new("1", (3, 2), 1), schema).tolist() == [[1, 1, 1], [1, 1, 1]]
    with pytest.raises(InputError, match="unsupported mask image mode 'CMYK'"):
        decode_mask(Image.new("CMYK", (2, 2)), schema)


def test_encode_refuses_non_uint8(schema):
    with pytest.raises(ValueError, match="2-D uint8"):
        encode_mask(np.zeros((2, 2), np.int32), schema)
    with pytest.raises(ValueError, match="2-D uint8"):
        encode_mask(np.zeros((2, 2, 1), np.uint8), schema)


def test_rgb_to_index_prefers_the_first_class_of_a_shared_colour():
    s = ClassSchema.from_dict({"classes": [
        {"index": 0, "name": "a", "color": [5, 5, 5]}, {"index": 1, "name": "b", "color": [5, 5, 5]}]})
    assert rgb_to_index(np.full((1, 2, 3), 5, np.uint8), s).tolist() == [[0, 0]]


def test_training_target_and_ignore_lut(schema, mask):
    lut = ignore_lut(schema)
    assert lut[11] and lut[255] and not lut[:11].any()
    target = to_training_target(mask, schema)
    assert target[4].tolist() == [255] * 7
    assert target[1, 2] == 3 and target[2, 0] == 10
    assert mask[4, 0] == 11  # input untouched

"""workbench.imageio: every supported format reads as (H, W, 3) uint8; bad files name themselves."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from workbench.errors import InputError
from workbench.imageio import image_size, is_image_file, list_images, read_image


@pytest.fixture
def rgb() -> np.ndarray:
    # smooth content so lossy codecs stay close to the original
    y, x = np.mgrid[0:48, 0:64]
    return np.dstack([x * 4, y * 5, (x + y) * 2]).astype(np.uint8)


def _check(arr: np.ndarray, h: int, w: int) -> None:
    assert arr.shape == (h, w, 3) and arr.dtype == np.uint8 and arr.flags.c_contiguous


@pytest.mark.parametrize("ext, kwargs, tol", [
    (".png", {}, 0), (".bmp", {}, 0), (".tif", {}, 0), (".webp", {"lossless": True}, 0),
    (".jpg", {"quality": 95}, 6), (".jpeg", {"quality": 95}, 6),
])
def test_rgb_formats(tmp_path, rgb, ext, kwargs, tol):
    path = tmp_path / f"img{ext}"
    Image.fromarray(rgb).save(path, **kwargs)
    arr = read_image(path)
    _check(arr, 48, 64)
    assert np.abs(arr.astype(int) - rgb).mean() <= tol
    assert image_size(path) == (64, 48)


def test_grayscale_and_palette(tmp_path, rgb):
    gray = rgb[..., 0]
    Image.fromarray(gray).save(tmp_path / "g.png")
    arr = read_image(tmp_path / "g.png")
    _check(arr, 48, 64)
    assert all(np.array_equal(arr[..., c], gray) for c in range(3))
    pal = Image.fromarray(rgb).quantize(16)
    pal.save(tmp_path / "p.png")
    assert np.array_equal(read_image(tmp_path / "p.png"), np.array(pal.convert("RGB")))


def test_rgba_and_la_are_composited_over_black(tmp_path, rgb):
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    rgba[:10, :, 3] = 0
    rgba[10:20, :, 3] = 128
    Image.fromarray(rgba).save(tmp_path / "a.png")
    arr = read_image(tmp_path / "a.png")
    _check(arr, 48, 64)
    assert not arr[:10].any()
    assert np.abs(arr[10:20].astype(int) - rgb[10:20] // 2).max() <= 1
    assert np.array_equal(arr[20:], rgb[20:])
    Image.fromarray(rgba[..., [0, 3]]).convert("LA").save(tmp_path / "la.png")
    assert not read_image(tmp_path / "la.png")[:10].any()


def test_sixteen_bit_tiff_is_scaled_by_its_data_range(tmp_path):
    data = np.linspace(1000, 4095, 40 * 30).reshape(30, 40).astype(np.uint16)  # 12-bit sensor
    Image.fromarray(data).save(tmp_path / "t16.tif")
    assert Image.open(tmp_path / "t16.tif").mode.startswith("I;16")
    arr = read_image(tmp_path / "t16.tif")
    _check(arr, 30, 40)
    assert arr[0, 0, 0] == 0 and arr[-1, -1, 0] == 255
    assert np.all(np.diff(arr[..., 0].reshape(-1).astype(int)) >= 0)  # order kept
    Image.fromarray(np.full((4, 4), 700, np.uint16)).save(tmp_path / "flat.tif")
    assert not read_image(tmp_path / "flat.tif").any()  # a constant image does not divide by 0
    Image.fromarray(np.linspace(-1, 1, 16, dtype=np.float32).reshape(4, 4)).save(tmp_path / "f.tif")
    f = read_image(tmp_path / "f.tif")
    assert f[0, 0, 0] == 0 and f[-1, -1, 0] == 255


def test_cmyk_jpeg_and_multiframe_tiff(tmp_path, rgb):
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "c.jpg", quality=95)
    arr = read_image(tmp_path / "c.jpg")
    _check(arr, 48, 64)
    assert np.abs(arr.astype(int) - rgb).mean() < 8
    frames = [Image.fromarray(rgb), Image.fromarray(255 - rgb)]
    frames[0].save(tmp_path / "m.tif", save_all=True, append_images=frames[1:])
    assert np.array_equal(read_image(tmp_path / "m.tif"), rgb)  # the first page


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_exif_orientation_rotates(tmp_path, rgb, fmt):
    img = Image.fromarray(rgb)
    exif = img.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = tmp_path / f"rot.{fmt.lower()}"
    img.save(path, format=fmt, exif=exif.tobytes(), **({"quality": 95} if fmt == "JPEG" else {}))
    arr = read_image(path)
    _check(arr, 64, 48)
    expected = np.rot90(rgb, k=-1)
    assert np.abs(arr.astype(int) - expected).mean() < 6
    assert image_size(path) == (48, 64)


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_truncated_files_name_the_file(tmp_path, ext):
    rng = np.random.default_rng(0)
    noisy = (rng.random((64, 64, 3)) * 255).astype(np.uint8)
    Image.fromarray(noisy).save(tmp_path / f"full{ext}")
    data = (tmp_path / f"full{ext}").read_bytes()
    cut = tmp_path / f"cut{ext}"
    cut.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(InputError) as err:
        read_image(cut)
    assert str(err.value) == f"{cut}: truncated image file (the end of the file is missing)"
    stub = tmp_path / f"stub{ext}"
    stub.write_bytes(data[:40])
    with pytest.raises(InputError) as err:
        read_image(stub)
    assert str(err.value).startswith(f"{stub}: ")


def test_unreadable_files_name_the_file(tmp_path):
    (tmp_path / "zero.png").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("not an image")
    (tmp_path / "folder.png").mkdir()
    cases = {"zero.png": "empty file (0 bytes), not an image", "text.jpg": "not a readable image",
             "folder.png": "is a folder, not an image", "missing.png": "file not found"}
    for name, message in cases.items():
        with pytest.raises(InputError) as err:
            read_image(tmp_path / name)
        assert str(err.value).startswith(f"{tmp_path / name}: ") and message in str(err.value), name
    with pytest.raises(InputError, match="empty file"):
        image_size(tmp_path / "zero.png")


def test_list_images(tmp_path, rgb):
    for name in ["b.PNG", "a.jpg", "c.tiff", ".hidden.png", "notes.txt", "d.webp", "e.gif"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub.png").mkdir()
    names = [p.name for p in list_images(tmp_path)]
    assert names == ["a.jpg", "b.PNG", "c.tiff", "d.webp"]  # sorted; no folders, hidden or other files
    assert is_image_file("x.JPEG") and not is_image_file(".x.png") and not is_image_file("x.gif")
    with pytest.raises(InputError, match="not a folder"):
        list_images(tmp_path / "a.jpg")

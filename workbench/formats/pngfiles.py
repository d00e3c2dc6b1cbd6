"""Reading and writing the PNG masks raster formats use (index, VOC, Cityscapes).

Reading returns the stored values as they are: a grayscale or palette PNG's pixel
values are class values (a palette image's colours are only its display). An RGB mask
is decoded through the dataset's class colours when it has them. Every failure is an
InputError naming the file.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from workbench import imageio
from workbench.atomic import atomic_write_bytes
from workbench.errors import InputError
from workbench.formats.base import NOT_LABELLED, DatasetClass


def list_pngs(folder: Path, suffix: str = ".png") -> list[Path]:
    """Files directly in ``folder`` whose name ends with ``suffix`` (any case), sorted."""
    try:
        with os.scandir(folder) as entries:
            names = sorted(e.name for e in entries
                           if e.name.lower().endswith(suffix.lower()) and not e.name.startswith(".")
                           and imageio.entry_is_file(e))
    except OSError as exc:
        raise InputError(f"cannot list the folder: {exc.strerror or exc}", folder) from None
    return [folder / n for n in names]


def read_values(path: Path, classes: list[DatasetClass] | None = None) -> np.ndarray:
    """The class values stored in a mask PNG (uint8 H x W); RGB decoded by class colours."""
    imageio.check_regular_file(path, "a mask")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img.load()
                mode = img.mode
                if mode in ("L", "P", "1"):
                    return np.asarray(img if mode != "1" else img.convert("L"), dtype=np.uint8).copy()
                if mode in ("I", "I;16", "I;16B", "I;16L"):
                    arr = np.asarray(img).astype(np.int64)
                    if arr.size and (arr.min() < 0 or arr.max() > 255):
                        raise InputError(f"mask holds value {int(arr.max())}; class values go up to 255", path)
                    return arr.astype(np.uint8)
                if mode in ("RGB", "RGBA", "LA"):
                    rgb = np.asarray(img.convert("RGB"))
                    return _decode_rgb(rgb, classes, path)
                raise InputError(f"unsupported mask mode {mode}", path)
    except InputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InputError(imageio.too_large_message(exc), path) from None
    except UnidentifiedImageError:
        raise InputError("not a readable image", path) from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise InputError(f"cannot decode mask: {exc}", path) from None


def _decode_rgb(rgb: np.ndarray, classes: list[DatasetClass] | None, path: Path) -> np.ndarray:
    if rgb.size and (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all():
        return rgb[..., 0].copy()  # a grey index mask saved as RGB
    coloured = [c for c in classes or [] if c.color is not None]
    if not coloured:
        raise InputError("colour (RGB) mask but the dataset gives no class colours; "
                         "give them with --classes classes.json", path)
    key = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]
    out = np.full(rgb.shape[:2], NOT_LABELLED, np.uint8)
    known = np.zeros(rgb.shape[:2], bool)
    for c in coloured:
        r, g, b = c.color
        hit = key == ((r << 16) | (g << 8) | b)
        out[hit] = c.value
        known |= hit
    white = key == 0xFFFFFF
    if (~known & ~white).any():
        bad = np.unique(key[~known & ~white])[:4]
        shown = ", ".join(f"({v >> 16}, {(v >> 8) & 255}, {v & 255})" for v in bad)
        raise InputError(f"colours that are no class's colour: {shown}", path)
    return out


def encode_png(arr: np.ndarray, palette: list[int] | None = None) -> bytes:
    """PNG bytes: grayscale ('L') without a palette, 'P' with one; RGB for H x W x 3."""
    if arr.ndim == 3:
        img = Image.fromarray(np.ascontiguousarray(arr, np.uint8), "RGB")
    elif palette is None:
        img = Image.fromarray(np.ascontiguousarray(arr, np.uint8), "L")
    else:
        img = Image.new("P", (arr.shape[1], arr.shape[0]))
        img.putpalette(palette)
        img.frombytes(np.ascontiguousarray(arr, np.uint8).tobytes())
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=3)
    return buf.getvalue()


def write_png(path: Path, arr: np.ndarray, palette: list[int] | None = None) -> None:
    """Write ``arr`` as a PNG atomically (see ``encode_png``)."""
    atomic_write_bytes(path, encode_png(arr, palette))


def palette_of(colors: dict[int, tuple[int, int, int]], unlabelled=(255, 255, 255)) -> list[int]:
    """768-entry flat palette from {value: colour}; 255 gets ``unlabelled``."""
    pal = np.zeros((256, 3), np.uint8)
    for v, c in colors.items():
        pal[v] = c
    pal[NOT_LABELLED] = unlabelled
    return pal.reshape(-1).tolist()

"""Label masks: single-channel uint8 class indices, stored as palette PNGs.

Writing: mode 'P' PNG whose pixel values are class indices and whose palette holds
the class colours (Pascal VOC convention), so any viewer shows colours while tools
read indices. 255 means "not labelled".

Reading accepts grayscale index PNGs (CamVid), palette PNGs (VOC: the pixel values
are the indices) and RGB colour-coded PNGs (mapped through the schema's colours).
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from workbench import imageio
from workbench.atomic import atomic_write_bytes
from workbench.classes import UNLABELLED, ClassSchema
from workbench.errors import InputError

MASK_SUFFIX = ".png"


def _describe_values(values: np.ndarray, limit: int = 8) -> str:
    vals = [int(v) for v in values[:limit]]
    more = f" and {len(values) - limit} more" if len(values) > limit else ""
    return ", ".join(map(str, vals)) + more


def rgb_to_index(rgb: np.ndarray, schema: ClassSchema, path: str | Path | None = None) -> np.ndarray:
    """Map an (H, W, 3) colour-coded mask to class indices via the schema's colours.

    White (255, 255, 255) that no class uses maps to 255, "not labelled".
    Any other colour not in the schema is an ``InputError`` listing a few of them.
    """
    codes = (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) | rgb[..., 2]
    lut: dict[int, int] = {}
    for c in schema.classes:
        key = (c.color[0] << 16) | (c.color[1] << 8) | c.color[2]
        lut.setdefault(key, c.index)  # the first class with a colour wins if two share it
    lut.setdefault(0xFFFFFF, UNLABELLED)
    uniq, inverse = np.unique(codes.reshape(-1), return_inverse=True)
    unknown = [u for u in uniq.tolist() if u not in lut]
    if unknown:
        shown = ", ".join(f"({u >> 16}, {(u >> 8) & 255}, {u & 255})" for u in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise InputError(f"colour mask holds colours that match no class: {shown}{more}", path)
    mapped = np.array([lut[u] for u in uniq.tolist()], dtype=np.uint8)
    return mapped[inverse].reshape(rgb.shape[:2])


def decode_mask(data: bytes | Image.Image, schema: ClassSchema, path: str | Path | None = None) -> np.ndarray:
    """Decode mask bytes (or an opened image) to an (H, W) uint8 index array, unvalidated."""
    if not isinstance(data, Image.Image) and len(data) == 0:
        raise InputError("empty file (0 bytes), not a mask", path)
    try:
        with warnings.catch_warnings():
            # Same pixel guard as source images: a forged header must not allocate gigabytes.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = data if isinstance(data, Image.Image) else Image.open(io.BytesIO(data))
            img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InputError(imageio.too_large_message(exc), path) from None
    except UnidentifiedImageError:
        raise InputError(imageio.describe_unreadable(bytes(data[:256]), "mask image"), path) from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        if "truncated" in str(exc).lower():
            raise InputError("not a readable mask image: the file is truncated (its end is missing)",
                             path) from None
        raise InputError(f"not a readable mask image ({exc.__class__.__name__}: {exc})", path) from None
    mode = img.mode
    if mode in ("L", "P"):
        return np.array(img, dtype=np.uint8)
    if mode in ("I;16", "I;16B", "I;16L", "I") or mode.startswith("I;16"):
        arr = np.asarray(img)
        if arr.size and (int(arr.min()) < 0 or int(arr.max()) > 255):
            raise InputError(f"16-bit mask holds values up to {int(arr.max())}; class indices must be 0-255", path)
        return arr.astype(np.uint8)
    if mode in ("RGB", "RGBA"):
        rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)
        if mode == "RGBA":
            alpha = np.asarray(img, dtype=np.uint8)[..., 3]
            # The colour under a fully transparent pixel means nothing (editors leave
            # anything there); make it white so it cannot fail the colour lookup.
            rgb = rgb.copy()
            rgb[alpha == 0] = 255
        if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]) \
                and not _looks_like_colour_coded(rgb[..., 0], schema):
            out = rgb[..., 0].copy()  # grey RGB saved by a tool that dropped the palette
        else:
            out = rgb_to_index(rgb, schema, path)
        if mode == "RGBA":
            out[alpha == 0] = UNLABELLED
        return out
    if mode == "1":
        return np.array(img, dtype=np.uint8)
    raise InputError(f"unsupported mask image mode {mode!r}; use a grayscale, palette or RGB PNG", path)


def _looks_like_colour_coded(gray: np.ndarray, schema: ClassSchema) -> bool:
    # A grey RGB mask is an index mask unless its grey levels are exactly class colours
    # that are themselves grey (CamVid's Sky is (128, 128, 128)) and not valid indices.
    valid = set(schema.valid_values)
    levels = set(np.unique(gray).tolist())
    return not levels <= valid


def validate_mask(mask: np.ndarray, schema: ClassSchema, expected_hw: tuple[int, int] | None = None,
                  path: str | Path | None = None) -> np.ndarray:
    """Check size and values; returns the mask or raises ``InputError`` naming ``path``."""
    if mask.ndim != 2:
        raise InputError(f"mask must be single-channel, got shape {mask.shape}", path)
    if expected_hw is not None and tuple(mask.shape) != tuple(expected_hw):
        h, w = mask.shape
        eh, ew = expected_hw
        raise InputError(f"mask is {w}x{h} pixels but its image is {ew}x{eh}", path)
    valid = np.zeros(256, bool)
    valid[list(schema.valid_values)] = True
    present = np.flatnonzero(np.bincount(mask.reshape(-1), minlength=256))
    bad = present[~valid[present]]
    if bad.size:
        raise InputError(
            f"mask holds values outside the class schema: {_describe_values(bad)} "
            f"(valid: {_describe_values(np.array(schema.valid_values), 16)})", path)
    return mask


def read_mask(path: str | Path, schema: ClassSchema, expected_hw: tuple[int, int] | None = None) -> np.ndarray:
    """Read and validate a mask file; ``expected_hw`` is the (height, width) of its image."""
    path = Path(path)
    imageio.check_regular_file(path, "a mask")  # a pipe named .png would block the read
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError("mask file not found", path) from None
    except IsADirectoryError:
        raise InputError("is a folder, not a mask", path) from None
    except OSError as exc:
        raise InputError(f"cannot read mask: {exc.strerror or exc}", path) from None
    return validate_mask(decode_mask(data, schema, path), schema, expected_hw, path)


INFO_KEY = "workbench"
"""PNG text chunk holding a label's record (status, source, updated) as JSON, so that a
lost database is rebuilt from the label files themselves (docs/project-format.md)."""
MAX_INFO_BYTES = 64 * 1024


def encode_mask(mask: np.ndarray, schema: ClassSchema, info: dict | None = None) -> bytes:
    """PNG bytes of ``mask`` as a palette image carrying the class colours.

    ``info`` (plain JSON data) goes into a ``workbench`` text chunk before the pixel
    data, where ``read_mask_info`` finds it without decoding the pixels.
    """
    if mask.dtype != np.uint8 or mask.ndim != 2:
        raise ValueError(f"mask must be a 2-D uint8 array, got {mask.dtype} {mask.shape}")
    h, w = mask.shape
    pimg = Image.new("P", (w, h))
    pimg.putpalette(schema.palette())
    pimg.frombytes(np.ascontiguousarray(mask).tobytes())
    pnginfo = None
    if info is not None:
        from PIL.PngImagePlugin import PngInfo

        pnginfo = PngInfo()
        # ensure_ascii: a tEXt chunk is Latin-1, and JSON escapes keep any text intact
        pnginfo.add_text(INFO_KEY, json.dumps(info, ensure_ascii=True, sort_keys=True, allow_nan=False))
    buf = io.BytesIO()
    pimg.save(buf, format="PNG", optimize=False, compress_level=3, pnginfo=pnginfo)
    return buf.getvalue()


def write_mask(path: str | Path, mask: np.ndarray, schema: ClassSchema, info: dict | None = None) -> None:
    """Save ``mask`` atomically as a palette PNG (old file intact if this fails)."""
    atomic_write_bytes(path, encode_mask(mask, schema, info))


def read_mask_info(path: str | Path) -> dict | None:
    """The ``info`` a mask was written with, read from its header; None when it has none.

    Only the chunks before the pixel data are parsed. A file that is not a readable PNG,
    or whose chunk is not a JSON object, has no info (the caller decides what that means).
    """
    try:
        with Image.open(path) as img:
            text = img.info.get(INFO_KEY)
    except (OSError, ValueError, SyntaxError, EOFError, UnidentifiedImageError,
            Image.DecompressionBombError):
        return None
    if not isinstance(text, str) or len(text) > MAX_INFO_BYTES:
        return None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def ignore_lut(schema: ClassSchema) -> np.ndarray:
    """(256,) bool lookup: True for mask values excluded from loss and metrics."""
    lut = np.zeros(256, bool)
    lut[list(schema.ignore_values)] = True
    return lut


def to_training_target(mask: np.ndarray, schema: ClassSchema, ignore: int = UNLABELLED) -> np.ndarray:
    """Mask with every ignored value (void classes, 255) set to ``ignore``."""
    out = mask.copy()
    out[ignore_lut(schema)[mask]] = ignore
    return out

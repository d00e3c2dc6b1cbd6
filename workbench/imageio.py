"""Reading source images: any common format, always as RGB uint8, never written to.

Handles png, jpg/jpeg, bmp, tif/tiff (8/16-bit, grayscale, multi-channel), webp;
EXIF orientation is applied so pixels match what viewers show.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from workbench.errors import InputError

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})

# Large microscopy and aerial images are legitimate input; PIL's bomb guard (89 Mpx)
# would refuse a 12,000 x 12,000 scan. Keep a guard, higher (1 Gpx = 3 GB as RGB).
MAX_PIXELS = 1_000_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


def is_image_file(path: str | Path) -> bool:
    """True for a visible file with a supported image extension."""
    p = Path(path)
    return p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly in ``folder``, sorted by name; nothing is decoded."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("not a folder", folder)
    # scandir's is_file() comes from the directory entry (no stat per file) and keeps
    # out sub-folders that happen to be named like images ("scans.tif/").
    with os.scandir(folder) as entries:
        files = [Path(e.path) for e in entries if is_image_file(e.name) and e.is_file()]
    return sorted(files, key=lambda p: p.name)


def _open(path: Path) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(path)
        return img
    except FileNotFoundError:
        raise InputError("file not found", path) from None
    except PermissionError:
        raise InputError("permission denied: the file cannot be read", path) from None
    except IsADirectoryError:
        raise InputError("is a folder, not an image", path) from None
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        if path.exists() and path.stat().st_size == 0:
            raise InputError("empty file (0 bytes), not an image", path) from None
        raise InputError(f"not a readable image ({exc.__class__.__name__})", path) from None
    except OSError as exc:
        raise InputError(f"cannot read image: {exc}", path) from None


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) as displayed (EXIF rotation applied), read from the header only."""
    path = Path(path)
    img = _open(path)
    with img:
        w, h = img.size
        try:
            orientation = img.getexif().get(0x0112, 1)
        except Exception:  # malformed EXIF must not hide the image
            orientation = 1
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def to_rgb8(img: Image.Image) -> np.ndarray:
    """Convert any PIL image to an (H, W, 3) uint8 array; 16-bit is scaled to 8-bit."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F") or mode.startswith("I;16"):
        arr = np.asarray(img).astype(np.float64)
        # Scale by the data range, not the type range: 12-bit sensors in 16-bit files
        # would otherwise look black.
        lo, hi = float(arr.min()), float(arr.max())
        arr = np.zeros_like(arr) if hi <= lo else (arr - lo) * (255.0 / (hi - lo))
        gray = np.clip(arr + 0.5, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(gray[..., None], 3, axis=2))
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        # Composite over black: transparent areas carry no image content.
        img = img.convert("RGBA")
        bg = Image.new("RGBA", img.size, (0, 0, 0, 255))
        img = Image.alpha_composite(bg, img)
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))


def read_image(path: str | Path) -> np.ndarray:
    """Decode ``path`` to an (H, W, 3) uint8 RGB array with EXIF orientation applied.

    Raises ``InputError`` naming the file for anything unreadable: empty, truncated,
    not an image, unsupported, too large, or missing.
    """
    path = Path(path)
    img = _open(path)
    try:
        with img:
            img.load()
            try:
                img = ImageOps.exif_transpose(img)
            except Exception:  # a broken EXIF block should not make the pixels unusable
                pass
            if getattr(img, "n_frames", 1) > 1:
                img.seek(0)
            arr = to_rgb8(img)
    except InputError:
        raise
    except (OSError, ValueError, SyntaxError) as exc:
        msg = str(exc)
        if "truncated" in msg.lower() or "broken data stream" in msg.lower():
            raise InputError("truncated image file (the end of the file is missing)", path) from None
        raise InputError(f"cannot decode image: {msg}", path) from None
    except MemoryError:
        raise InputError("image too large to load into memory", path) from None
    if arr.ndim != 3 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputError(f"image has no pixels (shape {arr.shape})", path)
    return arr

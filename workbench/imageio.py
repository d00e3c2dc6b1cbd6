"""Reading source images: any common format, always as RGB uint8, never written to.

Handles png, jpg/jpeg, bmp, tif/tiff (8/16-bit, grayscale, multi-channel), webp;
EXIF orientation is applied so pixels match what viewers show.
"""

from __future__ import annotations

import os
import re
import stat
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
        files = [Path(e.path) for e in entries if is_image_file(e.name) and entry_is_file(e)]
    return sorted(files, key=lambda p: p.name)


# First bytes of the formats we read, to tell a damaged image from a file that is not one.
_SIGNATURES = (b"\x89PNG", b"\xff\xd8", b"BM", b"II*\x00", b"MM\x00*", b"RIFF")


def describe_unreadable(head: bytes, what: str = "image") -> str:
    """Why bytes that PIL cannot identify are not an image, from their first bytes."""
    if not head:
        return f"empty file (0 bytes), not {'a' if what[0] not in 'aeiou' else 'an'} {what}"
    if head.startswith(_SIGNATURES):
        return (f"damaged or truncated {what} file (the format is recognised but the data "
                f"is not)")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # The sample may end inside a multi-byte character; anything earlier means binary.
        text = head[:exc.start].decode("utf-8") if exc.start >= len(head) - 3 else ""
    if text and all(c.isprintable() or c.isspace() for c in text):
        kind = "an HTML page" if "<html" in text.lower() or "<!doctype" in text.lower() else "text"
        return f"not a readable {what}: the file holds {kind}, not PNG/JPEG/TIFF/BMP/WebP data"
    return f"not a readable {what}: the content is not PNG/JPEG/TIFF/BMP/WebP data"


def check_regular_file(path: Path, what: str = "an image") -> None:
    """Raise ``InputError`` unless ``path`` is a regular, non-empty file.

    Checked before opening: a named pipe named ``x.png`` would block a read forever,
    and a link pointing nowhere or at itself deserves a message saying so.
    """
    try:
        st = path.stat()
    except FileNotFoundError:
        if path.is_symlink():
            raise InputError(f"symbolic link to a file that does not exist "
                             f"({os.readlink(path)}); not found", path) from None
        raise InputError(f"{what.split()[-1]} file not found", path) from None
    except PermissionError:
        raise InputError(f"permission denied: the file cannot be read as {what}", path) from None
    except OSError as exc:  # ELOOP (a link to itself), ENAMETOOLONG, EIO ...
        raise InputError(f"cannot read the file: {exc.strerror or exc}", path) from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"is a folder, not {what}", path)
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"not a regular file (a pipe, socket or device), so not {what}", path)
    if st.st_size == 0:
        raise InputError(f"empty file (0 bytes), not {what}", path)


def entry_is_file(entry: os.DirEntry) -> bool:
    """``entry.is_file()`` for folder listings, False where it would raise.

    A link pointing at itself makes ``is_file()`` raise ELOOP: that entry is simply not
    a file to list, and must not stop the listing of all the others.
    """
    try:
        return entry.is_file()
    except OSError:
        return False


def too_large_message(exc: Exception) -> str:
    """The user-facing text for PIL's decompression-bomb guard."""
    found = re.search(r"\((\d+) pixels\)", str(exc))
    size = f"{int(found.group(1)):,} pixels" if found else "too many pixels"
    return f"image is too large: {size} (the limit is {MAX_PIXELS:,}); is the file damaged?"


def _open(path: Path) -> Image.Image:
    check_regular_file(path)
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
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InputError(too_large_message(exc), path) from None
    except UnidentifiedImageError:
        try:
            with open(path, "rb") as fh:
                head = fh.read(256)
        except OSError:
            head = b"?"
        raise InputError(describe_unreadable(head), path) from None
    except OSError as exc:
        raise InputError(f"cannot read image: {exc.strerror or exc}", path) from None


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

"""The bad-input corpus: writes each kind of broken, odd or hostile file into a folder.

Every generator returns ``Case`` records saying what the file is and what reading it
must give: either it reads fine (with a known shape), or it raises a ``WorkbenchError``
whose message names the file and holds a phrase describing the problem. The same
corpus feeds the API, CLI, project and GUI tests, so ``docs/reliability.md`` can list
one row per case with what the user sees.

All files are small (a few KB) except ``huge_image`` (12,000 x 12,000 pixels: a 60 KB
PNG that decodes to 432 MB as RGB), which only one or two tests use.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from workbench.classes import ClassInfo, ClassSchema
from workbench.errors import WorkbenchError
from workbench.masks import encode_mask

OK = "ok"
ERROR = "error"
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0

# A small schema used by the mask cases: two trainable classes, one void class.
SCHEMA_COLORS = {0: (0, 0, 0), 1: (200, 30, 30), 2: (40, 40, 220)}


@dataclass(frozen=True)
class Case:
    """One corpus file and the outcome reading it must have."""

    name: str                  # short id, also used as the pytest id
    path: Path
    kind: str                  # "image", "mask" or "schema"
    expect: str                # OK or ERROR
    problem: str = ""          # lower-case phrase the error message must contain
    shape: tuple[int, ...] | None = None   # for OK cases: the decoded array's shape
    description: str = ""      # one line for docs/reliability.md


def corpus_schema() -> ClassSchema:
    """Schema for the mask corpus: background 0, object 1, void 2 (ignored)."""
    return ClassSchema([ClassInfo(0, "background", SCHEMA_COLORS[0]),
                        ClassInfo(1, "object", SCHEMA_COLORS[1]),
                        ClassInfo(2, "void", SCHEMA_COLORS[2], void=True)], ignore_index=2,
                       name="corpus")


# ----- low-level writers ------------------------------------------------------------------
def png_chunk(tag: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, tag, data, CRC."""
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def constant_png(width: int, height: int, value: int = 90) -> bytes:
    """A grayscale 8-bit PNG of one value, compressed row by row (cheap at any size)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    comp = zlib.compressobj(9)
    row = b"\x00" + bytes([value]) * width  # filter byte 0 + pixels
    parts = [comp.compress(row) for _ in range(height)]
    parts.append(comp.flush())
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header)
            + png_chunk(b"IDAT", b"".join(parts)) + png_chunk(b"IEND", b""))


def declared_size_png(width: int, height: int) -> bytes:
    """A PNG whose header claims a size its data does not have (a decompression bomb)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header)
            + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + png_chunk(b"IEND", b""))


def encoded(img: Image.Image, fmt: str, **kw: Any) -> bytes:
    """The bytes of ``img`` saved in format ``fmt``."""
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def photo(h: int = 24, w: int = 32, seed: int = 0) -> np.ndarray:
    """A random (h, w, 3) uint8 picture."""
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def good_image_bytes(h: int = 24, w: int = 32, seed: int = 0) -> bytes:
    """PNG bytes of a small random RGB image."""
    return encoded(Image.fromarray(photo(h, w, seed)), "PNG")


# ----- images -----------------------------------------------------------------------------
def image_cases(folder: Path) -> list[Case]:
    """Write every bad or unusual image into ``folder`` (top level); returns the cases."""
    folder.mkdir(parents=True, exist_ok=True)
    cases: list[Case] = []

    def add(name: str, filename: str, data: bytes | None, expect: str, problem: str = "",
            shape: tuple[int, ...] | None = None, description: str = "") -> Path:
        path = folder / filename
        if data is not None:
            path.write_bytes(data)
        cases.append(Case(name, path, "image", expect, problem, shape, description))
        return path

    png = good_image_bytes()
    jpg = encoded(Image.fromarray(photo()), "JPEG", quality=90)
    add("zero_byte", "zero byte.png", b"", ERROR, "empty file", description="zero-byte .png")
    add("truncated_png", "truncated.png", png[: len(png) // 2], ERROR, "truncated",
        description="PNG cut in half")
    add("truncated_jpeg", "truncated.jpg", jpg[: len(jpg) // 2], ERROR, "truncated",
        description="JPEG cut in half")
    add("header_only_png", "header only.png", png[:33], ERROR, "truncated",
        description="PNG signature + IHDR, no pixel data")
    add("text_as_png", "notes.png", b"these are my notes, not an image\n" * 4, ERROR,
        "not a readable image", description="a text file named .png")
    add("html_as_jpeg", "download.jpg", b"<!DOCTYPE html><html><body>404</body></html>", ERROR,
        "not a readable image", description="an HTML error page saved as .jpg")
    add("bomb_header", "bomb.png", declared_size_png(40_000, 40_000), ERROR, "too large",
        description="PNG header claiming 40,000 x 40,000 pixels")
    add("one_pixel", "one pixel.png", encoded(Image.new("RGB", (1, 1), (5, 6, 7)), "PNG"), OK,
        shape=(1, 1, 3), description="1 x 1 pixel image")
    sixteen = (np.arange(24 * 32, dtype=np.uint16).reshape(24, 32) * 80)
    add("gray16_png", "gray16.png", encoded(Image.fromarray(sixteen), "PNG"), OK, shape=(24, 32, 3),
        description="16-bit grayscale PNG")
    add("gray16_tiff", "gray16.tif", encoded(Image.fromarray(sixteen), "TIFF"), OK,
        shape=(24, 32, 3), description="16-bit grayscale TIFF")
    add("float_tiff", "float32.tiff",
        encoded(Image.fromarray(np.linspace(0, 1, 24 * 32, dtype=np.float32).reshape(24, 32)), "TIFF"),
        OK, shape=(24, 32, 3), description="32-bit float TIFF")
    add("gray8", "gray.png", encoded(Image.fromarray(photo()[..., 0]), "PNG"), OK, shape=(24, 32, 3),
        description="8-bit grayscale PNG")
    add("bilevel", "bilevel.png", encoded(Image.fromarray(photo()[..., 0] > 127), "PNG"), OK,
        shape=(24, 32, 3), description="1-bit black and white PNG")
    add("rgba", "rgba.png", encoded(Image.fromarray(np.dstack([photo(), photo(seed=1)[..., 0]])), "PNG"),
        OK, shape=(24, 32, 3), description="RGBA PNG (alpha composited over black)")
    add("gray_alpha", "gray alpha.png", encoded(Image.fromarray(photo()[..., :2].copy(), "LA"), "PNG"),
        OK, shape=(24, 32, 3), description="grayscale + alpha PNG")
    pal = Image.fromarray(photo()).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    add("palette", "palette.png", encoded(pal, "PNG"), OK, shape=(24, 32, 3),
        description="palette (indexed colour) PNG")
    add("palette_transparent", "palette transparent.png", encoded(pal, "PNG", transparency=0), OK,
        shape=(24, 32, 3), description="palette PNG with a transparent colour")
    cmyk = Image.new("CMYK", (32, 24), (0, 200, 200, 10))
    add("cmyk_jpeg", "cmyk.jpg", encoded(cmyk, "JPEG"), OK, shape=(24, 32, 3),
        description="CMYK JPEG (print workflow)")
    add("cmyk_tiff", "cmyk.tif", encoded(cmyk, "TIFF"), OK, shape=(24, 32, 3), description="CMYK TIFF")
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": stored 32 wide x 24 high, shown 24 x 32
    add("exif_rotated", "phone photo.jpg", encoded(Image.fromarray(photo()), "JPEG", exif=exif.tobytes()),
        OK, shape=(32, 24, 3), description="JPEG with EXIF orientation 6 (phone photo)")
    add("non_ascii_name", "café 日本 ñ.png", png, OK, shape=(24, 32, 3),
        description="non-ASCII file name")
    add("spaces_name", "  my image (copy 2) .png", png, OK, shape=(24, 32, 3),
        description="file name with spaces and brackets")
    add("dup_stem_png", "twin.png", png, OK, shape=(24, 32, 3),
        description="two files with one stem (twin.png, twin.jpg)")
    add("dup_stem_jpg", "twin.jpg", jpg, OK, shape=(24, 32, 3),
        description="the second file of a shared stem")
    add("upper_ext", "SHOUT.PNG", png, OK, shape=(24, 32, 3), description="upper-case extension")
    target = folder / "target.png"
    target.write_bytes(png)
    cases.append(Case("link_target", target, "image", OK, shape=(24, 32, 3),
                      description="a plain image (target of a link)"))
    cases.extend(_special_files(folder, target))
    locked = add("unreadable", "locked.png", png,
                 OK if IS_ROOT else ERROR, "" if IS_ROOT else "permission denied",
                 (24, 32, 3) if IS_ROOT else None,
                 description="file without read permission (chmod 000)")
    locked.chmod(0)
    return cases


def _special_files(folder: Path, target: Path) -> list[Case]:
    """Links, a folder and a named pipe named like images (POSIX; links need no privilege there)."""
    cases: list[Case] = []
    subdir = folder / "album.png"
    subdir.mkdir()
    cases.append(Case("folder_named_png", subdir, "image", ERROR, "folder",
                      description="a folder named like an image"))
    if os.name != "posix":
        return cases
    link = folder / "link.png"
    link.symlink_to(target.name)
    cases.append(Case("symlink", link, "image", OK, shape=(24, 32, 3),
                      description="symbolic link to an image in the folder"))
    dangling = folder / "dangling.png"
    dangling.symlink_to("no-such-file.png")
    cases.append(Case("dangling_symlink", dangling, "image", ERROR, "not found",
                      description="symbolic link to a file that does not exist"))
    loop = folder / "loop.png"
    loop.symlink_to(loop.name)
    cases.append(Case("symlink_loop", loop, "image", ERROR, "symbolic link",
                      description="symbolic link pointing at itself"))
    fifo = folder / "pipe.png"
    os.mkfifo(fifo)
    cases.append(Case("fifo", fifo, "image", ERROR, "not a regular file",
                      description="a named pipe named .png (reading it would block forever)"))
    return cases


def huge_image(folder: Path, size: int = 12_000) -> Case:
    """A ``size`` x ``size`` grayscale PNG (about 60 KB on disk, 432 MB once read as RGB)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"huge {size}x{size}.png"
    path.write_bytes(constant_png(size, size))
    return Case("huge", path, "image", OK, shape=(size, size, 3),
                description=f"{size:,} x {size:,} pixel image")


# ----- masks ------------------------------------------------------------------------------
def mask_cases(folder: Path, hw: tuple[int, int] = (24, 32)) -> list[Case]:
    """Write every bad or unusual mask (for ``corpus_schema`` and images of ``hw``)."""
    folder.mkdir(parents=True, exist_ok=True)
    schema = corpus_schema()
    h, w = hw
    rng = np.random.default_rng(3)
    good = rng.choice(np.array([0, 1, 2, 255], np.uint8), size=hw)
    cases: list[Case] = []

    def add(name: str, filename: str, data: bytes, expect: str, problem: str = "",
            description: str = "") -> None:
        path = folder / filename
        path.write_bytes(data)
        cases.append(Case(name, path, "mask", expect, problem, hw if expect == OK else None,
                          description))

    palette_png = encode_mask(good, schema)
    add("palette_ok", "palette ok.png", palette_png, OK, description="palette PNG of class indices")
    add("gray_ok", "gray ok.png", encoded(Image.fromarray(good), "PNG"), OK,
        description="grayscale PNG of class indices (CamVid style)")
    colours = np.array([SCHEMA_COLORS[0], SCHEMA_COLORS[1], SCHEMA_COLORS[2]] + [(255, 255, 255)] * 253,
                       np.uint8)
    rgb = colours[np.where(good == 255, 3, good)]
    add("rgb_ok", "rgb ok.png", encoded(Image.fromarray(rgb), "PNG"), OK,
        description="RGB mask in the schema's colours (white = not labelled)")
    add("rgba_ok", "rgba ok.png", encoded(Image.fromarray(np.dstack([rgb, np.full(hw, 255, np.uint8)])), "PNG"),
        OK, description="RGBA colour mask (transparent = not labelled)")
    add("gray16_ok", "gray16 ok.png", encoded(Image.fromarray(good.astype(np.uint16)), "PNG"), OK,
        description="16-bit grayscale mask with values 0-255")
    add("wrong_size", "wrong size.png", encode_mask(np.zeros((h + 6, w + 8), np.uint8), schema), ERROR,
        f"mask is {w + 8}x{h + 6} pixels but its image is {w}x{h}",
        description="mask of a different size than its image")
    bad_values = good.copy()
    bad_values[0, :3] = (7, 9, 254)
    add("values_outside", "values outside.png", encoded(Image.fromarray(bad_values), "PNG"), ERROR,
        "outside the class schema: 7, 9, 254", description="mask values outside the class schema")
    rgb_bad = rgb.copy()
    rgb_bad[0, 0] = (12, 34, 56)
    add("rgb_unknown_colour", "rgb unknown colour.png", encoded(Image.fromarray(rgb_bad), "PNG"), ERROR,
        "(12, 34, 56)", description="RGB mask with a colour not in the palette")
    add("gray16_too_big", "gray16 big.png",
        encoded(Image.fromarray((good.astype(np.uint16) * 300)), "PNG"), ERROR, "values up to",
        description="16-bit mask with values above 255")
    add("zero_byte_mask", "empty mask.png", b"", ERROR, "empty file", description="zero-byte mask")
    add("truncated_mask", "truncated mask.png", palette_png[: len(palette_png) // 2], ERROR,
        "truncated", description="mask PNG cut in half")
    add("text_mask", "text mask.png", b"label: cat\n", ERROR, "not a readable mask",
        description="text file named .png in the mask folder")
    add("cmyk_mask", "cmyk mask.tif", encoded(Image.new("CMYK", (w, h)), "TIFF"), ERROR,
        "unsupported mask image mode", description="CMYK mask")
    add("float_mask", "float mask.tif",
        encoded(Image.fromarray(good.astype(np.float32)), "TIFF"), ERROR, "unsupported mask image mode",
        description="32-bit float mask")
    add("bomb_mask", "bomb mask.png", declared_size_png(40_000, 40_000), ERROR, "too large",
        description="mask PNG header claiming 40,000 x 40,000 pixels")
    return cases


# ----- class schemas ----------------------------------------------------------------------
def schema_cases(folder: Path) -> list[Case]:
    """Write every bad or unusual class schema JSON file; returns the cases."""
    folder.mkdir(parents=True, exist_ok=True)
    good = {"name": "g", "ignore_index": 2, "classes": [
        {"index": 0, "name": "a", "color": [1, 2, 3]},
        {"index": 1, "name": "b", "color": [4, 5, 6]},
        {"index": 2, "name": "void", "color": [0, 0, 0], "void": True}]}
    cases: list[Case] = []

    def add(name: str, data: bytes | str | Any, expect: str, problem: str = "",
            description: str = "") -> None:
        path = folder / f"{name}.json"
        if isinstance(data, bytes):
            path.write_bytes(data)
        elif isinstance(data, str):
            path.write_text(data, encoding="utf-8")
        else:
            path.write_text(json.dumps(data), encoding="utf-8")
        cases.append(Case(name, path, "schema", expect, problem, None, description))

    def variant(**changes: Any) -> dict:
        d = json.loads(json.dumps(good))
        for key, value in changes.items():
            if key.startswith("c1_"):
                d["classes"][1][key[3:]] = value
            else:
                d[key] = value
        return d

    add("schema_ok", good, OK, description="a valid schema")
    add("schema_bom", b"\xef\xbb\xbf" + json.dumps(good).encode(), OK,
        description="valid schema saved with a UTF-8 byte-order mark (Windows Notepad)")
    add("schema_empty", b"", ERROR, "not valid json", description="empty schema file")
    add("schema_not_json", "classes: [sky, road]\n", ERROR, "not valid json",
        description="YAML-like text instead of JSON")
    add("schema_latin1", b'{"classes": [{"index": 0, "name": "caf\xe9", "color": [1, 2, 3]}]}', ERROR,
        "cannot read class file", description="schema in Latin-1, not UTF-8")
    add("schema_list", [1, 2, 3], ERROR, '"classes" list', description="JSON list instead of an object")
    add("schema_no_classes", {"name": "x"}, ERROR, '"classes" list', description='no "classes" key')
    add("schema_index_str", variant(c1_index="1"), ERROR, "index must be an integer",
        description="class index given as a string")
    add("schema_index_bool", variant(c1_index=True), ERROR, "index must be an integer",
        description="class index given as true")
    add("schema_index_255", variant(c1_index=255), ERROR, "index must be an integer 0-254",
        description="class index 255 (reserved for 'not labelled')")
    add("schema_dup_index", variant(c1_index=0), ERROR, "unique", description="two classes share an index")
    add("schema_gap", variant(c1_index=5), ERROR, "0..1", description="class indices with a gap")
    add("schema_colour_range", variant(c1_color=[0, 300, 0]), ERROR, "color must be three integers",
        description="colour component above 255")
    add("schema_colour_len", variant(c1_color=[0, 0]), ERROR, "color must be three integers",
        description="colour with two components")
    add("schema_name_missing", variant(c1_name=None), ERROR, "name must be a non-empty string",
        description="class without a name")
    add("schema_void_flag", variant(c1_void="yes"), ERROR, "void must be true or false",
        description='void given as "yes"')
    add("schema_ignore_range", variant(ignore_index=300), ERROR, "ignore_index must be",
        description="ignore_index 300")
    add("schema_all_void", {"classes": [{"index": 0, "name": "v", "color": [0, 0, 0], "void": True}]},
        ERROR, "at least one class", description="only void classes")
    add("schema_no_entries", {"classes": []}, ERROR, "at least one class", description="empty class list")
    add("schema_deep", "[" * 100_000 + "]" * 100_000, ERROR, "nested",
        description="JSON nested 100,000 levels deep")
    add("schema_nan", '{"classes": [{"index": NaN, "name": "a", "color": [1, 2, 3]}]}', ERROR,
        "index must be an integer", description="NaN as a class index")
    return cases


# ----- checking outcomes ------------------------------------------------------------------
def check(case: Case, call: Callable[[Path], Any]) -> Any:
    """Run ``call(case.path)`` and assert the outcome the case expects.

    OK: returns the value (shape checked when the case has one). ERROR: the call must
    raise ``WorkbenchError`` whose message names the file and holds ``case.problem``;
    any other exception type escapes and fails the test with its traceback.
    """
    if case.expect == OK:
        value = call(case.path)
        if case.shape is not None and hasattr(value, "shape"):
            assert tuple(value.shape) == case.shape, f"{case.name}: shape {value.shape} != {case.shape}"
        return value
    try:
        call(case.path)
    except WorkbenchError as exc:
        assert_names_file(str(exc), case)
        return exc
    raise AssertionError(f"{case.name}: {case.path.name} was accepted; expected an error "
                         f"mentioning {case.problem!r}")


def assert_names_file(message: str, case: Case) -> None:
    """The message names the file and states the expected problem, without a traceback."""
    assert case.path.name in message, f"{case.name}: message does not name the file: {message!r}"
    assert case.problem.lower() in message.lower(), \
        f"{case.name}: message lacks {case.problem!r}: {message!r}"
    assert "Traceback" not in message


def tree_digest(folder: Path) -> dict[str, str]:
    """sha256 of every regular file under ``folder`` by relative path (labels unchanged?)."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and not p.is_symlink():
            out[str(p.relative_to(folder))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def case_names(generator: Callable[[Path], list[Case]]) -> list[str]:
    """The case names a generator produces (for pytest ids), from a throw-away folder."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="wb-corpus-") as tmp:
        return [c.name for c in generator(Path(tmp) / "x")]

"""Pascal VOC segmentation: ``JPEGImages/``, ``SegmentationClass/`` palette PNGs,
``ImageSets/Segmentation/{train,val,test}.txt`` and ``class_names.txt``.

A mask's pixel value is the class value (its palette only colours it); 255 is VOC's
void / object border and reads as not labelled. Class names come from
``class_names.txt`` (or labelme's ``labels.txt``) in the dataset root, one a line,
``_background_`` as class 0 and ``__ignore__`` skipped; or from CVAT's / Datumaro's
``labelmap.txt`` (names and colours: their "Segmentation mask" export writes RGB colour
masks, decoded by those colours); without either, the 21 VOC names. Colours are VOC's
colour map (the palette every VOC tool expects). labelme2voc's layout
(``SegmentationClassPNG/``, or ``SegmentationClass/*.npy`` with -1 = ignore) is read too.

SRC may be the VOC root (``VOC2012/``), a ``VOCdevkit/`` above it, or the
``SegmentationClass/`` folder itself. Written masks use the project's class indices
with the VOC palette; void classes and not-labelled pixels are written as 255.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from workbench.errors import InputError
from workbench.formats import images as image_files
from workbench.formats.base import (NOT_LABELLED, DatasetClass, ExportClass, ExportItem, FormatSpec,
                                    ImageSize, Problem, ReadItem, ReadResult, WriteReport)
from workbench.formats.class_files import parse_names, write_names
from workbench.formats.pngfiles import list_pngs, palette_of, read_values, write_png

VOC_NAMES = ["background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
             "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
             "sheep", "sofa", "train", "tvmonitor"]
MASKS = "SegmentationClass"
SPLITS = ("train", "val", "test")


def voc_color(i: int) -> tuple[int, int, int]:
    """VOC's colour for value ``i`` (the bit-interleaved colour map of the devkit)."""
    r = g = b = 0
    c = i
    for j in range(8):
        r |= ((c >> 0) & 1) << (7 - j)
        g |= ((c >> 1) & 1) << (7 - j)
        b |= ((c >> 2) & 1) << (7 - j)
        c >>= 3
    return r, g, b


def voc_palette() -> list[int]:
    """The 768-entry VOC palette (255 is VOC's cream border colour)."""
    return palette_of({i: voc_color(i) for i in range(255)}, unlabelled=(224, 224, 192))


def find_root(src: Path) -> Path | None:
    """The folder holding ``SegmentationClass/`` for ``src``, or None."""
    src = Path(src)
    if src.name in (MASKS, "SegmentationClassPNG") and src.is_dir():
        return src.parent
    if (src / MASKS).is_dir():
        return src
    for parent in (src, src / "VOCdevkit"):
        if parent.is_dir():
            for sub in sorted(parent.iterdir()):
                if sub.name.upper().startswith("VOC") and (sub / MASKS).is_dir():
                    return sub
    return None


def detect(src: Path) -> bool:
    """A folder with (or above) a ``SegmentationClass/`` folder."""
    return Path(src).is_dir() and find_root(src) is not None


def read_labelmap(path: Path) -> list[DatasetClass]:
    """CVAT's / Datumaro's ``labelmap.txt`` (``name:r,g,b:parts:actions``), value = line order."""
    from workbench.formats.class_files import _read_text

    out: list[DatasetClass] = []
    for lineno, raw in enumerate(_read_text(path).splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, _, rest = line.partition(":")
        try:
            color = tuple(int(v) for v in rest.split(":")[0].split(","))
            if len(color) != 3 or not all(0 <= v <= 255 for v in color):
                raise ValueError
        except ValueError:
            raise InputError(f"line {lineno}: expected name:r,g,b:parts:actions, got {line!r:.60}", path) from None
        if len(out) >= NOT_LABELLED:
            raise InputError(f"more than {NOT_LABELLED} classes (line {lineno})", path)
        out.append(DatasetClass(name.strip() or f"class {len(out)}", len(out), color))
    if not out:
        raise InputError("the label map names no class", path)
    return out


def read_classes(root: Path) -> list[DatasetClass]:
    """VOC classes: class_names.txt / labels.txt names, or CVAT's labelmap.txt (names and
    colours), else the 21 VOC names."""
    if (root / "labelmap.txt").is_file():
        return read_labelmap(root / "labelmap.txt")
    for name in ("class_names.txt", "labels.txt"):
        path = root / name
        if path.is_file():
            from workbench.formats.class_files import _read_text

            named = parse_names(_read_text(path), path)
            return [DatasetClass(c.name, c.value, voc_color(c.value)) for c in named]
    return [DatasetClass(n, i, voc_color(i)) for i, n in enumerate(VOC_NAMES)]


def read_splits(root: Path, problems: list[Problem]) -> dict[str, str]:
    """{image stem: split} from ImageSets/Segmentation/{train,val,test}.txt."""
    out: dict[str, str] = {}
    folder = root / "ImageSets" / "Segmentation"
    for split in SPLITS:
        path = folder / f"{split}.txt"
        if not path.is_file():
            continue
        try:
            lines = path.read_text(encoding="utf-8-sig").split()
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(Problem(str(path), f"split list not read: {exc}"))
            continue
        for stem in lines:
            out.setdefault(stem, split)
    return out


def mask_files(root: Path) -> list[Path]:
    """The masks: ``SegmentationClass/*.png``; else labelme2voc's ``SegmentationClassPNG/*.png``,
    else its ``SegmentationClass/*.npy``."""
    pngs = list_pngs(root / MASKS)
    if pngs:
        return pngs
    if (root / "SegmentationClassPNG").is_dir():
        return list_pngs(root / "SegmentationClassPNG")
    return list_pngs(root / MASKS, ".npy")


def read_npy(path: Path) -> np.ndarray:
    """A labelme2voc ``.npy`` class array (int32, -1 = ignore) as a mask; never unpickles."""
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"not a readable .npy array ({exc})", path) from None
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.integer):
        raise InputError(f"expected a 2-D integer array, got {arr.dtype} {arr.shape}", path)
    if arr.size and (arr.max() >= NOT_LABELLED or arr.min() < -1):
        raise InputError(f"class values must be -1..254, got {int(arr.min())}..{int(arr.max())}", path)
    out = arr.astype(np.int64)
    out[out < 0] = NOT_LABELLED
    return out.astype(np.uint8)


def read(src: Path, *, image_size: ImageSize | None = None) -> ReadResult:
    """Read a VOC segmentation dataset (see the module docstring)."""
    root = find_root(Path(src))
    if root is None:
        raise InputError(f"not a Pascal VOC dataset: no {MASKS}/ folder", src)
    classes = read_classes(root)
    result = ReadResult(classes=classes, items=[])
    splits = read_splits(root, result.problems)
    jpegs = root / "JPEGImages"
    # RGB masks (CVAT's "Segmentation mask" export) decode by the class colours; VOC's
    # cream border colour is not labelled
    decode = classes + [DatasetClass("border", NOT_LABELLED, (224, 224, 192), True)]

    def items() -> Iterator[ReadItem]:
        for path in mask_files(root):
            try:
                if path.suffix.lower() == ".npy":
                    mask = read_npy(path)
                else:
                    mask = read_values(path, decode)
            except InputError as exc:
                result.problems.append(Problem(str(path), exc.problem))
                continue
            stem = path.stem
            image = next((p.name for p in (jpegs / f"{stem}.jpg", jpegs / f"{stem}.png") if p.is_file()),
                         f"{stem}.jpg")
            yield ReadItem(image=image, mask=mask, source=str(path), split=splits.get(stem))

    result.items = items()
    return result


def write(out: Path, items: Iterable[ExportItem], classes: list[ExportClass], *,
          images: str = "copy") -> WriteReport:
    """Write the VOC layout under ``out``."""
    out = Path(out)
    rep = WriteReport()
    lut = np.full(256, NOT_LABELLED, np.uint8)
    for c in classes:
        if not c.void:
            lut[c.value] = c.value
    palette = voc_palette()
    split_stems: dict[str, list[str]] = {s: [] for s in SPLITS}
    for item in items:
        stem = Path(item.name).stem
        path = out / MASKS / f"{stem}.png"
        write_png(path, lut[item.mask], palette)
        rep.files.append(path)
        split_stems.setdefault(item.split or "train", []).append(stem)
        image_files.place_into(rep, item.image_path, out / "JPEGImages" / Path(item.name).name, images)
        rep.written += 1
    sets = out / "ImageSets" / "Segmentation"
    from workbench.atomic import atomic_write_text

    for split, stems in split_stems.items():
        if stems:
            atomic_write_text(sets / f"{split}.txt", "".join(f"{s}\n" for s in stems))
    trainval = split_stems.get("train", []) + split_stems.get("val", [])
    if trainval:
        atomic_write_text(sets / "trainval.txt", "".join(f"{s}\n" for s in trainval))
    names = [c.name for c in sorted(classes, key=lambda c: c.value) if not c.void]
    write_names(out / "class_names.txt", names)
    rep.files.append(out / "class_names.txt")
    return rep


FORMAT = FormatSpec(
    name="voc", title="Pascal VOC", detect=detect, read=read, write=write, lossless=True,
    source_kind="folder",
    description="JPEGImages/, SegmentationClass/ palette PNGs (255 = void), ImageSets/Segmentation/*.txt")

"""labelme JSON: one ``<image>.json`` per image with a list of labelled shapes.

Reading rasterises the shapes as labelme itself does (``labelme.utils.shape_to_mask``,
PIL, integer coordinates at pixel centres, outline included; lines 10 px wide, points
discs of radius 5; see :mod:`workbench.formats.raster`), in file order, later shapes
over earlier ones. Shape types: polygon, rectangle, circle, line, linestrip, point,
oriented_rectangle and mask (a base64 PNG of the box ``points`` span, labelme >= 5.3).
``__ignore__`` shapes paint "not labelled"; pixels no shape covers are not labelled,
except when a ``labels.txt`` (or ``class_names.txt``) beside the files lists
``_background_``: then they are background, as labelme2voc makes them.

Classes: the names of that labels file, in its order, when there is one; otherwise every
label found, sorted. Embedded ``imageData`` is never needed (the project has the image):
it is read only to learn the size of an image when ``imageHeight``/``imageWidth`` are
missing (labelme 3.x files have neither: then the image beside the file gives the size). Written files carry ``imageData: null`` and an ``imagePath`` to the image
placed beside them (or its name when images are not placed); a ``labels.txt`` lists the
trainable classes (``__ignore__`` first; a first class named background as ``_background_``, as
labelme2voc requires, its shapes labelled so). Not-labelled holes inside a region are
written as ``__ignore__`` polygons (with a background class: every not-labelled pixel,
since labelme2voc makes uncovered pixels background). Void classes are not written: their
pixels are not labelled (the void rule of :mod:`workbench.formats.raster`); reading, a label
named like a void class (``Unlabelled``) is a void class.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from workbench.atomic import atomic_write_text
from workbench.errors import InputError
from workbench.formats import images as image_files
from workbench.formats import raster
from workbench.formats.base import (NOT_LABELLED, DatasetClass, ExportClass, ExportItem, FormatSpec,
                                    ImageSize, Problem, ReadItem, ReadResult, WriteReport)
from workbench.formats.class_files import BACKGROUND_NAMES, IGNORE_NAMES, parse_names, write_names
from workbench.imageio import image_size as file_image_size

LABELME_VERSION = "5.5.0"  # the file version we write (readers accept any 4.x / 5.x file)
LABEL_FILES = ("labels.txt", "class_names.txt")
MAX_JSON_BYTES = 256 * 1024 * 1024
AREA_SHAPES = {"polygon": 3, "rectangle": 2, "circle": 2, "line": 2, "linestrip": 2, "point": 1,
               "oriented_rectangle": 4, "mask": 2}


def _json_files(src: Path) -> list[Path]:
    """The labelme files of a source: a folder's JSON files that name "shapes" near the top
    (other JSON beside them -- classes.json, an export's record, a COCO file -- is not
    labelme and is left alone; a damaged labelme file still names "shapes" and is reported)."""
    if src.is_file():
        return [src] if src.suffix.lower() == ".json" else []
    if not src.is_dir():
        return []
    return sorted(p for p in _visible_json(src) if _looks_like_labelme(p))


def _visible_json(src: Path) -> Iterator[Path]:
    """JSON files under ``src``, hidden files and folders (a project's .workbench/) left out."""
    for p in src.rglob("*.json"):
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(src).parts):
            yield p


def _looks_like_labelme(path: Path) -> bool:
    # cheap: the first bytes of a labelme file name its keys; never parse a huge file here
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096).decode("utf-8", "replace")
    except OSError:
        return False
    return '"shapes"' in head


def detect(src: Path) -> bool:
    """True for a labelme JSON file or a folder holding some."""
    src = Path(src)
    if src.is_file():
        return src.suffix.lower() == ".json" and _looks_like_labelme(src)
    if not src.is_dir():
        return False
    return any(_looks_like_labelme(p) for p in _visible_json(src))


def _labels_file(src: Path) -> Path | None:
    folder = src if src.is_dir() else src.parent
    for cand in (folder, folder.parent):
        for name in LABEL_FILES:
            if (cand / name).is_file():
                return cand / name
    return None


def _class_name(label: str) -> str:
    return "background" if label.lower() in BACKGROUND_NAMES else label


def _image_name(src_root: Path, json_path: Path, image_path: str | None) -> str:
    """The image a labelme file is about, as a project would name it."""
    if image_path:
        image_path = image_path.replace("\\", "/")
        rel = Path(image_path)
        if not rel.is_absolute() and ".." not in rel.parts:
            folder = json_path.parent.relative_to(src_root) if json_path.parent != src_root else Path()
            return (folder / rel).as_posix()
        return rel.name
    return json_path.with_suffix("").name  # labelme names the file after the image


def _size_from_image_data(data: str) -> tuple[int, int] | None:
    try:
        with Image.open(io.BytesIO(base64.b64decode(data, validate=False))) as img:
            return img.height, img.width
    except Exception:  # noqa: BLE001 - any broken embedded image: "no size", reported by the caller
        return None


def _decode_mask(data: str) -> np.ndarray:
    with Image.open(io.BytesIO(base64.b64decode(data))) as img:
        arr = np.asarray(img)
    if arr.ndim == 3:
        arr = arr[..., 0] if arr.shape[2] < 4 else arr[..., 3]
    return arr.astype(bool)


def _load(path: Path) -> dict:
    if path.stat().st_size > MAX_JSON_BYTES:
        raise InputError("too large to be a labelme file", path)
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError:
        raise InputError("not UTF-8 text", path) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON (line {exc.lineno}: {exc.msg})", path) from None
    except RecursionError:
        raise InputError("JSON nested too deeply", path) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", path) from None
    if not isinstance(data, dict) or not isinstance(data.get("shapes"), list):
        raise InputError("not a labelme file: no list of \"shapes\"", path)
    return data


def read(src: Path, *, image_size: ImageSize | None = None,
         classes: list[DatasetClass] | None = None) -> ReadResult:
    """Read a labelme JSON file or a folder of them (see the module docstring).

    ``classes``: the dataset's classes when the person gave them (values by name);
    otherwise from a labels file beside the JSON files, or the labels found.
    """
    src = Path(src)
    files = _json_files(src)
    if not files:
        raise InputError("no labelme JSON files here", src)
    root = src if src.is_dir() else src.parent
    problems: list[Problem] = []
    background: str | None = None
    if classes is None:
        labels_path = _labels_file(src)
        if labels_path is not None:
            try:
                text = labels_path.read_text(encoding="utf-8-sig")
                classes = raster.mark_void_names(parse_names(text, labels_path))
                if any(line.strip().lower() in BACKGROUND_NAMES for line in text.splitlines()):
                    background = "background"
            except (InputError, OSError, UnicodeDecodeError) as exc:
                problems.append(Problem(str(labels_path), getattr(exc, "problem", None) or str(exc)))
                classes = None
    known = classes is not None
    # one pass over the files for the labels; shapes are rasterised lazily afterwards
    loaded: list[tuple[Path, dict]] = []
    found: list[str] = []
    for path in files:
        try:
            data = _load(path)
        except InputError as exc:
            problems.append(Problem(str(path), exc.problem))
            continue
        embedded = data.pop("imageData", None)  # never hold every embedded image in memory
        if not (data.get("imageHeight") and data.get("imageWidth")) and isinstance(embedded, str):
            size = _size_from_image_data(embedded)
            if size is not None:
                data["imageHeight"], data["imageWidth"] = size
        for shape in data["shapes"]:
            label = shape.get("label") if isinstance(shape, dict) else None
            if isinstance(label, str) and label.lower() not in IGNORE_NAMES:
                name = _class_name(label)
                if name not in found:
                    found.append(name)
        loaded.append((path, data))
    if classes is None:
        classes = raster.mark_void_names(
            [DatasetClass(name, i) for i, name in enumerate(sorted(found, key=str.lower))])
    by_name = {c.name.lower(): c.value for c in classes}
    if known:
        unknown = [n for n in found if n.lower() not in by_name]
        if unknown:
            problems.append(Problem(str(_labels_file(src) or src),
                                    f"labels not in the class list (their shapes are skipped): "
                                    f"{', '.join(unknown)}"))
    fill = by_name.get(background, NOT_LABELLED) if background else NOT_LABELLED
    result = ReadResult(classes=classes, items=[], problems=problems)

    def items() -> Iterator[ReadItem]:
        for path, data in loaded:
            item = _rasterise_file(root, path, data, by_name, fill, image_size, result.problems)
            if item is not None:
                yield item

    result.items = items()
    return result


def _rasterise_file(root: Path, path: Path, data: dict, by_name: dict[str, int], fill: int,
                    image_size: ImageSize | None, problems: list[Problem]) -> ReadItem | None:
    name = _image_name(root, path, data.get("imagePath") if isinstance(data.get("imagePath"), str) else None)
    size = image_size(name) if image_size is not None else None
    try:
        own = (int(data["imageHeight"]), int(data["imageWidth"]))
    except (KeyError, TypeError, ValueError):
        own = None
    if own is None and isinstance(data.get("imageData"), str):
        own = _size_from_image_data(data["imageData"])
    if own is None and size is None and isinstance(data.get("imagePath"), str):
        # labelme 3.x files carry no size: the image beside the file gives it (header only)
        beside = path.parent / data["imagePath"].replace("\\", "/")
        try:
            if beside.is_file():
                bw, bh = file_image_size(beside)
                own = (bh, bw)
        except Exception:  # noqa: BLE001 - unreadable image: "no size", reported below
            own = None
    if size is not None and own is not None and tuple(own) != tuple(size):
        problems.append(Problem(str(path), f"made for a {own[1]}x{own[0]} image but {name} is "
                                           f"{size[1]}x{size[0]}; skipped"))
        return None
    size = size or own
    if size is None or size[0] <= 0 or size[1] <= 0:
        problems.append(Problem(str(path), "no image size (imageHeight / imageWidth) and no such image "
                                           "in the project; skipped"))
        return None
    h, w = size
    mask = np.full((h, w), fill, np.uint8)
    clipped: list[str] = []
    for n, shape in enumerate(data["shapes"], 1):
        if not isinstance(shape, dict):
            problems.append(Problem(str(path), f"shape {n} is not an object; skipped"))
            continue
        label = shape.get("label")
        kind = shape.get("shape_type") or "polygon"
        if not isinstance(label, str):
            problems.append(Problem(str(path), f"shape {n} has no label; skipped"))
            continue
        if label.lower() in IGNORE_NAMES:
            value = NOT_LABELLED
        else:
            value = by_name.get(_class_name(label).lower())
            if value is None:
                continue  # listed once for the whole source
        if kind not in AREA_SHAPES:
            problems.append(Problem(str(path), f"shape {n} ({label}): shape type {kind!r} is not read; skipped"))
            continue
        try:
            points = raster.as_points(shape.get("points") or [])
        except (ValueError, TypeError) as exc:
            problems.append(Problem(str(path), f"shape {n} ({label}): {exc}; skipped"))
            continue
        need = AREA_SHAPES[kind]
        if (len(points) < need) if kind in ("polygon", "linestrip") else (len(points) != need):
            problems.append(Problem(str(path), f"shape {n} ({label}): a {kind} needs "
                                               f"{'at least ' if kind in ('polygon', 'linestrip') else ''}"
                                               f"{need} points, has {len(points)}; skipped"))
            continue
        if kind == "mask":
            painted = _paint_mask(mask, shape.get("mask"), points, value, path, n, label, problems)
            if painted is None:
                continue
        else:
            painted = raster.paint_labelme_shape(mask, "polygon" if kind == "oriented_rectangle" else kind,
                                                 points, value)
        if painted == 0:
            problems.append(Problem(str(path), f"shape {n} ({label}) lies outside the {w}x{h} image "
                                               f"(covers no pixel); skipped"))
        elif raster.placement(_extent(kind, points), h, w, raster.LABELME) != "inside":
            clipped.append(f"{n} ({label})")
    if clipped:
        problems.append(Problem(str(path), f"shapes partly outside the {w}x{h} image, clipped: {', '.join(clipped)}"))
    return ReadItem(image=name, mask=mask, source=str(path))


def _extent(kind: str, points: np.ndarray) -> np.ndarray:
    """Corners of the box a shape paints in (circles, lines and points reach past their points)."""
    if kind == "circle":
        r = float(np.hypot(*(points[0] - points[1])))
        return np.array([points[0] - r, points[0] + r])
    reach = {"line": raster.LABELME_LINE_WIDTH / 2, "linestrip": raster.LABELME_LINE_WIDTH / 2,
             "point": raster.LABELME_POINT_RADIUS}.get(kind, 0.0)
    return np.array([points.min(axis=0) - reach, points.max(axis=0) + reach])


def _paint_mask(mask: np.ndarray, data, points: np.ndarray, value: int, path: Path, n: int, label: str,
                problems: list[Problem]) -> int | None:
    """Paint a labelme mask shape; pixels covered, or None after a problem."""
    if not isinstance(data, str):
        problems.append(Problem(str(path), f"shape {n} ({label}): a mask shape without its base64 PNG; skipped"))
        return None
    try:
        stencil = _decode_mask(data)
    except Exception:  # noqa: BLE001 - any undecodable PNG is one problem for this shape
        problems.append(Problem(str(path), f"shape {n} ({label}): its mask is not a base64 PNG; skipped"))
        return None
    # labelme places the mask at int() of the first corner (labelme.utils.shapes_to_label)
    x1, y1 = int(points[0][0]), int(points[0][1])
    sh, sw = stencil.shape
    h, w = mask.shape
    r0, c0 = max(y1, 0), max(x1, 0)
    r1, c1 = min(y1 + sh, h), min(x1 + sw, w)
    if r0 >= r1 or c0 >= c1:
        return 0
    region = mask[r0:r1, c0:c1]
    inside = stencil[r0 - y1:r1 - y1, c0 - x1:c1 - x1]
    region[inside] = value
    return int(inside.sum())


# ----- write ----------------------------------------------------------------------------
def _shape(label: str, points: np.ndarray) -> dict:
    return {"label": label, "points": [[float(x), float(y)] for x, y in points], "group_id": None,
            "description": "", "shape_type": "polygon", "flags": {}, "mask": None}


def write(out: Path, items: Iterable[ExportItem], classes: list[ExportClass], *,
          images: str = "copy") -> WriteReport:
    """Write one labelme JSON per image under ``out`` (images beside them unless "none")."""
    out = Path(out)
    image_files.check_mode(images)
    rep = WriteReport()
    # void classes are not written: their pixels are not labelled (__ignore__ where a
    # shape would cover them) and labels.txt does not list them (raster.trainable, raster.without_void)
    ordered = raster.trainable(classes)
    names = {c.value: c.name for c in ordered}
    # labelme2voc wants labels.txt to start __ignore__, _background_ (and shapes of the
    # background class labelled so); its pixels no shape covers are then background, so
    # every not-labelled pixel gets an __ignore__ shape as well
    background = ordered[0].value if ordered and ordered[0].name.strip().lower() in (
        {"background"} | BACKGROUND_NAMES) else None
    if background is not None:
        names[background] = "_background_"
    for item in items:
        mask = raster.without_void(item.mask, classes)
        h, w = mask.shape
        present, values = raster.named_values(mask, names, item.name, rep.problems)
        spare = next((v for v in range(NOT_LABELLED) if v not in present), None)
        if background is not None and spare is not None and (mask == NOT_LABELLED).any():
            # not-labelled pixels as a class of their own, traced like the others
            traced = np.where(mask == NOT_LABELLED, spare, mask).astype(np.uint8)
            regions = raster.vectorise(traced, raster.LABELME, values=values + [spare])
            void = {spare, NOT_LABELLED}
        else:
            regions = raster.vectorise(mask, raster.LABELME, values=values, void_regions=True)
            void = {NOT_LABELLED}
        shapes = [_shape("__ignore__" if r.value in void else names[r.value], r.points) for r in regions]
        rel = Path(item.name)
        json_path = out / rel.with_suffix(".json")
        image_files.place_into(rep, item.image_path, out / rel, images)
        doc = {"version": LABELME_VERSION, "flags": {}, "shapes": shapes, "imagePath": rel.name,
               "imageData": None, "imageHeight": h, "imageWidth": w}
        atomic_write_text(json_path, json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
        rep.files.append(json_path)
        rep.written += 1
    write_names(out / "labels.txt", [names[c.value] for c in ordered], ignore_line=True)
    rep.files.append(out / "labels.txt")
    return rep


FORMAT = FormatSpec(
    name="labelme", title="labelme JSON", detect=detect, read=read, write=write, lossless=False,
    source_kind="folder",
    description="one JSON per image: polygon, rectangle, circle, line, point and mask shapes")

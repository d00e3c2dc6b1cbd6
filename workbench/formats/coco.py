"""COCO: instances and stuff JSON, with polygons and RLE (compressed and uncompressed).

Reading: SRC is a COCO JSON file, or a folder holding them (directly, in
``annotations/``, or in Roboflow's ``train/ valid/ test/``); a file whose name (or
folder) says ``train`` / ``val`` / ``test`` gives its images that split. Categories are classes, matched by name (their ids are only the file's own
numbering); a category that only names other categories' supercategory and that no
annotation uses (Roboflow lists one as id 0) is not a class. Each annotation is decoded with pycocotools and painted in file order, so
**a later annotation covers an earlier one** where they overlap (as labelme and CVAT
draw). ``iscrowd`` regions (RLE of a group of objects) are painted with their category,
like any other; pixels no annotation covers are not labelled. Polygon points outside
the image are listed as a problem and clipped, as pycocotools rasterises them.

Writing: ``annotations/instances_<split>.json`` and the images under ``images/<split>/``
(``file_name`` is the base name). By default one annotation per image and class, its
segmentation a compressed RLE (exact: pycocotools decodes it back to the project's
pixels); with ``segmentation="polygons"`` one polygon annotation per connected region
(``raster.vectorise``, holes spliced in as keyholes, larger regions first so painting in
order rebuilds the mask),
``iscrowd`` 0, ``area`` and ``bbox`` from the RLE; category id = class index + 1, with a
``color`` key (an extension other tools ignore). Void classes and not-labelled pixels
get no annotation.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from workbench.atomic import atomic_write_text
from workbench.errors import InputError
from workbench.formats import images as image_files
from workbench.formats.base import (NOT_LABELLED, DatasetClass, ExportClass, ExportItem, FormatSpec,
                                    ImageSize, Problem, ReadItem, ReadResult, WriteReport)

HEAD_BYTES = 1 << 20
MAX_JSON_BYTES = 2 << 30
SPLIT_WORDS = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
               "test": "test", "testing": "test"}


def _looks_coco(path: Path) -> bool:
    if not path.is_file() or path.suffix.lower() != ".json":
        return False
    try:
        with open(path, "rb") as fh:
            head = fh.read(HEAD_BYTES)
    except OSError:
        return False
    if not head.lstrip().startswith(b"{"):
        return False
    if b'"images"' in head and (b'"annotations"' in head or b'"categories"' in head):
        return True
    if len(head) < HEAD_BYTES:
        return False
    try:  # keys may come late in a large file: parse it (a rare path)
        data = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError, MemoryError):
        return False
    return isinstance(data, dict) and "images" in data and "annotations" in data


def coco_files(src: Path) -> list[Path]:
    """The COCO JSON files ``src`` names: itself, or those in it and in ``annotations/``."""
    src = Path(src)
    if src.is_file():
        return [src] if _looks_coco(src) else []
    out: list[Path] = []
    # Roboflow: <split>/_annotations.coco.json beside the split's images
    splits = [src / name for name in ("train", "valid", "val", "test")]
    for folder in (src, src / "annotations", *splits):
        if folder.is_dir():
            out += [p for p in sorted(folder.glob("*.json")) if _looks_coco(p)]
    return out


def detect(src: Path) -> bool:
    """A COCO JSON file, or a folder with some."""
    return bool(coco_files(Path(src)))


def split_of(path: Path) -> str | None:
    """The split a file's name says (``instances_val2017.json`` -> val), else its folder's
    (Roboflow's ``valid/_annotations.coco.json`` -> val)."""
    for word in re.split(r"[^a-z]+", path.stem.lower()):   # "instances_val2017" -> "val"
        if word in SPLIT_WORDS:
            return SPLIT_WORDS[word]
    return SPLIT_WORDS.get(path.parent.name.lower())       # the folder only by its whole name


def _load(path: Path) -> dict:
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            raise InputError("COCO file too large to read", path)
        data = json.loads(path.read_bytes())
    except InputError:
        raise
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", path) from None
    except (ValueError, RecursionError) as exc:
        raise InputError(f"not valid JSON ({exc})", path) from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) \
            or not isinstance(data.get("annotations", []), list) \
            or not isinstance(data.get("categories", []), list):
        raise InputError('not a COCO file: expected "images", "annotations" and "categories" lists', path)
    return data


def _classes(datas: list[tuple[Path, dict]], problems: list[Problem]
             ) -> tuple[list[DatasetClass], dict[tuple[int, int], int]]:
    """Dataset classes (by name, across files) and (file number, category id) -> value."""
    from workbench.classes import name_key

    classes: list[DatasetClass] = []
    by_name: dict[str, int] = {}
    ids: dict[tuple[int, int], int] = {}
    for n, (path, data) in enumerate(datas):
        cats = sorted((c for c in data.get("categories", []) if isinstance(c, dict)),
                      key=lambda c: c.get("id", 0) if isinstance(c.get("id"), int) else 0)
        # Roboflow's exports list the supercategory itself as a category (id 0) that no
        # annotation uses: a heading, not a class
        used = {a.get("category_id") for a in data.get("annotations", []) if isinstance(a, dict)}
        supers = {name_key(c["supercategory"]) for c in cats if isinstance(c.get("supercategory"), str)}
        cats = [c for c in cats if c.get("id") in used
                or not (isinstance(c.get("name"), str) and name_key(c["name"]) in supers)]
        for cat in cats:
            cid, name = cat.get("id"), cat.get("name")
            if not isinstance(cid, int) or not isinstance(name, str) or not name.strip():
                problems.append(Problem(str(path), f"category without an integer id and a name: {cat!r:.80}"))
                continue
            key = name_key(name)
            if key not in by_name:
                if len(classes) >= NOT_LABELLED:
                    problems.append(Problem(str(path), f"more than {NOT_LABELLED} categories; {name!r} left out"))
                    continue
                color = cat.get("color")
                color = tuple(int(v) for v in color) if (isinstance(color, list) and len(color) == 3 and all(
                    isinstance(v, int) and 0 <= v <= 255 for v in color)) else None
                by_name[key] = len(classes)
                classes.append(DatasetClass(name.strip(), len(classes), color))
            ids[(n, cid)] = by_name[key]
    return classes, ids


def _outside(seg: list, h: int, w: int) -> bool:
    for poly in seg:
        xs, ys = np.asarray(poly[0::2], float), np.asarray(poly[1::2], float)
        if xs.size and (xs.min() < 0 or ys.min() < 0 or xs.max() > w or ys.max() > h):
            return True
    return False


def decode_segmentation(seg, h: int, w: int) -> np.ndarray:
    """An annotation's segmentation (polygons, RLE or uncompressed RLE) as an H x W bool mask."""
    from pycocotools import mask as mask_utils

    if isinstance(seg, list):
        polys = [p for p in seg if isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0]
        if not polys:
            raise ValueError("polygon with fewer than three points")
        rles = mask_utils.frPyObjects([[float(v) for v in p] for p in polys], h, w)
        rle = mask_utils.merge(rles)
    elif isinstance(seg, dict) and "counts" in seg and "size" in seg:
        size = list(seg["size"])
        if size != [h, w]:
            raise ValueError(f"RLE size {size} is not the image's {[h, w]}")
        counts = seg["counts"]
        if isinstance(counts, list):
            rle = mask_utils.frPyObjects(seg, h, w)
        elif isinstance(counts, (str, bytes)):
            rle = {"size": size, "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
        else:
            raise ValueError("RLE counts are neither a list nor a string")
    else:
        raise ValueError("segmentation is neither polygons nor RLE")
    return mask_utils.decode(rle).astype(bool)


def read(src: Path, *, image_size: ImageSize | None = None) -> ReadResult:
    """Read COCO JSON file(s) (see the module docstring)."""
    src = Path(src)
    files = coco_files(src)
    if not files:
        raise InputError("no COCO JSON here (a file with images, annotations and categories)", src)
    problems: list[Problem] = []
    datas = [(p, _load(p)) for p in files]
    classes, cat_values = _classes(datas, problems)
    result = ReadResult(classes=classes, items=[], problems=problems)

    def items() -> Iterator[ReadItem]:
        for n, (path, data) in enumerate(datas):
            split = split_of(path)
            by_image: dict[int, list[dict]] = {}
            for ann in data.get("annotations", []):
                if isinstance(ann, dict) and isinstance(ann.get("image_id"), int):
                    by_image.setdefault(ann["image_id"], []).append(ann)
            for img in data["images"]:
                if not isinstance(img, dict):
                    continue
                iid, name = img.get("id"), img.get("file_name")
                h, w = img.get("height"), img.get("width")
                if not isinstance(name, str) or not isinstance(iid, int):
                    problems.append(Problem(str(path), f"image entry without id and file_name: {img!r:.80}"))
                    continue
                anns = by_image.get(iid, [])
                if not anns:
                    continue  # nothing annotated: no label to import
                where = f"{path}: {name}"
                if not (isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0):
                    size = image_size(name) if image_size is not None else None
                    if size is None:
                        problems.append(Problem(where, "image has no height/width and is not in the project"))
                        continue
                    h, w = size
                mask = np.full((h, w), NOT_LABELLED, np.uint8)
                outside = False
                for ann in anns:
                    value = cat_values.get((n, ann.get("category_id")))
                    if value is None:
                        problems.append(Problem(where, f"annotation {ann.get('id')}: unknown category_id "
                                                       f"{ann.get('category_id')!r}"))
                        continue
                    seg = ann.get("segmentation")
                    if seg is None or seg == []:
                        problems.append(Problem(where, f"annotation {ann.get('id')}: no segmentation "
                                                       f"(a box only); left out"))
                        continue
                    try:
                        if isinstance(seg, list) and _outside(seg, h, w):
                            outside = True
                        m = decode_segmentation(seg, h, w)
                    except (ValueError, TypeError, OverflowError) as exc:
                        problems.append(Problem(where, f"annotation {ann.get('id')}: {exc}"))
                        continue
                    mask[m] = value
                if outside:
                    problems.append(Problem(where, "a polygon reaches outside the image; clipped to it"))
                yield ReadItem(image=name, mask=mask, source=where, split=split)

    result.items = items()
    return result


def encode_mask(mask: np.ndarray) -> dict:
    """A compressed RLE (JSON-ready) of a boolean mask."""
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


SEGMENTATIONS = ("rle", "polygons")


def _polygon_annotations(mask: np.ndarray, values: list[int]) -> list[tuple[int, list[float]]]:
    """(value, flat polygon) per region, in painting order (larger first, later over earlier).

    ``raster.vectorise`` in the AREA convention (pycocotools' own), holes spliced in as
    keyholes, so pycocotools paints exactly the region (checked on CamVid: every pixel).
    """
    from workbench.formats import raster

    regions = raster.vectorise(mask, raster.AREA, keyhole=True, values=values)
    return [(r.value, [round(float(v), 2) for v in r.points.reshape(-1)]) for r in regions
            if r.value in values]


def write(out: Path, items: Iterable[ExportItem], classes: list[ExportClass], *,
          images: str = "copy", segmentation: str = "rle") -> WriteReport:
    """Write ``annotations/instances_<split>.json`` (and images) under ``out``.

    ``segmentation``: "rle" (default: one compressed RLE per image and class, exact) or
    "polygons" (one polygon per connected region, holes as keyholes, painted in order;
    for tools that read no RLE).
    """
    from pycocotools import mask as mask_utils

    if segmentation not in SEGMENTATIONS:
        raise InputError(f"unknown COCO segmentation {segmentation!r}; choose rle or polygons")

    out = Path(out)
    rep = WriteReport()
    trainable = sorted((c for c in classes if not c.void), key=lambda c: c.value)
    categories = [{"id": c.value + 1, "name": c.name, "supercategory": "", "color": list(c.color)}
                  for c in trainable]
    writable = np.zeros(256, bool)
    writable[[c.value for c in trainable]] = True
    per_split: dict[str, dict] = {}
    ann_id = 0
    for item in items:
        split = item.split or "train"
        doc = per_split.setdefault(split, {"info": {"description": "exported by Segmentation Workbench"},
                                           "licenses": [], "images": [], "annotations": [],
                                           "categories": categories})
        h, w = item.mask.shape
        image_id = sum(len(d["images"]) for d in per_split.values()) + 1
        name = Path(item.name).name
        doc["images"].append({"id": image_id, "file_name": name, "height": int(h), "width": int(w)})
        values = np.flatnonzero((np.bincount(item.mask.ravel(), minlength=256) > 0) & writable)
        if segmentation == "polygons":
            for v, poly in _polygon_annotations(item.mask, [int(x) for x in values]):
                coded = mask_utils.merge(mask_utils.frPyObjects([poly], int(h), int(w)))
                ann_id += 1
                doc["annotations"].append({
                    "id": ann_id, "image_id": image_id, "category_id": int(v) + 1, "iscrowd": 0,
                    "area": float(mask_utils.area(coded)),
                    "bbox": [float(b) for b in mask_utils.toBbox(coded)], "segmentation": [poly]})
            values = []
        for v in values:
            rle = encode_mask(item.mask == v)
            ann_id += 1
            coded = {"size": rle["size"], "counts": rle["counts"].encode("ascii")}
            doc["annotations"].append({
                "id": ann_id, "image_id": image_id, "category_id": int(v) + 1, "iscrowd": 0,
                "area": float(mask_utils.area(coded)), "bbox": [float(b) for b in mask_utils.toBbox(coded)],
                "segmentation": rle})
        image_files.place_into(rep, item.image_path, out / "images" / split / name, images)
        rep.written += 1
    for split, doc in per_split.items():
        path = out / "annotations" / f"instances_{split}.json"
        atomic_write_text(path, json.dumps(doc, separators=(",", ":")) + "\n")
        rep.files.append(path)
    return rep


FORMAT = FormatSpec(
    name="coco", title="COCO (instances / stuff JSON)", detect=detect, read=read, write=write,
    lossless=True, source_kind="file",
    description="a COCO JSON file (polygons, RLE); categories by name")

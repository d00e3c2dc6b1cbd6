"""Cityscapes: ``gtFine/<split>/<city>/<name>_gtFine_labelIds.png`` (also ``_color.png`` and
``_polygons.json``), images in ``leftImg8bit/<split>/<city>/<name>_leftImg8bit.png``.

The Cityscapes label table is built in (ids, trainIds, names, colours; from
cityscapesScripts' ``helpers/labels.py``). Classes are the label ids: a class with
``ignoreInEval`` is void; id 0 ``unlabeled`` is not labelled (255). Reading prefers
``_labelIds.png`` (exact); without one, ``_polygons.json`` is rasterised as
cityscapesScripts' ``json2labelImg`` does (PIL polygons filled in file order, a later
object over an earlier one, ``…group`` labels as their class, deleted objects and
negative ids -- the license plate -- skipped).

Writing uses the table's id for a project class of the same name (case ignored), and
writes ``_labelTrainIds.png`` too (the table's trainIds, 255 elsewhere, as
cityscapesScripts' ``createTrainIdLabelImgs`` does). A
project class the table lacks gets a free id from 34 up, and ``workbench-classes.json``
in the export root lists every id written (its name, colour, void), so importing the
export gives back the project's classes exactly; a real Cityscapes folder has no such
file and gets the full table. Void classes the table does not name and not-labelled
pixels are written as 0 (unlabeled). ``_polygons.json`` holds each class region's
outer contours (OpenCV), larger regions first; holes are only approximated there, the
``_labelIds.png`` is the exact record.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np

from workbench.atomic import atomic_write_text
from workbench.classes import name_key
from workbench.errors import InputError
from workbench.formats import images as image_files
from workbench.formats.base import (NOT_LABELLED, DatasetClass, ExportClass, ExportItem, FormatSpec,
                                    ImageSize, Problem, ReadItem, ReadResult, WriteReport)
from workbench.formats.pngfiles import read_values, write_png


class Label(NamedTuple):
    """One row of the Cityscapes label table."""

    name: str
    id: int
    train_id: int
    category: str
    ignore_in_eval: bool
    color: tuple[int, int, int]


LABELS: tuple[Label, ...] = (
    Label("unlabeled", 0, 255, "void", True, (0, 0, 0)),
    Label("ego vehicle", 1, 255, "void", True, (0, 0, 0)),
    Label("rectification border", 2, 255, "void", True, (0, 0, 0)),
    Label("out of roi", 3, 255, "void", True, (0, 0, 0)),
    Label("static", 4, 255, "void", True, (0, 0, 0)),
    Label("dynamic", 5, 255, "void", True, (111, 74, 0)),
    Label("ground", 6, 255, "void", True, (81, 0, 81)),
    Label("road", 7, 0, "flat", False, (128, 64, 128)),
    Label("sidewalk", 8, 1, "flat", False, (244, 35, 232)),
    Label("parking", 9, 255, "flat", True, (250, 170, 160)),
    Label("rail track", 10, 255, "flat", True, (230, 150, 140)),
    Label("building", 11, 2, "construction", False, (70, 70, 70)),
    Label("wall", 12, 3, "construction", False, (102, 102, 156)),
    Label("fence", 13, 4, "construction", False, (190, 153, 153)),
    Label("guard rail", 14, 255, "construction", True, (180, 165, 180)),
    Label("bridge", 15, 255, "construction", True, (150, 100, 100)),
    Label("tunnel", 16, 255, "construction", True, (150, 120, 90)),
    Label("pole", 17, 5, "object", False, (153, 153, 153)),
    Label("polegroup", 18, 255, "object", True, (153, 153, 153)),
    Label("traffic light", 19, 6, "object", False, (250, 170, 30)),
    Label("traffic sign", 20, 7, "object", False, (220, 220, 0)),
    Label("vegetation", 21, 8, "nature", False, (107, 142, 35)),
    Label("terrain", 22, 9, "nature", False, (152, 251, 152)),
    Label("sky", 23, 10, "sky", False, (70, 130, 180)),
    Label("person", 24, 11, "human", False, (220, 20, 60)),
    Label("rider", 25, 12, "human", False, (255, 0, 0)),
    Label("car", 26, 13, "vehicle", False, (0, 0, 142)),
    Label("truck", 27, 14, "vehicle", False, (0, 0, 70)),
    Label("bus", 28, 15, "vehicle", False, (0, 60, 100)),
    Label("caravan", 29, 255, "vehicle", True, (0, 0, 90)),
    Label("trailer", 30, 255, "vehicle", True, (0, 0, 110)),
    Label("train", 31, 16, "vehicle", False, (0, 80, 100)),
    Label("motorcycle", 32, 17, "vehicle", False, (0, 0, 230)),
    Label("bicycle", 33, 18, "vehicle", False, (119, 11, 32)),
    Label("license plate", -1, -1, "vehicle", True, (0, 0, 142)),
)
BY_NAME = {name_key(lab.name): lab for lab in LABELS}
UNLABELED_ID = 0
FIRST_FREE_ID = 34
CLASSES_FILE = "workbench-classes.json"
GT_RE = re.compile(r"^(?P<base>.+)_(?P<kind>gtFine|gtCoarse)_(?P<what>labelIds\.png|polygons\.json)$")
SPLITS = ("train", "val", "test")
CITY_STEM = re.compile(r"^[a-z_]+_\d{6}_\d{6}$")


def find_gt(src: Path) -> Path | None:
    """The ``gtFine`` (or ``gtCoarse``) folder of ``src``, or None."""
    src = Path(src)
    if src.name in ("gtFine", "gtCoarse") and src.is_dir():
        return src
    for name in ("gtFine", "gtCoarse"):
        if (src / name).is_dir():
            return src / name
    if src.parent.name in ("gtFine", "gtCoarse") and src.name in SPLITS:
        return src.parent
    return None


def detect(src: Path) -> bool:
    """A folder with (or being) ``gtFine/`` holding ``*_gtFine_labelIds.png`` or ``*_polygons.json``."""
    gt = find_gt(Path(src)) if Path(src).is_dir() else None
    if gt is None:
        return False
    return any(GT_RE.match(p.name) for p in gt.glob("*/*/*"))


def table_classes() -> list[DatasetClass]:
    """The label table as dataset classes (``unlabeled`` and negative ids left out)."""
    return [DatasetClass(lab.name, lab.id, lab.color, lab.ignore_in_eval)
            for lab in LABELS if lab.id > UNLABELED_ID]


def read_classes(root: Path, problems: list[Problem]) -> list[DatasetClass]:
    """The classes of an export's ``workbench-classes.json``, else the label table."""
    path = root / CLASSES_FILE
    if not path.is_file():
        return table_classes()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        out = [DatasetClass(str(c["name"]), int(c["id"]), tuple(int(v) for v in c["color"]), bool(c.get("void")))
               for c in data["classes"] if int(c["id"]) != UNLABELED_ID]
        if any(not 0 < c.value < NOT_LABELLED for c in out):
            raise ValueError("ids must be 1-254")
        return out
    except (OSError, ValueError, KeyError, TypeError) as exc:
        problems.append(Problem(str(path), f"not read ({exc}); the Cityscapes label table is used"))
        return table_classes()


def rasterise(path: Path, problems: list[Problem], where: str) -> np.ndarray:
    """A ``_polygons.json`` as label ids, as cityscapesScripts' json2labelImg draws it."""
    from PIL import Image, ImageDraw

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        h, w = int(data["imgHeight"]), int(data["imgWidth"])
        objects = data["objects"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"not a Cityscapes polygons file ({exc})", path) from None
    img = Image.new("L", (w, h), UNLABELED_ID)
    draw = ImageDraw.Draw(img)
    outside = False
    for obj in objects:
        if not isinstance(obj, dict) or obj.get("deleted"):
            continue
        label = str(obj.get("label", ""))
        lab = BY_NAME.get(name_key(label))
        if lab is None and label.endswith("group"):
            lab = BY_NAME.get(name_key(label[: -len("group")]))
        if lab is None:
            problems.append(Problem(where, f"label {label!r} is not in the Cityscapes label table; left out"))
            continue
        if lab.id < 0:
            continue
        try:
            poly = [(float(x), float(y)) for x, y in obj["polygon"]]
        except (KeyError, TypeError, ValueError):
            problems.append(Problem(where, f"object {label!r} has no valid polygon; left out"))
            continue
        if len(poly) < 2:
            continue
        if any(x < 0 or y < 0 or x > w or y > h for x, y in poly):
            outside = True
        draw.polygon(poly, fill=lab.id)
    if outside:
        problems.append(Problem(where, "a polygon reaches outside the image; clipped to it"))
    return np.asarray(img, np.uint8).copy()


def read(src: Path, *, image_size: ImageSize | None = None) -> ReadResult:
    """Read a Cityscapes ground-truth folder (see the module docstring)."""
    gt = find_gt(Path(src))
    if gt is None:
        raise InputError("not a Cityscapes dataset: no gtFine/ folder", src)
    problems: list[Problem] = []
    root = gt.parent
    classes = read_classes(root, problems)
    only_split = Path(src).name if Path(src).name in SPLITS else None
    result = ReadResult(classes=classes, items=[], problems=problems)

    def items() -> Iterator[ReadItem]:
        found: dict[tuple[str, str], dict[str, Path]] = {}
        for path in sorted(gt.glob("*/*/*")):
            m = GT_RE.match(path.name)
            split = path.parent.parent.name
            if m is None or (only_split and split != only_split):
                continue
            found.setdefault((split, m["base"]), {})[m["what"]] = path
        for (split, base), files in found.items():
            path = files.get("labelIds.png") or files["polygons.json"]
            try:
                if "labelIds.png" in files:
                    ids = read_values(path)
                else:
                    ids = rasterise(path, problems, str(path))
            except InputError as exc:
                problems.append(Problem(str(path), exc.problem))
                continue
            mask = ids.copy()
            mask[ids == UNLABELED_ID] = NOT_LABELLED
            yield ReadItem(image=f"{base}_leftImg8bit.png", mask=mask, source=str(path),
                           split=split if split in SPLITS else None)

    result.items = items()
    return result


def export_ids(classes: list[ExportClass]) -> tuple[np.ndarray, list[dict]]:
    """(project value -> label id LUT, the classes written) for an export."""
    lut = np.full(256, UNLABELED_ID, np.uint8)
    used = {lab.id for lab in LABELS}
    next_id = FIRST_FREE_ID
    listed: list[dict] = []
    for c in sorted(classes, key=lambda c: c.value):
        lab = BY_NAME.get(name_key(c.name))
        if lab is not None and lab.id > UNLABELED_ID:
            cid, color = lab.id, lab.color
        elif c.void:
            continue  # a void class Cityscapes does not name: unlabeled
        else:
            while next_id in used:
                next_id += 1
            if next_id >= NOT_LABELLED:
                raise InputError(f"too many classes for Cityscapes ids (class {c.name!r})")
            cid, color = next_id, tuple(c.color)
            used.add(cid)
        lut[c.value] = cid
        listed.append({"id": cid, "name": c.name, "color": list(color), "void": bool(c.void)})
    return lut, listed


def _polygons(ids: np.ndarray, names: dict[int, str]) -> list[dict]:
    import cv2

    objects = []
    for v in np.unique(ids):
        if int(v) == UNLABELED_ID:
            continue
        contours, _ = cv2.findContours((ids == v).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        for cnt in contours:
            pts = cnt.reshape(-1, 2)
            if len(pts) < 3:
                continue
            objects.append((float(cv2.contourArea(cnt)), {"label": names[int(v)],
                                                          "polygon": pts.astype(int).tolist()}))
    objects.sort(key=lambda t: -t[0])
    return [o for _, o in objects]


def write(out: Path, items: Iterable[ExportItem], classes: list[ExportClass], *,
          images: str = "copy") -> WriteReport:
    """Write ``gtFine/`` (labelIds, color, polygons) and ``leftImg8bit/`` under ``out``."""
    out = Path(out)
    rep = WriteReport()
    lut, listed = export_ids(classes)
    names = {c["id"]: c["name"] for c in listed}
    colors = np.zeros((256, 3), np.uint8)
    for c in listed:
        colors[c["id"]] = c["color"]
    train_lut = np.full(256, NOT_LABELLED, np.uint8)    # trainIds as createTrainIdLabelImgs writes them
    for lab in LABELS:
        if lab.id >= 0 and 0 <= lab.train_id < NOT_LABELLED:
            train_lut[lab.id] = lab.train_id
    extra = [c["name"] for c in listed if c["id"] >= FIRST_FREE_ID]
    if extra:
        rep.notes.append(f"{len(extra)} class(es) are not in the Cityscapes label table, written as ids "
                         f"{FIRST_FREE_ID}+ (see {CLASSES_FILE}): " + ", ".join(extra[:10])
                         + (" ..." if len(extra) > 10 else ""))
    for item in items:
        split = item.split or "train"
        stem = Path(item.name).stem
        base = stem[: -len("_leftImg8bit")] if stem.endswith("_leftImg8bit") else stem
        city = base.split("_")[0] if CITY_STEM.match(base) else "workbench"
        folder = out / "gtFine" / split / city
        ids = lut[item.mask]
        h, w = ids.shape
        write_png(folder / f"{base}_gtFine_labelIds.png", ids)
        write_png(folder / f"{base}_gtFine_color.png", colors[ids])
        write_png(folder / f"{base}_gtFine_labelTrainIds.png", train_lut[ids])
        atomic_write_text(folder / f"{base}_gtFine_polygons.json", json.dumps(
            {"imgHeight": int(h), "imgWidth": int(w), "objects": _polygons(ids, names)}) + "\n")
        rep.files += [folder / f"{base}_gtFine_{s}"
                      for s in ("labelIds.png", "color.png", "labelTrainIds.png", "polygons.json")]
        image = out / "leftImg8bit" / split / city / f"{base}_leftImg8bit{Path(item.name).suffix}"
        image_files.place_into(rep, item.image_path, image, images)
        rep.written += 1
    atomic_write_text(out / CLASSES_FILE, json.dumps({"classes": listed}, indent=2) + "\n")
    rep.files.append(out / CLASSES_FILE)
    return rep


FORMAT = FormatSpec(
    name="cityscapes", title="Cityscapes", detect=detect, read=read, write=write, lossless=True,
    source_kind="folder",
    description="gtFine/<split>/<city>/*_gtFine_labelIds.png (+ _color.png, _polygons.json)")

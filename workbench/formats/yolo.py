"""YOLO segmentation (Ultralytics): ``data.yaml``, ``images/<split>/``, ``labels/<split>/*.txt``.

Each label line is ``class x1 y1 x2 y2 ...``: a class index into ``names`` and a polygon
in coordinates normalised by the image's width and height (a line of exactly four
numbers is a detection box ``cx cy w h`` and is painted as that rectangle). Coordinates
are read in the AREA convention of :mod:`workbench.formats.raster` (``x * width`` on the
continuous image plane; pixels whose centre is inside are covered). Overlaps are
resolved as Ultralytics does when it rasterises a label file: larger polygons first,
smaller ones on top. Pixels no polygon covers are not labelled. YOLO has no void, and
one line is one ring: a region with holes is written as one ring with each hole spliced
in by a zero-width bridge (as Ultralytics' converters join rings), so a not-labelled hole
stays not labelled.

``data.yaml`` gives ``names`` (a list, or a mapping index -> name) and the splits
``train`` / ``val`` / ``test``: folders of images (or ``.txt`` lists of images),
relative to ``path`` or to the yaml's folder; a label file sits where Ultralytics looks
for it, the last ``images`` folder of the image's path replaced by ``labels``. Roboflow's
``train/images`` + ``valid/images`` layout with ``../`` paths is understood too. Without
a yaml, ``images/`` and ``labels/`` (with or without split subfolders) are read and the
classes are unnamed (their index is their value). A label file without its image is
read too when the project has the image (matched by stem).

Written: ``data.yaml`` (``names`` as a mapping, no ``path`` so that Ultralytics resolves
the folders beside the yaml), ``labels/<split>/<stem>.txt`` and ``images/<split>/``
unless "none"; images without a split go to ``train``; ``val`` points at the train
images when the export has no val images (Ultralytics requires it). Class indices are
the project's trainable classes in value order, numbered from 0; void classes are not
written, their pixels are not labelled (the void rule of :mod:`workbench.formats.raster`).
Reading, a ``names`` entry ``__ignore__`` paints "not labelled" and one named like a void
class (``Unlabelled``) is a void class.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import yaml

from workbench.atomic import atomic_write_text
from workbench.errors import InputError
from workbench.formats import images as image_files
from workbench.formats import raster
from workbench.formats.base import (NOT_LABELLED, DatasetClass, ExportClass, ExportItem, FormatSpec,
                                    ImageSize, Problem, ReadItem, ReadResult, WriteReport)
from workbench.formats.class_files import IGNORE_NAMES
from workbench.imageio import image_size as file_image_size
from workbench.imageio import is_image_file

SPLIT_KEYS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
YAML_NAMES = ("data.yaml", "data.yml", "dataset.yaml")
MAX_LABEL_BYTES = 64 * 1024 * 1024


def find_yaml(src: Path) -> Path | None:
    """The dataset yaml for ``src`` (the file itself, ``data.yaml``, or the one yaml there)."""
    src = Path(src)
    if src.is_file():
        return src if src.suffix.lower() in (".yaml", ".yml") else None
    if not src.is_dir():
        return None
    for name in YAML_NAMES:
        if (src / name).is_file():
            return src / name
    found = sorted(p for p in src.iterdir() if p.suffix.lower() in (".yaml", ".yml") and p.is_file())
    return found[0] if len(found) == 1 else None


def _has_txt(folder: Path) -> bool:
    return folder.is_dir() and next((True for p in folder.rglob("*.txt") if p.is_file()), False)


def detect(src: Path) -> bool:
    """A yaml with ``names`` beside label folders, or an ``images/`` + ``labels/`` folder."""
    src = Path(src)
    path = find_yaml(src)
    if path is not None:
        try:
            data = _load_yaml(path)
        except InputError:
            return False
        return isinstance(data, dict) and "names" in data and any(k in data for k in SPLIT_KEYS)
    return src.is_dir() and _has_txt(src / "labels")


def _load_yaml(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read: {getattr(exc, 'strerror', None) or exc}", path) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise InputError(f"not valid YAML{where}", path) from None
    if not isinstance(data, dict):
        raise InputError("not a YOLO dataset yaml: expected keys such as names, train, val", path)
    return data


def parse_names(names, where: Path) -> list[DatasetClass]:
    """``names`` of a data.yaml (a list, or a mapping index -> name) as classes."""
    if isinstance(names, list):
        pairs = list(enumerate(names))
    elif isinstance(names, dict):
        try:
            pairs = sorted((int(k), v) for k, v in names.items())
        except (TypeError, ValueError):
            raise InputError("names: the keys of the mapping must be class indices (0, 1, ...)", where) from None
    else:
        raise InputError("names: expected a list of class names or a mapping index -> name", where)
    out = []
    for index, name in pairs:
        if not 0 <= index < NOT_LABELLED:
            raise InputError(f"names: class index {index} is outside 0..{NOT_LABELLED - 1}", where)
        out.append(DatasetClass(str(name), index))
    if len({c.name for c in out}) != len(out):
        raise InputError("names: a class name is listed twice", where)
    return out


def _label_path(image: Path) -> Path:
    # Ultralytics' img2label_paths: the last /images/ becomes /labels/, the suffix .txt
    parts = list(image.parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            break
    return Path(*parts).with_suffix(".txt")


def _resolve_entry(entry: str, base: Path, yaml_dir: Path) -> Path | None:
    cand = Path(entry).expanduser()
    if cand.is_absolute():
        return cand if cand.exists() else None
    for root in (base, yaml_dir):
        if (root / cand).exists():
            return root / cand
    # Roboflow writes ../train/images beside the yaml
    stripped = Path(*[p for p in cand.parts if p != ".."]) if ".." in cand.parts else None
    if stripped is not None and (yaml_dir / stripped).exists():
        return yaml_dir / stripped
    # labels-only export: images/<split> absent, labels/<split> present
    lab = _label_path(base / cand / "x.png").parent
    return base / cand if lab.is_dir() else None


def _images_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and is_image_file(p))


def _collect(src: Path, problems: list[Problem]) -> tuple[list[DatasetClass] | None,
                                                           list[tuple[str, Path, Path | None, str | None]]]:
    """(classes, [(image name, label file, image file or None, split)])."""
    yaml_path = find_yaml(src)
    entries: list[tuple[str, Path, Path | None, str | None]] = []
    seen: set[Path] = set()

    def add_folder(images_dir: Path, split: str | None) -> None:
        labels_dir = _label_path(images_dir / "x.png").parent
        if images_dir.is_dir():
            for img in _images_under(images_dir):
                lab = _label_path(img)
                if lab in seen:
                    continue
                seen.add(lab)
                if lab.is_file():
                    entries.append((img.relative_to(images_dir).as_posix(), lab, img, split))
        if labels_dir.is_dir():
            for lab in sorted(p for p in labels_dir.rglob("*.txt") if p.is_file()):
                if lab in seen:
                    continue
                seen.add(lab)
                entries.append((lab.relative_to(labels_dir).with_suffix("").as_posix(), lab, None, split))

    if yaml_path is None:
        root = src if src.is_dir() else src.parent
        if not (root / "labels").is_dir():
            raise InputError("not a YOLO dataset: no data.yaml and no labels/ folder", src)
        subs = [d for d in sorted((root / "labels").iterdir()) if d.is_dir() and d.name.lower() in SPLIT_KEYS]
        if subs:
            for d in subs:
                add_folder(root / "images" / d.name, SPLIT_KEYS[d.name.lower()])
        else:
            add_folder(root / "images", None)
        return None, entries
    data = _load_yaml(yaml_path)
    classes = parse_names(data["names"], yaml_path) if "names" in data else None
    yaml_dir = yaml_path.parent
    base = Path(str(data["path"])).expanduser() if data.get("path") else yaml_dir
    if not base.is_absolute():
        base = yaml_dir / base
    if not base.is_dir():
        base = yaml_dir  # a path from the machine that made it: the folders are beside the yaml
    used: set[Path] = set()
    for key, split in SPLIT_KEYS.items():
        value = data.get(key)
        if not value:
            continue
        for entry in value if isinstance(value, list) else [value]:
            folder = _resolve_entry(str(entry), base, yaml_dir)
            if folder is None:
                problems.append(Problem(str(yaml_path), f"{key}: {entry} not found"))
                continue
            if folder.resolve() in used:
                continue  # val pointing at the train images: read them once
            used.add(folder.resolve())
            if folder.is_file() and folder.suffix.lower() == ".txt":
                for line in folder.read_text(encoding="utf-8", errors="replace").splitlines():
                    line = line.strip()
                    if not line:
                        continue
                    img = Path(line)
                    img = img if img.is_absolute() else (base / img if (base / img).exists() else folder.parent / img)
                    lab = _label_path(img)
                    if lab.is_file() and lab not in seen:
                        seen.add(lab)
                        entries.append((img.name, lab, img if img.is_file() else None, split))
            else:
                add_folder(folder, split)
    return classes, entries


def read(src: Path, *, image_size: ImageSize | None = None,
         classes: list[DatasetClass] | None = None) -> ReadResult:
    """Read a YOLO segmentation dataset (see the module docstring).

    ``classes`` names the class indices when the person gave a class file (a YOLO class
    index is its value either way).
    """
    src = Path(src)
    problems: list[Problem] = []
    found_classes, entries = _collect(src, problems)
    if not entries:
        problems.append(Problem(str(src), "no label files found"))
    if classes is None and found_classes is not None:
        classes = raster.mark_void_names(found_classes)
    # a class named __ignore__ (labelme's name for it) is "not labelled", not a class
    ignore = {c.value for c in classes or [] if c.name.strip().lower() in IGNORE_NAMES}
    if classes is not None:
        classes = [c for c in classes if c.value not in ignore]
    known = {c.value for c in classes} | ignore if classes is not None else None
    result = ReadResult(classes=classes, items=[], problems=problems)

    def items() -> Iterator[ReadItem]:
        for name, lab, img, split in entries:
            item = _read_label(name, lab, img, split, known, image_size, result.problems, ignore)
            if item is not None:
                yield item

    result.items = items()
    return result


def _read_label(name: str, lab: Path, img: Path | None, split: str | None, known: set[int] | None,
                image_size: ImageSize | None, problems: list[Problem],
                ignore: set[int] = frozenset()) -> ReadItem | None:
    where = str(lab)
    size = image_size(name) if image_size is not None else None
    if size is None and img is not None:
        try:
            w, h = file_image_size(img)
            size = (h, w)
        except Exception as exc:  # noqa: BLE001 - an unreadable image: named below
            problems.append(Problem(str(img), f"cannot read the image size ({exc}); its labels are skipped"))
            return None
    if size is None:
        problems.append(Problem(where, f"no image {name!r} here or in the project to give the size; skipped"))
        return None
    h, w = size
    try:
        if lab.stat().st_size > MAX_LABEL_BYTES:
            raise InputError("too large to be a YOLO label file", lab)
        text = lab.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError, InputError) as exc:
        problems.append(Problem(where, getattr(exc, "problem", None) or f"cannot read ({exc})"))
        return None
    regions: list[raster.Region] = []
    clipped: list[str] = []
    unknown: set[int] = set()
    for lineno, line in enumerate(text.splitlines(), 1):
        tokens = line.split()
        if not tokens:
            continue
        try:
            cls = int(tokens[0])
            coords = [float(t) for t in tokens[1:]]
        except ValueError:
            problems.append(Problem(where, f"line {lineno}: not a class index and numbers; skipped"))
            continue
        if known is not None and cls not in known or not 0 <= cls < NOT_LABELLED:
            unknown.add(cls)
            continue
        if len(coords) == 4:
            cx, cy, bw, bh = coords
            pts = np.array([[cx - bw / 2, cy - bh / 2], [cx + bw / 2, cy - bh / 2],
                            [cx + bw / 2, cy + bh / 2], [cx - bw / 2, cy + bh / 2]])
        elif len(coords) >= 6 and len(coords) % 2 == 0:
            pts = np.asarray(coords, float).reshape(-1, 2)
        else:
            problems.append(Problem(where, f"line {lineno}: {len(coords)} coordinates, neither a polygon "
                                           f"(an even number, at least 6) nor a box (4); skipped"))
            continue
        pts = pts * [w, h]
        try:
            raster.check_coords(pts)
        except ValueError as exc:
            problems.append(Problem(where, f"line {lineno}: {exc}; skipped"))
            continue
        placed = raster.placement(pts, h, w, raster.AREA)
        if placed == "outside":
            problems.append(Problem(where, f"line {lineno}: the polygon lies outside the image; skipped"))
            continue
        if placed == "clipped":
            clipped.append(str(lineno))
        regions.append(raster.Region(NOT_LABELLED if cls in ignore else cls, pts))
    if unknown:
        problems.append(Problem(where, f"class indices that names does not list, skipped: "
                                       f"{', '.join(map(str, sorted(unknown)))}"))
    if clipped:
        problems.append(Problem(where, f"polygons partly outside the image (coordinates beyond 0..1), "
                                       f"clipped: line {', '.join(clipped)}"))
    mask = raster.rasterise(regions, h, w, raster.AREA, order="area")
    return ReadItem(image=name, mask=mask, source=where, split=split)


# ----- write ----------------------------------------------------------------------------
def _yaml_text(names: list[str], splits: list[str]) -> str:
    data: dict = {}
    for split in ("train", "val", "test"):
        if split in splits:
            data[split] = f"images/{split}"
    data.setdefault("train", "images/train")
    data.setdefault("val", data["train"])
    data["nc"] = len(names)
    data["names"] = dict(enumerate(names))
    return "# YOLO segmentation dataset written by Segmentation Workbench\n" + yaml.safe_dump(
        data, sort_keys=False, allow_unicode=True)


def write(out: Path, items: Iterable[ExportItem], classes: list[ExportClass], *,
          images: str = "copy") -> WriteReport:
    """Write ``data.yaml``, ``labels/<split>/`` and ``images/<split>/`` under ``out``."""
    out = Path(out)
    image_files.check_mode(images)
    rep = WriteReport()
    # void classes are not written: their pixels are not labelled, names does not list
    # them, so the indices count the trainable classes only (raster.trainable, raster.without_void)
    ordered = raster.trainable(classes)
    index = {c.value: i for i, c in enumerate(ordered)}
    splits: list[str] = []
    for item in items:
        mask = raster.without_void(item.mask, classes)
        h, w = mask.shape
        split = item.split if item.split in ("train", "val", "test") else "train"
        if split not in splits:
            splits.append(split)
        _, values = raster.named_values(mask, index, item.name, rep.problems)
        regions = raster.vectorise(mask, raster.AREA, order="area", keyhole=True, values=values)
        lines = [f"{index[r.value]} " + " ".join(f"{x / w:.6f} {y / h:.6f}" for x, y in r.points)
                 for r in regions]
        rel = Path(item.name)
        lab = out / "labels" / split / rel.with_suffix(".txt")
        atomic_write_text(lab, "".join(line + "\n" for line in lines))
        rep.files.append(lab)
        image_files.place_into(rep, item.image_path, out / "images" / split / rel, images)
        rep.written += 1
    path = out / "data.yaml"
    atomic_write_text(path, _yaml_text([c.name for c in ordered], splits))
    rep.files.append(path)
    return rep


FORMAT = FormatSpec(
    name="yolo", title="YOLO segmentation", detect=detect, read=read, write=write, lossless=False,
    source_kind="folder",
    description="data.yaml names, images/<split>/, labels/<split>/*.txt polygons (normalised)")

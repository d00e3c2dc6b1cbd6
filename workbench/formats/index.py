"""Index PNG folder + classes.json: the CamVid / SegNet layout (the project's own format).

Reading: SRC is either a folder of masks (``trainannot/``) or a dataset root holding
``<split>annot/`` folders (``trainannot/``, ``valannot/``, ``testannot/``, whose name
gives the split). Each mask's pixel values are class values; an RGB colour mask is
decoded through the class colours. Classes come from a ``classes.json`` in SRC or its
parent (CamVid keeps one beside ``trainannot/``), or the original CamVid's
``label_colors.txt`` (``R G B name`` lines; its ``<stem>_L.png`` colour masks pair with
``<stem>.png``); without one the values are taken as they are (the project's own
numbering).

Writing: ``<out>/<split>/<image>`` (the images, per ``images=``),
``<out>/<split>annot/<stem>.png`` (grayscale, value = project class index, void classes
keep their index, 255 = not labelled) and ``<out>/classes.json``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from workbench.classes import ClassSchema
from workbench.errors import InputError
from workbench.formats import images as image_files
from workbench.formats.base import (DatasetClass, ExportClass, ExportItem, FormatSpec, ImageSize,
                                    Problem, ReadItem, ReadResult, WriteReport)
from workbench.formats.class_files import from_schema, read_class_file, write_classes_json
from workbench.formats.pngfiles import list_pngs, read_values, write_png

ANNOT = "annot"
SPLITS = ("train", "val", "test")


def mask_folders(src: Path) -> list[tuple[Path, str | None]]:
    """(folder of masks, split) pairs under ``src``."""
    subs = [(src / f"{s}{ANNOT}", s) for s in SPLITS if (src / f"{s}{ANNOT}").is_dir()]
    if subs:
        return subs
    split = src.name[:-len(ANNOT)] if src.name.endswith(ANNOT) else None
    return [(src, split if split in SPLITS else None)]


CLASS_FILES = ("classes.json", "label_colors.txt")   # ours / SegNet's; the original CamVid's


def find_classes(src: Path) -> Path | None:
    """The class file that describes ``src``'s masks (in it or its parent), if any."""
    for folder in (src, src.parent):
        for name in CLASS_FILES:
            if (folder / name).is_file():
                return folder / name
    return None


def detect(src: Path) -> bool:
    """A folder with PNG masks directly in it or in ``<split>annot/`` folders."""
    if not src.is_dir():
        return False
    return any(list_pngs(folder)[:1] for folder, _ in mask_folders(src))


def read(src: Path, *, image_size: ImageSize | None = None,
         classes: list[DatasetClass] | None = None) -> ReadResult:
    """Read every mask of an index PNG folder (see the module docstring).

    ``classes`` name the values instead of the source's classes.json (and give RGB
    masks their colours): a ``--classes`` file, or the project's own classes when the
    masks are in the project's numbering.
    """
    src = Path(src)
    if not src.is_dir():
        raise InputError("not a folder of index masks", src)
    cls_path = find_classes(src)
    if classes is None and cls_path is not None:
        classes = (from_schema(ClassSchema.load(cls_path)) if cls_path.suffix == ".json"
                   else read_class_file(cls_path))
    result = ReadResult(classes=classes, items=[])

    def items() -> Iterator[ReadItem]:
        for folder, split in mask_folders(src):
            for path in list_pngs(folder):
                try:
                    mask = read_values(path, classes)
                except InputError as exc:
                    result.problems.append(Problem(str(path), exc.problem))
                    continue
                yield ReadItem(image=path.name, mask=mask, source=str(path), split=split)

    result.items = items()
    return result


def write(out: Path, items: Iterable[ExportItem], classes: list[ExportClass], *,
          images: str = "copy") -> WriteReport:
    """Write the CamVid / SegNet layout under ``out``."""
    out = Path(out)
    rep = WriteReport()
    for item in items:
        split = item.split or "train"
        stem = Path(item.name).stem
        path = out / f"{split}{ANNOT}" / f"{stem}.png"
        write_png(path, item.mask)
        rep.files.append(path)
        image_files.place_into(rep, item.image_path, out / split / Path(item.name).name, images)
        rep.written += 1
    write_classes_json(out / "classes.json", classes)
    rep.files.append(out / "classes.json")
    return rep


FORMAT = FormatSpec(
    name="index", title="Index PNG + classes.json (CamVid / SegNet)", detect=detect, read=read,
    write=write, lossless=True, source_kind="folder",
    description="grayscale PNG masks whose pixel values are class indices, with classes.json")

"""The contract every label format implements (reader, writer, detector).

A reader turns a source (folder or file) into :class:`ReadItem` masks in the *dataset's*
class values, with the dataset's own class list when the format carries one; it never
raises for one bad file: it adds a :class:`Problem` naming the file and goes on. A writer
takes :class:`ExportItem` masks in the *project's* class values and writes the format's
layout under an output folder. Mapping dataset classes onto project classes (by name) is
the workflow's job, not the format's.

Mask convention on both sides: ``uint8`` H x W, 255 = not labelled (void / ignore /
border), every other value a class value listed in the class list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

NOT_LABELLED = 255


@dataclass(frozen=True)
class DatasetClass:
    """One class as a dataset names it."""

    name: str
    value: int                                   # value in ReadItem.mask (0..254)
    color: tuple[int, int, int] | None = None    # the format's colour, if it has one
    void: bool = False                           # the format marks it void / ignore


@dataclass(frozen=True)
class Problem:
    """Something skipped or changed, with the file it is about."""

    file: str
    reason: str


@dataclass
class ReadItem:
    """One image's mask as read from the dataset."""

    image: str                # the image as the dataset names it (file name or relative path)
    mask: np.ndarray          # uint8 H x W in DatasetClass values, 255 = not labelled
    source: str               # the file the mask came from (named in problems)
    split: str | None = None  # "train" / "val" / "test" when the format says


@dataclass
class ReadResult:
    """What a reader found: the dataset's classes (None: the format names none) and masks."""

    classes: list[DatasetClass] | None
    items: Iterator[ReadItem] | list[ReadItem]
    problems: list[Problem] = field(default_factory=list)   # readers append while iterating


# (image name as the dataset names it) -> (height, width) of the project's image, or None
# when the project has no such image. Polygon formats need it to rasterise and to check
# shapes against the image; YOLO needs it to undo its normalised coordinates.
ImageSize = Callable[[str], tuple[int, int] | None]


@dataclass
class ExportClass:
    """One project class as a writer sees it."""

    name: str
    value: int                          # value in ExportItem.mask
    color: tuple[int, int, int]
    void: bool = False


@dataclass
class ExportItem:
    """One image to write: its project name, its file, its mask in project values."""

    name: str                  # relative name in the project ("0001TP_006690.png")
    image_path: Path           # the source image (never written to)
    mask: np.ndarray           # uint8 H x W, project class values, 255 = not labelled
    split: str | None = None
    status: str | None = None


@dataclass
class WriteReport:
    """What a writer wrote and skipped."""

    written: int = 0
    files: list[Path] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)     # worth saying, not a problem (added by fmt-core)


# how to place the images beside the labels: "copy", "link" (symlink, copy where links
# are refused) or "none" (labels only)
ImagesMode = str


@dataclass(frozen=True)
class FormatSpec:
    """A format: its name, how to recognise it, how to read and write it."""

    name: str                                   # "index", "voc", "coco", ...
    title: str                                  # "Pascal VOC" (shown in the app)
    detect: Callable[[Path], bool]              # True when the source looks like this format
    read: Callable[..., ReadResult]             # read(src, *, image_size) -> ReadResult
    write: Callable[..., WriteReport]           # write(out, items, classes, *, images) -> WriteReport
    lossless: bool = True                       # False for polygon formats (see docs/project-format.md)
    source_kind: str = "folder"                 # "folder" or "file" (a COCO JSON, a CVAT XML)
    description: str = ""


def iter_items(result: ReadResult) -> Iterable[ReadItem]:
    """The items of a read result (a list or a lazy iterator)."""
    return iter(result.items)

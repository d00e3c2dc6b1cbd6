"""Importing labels from, and exporting them to, the field's formats: one implementation
for the CLI (``workbench import --format``, ``workbench export``) and the app
(File > Import labels…, File > Export…).

Classes are matched **by name** (``classes.name_key``: case and surrounding spaces
ignored), never by number:

* a project with no labels, ground truth or models of its own yet **adopts** the
  dataset's classes (names, colours, void flags; trainable classes renumbered 0..K-1
  in the dataset's order, void classes after them) once the source turns out to hold a
  mask for one of its images;
* otherwise the project's classes stay as they are: a dataset class the project does
  not have is **left not labelled** (255) and listed with the files that use it, so
  nothing in the project changes behind the person's back. Add the class (class
  setup, or ``add_classes=True`` / ``--add-classes``, which adds each at the first
  mask that uses it) and import again: imported labels are replaced, a person's are
  kept unless ``overwrite``;
* a void dataset class the project does not name is not labelled (255).

Replaced labels go to the label history (``project.importer.store_mask``, the rule the
folder importer follows too). Splits the format records (VOC ImageSets, Cityscapes and
CamVid split folders, COCO file names) are given to the images whose label was
imported, except that an image already out of ``train`` (a held-out test image) keeps
its split unless ``overwrite``.
"""

from __future__ import annotations

import inspect
import json
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from workbench.classes import UNLABELLED, ClassSchema
from workbench.errors import CancelledError, InputError, WorkbenchError
from workbench.formats import registry
from workbench.formats.base import (DatasetClass, ExportClass, ExportItem, ImageSize, Problem, ReadItem,
                                    ReadResult)
from workbench.formats.class_files import from_schema, read_class_file, schema_from_classes
from workbench.formats.images import check_mode
from workbench.progress import CancelToken, ProgressCallback, check, report
from workbench.project.importer import check_image_complete, normalise_kind, store_mask
from workbench.project.records import ImageRecord, Split, Status, parse_split, parse_status

if TYPE_CHECKING:
    from workbench.project.project import Project

SHOW_AT_MOST = 20
EXPORT_MARKER = ".workbench-export.json"   # hidden: formats that list *.json (labelme) skip dot-files
STATUS_CHOICES = ("verified", "labelled", "all")
SPLIT_CHOICES = ("train", "val", "test", "all")
# suffixes a format adds to an image's stem (Cityscapes: aachen_000000_000019_leftImg8bit.png;
# the original CamVid's colour labels: 0001TP_006690_L.png)
IMAGE_SUFFIXES = ("_leftImg8bit", "_L")


def _listing(items: list[str], limit: int = SHOW_AT_MOST, indent: str = "  ") -> list[str]:
    lines = [f"{indent}{s}" for s in items[:limit]]
    if len(items) > limit:
        lines.append(f"{indent}... and {len(items) - limit} more")
    return lines


def _problem_lines(problems: list[Problem], limit: int = SHOW_AT_MOST) -> list[str]:
    """A report's "problems (n):" heading and its listing (file: reason); none when none."""
    if not problems:
        return []
    return [f"problems ({len(problems)}):"] + _listing([f"{p.file}: {p.reason}" for p in problems], limit)


@dataclass
class DetectedSource:
    """What a source holds, shown before importing: its format, classes and counts."""

    path: Path
    format: str
    title: str
    classes: list[DatasetClass] | None     # None: the format names no classes (values as they are)
    masks: int = 0                          # masks (images with labels) the source holds
    matched: int = 0                        # of those, images the project has (when a project was given)
    unmatched: list[str] = field(default_factory=list)
    splits: dict[str, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def summary_lines(self, limit: int = SHOW_AT_MOST) -> list[str]:
        """Human-readable lines (CLI and GUI)."""
        lines = [f"format: {self.title} ({self.format})", f"source: {self.path}"]
        if self.classes is None:
            lines.append("classes: none named by the source (mask values are taken as class indices)")
        else:
            names = [c.name + (" (void)" if c.void else "") for c in self.classes]
            lines.append(f"classes ({len(names)}): " + ", ".join(names[:40])
                         + (f" and {len(names) - 40} more" if len(names) > 40 else ""))
        split = ", ".join(f"{k} {v}" for k, v in sorted(self.splits.items()))
        lines.append(f"masks: {self.masks}" + (f" ({split})" if split else ""))
        if self.matched or self.unmatched:
            lines.append(f"images in the project: {self.matched}; not in the project: {len(self.unmatched)}")
        lines += _problem_lines(self.problems, limit)
        return lines


@dataclass
class InterchangeReport:
    """What ``import_labels`` did: counts and every problem with its file."""

    format: str
    kind: str                                         # "labels" or "ground-truth"
    source: Path
    total: int = 0                                    # masks read from the source
    imported: int = 0
    imported_names: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)     # a person's labels left alone
    overwritten: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)          # source files naming no project image
    unknown_classes: dict[str, list[str]] = field(default_factory=dict)   # class name -> files
    problems: list[Problem] = field(default_factory=list)
    adopted_classes: list[str] = field(default_factory=list)    # names, when the project took the dataset's
    added_classes: list[str] = field(default_factory=list)      # dataset classes added (add_classes=True)
    splits_set: int = 0
    splits_kept: list[str] = field(default_factory=list)        # images left in the split a person chose
    cancelled: bool = False

    @property
    def ok(self) -> bool:
        """True when nothing was skipped for a problem and nothing was cancelled."""
        return not self.problems and not self.cancelled and not self.unknown_classes

    def summary_lines(self, limit: int = SHOW_AT_MOST) -> list[str]:
        """Human-readable lines (CLI and GUI), long lists cut at ``limit`` plus "and N more"."""
        what = "labels (verified)" if self.kind == "labels" else "ground-truth masks"
        lines = [f"imported {self.imported} of {self.total} {what} from {self.source} ({self.format})"]
        if self.cancelled:
            lines.append("cancelled: what was imported before stays")
        if self.adopted_classes:
            lines.append(f"classes taken from the dataset ({len(self.adopted_classes)}): "
                         + ", ".join(self.adopted_classes))
        if self.added_classes:
            lines.append(f"classes added from the dataset ({len(self.added_classes)}): "
                         + ", ".join(self.added_classes))
        if self.splits_set:
            lines.append(f"splits set from the dataset: {self.splits_set} image(s)")
        if self.splits_kept:
            lines.append(f"kept the split of {len(self.splits_kept)} image(s) not in train "
                         f"(use overwrite to take the dataset's):")
            lines += _listing(self.splits_kept, limit)
        if self.kept:
            lines.append(f"kept {len(self.kept)} label(s) made or changed by a person (use overwrite to replace):")
            lines += _listing(self.kept, limit)
        if self.overwritten:
            lines.append(f"replaced {len(self.overwritten)} label(s) made by a person; the earlier versions "
                         f"are in the label history:")
            lines += _listing(self.overwritten, limit)
        if self.unknown_classes:
            lines.append(f"classes the project does not have ({len(self.unknown_classes)}), "
                         f"left not labelled (add them and import again):")
            lines += _listing([f"{name}: {len(files)} file(s), e.g. {files[0]}"
                               for name, files in self.unknown_classes.items()], limit)
        if self.unmatched:
            lines.append(f"not in the project ({len(self.unmatched)} mask(s) naming no image of the project):")
            lines += _listing(self.unmatched, limit)
        lines += _problem_lines(self.problems, limit)
        return lines


@dataclass
class ExportReport:
    """What ``export_labels`` wrote and skipped."""

    format: str
    out: Path
    written: int = 0
    selected: int = 0
    files: list[Path] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    cancelled: bool = False

    @property
    def ok(self) -> bool:
        """True when every selected label was written."""
        return not self.problems and not self.cancelled

    def summary_lines(self, limit: int = SHOW_AT_MOST) -> list[str]:
        """Human-readable lines (CLI and GUI)."""
        lines = [f"exported {self.written} of {self.selected} label(s) to {self.out} ({self.format})"]
        if self.cancelled:
            lines.append("cancelled: the export is incomplete")
        lines += [f"note: {n}" for n in self.notes]
        lines += _problem_lines(self.problems, limit)
        return lines


def _next_item(items: Iterator[ReadItem], path: Path, problems: list[Problem]) -> ReadItem | None:
    """The reader's next item; None at its end or when it cannot go on (a file vanished, a
    folder became unreadable): then one "reading stopped" problem names the file (or the
    source) and what was read so far stays (detect and import alike)."""
    try:
        return next(items, None)
    except (WorkbenchError, OSError, ValueError) as exc:
        where = getattr(exc, "path", None) or path
        problems.append(Problem(str(where), f"reading stopped: {getattr(exc, 'problem', exc)}"))
        return None


# ----- matching -----------------------------------------------------------------------
def match_image(project: "Project", image: str) -> ImageRecord | None:
    """The project image a dataset names (file name, stem, or stem less a format's suffix)."""
    base = Path(image.replace("\\", "/")).name
    stem = Path(base).stem
    for key in (base, stem, *(stem[: -len(s)] for s in IMAGE_SUFFIXES if stem.endswith(s))):
        rec = project.find(key)
        if rec is not None:
            return rec
    return None


def is_blank(project: "Project") -> bool:
    """True when the project has no labels, ground truth or models of its own yet."""
    return not project.models() and not any(r.has_label or r.has_ground_truth for r in project.images())


def class_lut(classes: list[DatasetClass] | None, schema: ClassSchema
              ) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """(value -> project value LUT, which values are defined, {value: name} of unknown classes)."""
    lut = np.full(256, UNLABELLED, np.uint8)
    defined = np.zeros(256, bool)
    defined[UNLABELLED] = True
    unknown: dict[int, str] = {}
    if classes is None:
        for v in schema.valid_values:
            lut[v] = v
            defined[v] = True
        return lut, defined, unknown
    for c in classes:
        defined[c.value] = True
        target = schema.by_name(c.name)
        if target is not None and not target.retired:
            lut[c.value] = target.index
        elif not c.void:
            unknown[c.value] = c.name
    return lut, defined, unknown


def _image_size(project: "Project") -> "ImageSize":
    def size(image: str) -> tuple[int, int] | None:
        rec = match_image(project, image)
        if rec is None:
            return None
        try:
            return project.image_shape(rec.id)
        except InputError:
            return None
    return size


def _resolve(src: str | Path, format: str) -> tuple[Path, "registry.FormatSpec"]:
    path = Path(src).expanduser()
    if not path.exists():
        raise InputError("label source not found", path)
    spec = registry.detect_or_explain(path) if format in (None, "", "auto") else registry.get(format)
    return path, spec


def _read(spec: "registry.FormatSpec", path: Path, project: "Project | None",
          given: list[DatasetClass] | None) -> "ReadResult":
    # An index folder without a classes.json holds the project's own numbering: read it
    # with the project's classes (names to match by, colours for RGB masks).
    kwargs: dict = {}
    if "classes" in inspect.signature(spec.read).parameters:
        if given is not None:
            kwargs["classes"] = given
        elif spec.name == "index" and project is not None:
            from workbench.formats.index import find_classes

            if find_classes(path) is None:
                kwargs["classes"] = from_schema(project.schema)
    return spec.read(path, image_size=_image_size(project) if project is not None else None, **kwargs)


# ----- detect ---------------------------------------------------------------------------
def detect_source(src: str | Path, project: "Project | None" = None, *, format: str = "auto",
                  on_progress: ProgressCallback | None = None,
                  cancel: CancelToken | None = None) -> DetectedSource:
    """Which format ``src`` is, the classes it carries and how many masks (and, given a
    project, how many name its images). Reads the whole source once."""
    path, spec = _resolve(src, format)
    result = _read(spec, path, project, None)
    found = DetectedSource(path, spec.name, spec.title, result.classes)
    items = iter(result.items)
    while True:
        check(cancel)
        item = _next_item(items, path, found.problems)
        if item is None:
            break
        found.masks += 1
        if item.split:
            found.splits[item.split] = found.splits.get(item.split, 0) + 1
        if project is not None:
            if match_image(project, item.image) is None:
                found.unmatched.append(item.image)
            else:
                found.matched += 1
        report(on_progress, found.masks, None, "reading the source")
    found.problems[:0] = result.problems
    return found


# ----- import ---------------------------------------------------------------------------
def import_labels(project: "Project", src: str | Path, *, images: Iterable[str | int] | None = None,
                  format: str = "auto", classes: str | Path | list[DatasetClass] | None = None,
                  as_: str = "labels", overwrite: bool = False, add_classes: bool = False,
                  status: Status | str = Status.VERIFIED,
                  on_progress: ProgressCallback | None = None,
                  cancel: CancelToken | None = None) -> InterchangeReport:
    """Import a dataset's masks (any registered format) as labels or ground truth.

    ``images`` limits the import to those project images (names, stems or ids);
    ``classes`` (a classes.json / names file, or DatasetClass list) names the dataset's
    values instead of what the format carries. See the module docstring for how
    classes are mapped; ``add_classes`` adds a dataset class the project lacks (as a
    new trainable class, with the dataset's colour) at the first mask that uses it,
    instead of leaving its pixels not labelled. One bad file is a problem naming it; the rest go on; each mask
    is committed on its own, so a cancelled import keeps what it did.
    """
    kind = normalise_kind(as_)
    project._check_writable()
    path, spec = _resolve(src, format)
    given = read_class_file(classes) if isinstance(classes, (str, Path)) else classes
    result = _read(spec, path, project, given)
    rep = InterchangeReport(format=spec.name, kind=kind, source=path)
    ds_classes = given if given is not None else result.classes
    adopt: ClassSchema | None = None
    if ds_classes is not None and is_blank(project):
        try:
            adopt = schema_from_classes(ds_classes, name=project.schema.name)
        except InputError as exc:
            raise InputError(exc.problem, path) from None
        if [(c.name, c.void) for c in adopt.classes] == [(c.name, c.void) for c in project.schema.classes]:
            adopt = None
    mapping = _Mapping(ds_classes, project)
    only: set[int] | None = None
    if images is not None:
        only = set()
        for key in images:
            rec = project.get(key) if isinstance(key, int) else project.find(str(key))
            if rec is not None:
                only.add(rec.id)
    seen: dict[int, str] = {}
    splits: dict[str, list[int]] = {}
    label = "labels" if kind == "labels" else "ground truth"
    report(on_progress, 0, None, f"importing {label}")
    items: Iterator[ReadItem] = iter(result.items)
    while True:
        try:
            check(cancel)
        except CancelledError:
            rep.cancelled = True
            break
        item = _next_item(items, path, rep.problems)    # what was imported stays when it fails
        if item is None:
            break
        rec = match_image(project, item.image)
        if only is not None and (rec is None or rec.id not in only):
            continue
        if adopt is not None and rec is not None:
            # the dataset's classes are taken once a mask is found for an image of the
            # project: a source that names none of its images changes nothing
            project.save_schema(adopt)
            rep.adopted_classes = [c.name for c in adopt.classes]
            mapping.refresh()
            adopt = None
        rep.total += 1
        _import_one(project, item, rep, kind=kind, mapping=mapping, add_classes=add_classes,
                    status=status, overwrite=overwrite, seen=seen, splits=splits)
        report(on_progress, rep.total, None, f"importing {label}", imported=rep.imported,
               problems=len(rep.problems))
    rep.problems[:0] = result.problems
    for split, ids in splits.items():
        project.set_split(ids, split)
        rep.splits_set += len(ids)
    return rep


class _Mapping:
    """Dataset value -> project value, rebuilt when the project's classes change."""

    def __init__(self, classes: list[DatasetClass] | None, project: "Project") -> None:
        self.classes, self.project = classes, project
        self.refresh()

    def refresh(self) -> None:
        self.lut, self.defined, self.unknown = class_lut(self.classes, self.project.schema)

    def add(self, values: list[int], rep: InterchangeReport) -> None:
        """Add the dataset classes of ``values`` to the project."""
        by_value = {c.value: c for c in self.classes or []}
        for v in values:
            c = by_value[v]
            self.project.add_class(c.name, c.color)
            rep.added_classes.append(c.name)
        self.refresh()


def _import_one(project: "Project", item: ReadItem, rep: InterchangeReport, *, kind: str,
                mapping: _Mapping, add_classes: bool, status: Status | str,
                overwrite: bool, seen: dict[int, str],
                splits: dict[str, list[int]]) -> None:
    rec = match_image(project, item.image)
    if rec is None:
        rep.unmatched.append(item.source if item.source == item.image else f"{item.image} ({item.source})")
        return
    if rec.id in seen:
        rep.problems.append(Problem(item.source, f"another mask for image {rec.name} was used: {seen[rec.id]}"))
        return
    seen[rec.id] = item.source
    mask = np.asarray(item.mask)
    if mask.ndim != 2 or mask.dtype != np.uint8:
        rep.problems.append(Problem(item.source, f"mask is not a 2-D 8-bit array ({mask.dtype} {mask.shape})"))
        return
    try:
        hw = project.image_shape(rec.id)
        check_image_complete(project.image_path(rec.id))
    except InputError as exc:
        rep.problems.append(Problem(item.source, f"{exc.problem} ({rec.name})"))
        return
    if mask.shape != tuple(hw):
        rep.problems.append(Problem(item.source, f"mask is {mask.shape[1]}x{mask.shape[0]} but image {rec.name} "
                                                 f"is {hw[1]}x{hw[0]}"))
        return
    present = np.flatnonzero(np.bincount(mask.ravel(), minlength=256))
    bad = [int(v) for v in present if not mapping.defined[v]]
    if bad:
        shown = ", ".join(map(str, bad[:8])) + (" ..." if len(bad) > 8 else "")
        rep.problems.append(Problem(item.source, f"values that no class of the dataset names: {shown}"))
        return
    if add_classes:
        new = [int(v) for v in present if int(v) in mapping.unknown]
        if new:
            try:
                mapping.add(new, rep)
            except WorkbenchError as exc:
                rep.problems.append(Problem(item.source, f"cannot add the dataset's classes: {exc}"))
    for v in present:
        name = mapping.unknown.get(int(v))
        if name is not None:
            files = rep.unknown_classes.setdefault(name, [])
            if len(files) < 1000:
                files.append(item.source)
    try:
        outcome = store_mask(project, rec, mapping.lut[mask], kind=kind, status=parse_status(status),
                             source="import", overwrite=overwrite)
    except WorkbenchError as exc:
        rep.problems.append(Problem(item.source, str(exc)))
        return
    if outcome == "kept":
        rep.kept.append(rec.name)
        return
    if outcome == "overwritten":
        rep.overwritten.append(rec.name)
    rep.imported += 1
    rep.imported_names.append(rec.name)
    if kind == "labels" and item.split in ("train", "val", "test") and item.split != rec.split.value:
        # an image a person moved out of train (a held-out test image) stays where it is
        # unless overwrite: the dataset's split must not leak it into training
        if rec.split == Split.TRAIN or overwrite:
            splits.setdefault(item.split, []).append(rec.id)
        else:
            rep.splits_kept.append(f"{rec.name} ({rec.split.value}; the dataset says {item.split})")


# ----- export ---------------------------------------------------------------------------
def export_classes(schema: ClassSchema) -> list[ExportClass]:
    """The project's classes as writers see them (retired values are not classes)."""
    return [ExportClass(c.name, c.index, tuple(c.color), c.void) for c in schema.classes if not c.retired]


def select_images(project: "Project", status: str = "verified", split: str = "all") -> list[ImageRecord]:
    """The images an export takes: ``status`` verified / labelled (any label) / all; ``split``."""
    if status not in STATUS_CHOICES:
        raise WorkbenchError(f"unknown status {status!r}; choose one of {', '.join(STATUS_CHOICES)}")
    if split not in SPLIT_CHOICES:
        raise WorkbenchError(f"unknown split {split!r}; choose one of {', '.join(SPLIT_CHOICES)}")
    recs = project.images(split=None if split == "all" else parse_split(split))
    if status == "verified":
        return [r for r in recs if r.has_label and r.status == Status.VERIFIED]
    if status == "labelled":
        return [r for r in recs if r.has_label]
    return recs


def check_out_dir(project: "Project", out: Path, format: str) -> None:
    """Refuse an output folder that is not empty unless it is an earlier export of ``format``,
    the image folder itself and anything in the state folder."""
    out_r, state = out.resolve(), project.state_dir.resolve()
    if out_r == project.folder.resolve() or out_r == state or state in out_r.parents:
        raise WorkbenchError("will not export into the project's image or state folder; choose "
                             "another --out", out)
    if out.exists() and not out.is_dir():
        raise WorkbenchError("--out is a file, not a folder", out)
    if not out.is_dir() or not any(out.iterdir()):
        return
    marker = out / EXPORT_MARKER
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise WorkbenchError("the folder is not empty and is not an earlier export; choose an empty or "
                             "new folder (nothing was written)", out) from None
    if not isinstance(data, dict) or data.get("format") != format:
        was = data.get("format") if isinstance(data, dict) else None
        raise WorkbenchError(f"the folder holds an earlier export in another format ({was}); choose "
                             f"another folder (nothing was written)", out)


def export_labels(project: "Project", out: str | Path, *, format: str, status: str = "verified",
                  split: str = "all", images: str = "copy", options: dict | None = None,
                  on_progress: ProgressCallback | None = None,
                  cancel: CancelToken | None = None) -> ExportReport:
    """Write the project's labels in ``format`` under ``out``; images per ``images``.

    ``status``: "verified" (default), "labelled" (every image with a label) or "all"
    (images without a label too, as all not-labelled masks). A non-empty ``out`` is
    refused unless it is an earlier export of the same format (recognised by its
    ``.workbench-export.json``), whose files are then replaced one by one, atomically.
    ``options`` go to the format's writer (COCO: ``{"segmentation": "polygons"}``).
    """
    spec = registry.get(format)
    check_mode(images)
    if options:
        accepted = inspect.signature(spec.write).parameters
        unknown = sorted(k for k in options if k not in accepted)
        if unknown:
            raise WorkbenchError(f"the {spec.name} format has no option {', '.join(unknown)}")
    out = Path(out).expanduser()
    recs = select_images(project, status, split)
    check_out_dir(project, out, spec.name)
    rep = ExportReport(format=spec.name, out=out, selected=len(recs))
    from workbench.atomic import atomic_write_text

    atomic_write_text(out / EXPORT_MARKER, json.dumps(
        {"format": spec.name, "project": os.fspath(project.folder), "status": status, "split": split,
         "images": images, "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, indent=2) + "\n")

    # values of retired classes (no class any more) leave as not labelled: no format could name them
    out_lut = np.arange(256, dtype=np.uint8)
    out_lut[project.schema.retired] = UNLABELLED

    def items() -> Iterator[ExportItem]:
        for i, rec in enumerate(recs):
            check(cancel)
            report(on_progress, i, len(recs), f"exporting {spec.name}")
            try:
                mask = project.read_label(rec.id) if rec.has_label else None
                if mask is None:
                    mask = np.full(project.image_shape(rec.id), UNLABELLED, np.uint8)
            except InputError as exc:
                rep.problems.append(Problem(str(exc.path or rec.name), exc.problem))
                continue
            yield ExportItem(rec.name, project.image_path(rec.id), out_lut[mask], rec.split.value,
                             rec.status.value)
        report(on_progress, len(recs), len(recs), f"exporting {spec.name}")

    try:
        wrote = spec.write(out, items(), export_classes(project.schema), images=images, **(options or {}))
    except CancelledError:
        rep.cancelled = True
        return rep
    rep.written = wrote.written
    rep.files = wrote.files
    rep.problems += wrote.problems
    rep.notes += wrote.notes
    return rep

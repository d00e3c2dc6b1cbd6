"""``workbench import IMAGES --masks SRC [--format F]``: bring existing labels into a project.

SRC is a folder or a file in any registered format (``--format auto`` detects it; see
``workbench.formats.registry``). A plain folder of index masks (today's layout) keeps
its own path: the class schema comes from ``--classes``; else the project's own (when
the project already exists); else a ``classes.json`` in SRC or SRC's parent (CamVid
keeps one beside ``trainannot/``); else the number of classes is inferred from the mask
values. Every other source goes through ``workflows.interchange.import_labels``, which
maps the dataset's classes onto the project's by name.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

from workbench.classes import UNLABELLED, ClassSchema
from workbench.commands.bars import progress_bar
from workbench.errors import InputError, WorkbenchError
from workbench.project import Project
from workbench.project.importer import list_mask_files, normalise_kind
from workbench.project.location import is_state_dir

SHOW_AT_MOST = 20


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``import`` and set its ``func``."""
    from workbench.formats.registry import NAMES

    p = subparsers.add_parser(
        "import", help="import labels (a mask folder, VOC, COCO, Cityscapes, labelme, CVAT, YOLO)",
        description="Import labels into the project of an image folder, pairing them with images "
                    "by file stem. SRC is a folder of masks (grayscale index, palette or RGB colour "
                    "PNGs) or a dataset in another format: Pascal VOC, COCO JSON, Cityscapes, "
                    "labelme, CVAT XML, YOLO segmentation (--format auto detects which). Dataset "
                    "classes are matched to the project's by name. Labels become 'verified'; "
                    "ground truth is kept apart from labels.")
    p.add_argument("images", metavar="IMAGES", help="the image folder (the project)")
    p.add_argument("--masks", required=True, metavar="SRC",
                   help="folder of mask files, a dataset folder, or a file (a COCO JSON, a CVAT XML)")
    p.add_argument("--format", default="auto", choices=["auto", *NAMES],
                   help="the format of SRC (default: auto, detected from SRC)")
    p.add_argument("--as", dest="as_", default="labels", choices=["labels", "ground-truth"],
                   help="import as the project's labels (default) or as reference ground truth")
    p.add_argument("--classes", metavar="FILE",
                   help="classes.json, or a text file of class names one a line (_background_ and "
                        "__ignore__ understood, as labelme's labels.txt and VOC's class_names.txt); "
                        "default: the classes SRC carries, else the project's, else classes.json in "
                        "SRC or its parent, else inferred from the mask values")
    p.add_argument("--dry-run", action="store_true",
                   help="only say what SRC is: its format, the classes it carries, how many masks "
                        "and how many name images of the project; import nothing")
    p.add_argument("--add-classes", action="store_true",
                   help="add the dataset's classes the project lacks (default: their pixels are "
                        "left not labelled and the classes listed)")
    p.add_argument("--state-dir", metavar="DIR",
                   help="keep project state here instead of IMAGES/.workbench")
    p.add_argument("--overwrite", action="store_true",
                   help="also replace labels a person made or changed (skipped and listed by "
                        "default); the replaced versions stay in the label history "
                        "(workbench labels IMAGES --history NAME)")
    p.set_defaults(func=run)
    return p


def find_classes_file(mask_dir: Path) -> Path | None:
    """A ``classes.json`` in ``mask_dir`` or its parent, if there is one."""
    for folder in (mask_dir, mask_dir.parent):
        candidate = folder / "classes.json"
        if candidate.is_file():
            return candidate
    return None


def infer_schema(mask_dir: Path) -> ClassSchema:
    """A default schema with as many classes as the largest mask value implies."""
    from PIL import Image, UnidentifiedImageError

    top = -1
    for path in list_mask_files(mask_dir):
        try:
            with warnings.catch_warnings():
                # The pixel guard of masks.read_mask: a forged header must not allocate gigabytes.
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(path) as img:
                    if img.mode not in ("L", "P", "I", "I;16", "1") and not img.mode.startswith("I;16"):
                        raise InputError(f"colour ({img.mode}) masks need the class colours: "
                                         f"give them with --classes FILE", path)
                    arr = np.asarray(img)
        except (OSError, UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
            continue  # the import itself reports unreadable masks
        values = np.unique(arr)
        values = values[values != UNLABELLED]
        if values.size:
            top = max(top, int(values.max()))
    if top < 0:
        raise WorkbenchError(f"cannot infer the classes: no readable mask with class values in "
                             f"{mask_dir}; give them with --classes FILE")
    if top >= UNLABELLED:
        raise WorkbenchError(f"masks hold value {top}; class indices go up to 254")
    return ClassSchema.default(max(top + 1, 2))


def _names(names: list[str]) -> str:
    more = f" and {len(names) - SHOW_AT_MOST} more" if len(names) > SHOW_AT_MOST else ""
    return ", ".join(names[:SHOW_AT_MOST]) + more


def _is_blank(project: Project) -> bool:
    return not project.models() and not any(r.has_label or r.has_ground_truth for r in project.images())


def _load_schema(path: str) -> ClassSchema:
    """A classes.json, or a names file as a schema (names in order, default colours)."""
    from workbench.formats.class_files import read_class_file, schema_from_classes

    p = Path(path).expanduser()
    if p.suffix.lower() == ".json":
        return ClassSchema.load(p)
    return schema_from_classes(read_class_file(p))


def _is_plain_mask_folder(src: Path, fmt: str) -> bool:
    """True for a folder of index masks itself (today's import path), not a dataset root."""
    from workbench.formats import index, registry

    if fmt not in ("auto", "index") or not src.is_dir():
        return False
    if fmt == "auto":
        spec = registry.detect(src)
        if spec is None or spec.name != "index":
            return False
    return index.mask_folders(src) == [(src, index.mask_folders(src)[0][1])]


def run(args: argparse.Namespace) -> int:
    """Run the import; 0 when every mask went in, 1 when some had problems."""
    src = Path(args.masks).expanduser()
    if not src.exists():
        raise InputError("label source not found", src)
    if getattr(args, "dry_run", False):
        return _run_detect(args, src)
    if not _is_plain_mask_folder(src, getattr(args, "format", "auto") or "auto"):
        return _run_format(args, src)
    return _run_folder(args)


def _run_detect(args: argparse.Namespace, src: Path) -> int:
    """``--dry-run``: what SRC holds and how it pairs with the project; writes nothing."""
    from workbench.workflows.interchange import detect_source

    fmt = args.format or "auto"
    try:
        project = Project.open(args.images, state_dir=args.state_dir, create=False)
    except WorkbenchError:
        project = None  # no project yet: creating one is not a dry run's business
    try:
        with progress_bar("reading", unit="mask") as bar:
            found = detect_source(src, project, format=fmt, on_progress=bar)
    finally:
        if project is not None:
            project.close()
    for line in found.summary_lines(SHOW_AT_MOST):
        print(line)
    if project is None:
        print(f"(no project at {args.images} yet: pairing with its images not checked)")
    return 1 if found.problems else 0


def _open_writable(args: argparse.Namespace, schema: ClassSchema | None) -> Project:
    project = Project.open(args.images, state_dir=args.state_dir, schema=schema)
    if project.read_only:
        reason = project.read_only_reason or ""
        project.close()
        if reason.startswith("opened read-only: "):  # the state folder itself cannot be written
            raise WorkbenchError(f"cannot import: the project {reason}", project.state_dir)
        raise WorkbenchError("project is open in another window/process; close it and import "
                             "again", project.state_dir)
    return project


def _run_format(args: argparse.Namespace, src: Path) -> int:
    """Import a dataset in any registered format through the interchange workflow."""
    from workbench.formats import registry
    from workbench.formats.class_files import read_class_file
    from workbench.workflows.interchange import import_labels

    kind = normalise_kind(args.as_)
    fmt = args.format or "auto"
    spec = registry.detect_or_explain(src) if fmt == "auto" else registry.get(fmt)
    given = read_class_file(args.classes) if args.classes else None
    with _open_writable(args, None) as project:
        print(f"project: {project.folder} ({len(project.images())} images)")
        print(f"state:   {project.state_dir}")
        print(f"format:  {spec.title} ({spec.name}){' (detected)' if fmt == 'auto' else ''}")
        with progress_bar(f"import {kind}", unit="mask") as bar:
            rep = import_labels(project, src, format=spec.name, classes=given, as_=kind,
                                overwrite=bool(getattr(args, "overwrite", False)),
                                add_classes=bool(getattr(args, "add_classes", False)), on_progress=bar)
        print(f"classes: {project.schema.num_classes}")
        for line in rep.summary_lines(SHOW_AT_MOST):
            print(line)
        for problem in project.problems[:SHOW_AT_MOST]:
            print(f"note: {problem}", file=sys.stderr)
    if rep.imported == 0 and rep.total > 0 and not rep.kept:
        return 1
    return 1 if (rep.problems or rep.unknown_classes) else 0


def _run_folder(args: argparse.Namespace) -> int:
    """Import a plain folder of masks (paired by stem) as before the formats existed."""
    kind = normalise_kind(args.as_)
    mask_dir = Path(args.masks).expanduser()
    list_mask_files(mask_dir)  # fail early on a missing mask folder
    given = _load_schema(args.classes) if args.classes else None
    _, state = Project.locate(args.images, state_dir=args.state_dir)
    existed = is_state_dir(state) and (state / "classes.json").is_file()
    schema, origin = given, args.classes
    if schema is None and not existed:
        found = find_classes_file(mask_dir)
        if found is not None:
            schema, origin = ClassSchema.load(found), str(found)
        else:
            schema, origin = infer_schema(mask_dir), "inferred from the mask values"
    with Project.open(args.images, state_dir=args.state_dir, schema=schema) as project:
        if project.read_only:
            reason = project.read_only_reason or ""
            if reason.startswith("opened read-only: "):  # the state folder itself cannot be written
                raise WorkbenchError(f"cannot import: the project {reason}", project.state_dir)
            raise WorkbenchError("project is open in another window/process; close it and import "
                                 "again", project.state_dir)
        if existed:
            if given is not None and given.to_dict() != project.schema.to_dict():
                if not _is_blank(project):
                    raise WorkbenchError(
                        f"the project already has other classes ({project.classes_path}); import "
                        f"without --classes, or start a new project with --state-dir")
                project.save_schema(given)
            else:
                origin = f"the project's ({project.classes_path})"
        print(f"project: {project.folder} ({len(project.images())} images)")
        print(f"state:   {project.state_dir}")
        print(f"classes: {project.schema.num_classes} ({origin})")
        with progress_bar(f"import {kind}", unit="mask") as bar:
            rep = project.import_masks(mask_dir, as_=kind, on_progress=bar,
                                       overwrite=bool(getattr(args, "overwrite", False)))
        what = "labels (verified)" if kind == "labels" else "ground-truth masks"
        print(f"imported {rep.imported} of {rep.total} {what} from {mask_dir}")
        if rep.kept:
            print(f"kept {len(rep.kept)} label(s) edited by a person: {_names(rep.kept)}; "
                  f"use --overwrite to replace")
        if rep.overwritten:
            print(f"replaced {len(rep.overwritten)} label(s) edited by a person: {_names(rep.overwritten)}; "
                  f"the earlier versions are in the label history (workbench labels {args.images} "
                  f"--history NAME)")
        if rep.problems:
            print(f"problems ({len(rep.problems)}):", file=sys.stderr)
            for f, problem in rep.problems[:SHOW_AT_MOST]:
                print(f"  {f}: {problem}", file=sys.stderr)
            if len(rep.problems) > SHOW_AT_MOST:
                print(f"  ... and {len(rep.problems) - SHOW_AT_MOST} more", file=sys.stderr)
        if rep.unmatched:
            shown = ", ".join(rep.unmatched[:SHOW_AT_MOST])
            more = f" and {len(rep.unmatched) - SHOW_AT_MOST} more" if len(rep.unmatched) > SHOW_AT_MOST else ""
            print(f"unmatched ({len(rep.unmatched)} masks with no image of the same stem): {shown}{more}")
        for problem in project.problems[:SHOW_AT_MOST]:
            print(f"note: {problem}", file=sys.stderr)
    return 1 if rep.problems else 0

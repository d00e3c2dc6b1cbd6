"""``workbench import IMAGES --masks DIR``: bring existing masks into a project.

The class schema comes from ``--classes``; else the project's own (when the project
already exists); else a ``classes.json`` in DIR or DIR's parent (CamVid keeps one
beside ``trainannot/``); else the number of classes is inferred from the mask values.
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
    p = subparsers.add_parser(
        "import", help="import a folder of masks as labels or ground truth",
        description="Import masks (grayscale index, palette or RGB colour PNGs) into the "
                    "project of an image folder, pairing masks with images by file stem. "
                    "Labels become 'verified'; ground truth is kept apart from labels.")
    p.add_argument("images", metavar="IMAGES", help="the image folder (the project)")
    p.add_argument("--masks", required=True, metavar="DIR", help="folder of mask files")
    p.add_argument("--as", dest="as_", default="labels", choices=["labels", "ground-truth"],
                   help="import as the project's labels (default) or as reference ground truth")
    p.add_argument("--classes", metavar="FILE",
                   help="class schema JSON (default: the project's, else classes.json in DIR "
                        "or its parent, else inferred from the mask values)")
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


def run(args: argparse.Namespace) -> int:
    """Run the import; 0 when every mask went in, 1 when some had problems."""
    kind = normalise_kind(args.as_)
    mask_dir = Path(args.masks).expanduser()
    list_mask_files(mask_dir)  # fail early on a missing mask folder
    given = ClassSchema.load(args.classes) if args.classes else None
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

"""``workbench export PROJECT --format F --out DIR``: write a project's labels in a standard format.

Thin over ``workflows.interchange.export_labels`` (the app's File > Export… calls the
same). DIR must be empty, new, or an earlier export of the same format.
"""

from __future__ import annotations

import argparse

from workbench.commands.bars import progress_bar
from workbench.errors import WorkbenchError
from workbench.project import Project

SHOW_AT_MOST = 20


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``export`` and set its ``func``."""
    from workbench.formats.registry import NAMES
    from workbench.workflows.interchange import SPLIT_CHOICES, STATUS_CHOICES

    p = subparsers.add_parser(
        "export", help="export labels as index PNGs, VOC, COCO, Cityscapes, labelme, CVAT or YOLO",
        description="Write the project's labels in a standard format under DIR. DIR must be empty "
                    "or new, or an earlier export of the same format (its files are replaced). "
                    "Source images are only read.")
    p.add_argument("project", metavar="PROJECT", help="the image folder (the project)")
    p.add_argument("--format", required=True, choices=list(NAMES), help="the format to write")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--status", default="verified", choices=list(STATUS_CHOICES),
                   help="which labels: verified (default), labelled (any label), or all images "
                        "(images without a label as not labelled)")
    p.add_argument("--split", default="all", choices=list(SPLIT_CHOICES),
                   help="which split to export (default: all)")
    p.add_argument("--images", default="copy", choices=["copy", "link", "none"],
                   help="put the images beside the labels: copy (default), link (symlinks), none")
    p.add_argument("--coco-polygons", action="store_true",
                   help="COCO only: polygons (one per region, holes as keyholes) instead of RLE, "
                        "for tools that read no RLE")
    p.add_argument("--state-dir", metavar="DIR",
                   help="the project's state folder, when it is not PROJECT/.workbench")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run the export; 0 when every selected label was written, 1 otherwise."""
    from workbench.workflows.interchange import export_labels

    options = None
    if getattr(args, "coco_polygons", False):
        if args.format != "coco":
            raise WorkbenchError("--coco-polygons is for --format coco")
        options = {"segmentation": "polygons"}
    # create=False: exporting a folder that is no project yet says so rather than making one
    with Project.open(args.project, state_dir=args.state_dir, create=False) as project:
        if not project.images():
            raise WorkbenchError("the project has no images", project.folder)
        with progress_bar(f"export {args.format}", unit="image") as bar:
            rep = export_labels(project, args.out, format=args.format, status=args.status,
                                split=args.split, images=args.images, options=options, on_progress=bar)
    for line in rep.summary_lines(SHOW_AT_MOST):
        print(line)
    if rep.selected == 0:
        print(f"nothing to export: no image matches --status {args.status} --split {args.split}")
        return 1
    return 0 if rep.ok else 1

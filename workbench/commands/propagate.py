"""``workbench propagate PROJECT``: carry verified labels to neighbouring frames (``workflows.propagation``)."""

from __future__ import annotations

import argparse
import sys

from workbench.errors import WorkbenchError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``propagate`` sub-command."""
    p = subparsers.add_parser(
        "propagate", help="carry verified labels to the next / previous frames of a sequence",
        description="Frames of a sequence share a name prefix and end in a frame number. From each "
                    "verified frame (or --from NAME), its label is carried by optical flow to up to "
                    "--frames neighbours each way, fused with the current model's prediction, and "
                    "saved where no person's label is, as status 'predicted' (not training data until "
                    "you edit or verify it). Pixels below --min-confidence stay unlabelled. Replaced "
                    "labels go to the label history.",
        epilog="example:\n  workbench propagate my_video_project --frames 3 --direction next",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("project", metavar="PROJECT", help="project folder")
    p.add_argument("--state-dir", metavar="DIR", help="the project's state folder")
    p.add_argument("--from", dest="sources", metavar="NAME", action="append",
                   help="source frame (file name or stem; repeat for more; default: every verified frame)")
    p.add_argument("--frames", type=int, default=1, help="frames to carry each way (default 1)")
    p.add_argument("--direction", choices=["next", "previous", "both"], default="both")
    p.add_argument("--min-confidence", type=float, default=0.5,
                   help="pixels less sure than this stay unlabelled (0..1, default 0.5)")
    p.add_argument("--no-model", action="store_true", help="optical flow alone, no model prior")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Propagate; prints each frame written, 0 on success (1 when nothing was written)."""
    from workbench.commands.bars import progress_bar
    from workbench.project import Project
    from workbench.workflows.propagation import propagate_project

    with Project.open(args.project, state_dir=args.state_dir) as project:
        ids = None
        if args.sources:
            ids = []
            for name in args.sources:
                rec = project.find(name)
                if rec is None:
                    raise WorkbenchError(f"no image named {name!r} in the project", project.folder)
                ids.append(rec.id)
        with progress_bar("propagate", unit="frame") as bar:
            out = propagate_project(project, sources=ids, frames=args.frames, direction=args.direction,
                                    use_model=not args.no_model, min_confidence=args.min_confidence,
                                    on_progress=bar)
        for target, source, share in out.written:
            print(f"{target}: label carried from {source} ({share:.0%} of the pixels labelled)")
        for name, why in out.skipped:
            print(f"{name}: skipped: {why}", file=sys.stderr)
        print(f"{len(out.written)} frame(s) labelled by propagation (status predicted: review, then verify)")
        if out.cancelled:
            return 130
        return 0 if out.written else 1

"""``workbench suggest PROJECT``: the next images to label, and where in them (``workflows.suggestions``)."""

from __future__ import annotations

import argparse
import json


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``suggest`` sub-command."""
    p = subparsers.add_parser(
        "suggest", help="the next images to label: uncertain, and not near-duplicates of each other",
        description="Ranks the train images without a person's label by the current model's "
                    "uncertainty, at most one per stretch of similar frames (and not next to what "
                    "is labelled already), and lists the most uncertain regions of each. Missing "
                    "predictions are made and cached first.",
        epilog="example:\n  workbench suggest my_project --count 4",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("project", metavar="PROJECT", help="project folder")
    p.add_argument("--state-dir", metavar="DIR", help="the project's state folder")
    p.add_argument("--count", type=int, default=4, help="how many images (default 4)")
    p.add_argument("--strategy", choices=["diverse", "uncertain", "typical", "coverage", "random"],
                   default="diverse",
                   help="diverse (default), uncertain (plain most-uncertain), typical (cover the "
                        "collection: one typical image per unlabelled group of similar ones), coverage "
                        "(cover the classes: images the model thinks show classes the labels have few "
                        "pixels of), random")
    p.add_argument("--spread", type=float, default=2.0,
                   help="how different two picks must be, in typical near-duplicate distances (default 2)")
    p.add_argument("--balanced", action="store_true",
                   help="diverse: weight each pixel's uncertainty by how rare its predicted class is among "
                        "the labelled pixels (favours images showing classes few labels cover)")
    p.add_argument("--density", type=float, default=0.0, metavar="P",
                   help="diverse: weight each image by how typical it is of the collection, ** P "
                        "(default 0 = off; favours images like many others over outliers)")
    p.add_argument("--device", help="cpu, cuda, mps (default auto)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the suggestions, one image a line with its regions."""
    from workbench.commands.bars import progress_bar
    from workbench.project import Project
    from workbench.workflows.suggestions import suggest_images

    with Project.open(args.project, state_dir=args.state_dir) as project:
        with progress_bar("suggest", unit="image") as bar:
            out = suggest_images(project, count=args.count, strategy=args.strategy, spread=args.spread,
                                 balanced=args.balanced, density_power=args.density,
                                 device=args.device or "auto", on_progress=bar)
    if args.json:
        print(json.dumps({"version": out.version, "strategy": out.strategy, "candidates": out.candidates,
                          "suggestions": [{"name": s.name, "uncertainty": s.uncertainty,
                                           "regions": [{"box": list(r.box), "pixels": r.pixels,
                                                        "uncertainty": r.uncertainty} for r in s.regions]}
                                          for s in out.suggestions]}, indent=2))
        return 0
    print(f"model v{out.version}, {out.strategy}: {len(out.suggestions)} of {out.candidates} unlabelled train image(s)")
    for n, s in enumerate(out.suggestions, 1):
        where = "; ".join(f"x {r.box[1]}-{r.box[3]}, y {r.box[0]}-{r.box[2]}" for r in s.regions[:3])
        print(f"{n}. {s.name}  uncertainty {s.uncertainty:.3f}" + (f"  (start at {where})" if where else ""))
    return 0

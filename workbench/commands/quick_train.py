"""``workbench train PROJECT --quick``: fit the quick model and register it (``workflows.quick``)."""

from __future__ import annotations

import argparse
import sys

from workbench.errors import WorkbenchError


def run_quick(args: argparse.Namespace) -> int:
    """Train the quick model on the project's labels; prints what was registered, 0 on success."""
    from workbench.commands.bars import progress_bar
    from workbench.project import Project
    from workbench.workflows.quick import train_quick_project

    if args.masks is not None or args.out is not None:
        raise WorkbenchError("--quick trains a project's quick model: give a project folder, "
                             "without --masks / --out")
    with Project.open(args.images, state_dir=args.state_dir) as project:
        for note in project.problems:
            print(f"note: {note}", file=sys.stderr)
        with progress_bar("quick model", unit="image") as bar:
            outcome = train_quick_project(project, policy=args.policy, on_progress=bar)
        rec = outcome.record
        m = rec.metrics
        print(f"registered model version {outcome.version} ({rec.path.name}, quick model): "
              f"{m.get('samples', 0):,} labelled pixels of {m.get('trained_on', 0)} image(s), "
              f"fitted in {m.get('fit_seconds', 0):.1f} s")
        print(outcome.message)
    return 0

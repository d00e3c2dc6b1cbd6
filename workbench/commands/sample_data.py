"""``workbench sample-data OUT_DIR``: write the synthetic sample project to a folder."""

from __future__ import annotations

import argparse

from workbench import options
from workbench.commands.bars import progress_bar


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``sample-data`` sub-command."""
    p = subparsers.add_parser(
        "sample-data", help="write the synthetic sample project (24 cell images) to a folder",
        description="Synthesise the sample project: 24 fluorescence-like cell images "
                    "(background, cytoplasm, nucleus, debris), ground truth for all of them, "
                    "8 verified training labels and a 6-image val split. Deterministic per seed.")
    p.add_argument("out_dir", metavar="OUT_DIR", help="folder to create (must be empty or new)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--images", type=int, default=24, help="number of images (default: 24)")
    p.add_argument("--force", action="store_true",
                   help="write into a non-empty folder, replacing the sample files")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Generate the sample project and print what was written."""
    from workbench.sample_data import generate

    options.check_int("--seed", args.seed, minimum=0, maximum=2**32 - 1)
    options.check_int("--images", args.images, minimum=1, maximum=10_000)
    with progress_bar("sample data", unit="img") as bar:
        summary = generate(args.out_dir, seed=args.seed, num_images=args.images,
                           overwrite=args.force, on_progress=bar)
    print(f"wrote {len(summary.images)} images to {summary.folder} "
          f"({len(summary.verified)} verified training labels, {len(summary.val)} val images, "
          f"{summary.total_bytes / 1e6:.1f} MB)")
    print(f"open it with: workbench {summary.folder}")
    return 0

"""Regenerate the committed sample_data/ folder: ``python scripts/make_sample_data.py``.

The sample project is synthesised (workbench.sample_data.generate, seed 0); nothing
is downloaded or copied. Run it after changing the generator and commit the result.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from workbench.sample_data import generate  # noqa: E402


def main() -> int:
    """Write sample_data/ (or --out) from seed 0 (or --seed)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(REPO / "sample_data"), help="output folder")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    summary = generate(args.out, seed=args.seed, overwrite=True)
    print(f"{summary.folder}: {len(summary.images)} images, {len(summary.verified)} verified, "
          f"{len(summary.val)} val, {summary.total_bytes / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

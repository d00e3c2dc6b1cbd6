"""Opening and listing a 10,000-image folder with ``workbench.project.Project``.

Makes 10,000 small PNGs once (64x64, in a temp folder reused between runs), then times
the first open (creates the SQLite database and inserts every image), a re-open
(syncs against the existing database), ``images()`` and ``find()``. Also counts image
decodes during open (expected: none; the listing is ``os.scandir`` only).

    .venv/bin/python benchmarks/bench_project.py [--images 10000] [--repeat 5] [--dir DIR]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from workbench.project import Project


def make_folder(folder: Path, count: int) -> None:
    """Write ``count`` 64x64 PNGs into ``folder`` unless they are already there."""
    folder.mkdir(parents=True, exist_ok=True)
    have = sum(1 for n in os.listdir(folder) if n.endswith(".png"))
    if have >= count:
        return
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    for i in range(count):
        img = np.roll(base, i % 64, axis=1)
        Image.fromarray(img).save(folder / f"img_{i:05d}.png", compress_level=1)


def timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "wb-bench-project")
    args = ap.parse_args()
    folder = args.dir / f"images-{args.images}"
    t_make, _ = timed(lambda: make_folder(folder, args.images))
    print(f"folder: {folder} ({args.images} PNGs, ready in {t_make:.1f} s)")

    decodes = 0
    real_open = Image.open

    def counting_open(*a, **k):
        nonlocal decodes
        decodes += 1
        return real_open(*a, **k)

    Image.open = counting_open
    first, reopen, listing, finding = [], [], [], []
    for _ in range(args.repeat):
        shutil.rmtree(folder / ".workbench", ignore_errors=True)
        t, p = timed(lambda: Project.open(folder))
        first.append(t)
        p.close()
        t, p = timed(lambda: Project.open(folder))
        reopen.append(t)
        t, recs = timed(p.images)
        listing.append(t)
        assert len(recs) == args.images
        names = [r.name for r in recs[:: max(1, len(recs) // 100)]]
        t, _ = timed(lambda: [p.find(n) for n in names])
        finding.append(t / len(names))
        p.close()
    Image.open = real_open

    def ms(xs: list[float]) -> str:
        return f"{statistics.median(xs) * 1000:.1f} ms (min {min(xs) * 1000:.1f}, max {max(xs) * 1000:.1f})"

    print(f"python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs; "
          f"median of {args.repeat}")
    print(f"first open (create DB, insert {args.images} rows): {ms(first)}")
    print(f"re-open (sync against the DB): {ms(reopen)}")
    print(f"images() -> {args.images} records: {ms(listing)}")
    print(f"find(name): {statistics.median(finding) * 1e6:.0f} us")
    print(f"images decoded while opening/listing: {decodes}")
    return 0 if decodes == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

"""What the data-safety machinery costs: label history, the images.json snapshot, rebuilding
a lost database, and class changes that renumber stored masks.

Times, on CamVid-sized masks (480 x 360, blocky synthetic labels with void pixels):

- ``save_label`` of a person's edit, with the label history keeping the version it replaces
  (a save after a model's prediction is always kept; one within a sitting may be coalesced);
- ``set_split`` of one image in a project of ``--images`` labelled images (rewrites the
  ``images.json`` snapshot beside the database);
- ``Project.open`` with the database intact, and with ``project.sqlite`` deleted (rebuilt
  from the label PNGs' own records and the snapshot);
- ``add_class`` that pushes the void class up (every stored mask holding it is renumbered,
  journalled, each label's old version kept in its history).

    .venv/bin/python benchmarks/bench_data_safety.py [--images 2000] [--renumber 120] [--repeat 5]
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

from workbench.classes import ClassSchema, default_color
from workbench.project import Project, Status

HW = (360, 480)


def _masks(n: int, seed: int = 0) -> list[np.ndarray]:
    """Blocky label masks with a few classes and some void (index 11), as CamVid's look."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        small = rng.integers(0, 12, (HW[0] // 24, HW[1] // 24), dtype=np.uint8)
        out.append(np.kron(small, np.ones((24, 24), np.uint8)))
    return out


def _schema() -> ClassSchema:
    names = ["Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car",
             "Pedestrian", "Bicyclist"]
    return ClassSchema.from_dict({"classes": [{"name": n, "index": i, "color": list(default_color(i))}
                                              for i, n in enumerate(names)]
                                  + [{"name": "Unlabelled", "index": 11, "color": [0, 0, 0], "void": True}]})


def _project(folder: Path, n: int) -> None:
    folder.mkdir(parents=True)
    img = np.zeros((*HW, 3), np.uint8)
    for i in range(n):
        Image.fromarray(img).save(folder / f"f{i:05d}.png", compress_level=0)
    masks = _masks(min(n, 64))
    with Project.open(folder, schema=_schema()) as p:
        for k, rec in enumerate(p.images()):
            p.save_label(rec.id, masks[k % len(masks)], status=Status.VERIFIED, source="import")


def _ms(xs: list[float]) -> str:
    return f"{statistics.median(xs) * 1000:.1f} ms (min {min(xs) * 1000:.1f}, max {max(xs) * 1000:.1f})"


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=2000, help="labelled images for open/rebuild/snapshot")
    ap.add_argument("--renumber", type=int, default=120, help="labelled images for the add_class renumbering")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="wb-bench-safety-"))
    try:
        print(f"python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs, "
              f"load average {os.getloadavg()[0]:.1f}; median of {args.repeat}")

        # save_label with history: alternate a model's label and a person's edit of it
        small = root / "small"
        _project(small, 4)
        masks = _masks(2 * args.repeat, seed=1)
        saves = []
        with Project.open(small) as p:
            rec = p.images()[0]
            for k in range(args.repeat):
                p.save_label(rec.id, masks[2 * k], status=Status.PREDICTED, source="model:1")
                saves.append(_timed(lambda: p.save_label(rec.id, masks[2 * k + 1])))
            kept = len(p.label_history(rec.id))
        print(f"save_label 480x360 over a model's label (old version kept): {_ms(saves)}; "
              f"{kept} versions in its history")

        big = root / "big"
        t_make = _timed(lambda: _project(big, args.images))
        print(f"made {args.images} labelled images in {t_make:.1f} s")
        splits = []
        with Project.open(big) as p:
            ids = [r.id for r in p.images()]
            for k in range(args.repeat):
                splits.append(_timed(lambda: p.set_split(ids[k], "val" if k % 2 == 0 else "train")))
        snap = big / ".workbench" / "images.json"
        print(f"set_split of one image, images.json rewritten ({snap.stat().st_size / 1024:.0f} KB): "
              f"{_ms(splits)}")

        opens, rebuilds = [], []
        for _ in range(args.repeat):
            opens.append(_timed(lambda: Project.open(big).close()))
            for suffix in ("", "-wal", "-shm"):
                (big / ".workbench" / f"project.sqlite{suffix}").unlink(missing_ok=True)
            p = None

            def rebuild() -> None:
                nonlocal p
                p = Project.open(big)

            rebuilds.append(_timed(rebuild))
            assert p is not None and sum(r.has_label for r in p.images()) == args.images
            p.close()
        print(f"open, database intact ({args.images} images): {_ms(opens)}")
        print(f"open, project.sqlite deleted: rebuilt from the files: {_ms(rebuilds)}")

        adds = []
        for k in range(min(args.repeat, 3)):
            folder = root / f"renumber{k}"
            _project(folder, args.renumber)
            with Project.open(folder) as p:
                adds.append(_timed(lambda: p.add_class("Animal")))
                assert p.schema.by_name("Unlabelled").index == 12
        print(f"add_class pushing void up, {args.renumber} labels renumbered (journalled, history kept): "
              f"{_ms(adds)}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

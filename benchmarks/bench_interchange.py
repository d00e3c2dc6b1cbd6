"""Import / export speed of the label formats on CamVid (the interchange workflow).

Builds a project over CamVid's train images (symlinks in a temp folder; the data is
never copied into the repository), imports the index masks, then exports to each format
and imports each export into a fresh state folder. Prints seconds and masks per second.

    python benchmarks/bench_interchange.py [--camvid ../shared/camvid] [--n 367] [--formats index,voc,...]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from workbench.project import Project
from workbench.project.location import STATE_HOME_ENV
from workbench.workflows.interchange import export_labels, import_labels


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--camvid", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "camvid"))
    ap.add_argument("--n", type=int, default=367)
    ap.add_argument("--formats", default="index,voc,coco,cityscapes,labelme,cvat,yolo")
    args = ap.parse_args()
    cam = Path(args.camvid)
    tmp = Path(tempfile.mkdtemp(prefix="bench-interchange-"))
    os.environ[STATE_HOME_ENV] = str(tmp / "state-home")
    try:
        images, ds = tmp / "images", tmp / "camvid"
        images.mkdir()
        (ds / "trainannot").mkdir(parents=True)
        shutil.copy(cam / "classes.json", ds / "classes.json")
        names = sorted(p.name for p in (cam / "train").iterdir())[: args.n]
        for n in names:
            os.symlink((cam / "train" / n).resolve(), images / n)
            os.symlink((cam / "trainannot" / n).resolve(), ds / "trainannot" / n)
        print(f"{len(names)} CamVid train images, 360 x 480; load average {os.getloadavg()[0]:.1f}")
        with Project.open(images) as project:
            t = time.perf_counter()
            rep = import_labels(project, ds, format="index")
            dt = time.perf_counter() - t
            print(f"import index (CamVid layout)      {dt:6.1f} s  {rep.imported / dt:6.1f} masks/s")
        for fmt in args.formats.split(","):
            out = tmp / f"out-{fmt}"
            with Project.open(images) as project:
                t = time.perf_counter()
                rep = export_labels(project, out, format=fmt, images="none")
                dt = time.perf_counter() - t
            print(f"export {fmt:<11}                {dt:6.1f} s  {rep.written / dt:6.1f} masks/s")
            with Project.open(images, state_dir=tmp / f"state-{fmt}") as fresh:
                t = time.perf_counter()
                back = import_labels(fresh, out, format=fmt)
                dt = time.perf_counter() - t
            print(f"import {fmt:<11} (the export)   {dt:6.1f} s  {back.imported / dt:6.1f} masks/s")
        print(f"load average at the end {os.getloadavg()[0]:.1f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

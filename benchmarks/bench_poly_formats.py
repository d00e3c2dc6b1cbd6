"""Polygon formats on CamVid: how exact the round trip is, how long writing and reading take.

For each of labelme, CVAT and YOLO: write N CamVid masks (360 x 480, 11 classes, the void
class "Unlabelled" = 11 exported like any class) with the format's writer, read them back
with its reader, and count the labelled pixels that keep their class. Times are per image
(writing includes vectorising and the verification pass; reading includes rasterising).

    python benchmarks/bench_poly_formats.py [--camvid DIR] [--n 30] [--split train]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from workbench.formats import cvat, labelme, yolo
from workbench.formats.base import NOT_LABELLED, ExportClass, ExportItem


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--camvid", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "camvid"))
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--split", default="train", choices=["train", "val"])
    ap.add_argument("--void-as-unlabelled", action="store_true",
                    help="turn CamVid's void class (11) into not-labelled pixels (255): holes a "
                         "format must say 'not labelled' for")
    args = ap.parse_args()
    root = Path(args.camvid)
    paths = sorted((root / f"{args.split}annot").glob("*.png"))[: args.n]
    masks = {p.name: np.asarray(Image.open(p)).astype(np.uint8) for p in paths}
    classes = [ExportClass(f"c{i}", i, (i, i, i), void=i == 11) for i in range(12)]
    if args.void_as_unlabelled:
        masks = {n: np.where(m == 11, NOT_LABELLED, m).astype(np.uint8) for n, m in masks.items()}
        classes = classes[:11]
    print(f"{len(masks)} CamVid {args.split} masks, load average {os.getloadavg()[0]:.1f}"
          f"{', void as not labelled' if args.void_as_unlabelled else ''}")
    print(f"{'format':8} {'write/img':>10} {'read/img':>9} {'shapes/img':>10} {'same class':>11} "
          f"{'not-labelled kept':>17} {'exact imgs':>10}")
    for mod in (labelme, cvat, yolo):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "out"
            items = [ExportItem(n, root / args.split / n, m, split="train") for n, m in masks.items()]
            t0 = time.perf_counter()
            mod.write(out, items, classes, images="none")
            t1 = time.perf_counter()
            src = out / "annotations.xml" if mod is cvat else out
            result = mod.read(src, image_size=lambda name: (360, 480))
            got = {Path(i.image).stem: i.mask for i in result.items}
            t2 = time.perf_counter()
            same = total = exact = void_kept = void_total = 0
            for name, m in masks.items():
                labelled = m != NOT_LABELLED
                back = got[Path(name).stem]
                same += int((back[labelled] == m[labelled]).sum())
                total += int(labelled.sum())
                void_kept += int((back[~labelled] == NOT_LABELLED).sum())
                void_total += int((~labelled).sum())
                exact += int((back == m).all())
            if mod is labelme:
                shapes = sum(len(__import__("json").loads(p.read_text())["shapes"]) for p in out.glob("*.json"))
            elif mod is cvat:
                text = (out / "annotations.xml").read_text()
                shapes = text.count("<polygon ") + text.count("<mask ")
            else:
                shapes = sum(len(p.read_text().splitlines()) for p in (out / "labels").rglob("*.txt"))
            n = len(masks)
            print(f"{mod.FORMAT.name:8} {1000 * (t1 - t0) / n:8.0f}ms {1000 * (t2 - t1) / n:7.0f}ms "
                  f"{shapes / n:10.0f} {100 * same / total:10.4f}% "
                  f"{(100 * void_kept / void_total if void_total else 100):16.2f}% {exact:5d}/{n}")


if __name__ == "__main__":
    main()

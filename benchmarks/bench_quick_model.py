"""Quick model on CamVid: train time, predict time at 480 x 360, val mIoU from N labelled images.

For N in ``--images`` (CamVid train images chosen with a seed), the quick model is fitted on
either their full ground truth ("full") or simulated scribbles ("scribbles": a few short
strokes, 3 px wide, inside each class region of the ground truth, about 1% of the pixels),
then scored on CamVid val (every ``--val-stride``-th image; dataset-level confusion matrix,
void ignored). The test split is never used.

    nice -n 10 .venv/bin/python benchmarks/bench_quick_model.py --images 1 4 16 --out /tmp/quick.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import cv2
import numpy as np

from workbench.classes import ClassSchema
from workbench.imageio import read_image
from workbench.metrics import ConfusionMatrix
from workbench.ml.quick_model import QuickSettings, fit_quick_model, pixel_features


def scribbles(gt: np.ndarray, rng: np.random.Generator, num_classes: int, per_region: int = 2) -> np.ndarray:
    """Short strokes inside each ground-truth region (eroded, so a stroke never crosses a border)."""
    out = np.full(gt.shape, 255, np.uint8)
    for c in range(num_classes):
        region = cv2.erode((gt == c).astype(np.uint8), np.ones((9, 9), np.uint8))
        n, comp = cv2.connectedComponents(region)
        for k in range(1, n):
            ys, xs = np.nonzero(comp == k)
            if len(ys) < 50:
                continue
            for _ in range(per_region):
                i = rng.integers(len(ys))
                angle = rng.uniform(0, np.pi)
                length = rng.integers(10, 40)
                x2 = int(xs[i] + length * np.cos(angle))
                y2 = int(ys[i] + length * np.sin(angle))
                line = np.zeros(gt.shape, np.uint8)
                cv2.line(line, (int(xs[i]), int(ys[i])), (x2, y2), 1, 3)
                out[(line > 0) & (comp == k)] = c
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--camvid", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "camvid"))
    ap.add_argument("--images", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--modes", nargs="+", default=["scribbles", "full"])
    ap.add_argument("--val-stride", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="/tmp/issue13/bench_quick_model.json")
    args = ap.parse_args()
    camvid = Path(args.camvid)
    schema = ClassSchema.load(camvid / "classes.json")
    k = schema.num_classes
    names = sorted(p.name for p in (camvid / "train").iterdir() if p.suffix == ".png")
    val = sorted(p.name for p in (camvid / "val").iterdir() if p.suffix == ".png")[::args.val_stride]
    val_data = [(read_image(camvid / "val" / n), cv2.imread(str(camvid / "valannot" / n), cv2.IMREAD_UNCHANGED))
                for n in val]
    rng = np.random.default_rng(args.seed)
    order = [names[i] for i in rng.permutation(len(names))]
    # feature time alone, on one 480 x 360 image
    img0 = val_data[0][0]
    t = time.perf_counter()
    for _ in range(3):
        pixel_features(img0)
    feature_s = (time.perf_counter() - t) / 3
    results = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
               "load_before": os.getloadavg(), "feature_seconds_480x360": feature_s, "val_images": len(val),
               "runs": []}
    print(f"features of one {img0.shape[1]}x{img0.shape[0]} image: {feature_s:.2f} s", flush=True)
    for mode in args.modes:
        for n in args.images:
            pairs = []
            labelled = 0
            for name in order[:n]:
                im = read_image(camvid / "train" / name)
                gt = cv2.imread(str(camvid / "trainannot" / name), cv2.IMREAD_UNCHANGED)
                mask = scribbles(gt, rng, k) if mode == "scribbles" else gt
                labelled += int((mask < k).sum())
                pairs.append((im, mask, name))
            t = time.perf_counter()
            model = fit_quick_model(pairs, schema, QuickSettings())
            fit_s = time.perf_counter() - t
            cm = ConfusionMatrix(k)
            times = []
            for im, gt in val_data:
                t = time.perf_counter()
                pred = model.predict(im)
                times.append(time.perf_counter() - t)
                cm.update(pred.mask, gt, schema.ignore_values)
            run = {"mode": mode, "images": n, "labelled_pixels": labelled, "samples": int(model.labels.size),
                   "train_seconds": fit_s, "predict_seconds_median": float(np.median(times)),
                   "val_miou": cm.scores().miou, "val_pixel_accuracy": cm.scores().pixel_accuracy}
            results["runs"].append(run)
            print(json.dumps(run), flush=True)
            Path(args.out).write_text(json.dumps(results, indent=1))
    results["load_after"] = os.getloadavg()
    Path(args.out).write_text(json.dumps(results, indent=1))
    print("| labels | images | labelled pixels | train (s) | predict 480x360 (s) | val mIoU | val pixel acc |")
    print("|---|---|---|---|---|---|---|")
    for r in results["runs"]:
        print(f"| {r['mode']} | {r['images']} | {r['labelled_pixels']:,} | {r['train_seconds']:.1f} | "
              f"{r['predict_seconds_median']:.2f} | {r['val_miou']:.3f} | {r['val_pixel_accuracy']:.3f} |")


if __name__ == "__main__":
    main()

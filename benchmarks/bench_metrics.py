"""Time scoring the 101 CamVid val masks: ``python benchmarks/bench_metrics.py``.

Makes a noisy copy of ``../shared/camvid/valannot`` in a temporary folder (palette PNGs
written by ``workbench.masks.write_mask``, 10% of pixels replaced by random classes and
the masks shifted 4 px), then times ``evaluate_folders(noisy, valannot)``: reading both
masks of every pair plus the confusion matrix. Median of 3 runs; also the two parts
alone (reading all 202 masks; the matrix on masks already in memory).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from workbench.classes import ClassSchema  # noqa: E402
from workbench.imageio import list_images  # noqa: E402
from workbench.masks import read_mask, write_mask  # noqa: E402
from workbench.metrics import ConfusionMatrix, evaluate_folders  # noqa: E402


def make_noisy_copy(gt_dir: Path, out: Path, schema: ClassSchema, seed: int = 0) -> None:
    """Shifted, noisy predictions for every mask in ``gt_dir``."""
    rng = np.random.default_rng(seed)
    for path in list_images(gt_dir):
        pred = np.roll(read_mask(path, schema), 4, axis=1)
        noisy = rng.random(pred.shape) < 0.1
        pred[noisy] = rng.integers(0, schema.num_classes, int(noisy.sum()))
        write_mask(out / path.name, pred, schema)


def timed(fn, runs: int) -> tuple[float, object]:
    """Median wall time of ``runs`` calls, and the last result."""
    times, result = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def main() -> int:
    """Run the benchmark and print a Markdown summary."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--camvid", default=str(REPO.parent / "shared" / "camvid"))
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    camvid = Path(args.camvid)
    gt_dir = camvid / "valannot"
    schema = ClassSchema.load(camvid / "classes.json")
    n = len(list_images(gt_dir))
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as tmp:
        pred_dir = Path(tmp)
        make_noisy_copy(gt_dir, pred_dir, schema)
        evaluate_folders(pred_dir, gt_dir, schema)  # warm the page cache and imports
        total, report = timed(lambda: evaluate_folders(pred_dir, gt_dir, schema), args.runs)

        files = list_images(gt_dir) + list_images(pred_dir)
        read_s, masks = timed(lambda: [read_mask(f, schema) for f in files], args.runs)
        pairs = list(zip(masks[n:], masks[:n]))

        def matrix_only() -> ConfusionMatrix:
            cm = ConfusionMatrix(schema.num_classes)
            for pred, gt in pairs:
                cm.update(pred, gt, schema.ignore_values)
            return cm

        matrix_s, _ = timed(matrix_only, args.runs)

    s = report.scores
    print(f"pairs scored: {report.images} ({s.pixels:,} pixels), mIoU {s.miou:.4f}, "
          f"pixel accuracy {s.pixel_accuracy:.4f}")
    print(f"| step | median of {args.runs} | rate |")
    print("|---|---|---|")
    print(f"| evaluate_folders (read 2x{n} masks + matrix) | {total:.3f} s | {n / total:.0f} pairs/s |")
    print(f"| read_mask only ({2 * n} masks) | {read_s:.3f} s | {2 * n / read_s:.0f} masks/s |")
    print(f"| confusion matrix only ({n} pairs in memory) | {matrix_s:.3f} s | {n / matrix_s:.0f} pairs/s |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Peak memory and time to predict one very large image through overlapping tiles.

A synthetic SIZE x SIZE RGB image (smooth noise) goes through ``Predictor.predict`` with
the default tile (1024) and overlap (64). Reported: wall time, the process's peak RSS
above what it held before predicting, and for comparison the size of the full-resolution
float32 logits that an untiled forward would need for the output alone.

    .venv/bin/python benchmarks/bench_large_image.py [--size 10000] [--tile 1024] [--batch-size 2]
"""

from __future__ import annotations

import argparse
import resource
import time
import warnings

import numpy as np
import torch

from workbench.classes import ClassSchema
from workbench.ml.checkpoint import CheckpointMeta
from workbench.ml.device import describe_device, resolve_device
from workbench.ml.inference import Predictor
from workbench.ml.models import ModelConfig, build_model, default_encoder


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--tile", type=int, default=1024)
    parser.add_argument("--overlap", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--classes", type=int, default=11)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    device = resolve_device(args.device)
    encoder = default_encoder(device)
    torch.manual_seed(0)
    model = build_model(ModelConfig("unet", encoder), args.classes)
    meta = CheckpointMeta("unet", encoder, args.classes, ClassSchema.default(args.classes).to_dict())
    predictor = Predictor(model, meta, device=device, batch_size=args.batch_size, tile=args.tile,
                          overlap=args.overlap, copy_model=False)
    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 256, (args.size // 16 + 1, args.size // 16 + 1, 3), dtype=np.uint8)
    image = np.repeat(np.repeat(coarse, 16, axis=0), 16, axis=1)[:args.size, :args.size]
    image = np.ascontiguousarray(image)
    predictor.predict(image[:args.tile, :args.tile])  # warm-up at tile size
    before = _current_rss_mb()
    tiles_seen = []
    t0 = time.perf_counter()
    pred = predictor.predict(image, on_progress=lambda p: tiles_seen.append(p.info.get("tiles")))
    elapsed = time.perf_counter() - t0
    peak = _peak_rss_mb()
    px = args.size * args.size
    print(f"device: {describe_device(device)}; unet/{encoder}, {args.classes} classes; "
          f"{args.size} x {args.size} image; tile {args.tile}, overlap {args.overlap}, "
          f"batch {args.batch_size}; {tiles_seen[-1]} tiles")
    print(f"time: {elapsed:.1f} s ({px / elapsed / 1e6:.2f} Mpx/s)")
    print(f"RSS before predict: {before:.0f} MiB (model + input image {image.nbytes / 2**20:.0f} MiB); "
          f"peak during predict: {peak:.0f} MiB (+{peak - before:.0f} MiB)")
    print(f"outputs: {(pred.mask.nbytes + pred.confidence.nbytes + pred.entropy.nbytes) / 2**20:.0f} MiB "
          f"(mask uint8 + confidence + entropy float32); full-res float32 logits would be "
          f"{px * args.classes * 4 / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()

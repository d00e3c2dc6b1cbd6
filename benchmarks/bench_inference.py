"""Predict throughput: the Predictor (and the full `workbench predict`) against a plain loop.

Side by side in one run, same model, same images, same device:

- plain:     ``model(x)`` over pre-normalised, pre-padded tensors (eval + no_grad),
             batched like the predictor; no softmax, no copies back: the floor.
- predictor: ``Predictor.predict_many`` over decoded uint8 images (normalise, pad,
             forward, crop, argmax + confidence + entropy, back to numpy).
- predictor with ``channels_last=False``: the plain loop's memory layout, so the
             ratio shows the predictor's own overhead (the default uses NHWC on CPU).
- cli:       ``workbench predict`` on the image files (decode + predict + write PNGs).

The ratio reported in BENCHMARKS.md is predictor / plain (images/s); cli / plain is
shown too. On a shared machine the load changes second by second, so plain and
predictor are timed back to back on each batch (alternating which goes first), every
round; the figure per method is its best round (least disturbed), and the median of
the per-batch paired ratios is printed as a check.

    .venv/bin/python benchmarks/bench_inference.py [--images 20] [--rounds 5] [--device auto]
        [--batch-size 4] [--encoder ENC] [--model CKPT]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from workbench.classes import ClassSchema
from workbench.imageio import read_image
from workbench.ml.checkpoint import CheckpointMeta, load_checkpoint, save_checkpoint
from workbench.ml.device import describe_device, resolve_device
from workbench.ml.inference import Predictor
from workbench.ml.models import ModelConfig, build_model, default_encoder

CAMVID = Path(__file__).resolve().parents[1].parent / "shared" / "camvid"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--encoder", default=None, help="default: the device's default encoder")
    parser.add_argument("--model", default=None, help="a checkpoint instead of a random U-Net")
    parser.add_argument("--skip-cli", action="store_true")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    device = resolve_device(args.device)

    files = sorted((CAMVID / "val").iterdir())[:args.images]
    images = [read_image(f) for f in files]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.model:
            ckpt = Path(args.model)
            model, meta = load_checkpoint(ckpt, device=device)
        else:
            schema = ClassSchema.load(CAMVID / "classes.json")
            encoder = args.encoder or default_encoder(device)
            torch.manual_seed(0)
            model = build_model(ModelConfig("unet", encoder), schema.num_classes)
            meta = CheckpointMeta("unet", encoder, schema.num_classes, schema.to_dict())
            ckpt = tmp / "bench.safetensors"
            save_checkpoint(ckpt, model, meta)
        model = model.to(device).eval()
        predictor = Predictor(model, meta, device=device, batch_size=args.batch_size)
        # The same predictor with the plain loop's NCHW layout: its overhead alone.
        predictor_nchw = Predictor(model, meta, device=device, batch_size=args.batch_size,
                                   channels_last=False)

        # The plain loop's inputs are prepared outside the timing: normalised and padded.
        mean = torch.tensor(meta.mean).view(1, -1, 1, 1)
        std = torch.tensor(meta.std).view(1, -1, 1, 1)
        batches = []
        for i in range(0, len(images), args.batch_size):
            x = torch.from_numpy(np.stack(images[i:i + args.batch_size])).permute(0, 3, 1, 2).float()
            x = (x / 255.0 - mean) / std
            h, w = x.shape[-2:]
            x = F.pad(x, (0, (-w) % 32, 0, (-h) % 32), mode="reflect").contiguous()
            batches.append(x.to(device))

        def plain(i: int) -> None:
            with torch.no_grad():
                model(batches[i])
            _sync(device)

        def predicted(i: int, pr: Predictor = predictor) -> None:
            chunk = images[i * args.batch_size:(i + 1) * args.batch_size]
            for _ in pr.predict_many(enumerate(chunk)):
                pass
            _sync(device)

        def predicted_nchw(i: int) -> None:
            predicted(i, predictor_nchw)

        links = tmp / "images"
        links.mkdir()
        for f in files:
            os.symlink(f, links / f.name)

        def cli() -> None:
            from workbench.cli import main as wb

            rc = wb(["predict", str(links), "--model", str(ckpt), "--out", str(tmp / "out"),
                     "--device", str(device), "--batch-size", str(args.batch_size)])
            assert rc == 0

        paired_fns = [plain, predicted, predicted_nchw]
        for i in range(len(batches)):  # warm-up: kernel choice, allocator, page cache
            for fn in paired_fns:
                fn(i)
        names = ["plain model(x) loop", "Predictor.predict_many",
                 "Predictor.predict_many, channels_last=False", "workbench predict (decode + write)"]
        rounds: dict[str, list[float]] = {k: [] for k in names}
        paired: list[float] = []
        for r in range(args.rounds):
            totals = [0.0] * len(paired_fns)
            for i in range(len(batches)):
                spent = [0.0] * len(paired_fns)
                for k in range(len(paired_fns)):  # rotate who goes first
                    which = (k + i + r) % len(paired_fns)
                    t0 = time.perf_counter()
                    paired_fns[which](i)
                    spent[which] = time.perf_counter() - t0
                for k in range(len(paired_fns)):
                    totals[k] += spent[k]
                paired.append(spent[0] / spent[1])
            for k in range(len(paired_fns)):
                rounds[names[k]].append(totals[k])
            if not args.skip_cli:
                t0 = time.perf_counter()
                cli()
                rounds[names[3]].append(time.perf_counter() - t0)

    n = len(images)
    h, w = images[0].shape[:2]
    print(f"device: {describe_device(device)}; torch {torch.__version__}; model unet/{meta.encoder}, "
          f"{meta.num_classes} classes; {n} CamVid val images {w}x{h}; batch {args.batch_size}; "
          f"best of {args.rounds} rounds")
    base = n / min(rounds[names[0]])
    print("| path | images/s | ratio to plain |")
    print("| --- | ---: | ---: |")
    for name, ts in rounds.items():
        if ts:
            ips = n / min(ts)
            print(f"| {name} | {ips:.2f} | {ips / base:.2f} |")
    print(f"median paired per-batch ratio predictor/plain: {statistics.median(paired):.2f} "
          f"({len(paired)} pairs)")


if __name__ == "__main__":
    main()

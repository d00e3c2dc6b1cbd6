"""Predict throughput: the Predictor (and the full `workbench predict`) against a plain loop.

Side by side in one run, same model, same images, same device:

- plain:     ``model(x)`` over pre-normalised, pre-padded tensors (eval + no_grad),
             batched like the predictor; no softmax, no copies back: the floor.
- predictor: ``Predictor.predict_many`` over decoded uint8 images (normalise, pad,
             forward, crop, argmax + confidence + entropy, back to numpy).
- cli:       ``workbench predict`` on the image files (decode + predict + write PNGs).

The ratio reported in BENCHMARKS.md is predictor / plain (images/s); cli / plain is
shown too. Methods are interleaved round by round and the median round counts, so a
burst of load on a shared machine hits all of them alike.

    .venv/bin/python benchmarks/bench_inference.py [--images 20] [--rounds 3] [--device auto]
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
    parser.add_argument("--rounds", type=int, default=3)
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

        def plain() -> None:
            with torch.no_grad():
                for x in batches:
                    model(x)
            _sync(device)

        def predicted() -> None:
            for _ in predictor.predict_many(enumerate(images)):
                pass
            _sync(device)

        links = tmp / "images"
        links.mkdir()
        for f in files:
            os.symlink(f, links / f.name)

        def cli() -> None:
            from workbench.cli import main as wb

            rc = wb(["predict", str(links), "--model", str(ckpt), "--out", str(tmp / "out"),
                     "--device", str(device), "--batch-size", str(args.batch_size)])
            assert rc == 0

        methods = {"plain model(x) loop": plain, "Predictor.predict_many": predicted}
        if not args.skip_cli:
            methods["workbench predict (decode + write)"] = cli
        for fn in methods.values():  # warm-up: kernel choice, allocator, page cache
            fn()
        times: dict[str, list[float]] = {k: [] for k in methods}
        for _ in range(args.rounds):
            for name, fn in methods.items():
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)

    n = len(images)
    h, w = images[0].shape[:2]
    print(f"device: {describe_device(device)}; torch {torch.__version__}; model unet/{meta.encoder}, "
          f"{meta.num_classes} classes; {n} CamVid val images {w}x{h}; batch {args.batch_size}; "
          f"median of {args.rounds} interleaved rounds")
    base = n / statistics.median(times["plain model(x) loop"])
    print("| path | images/s | ratio to plain |")
    print("| --- | ---: | ---: |")
    for name, ts in times.items():
        ips = n / statistics.median(ts)
        print(f"| {name} | {ips:.2f} | {ips / base:.2f} |")


if __name__ == "__main__":
    main()

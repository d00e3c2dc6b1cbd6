"""Trainer throughput against a plain smp training loop, side by side on the same images.

    .venv/bin/python benchmarks/bench_training.py [--images 32] [--crop 256] [--batch 8]
        [--steps 12] [--rounds 2] [--device cpu] [--threads N] [--encoder resnet18]

Both sides train the same model (smp U-Net, the given encoder, random init) at the same
crop and batch size with Adam + cross-entropy (ignore 255) on the same CamVid train images:

- trainer: ``workbench.ml.training.train`` (checks and decodes the files, augments with
  random scale/crop/flip, class weights off, validates on 2 images after the epoch);
  images/s is taken from its progress reports over the training steps only (the first
  step, loading and validation excluded).
- plain: the images are decoded to tensors up front; each step takes random crops by
  indexing, normalises, and runs forward/backward/step. No checks, no augmentation
  beyond the crop, no progress, no cancellation: the floor the trainer is measured against.

The two alternate for ``--rounds`` rounds so that load from other processes on a shared
machine hits both alike; the median of the rounds is reported.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from workbench.classes import ClassSchema  # noqa: E402
from workbench.imageio import read_image  # noqa: E402
from workbench.masks import read_mask, to_training_target  # noqa: E402
from workbench.ml.device import describe_device, resolve_device  # noqa: E402
from workbench.ml.models import IMAGENET_MEAN, IMAGENET_STD, ModelConfig, build_model  # noqa: E402
from workbench.ml.training import TrainConfig, train  # noqa: E402

CAMVID = REPO.parent / "shared" / "camvid"


def plain_loop(images: torch.Tensor, targets: torch.Tensor, args: argparse.Namespace,
               device: torch.device, num_classes: int) -> float:
    """Images/s of a minimal smp training loop over pre-decoded tensors."""
    torch.manual_seed(0)
    model = build_model(ModelConfig("unet", args.encoder, None), num_classes).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)
    n, _, h, w = images.shape
    c = args.crop
    times = []
    for step in range(args.steps + 1):
        t0 = time.perf_counter()
        idx = torch.randint(0, n, (args.batch,))
        ys = torch.randint(0, h - c + 1, (args.batch,))
        xs = torch.randint(0, w - c + 1, (args.batch,))
        x = torch.stack([images[i, :, y:y + c, x0:x0 + c] for i, y, x0 in zip(idx, ys, xs)]).to(device)
        t = torch.stack([targets[i, y:y + c, x0:x0 + c] for i, y, x0 in zip(idx, ys, xs)]).to(device)
        x = (x.float() / 255 - mean) / std
        loss = F.cross_entropy(model(x), t.long(), ignore_index=255)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if step > 0:  # the first step pays for allocator and kernel warm-up
            times.append(time.perf_counter() - t0)
    return args.batch * len(times) / sum(times)


def trainer_run(pairs: list, val_pairs: list, schema: ClassSchema, args: argparse.Namespace,
                out: Path) -> float:
    """Images/s of ``train()`` over its training steps (first step and validation excluded)."""
    marks: list[tuple[float, int]] = []

    def on_progress(p) -> None:  # noqa: ANN001
        if p.info.get("phase") == "train":
            marks.append((time.perf_counter(), p.done))

    steps_per_epoch = len(pairs) // args.batch
    epochs = max(1, -(-(args.steps + 1) // steps_per_epoch))
    cfg = TrainConfig(encoder=args.encoder, epochs=epochs, batch_size=args.batch, crop=args.crop,
                      class_weights=False, device=args.device, workers=args.workers,
                      threads=args.threads, seed=0)
    train(cfg, schema, pairs, val_pairs, out, on_progress=on_progress)
    # Only consecutive steps within an epoch: validation time between epochs is excluded.
    per_step = [b[0] - a[0] for a, b in zip(marks, marks[1:]) if b[1] == a[1] + 1 and a[1] % steps_per_epoch]
    return args.batch / statistics.median(per_step) if per_step else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=32)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads for both sides (default: all cores)")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--encoder", default="resnet18")
    args = ap.parse_args()
    device = resolve_device(args.device)
    if args.threads is None and device.type == "cpu":
        args.threads = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)
    schema = ClassSchema.load(CAMVID / "classes.json")
    names = sorted(p.name for p in (CAMVID / "train").iterdir())[:args.images]
    pairs = [(CAMVID / "train" / n, CAMVID / "trainannot" / n) for n in names]
    val_names = sorted(p.name for p in (CAMVID / "val").iterdir())[:2]
    val_pairs = [(CAMVID / "val" / n, CAMVID / "valannot" / n) for n in val_names]
    images = torch.stack([torch.from_numpy(np.array(read_image(p))).permute(2, 0, 1) for p, _ in pairs])
    targets = torch.stack([torch.from_numpy(to_training_target(read_mask(m, schema), schema))
                           for _, m in pairs])
    print(f"device: {describe_device(device)}; {args.images} CamVid images, crop {args.crop}, "
          f"batch {args.batch}, {args.steps} timed steps, encoder {args.encoder}, threads {args.threads}")
    plain, ours = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            plain.append(plain_loop(images, targets, args, device, schema.num_classes))
            ours.append(trainer_run(pairs, val_pairs, schema, args, Path(tmp) / "bench.safetensors"))
            print(f"round {r + 1}: plain {plain[-1]:.2f} img/s, trainer {ours[-1]:.2f} img/s", flush=True)
    p, o = statistics.median(plain), statistics.median(ours)
    print(f"\n| loop | images/s (median of {args.rounds}) |\n| --- | --- |\n"
          f"| plain smp loop (pre-decoded tensors, random crops) | {p:.2f} |\n"
          f"| workbench train() (checked, cached, augmented, progress) | {o:.2f} |\n"
          f"| ratio trainer / plain | {o / p:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

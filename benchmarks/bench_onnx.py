"""ONNX Runtime against PyTorch on the CPU, side by side in one process.

    .venv/bin/python benchmarks/bench_onnx.py [--images 8] [--rounds 3] [--batch-size 4]
        [--threads 2] [--encoder resnet18] [--model CKPT]

The same U-Net (default: resnet18, 11 classes, random initialisation, saved to a temporary
checkpoint; or ``--model CKPT``) predicts the same CamVid val frames (360 x 480, padded to
384 x 480) three ways, each timed per batch, rotating which goes first, best of
``--rounds``:

- plain: ``model(x)`` over pre-normalised, pre-padded NCHW tensors (eval + no_grad);
- torch: ``Predictor(backend="torch")`` (channels_last, softmax statistics, numpy out);
- onnx: ``Predictor(backend="onnx")`` (exported once to the checkpoint's folder, not timed).

All three use ``--threads`` CPU threads (fixed, so the comparison is like for like), and
the onnx and torch argmax are compared pixel by pixel. Images/s on a shared machine
depend on the load; the ratios are what counts.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from workbench.classes import ClassSchema  # noqa: E402
from workbench.imageio import read_image  # noqa: E402
from workbench.ml.checkpoint import CheckpointMeta, save_checkpoint  # noqa: E402
from workbench.ml.inference import Predictor, pad_to_multiple  # noqa: E402
from workbench.ml.models import ModelConfig, build_model  # noqa: E402

CAMVID = REPO.parent / "shared" / "camvid"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--encoder", default="resnet18")
    ap.add_argument("--model", type=Path, help="a trained checkpoint instead of a random model")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    files = sorted((CAMVID / "val").iterdir())[:args.images]
    images = [read_image(f) for f in files]
    work = Path(tempfile.mkdtemp(prefix="bench-onnx-"))
    if args.model is None:
        torch.manual_seed(0)
        net = build_model(ModelConfig("unet", args.encoder), 11).eval()
        ckpt = work / "model.safetensors"
        save_checkpoint(ckpt, net, CheckpointMeta("unet", args.encoder, 11, ClassSchema.default(11).to_dict()))
    else:
        ckpt = args.model
    t = time.monotonic()
    onnx = Predictor.from_checkpoint(ckpt, device="cpu", backend="onnx", batch_size=args.batch_size,
                                     threads=args.threads)
    export_s = time.monotonic() - t
    torch_p = Predictor.from_checkpoint(ckpt, device="cpu", backend="torch", batch_size=args.batch_size,
                                        threads=args.threads)
    plain = torch_p.meta  # the plain loop runs its own NCHW copy of the same weights
    from workbench.ml.checkpoint import load_checkpoint

    plain_model, _ = load_checkpoint(ckpt, device="cpu")
    plain_model.eval()
    mean = torch.tensor(plain.mean).view(1, 3, 1, 1)
    std = torch.tensor(plain.std).view(1, 3, 1, 1)
    batches = [images[i:i + args.batch_size] for i in range(0, len(images), args.batch_size)]
    tensors = [pad_to_multiple((torch.from_numpy(np.stack(b)).permute(0, 3, 1, 2).float() / 255 - mean) / std, 32)
               for b in batches]

    def run_plain(k: int) -> None:
        with torch.no_grad():
            plain_model(tensors[k]).argmax(1)

    def run_pred(p: Predictor, k: int) -> list:
        return [pred.mask for _, pred in p.predict_many([(i, a) for i, a in enumerate(batches[k])])]

    paths = {"plain": run_plain, "torch": lambda k: run_pred(torch_p, k), "onnx": lambda k: run_pred(onnx, k)}
    for fn in paths.values():  # warm-up (oneDNN / ORT kernel selection)
        fn(0)
    best = {name: float("inf") for name in paths}
    loads = []
    for r in range(args.rounds):
        times = {name: 0.0 for name in paths}
        order = list(paths)
        for k in range(len(batches)):
            order = order[1:] + order[:1]
            for name in order:
                t0 = time.perf_counter()
                paths[name](k)
                times[name] += time.perf_counter() - t0
        loads.append(os.getloadavg()[0])
        for name in paths:
            best[name] = min(best[name], times[name])
    same = total = 0
    for k in range(len(batches)):
        for a, b in zip(run_pred(onnx, k), run_pred(torch_p, k)):
            same += int((a == b).sum())
            total += a.size
    n = len(images)
    print(f"{n} images {images[0].shape[1]}x{images[0].shape[0]}, batch {args.batch_size}, {args.threads} threads, "
          f"{args.encoder}; export {export_s:.1f} s ({onnx.backend_note}); load {min(loads):.1f}-{max(loads):.1f}")
    for name in paths:
        ips = n / best[name]
        print(f"{name:6s} {ips:6.2f} img/s  ratio to plain {best['plain'] / best[name]:.2f}")
    print(f"argmax onnx == torch: {same}/{total} pixels ({100 * same / total:.4f} %)")


if __name__ == "__main__":
    main()

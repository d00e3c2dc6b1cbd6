"""Frame propagation on CamVid val: the carried label 1 and 5 frames away, against the U-Net alone.

CamVid val is one sequence (0016E5, 101 frames, every 2nd video frame at 30 Hz). From
every ``--every``-th frame its ground truth is carried by ``ml.propagation`` frame by
frame to the frames 1 and 5 later, and compared with their ground truth (void ignored):

- flow alone: the carried label, every pixel (low-confidence pixels included);
- flow, sure pixels: only pixels whose confidence >= 0.5 (and the share of pixels they cover);
- U-Net alone: a U-Net trained on CamVid train (``--unet``; trained here and cached when absent);
- fused: the carried label as a prior over the U-Net's prediction (``ml.propagation.fuse``).

Everything at ``--scale`` of 480 x 360. The test split is never used.

    nice -n 10 .venv/bin/python benchmarks/bench_propagation.py --out /tmp/prop.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from workbench.metrics import ConfusionMatrix
from workbench.ml.models import ModelConfig, build_model
from workbench.ml.propagation import carry_along, fuse

from camvid_bench import K, VOID, load, to_tensor, train_step  # benchmarks/camvid_bench.py


def train_unet(args, path: Path):
    from safetensors.torch import save_file

    _, imgs, masks = load(Path(args.camvid) / "train", Path(args.camvid) / "trainannot", args.scale)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = build_model(ModelConfig(encoder=args.encoder), K)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    t0, step = time.time(), 0
    model.train()
    while time.time() - t0 < args.train_minutes * 60:
        loss = train_step(model, opt, imgs, masks, rng.choice(len(imgs), 8, replace=False), rng)
        step += 1
        if step % 50 == 0:
            print(f"unet step {step} loss {loss.item():.3f} ({time.time() - t0:.0f}s)", flush=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return step


@torch.no_grad()
def unet_predict(model, imgs):
    masks, confs = [], []
    for i in range(0, len(imgs), 8):
        p = torch.softmax(model(to_tensor(imgs[i:i + 8])), 1)
        c, m = p.max(1)
        masks.append(m.numpy().astype(np.uint8))
        confs.append(c.numpy().astype(np.float32))
    return np.concatenate(masks), np.concatenate(confs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--camvid", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "camvid"))
    ap.add_argument("--scale", type=float, default=0.5)
    ap.add_argument("--every", type=int, default=5)
    ap.add_argument("--distances", type=int, nargs="+", default=[1, 5])
    ap.add_argument("--unet", default="/tmp/issue13/bench_propagation_unet.safetensors")
    ap.add_argument("--encoder", default="tu-mobilenetv3_small_050")
    ap.add_argument("--train-minutes", type=float, default=12)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="/tmp/issue13/bench_propagation.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.time()
    unet_path = Path(args.unet)
    steps = None
    if not unet_path.is_file():
        unet_path.parent.mkdir(parents=True, exist_ok=True)
        steps = train_unet(args, unet_path)
    from safetensors.torch import load_file

    model = build_model(ModelConfig(encoder=args.encoder), K)
    model.load_state_dict(load_file(str(unet_path)))
    model.eval()
    names, imgs, masks = load(Path(args.camvid) / "val", Path(args.camvid) / "valannot", args.scale)
    u_mask, u_conf = unet_predict(model, imgs)
    far = max(args.distances)
    cms = {(d, kind): ConfusionMatrix(K) for d in args.distances
           for kind in ("flow", "flow_sure", "unet", "fused")}
    sure_share = {d: [] for d in args.distances}
    flow_s = []
    for s in range(0, len(imgs) - far, args.every):
        t = time.perf_counter()
        chain = carry_along(list(imgs[s:s + far + 1]), masks[s])
        flow_s.append((time.perf_counter() - t) / far)
        for d in args.distances:
            c, tgt, gt = chain[d - 1], s + d, masks[s + d]
            cms[(d, "flow")].update(c.mask, gt, (VOID, 255))
            sure = c.confidence >= 0.5
            cms[(d, "flow_sure")].update(np.where(sure, c.mask, 255).astype(np.uint8), np.where(sure, gt, 255), (VOID, 255))
            sure_share[d].append(float(sure.mean()))
            cms[(d, "unet")].update(u_mask[tgt], gt, (VOID, 255))
            fm, _ = fuse(c, u_mask[tgt], u_conf[tgt], K, (VOID, 255))
            cms[(d, "fused")].update(fm, gt, (VOID, 255))
    res = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
           "load": os.getloadavg(), "scale": args.scale, "size": list(imgs.shape[1:3]), "sources": len(flow_s),
           "unet": {"encoder": args.encoder, "trained_steps_here": steps, "path": str(unet_path)},
           "flow_seconds_per_frame": float(np.median(flow_s)), "seconds": time.time() - t0, "rows": []}
    for d in args.distances:
        row = {"distance": d}
        for kind in ("flow", "flow_sure", "unet", "fused"):
            sc = cms[(d, kind)].scores()
            row[kind] = {"miou": sc.miou, "pixel_accuracy": sc.pixel_accuracy}
        row["sure_share"] = float(np.mean(sure_share[d]))
        res["rows"].append(row)
    Path(args.out).write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))
    print("| frames away | flow alone mIoU / acc | flow, sure pixels (share) mIoU / acc | U-Net alone mIoU / acc | "
          "flow + U-Net mIoU / acc |")
    print("|---|---|---|---|---|")
    for r in res["rows"]:
        f = lambda k: f"{r[k]['miou']:.3f} / {r[k]['pixel_accuracy']:.3f}"   # noqa: E731
        print(f"| {r['distance']} | {f('flow')} | {f('flow_sure')} ({r['sure_share']:.0%}) | {f('unet')} | {f('fused')} |")


if __name__ == "__main__":
    main()

"""Suggestions vs random: a simulated annotator on CamVid (issue 13), judged on CamVid val.

Protocol, per seed: 4 random train images are labelled (their CamVid ground truth) and a
U-Net is trained on them (``--init-steps``); then each round, each strategy picks 4 more
train images, they are "labelled" (ground truth), and that strategy's model is
fine-tuned ``--steps`` steps on all its labels. Val mIoU (dataset-level confusion matrix,
void ignored) after each round, at equal labels. Strategies share the seed's initial
model. The test split is never used (we do not have it); val is the judge and is never
trained on or picked from.

Strategies: random; uncertain (the plain mean-entropy rule); diverse
(``workflows.suggestions.select_diverse``: the same entropy, at most one pick per
stretch of similar frames and none next to a labelled one).

    nice -n 10 .venv/bin/python benchmarks/bench_suggestions.py --seeds 3 --rounds 4 --out /tmp/sugg.json

Small on purpose (2 shared CPU cores): half resolution, a light encoder, short fine-tunes.
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
from workbench.workflows.suggestions import descriptor, select_diverse, select_uncertain

from camvid_bench import K, VOID, load, to_tensor, train_step  # benchmarks/camvid_bench.py


def train_steps(model, imgs, masks, ids, steps, rng, lr=2e-3, batch=4):
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    model.train()
    for _ in range(steps):
        pick = rng.choice(ids, size=min(batch, len(ids)), replace=len(ids) < batch)
        train_step(model, opt, imgs, masks, pick, rng)
    model.eval()


@torch.no_grad()
def predict(model, imgs, batch=8):
    """(masks, mean normalised entropy per image)."""
    out, unc = [], []
    model.eval()
    for i in range(0, len(imgs), batch):
        p = torch.softmax(model(to_tensor(imgs[i:i + batch])), 1)
        ent = -(p * p.clamp_min(1e-8).log()).sum(1) / np.log(K)
        out.append(p.argmax(1).numpy().astype(np.uint8))
        unc.extend(ent.mean((1, 2)).tolist())
    return np.concatenate(out), np.array(unc)


def miou(pred, gt):
    cm = ConfusionMatrix(K)
    cm.update(pred, gt, (VOID, 255))
    return cm.scores().miou


def run(args):
    torch.set_num_threads(args.threads)
    camvid = Path(args.camvid)
    t0 = time.time()
    tr_names, tr_imgs, tr_masks = load(camvid / "train", camvid / "trainannot", args.scale)
    va_names, va_imgs, va_masks = load(camvid / "val", camvid / "valannot", args.scale)
    if args.val_limit:
        va_imgs, va_masks = va_imgs[:args.val_limit], va_masks[:args.val_limit]
    # every n-th image keeps the sequences (neighbours stay near-duplicates) at 1/n of the cost
    tr_names, tr_imgs, tr_masks = tr_names[::args.pool_stride], tr_imgs[::args.pool_stride], tr_masks[::args.pool_stride]
    va_imgs, va_masks = va_imgs[::args.val_stride], va_masks[::args.val_stride]
    desc = {i: descriptor(tr_imgs[i]) for i in range(len(tr_imgs))}
    print(f"loaded {len(tr_imgs)} train, {len(va_imgs)} val at {tr_imgs.shape[1:3]} in {time.time() - t0:.0f}s",
          flush=True)
    results = {"args": vars(args), "machine": f"{platform.processor() or platform.machine()}, "
               f"{os.cpu_count()} cores", "runs": []}
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        rng = np.random.default_rng(seed)
        torch.manual_seed(seed)
        start = [int(i) for i in rng.choice(len(tr_imgs), 4, replace=False)]
        base = build_model(ModelConfig(encoder=args.encoder), K)
        train_steps(base, tr_imgs, tr_masks, start, args.init_steps, np.random.default_rng(seed))
        state0 = {k: v.clone() for k, v in base.state_dict().items()}
        m0 = miou(predict(base, va_imgs)[0], va_masks)
        print(f"seed {seed}: initial 4 images val mIoU {m0:.4f} ({time.time() - t0:.0f}s)", flush=True)
        for strategy in args.strategies:
            model = build_model(ModelConfig(encoder=args.encoder), K)
            model.load_state_dict(state0)
            labelled = list(start)
            srng = np.random.default_rng(1000 + seed)
            curve = [{"labelled": 4, "miou": m0}]
            for r in range(args.rounds):
                pool = [i for i in range(len(tr_imgs)) if i not in labelled]
                if strategy == "random":
                    picks = [pool[j] for j in srng.permutation(len(pool))[:4]]
                else:
                    _, unc = predict(model, tr_imgs[pool])
                    u = {i: float(v) for i, v in zip(pool, unc)}
                    picks = (select_uncertain(u, 4) if strategy == "uncertain" else
                             select_diverse(u, desc, 4, labelled=[desc[i] for i in labelled]))
                labelled += picks
                train_steps(model, tr_imgs, tr_masks, labelled, args.steps, np.random.default_rng(seed * 100 + r))
                m = miou(predict(model, va_imgs)[0], va_masks)
                curve.append({"labelled": len(labelled), "miou": m, "picked": [tr_names[i] for i in picks]})
                print(f"seed {seed} {strategy:9s} round {r + 1}: {len(labelled)} labelled, val mIoU {m:.4f} "
                      f"picked {[tr_names[i] for i in picks]} ({time.time() - t0:.0f}s)", flush=True)
            results["runs"].append({"seed": seed, "strategy": strategy, "curve": curve})
            Path(args.out).write_text(json.dumps(results, indent=1))
    results["seconds"] = time.time() - t0
    Path(args.out).write_text(json.dumps(results, indent=1))
    table(results)


def table(results):
    runs = results["runs"]
    strategies = sorted({r["strategy"] for r in runs}, key=["random", "uncertain", "diverse"].index)
    rounds = max(len(r["curve"]) for r in runs)
    print("| labelled | " + " | ".join(strategies) + " | diverse - random |")
    print("|---" * (len(strategies) + 2) + "|")
    for k in range(rounds):
        row, means = [], {}
        for s in strategies:
            vals = [r["curve"][k]["miou"] for r in runs if r["strategy"] == s and len(r["curve"]) > k]
            means[s] = (np.mean(vals), np.std(vals), len(vals))
            row.append(f"{means[s][0]:.4f} ± {means[s][1]:.4f} (n={len(vals)})")
        n = runs[0]["curve"][k]["labelled"]
        diff = ""
        if "diverse" in means and "random" in means:
            d = [a["curve"][k]["miou"] - b["curve"][k]["miou"] for a in runs for b in runs
                 if a["strategy"] == "diverse" and b["strategy"] == "random" and a["seed"] == b["seed"]
                 and len(a["curve"]) > k and len(b["curve"]) > k]
            diff = f"{np.mean(d):+.4f} ({sum(x > 0 for x in d)}/{len(d)} seeds better)"
        print(f"| {n} | " + " | ".join(row) + f" | {diff} |")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--camvid", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "camvid"))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--first-seed", type=int, default=0, help="run seeds first-seed .. first-seed + seeds - 1")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--init-steps", type=int, default=150)
    ap.add_argument("--scale", type=float, default=0.5)
    ap.add_argument("--encoder", default="tu-mobilenetv3_small_050")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--val-limit", type=int, default=0)
    ap.add_argument("--pool-stride", type=int, default=1, help="use every n-th train image as the pool")
    ap.add_argument("--val-stride", type=int, default=1, help="judge on every n-th val image")
    ap.add_argument("--strategies", nargs="+", default=["random", "uncertain", "diverse"])
    ap.add_argument("--out", default="/tmp/issue13/bench_suggestions.json")
    ap.add_argument("--table", nargs="+", help="print the table of one or more results files (runs merged) and exit")
    a = ap.parse_args()
    if a.table:
        merged = {"runs": [r for f in a.table for r in json.loads(Path(f).read_text())["runs"]]}
        table(merged)
    else:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        run(a)

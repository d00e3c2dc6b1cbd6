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
stretch of similar frames and none next to a labelled one); balanced (diverse, with each
pixel's entropy weighted by the rarity of its predicted class among the labelled pixels,
``balanced_uncertainty``); dense (diverse, entropy x ``density`` ** 1); balanced-dense
(both). Training is class-weighted as the app's CPU recipe is (median-frequency ** 0.5 of
the labelled pixels), unless ``--no-class-weights``.

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
from workbench.workflows.suggestions import (balanced_uncertainty, coverage_gain, descriptor, rarity_weights,
                                             select_coverage, select_diverse, select_regions, select_typical,
                                             select_uncertain, tile_box, tile_uncertainty)

from camvid_bench import K, VOID, load, to_tensor, train_step  # benchmarks/camvid_bench.py


def counts_of(masks, ids):
    """Labelled pixels per class (void left out) of the images ``ids``."""
    return np.bincount(masks[ids].reshape(-1), minlength=K + 1)[:K]


def class_weight(masks, ids, power):
    """The trainer's median-frequency weights ** power over the labelled pixels (None when off)."""
    if power <= 0:
        return None
    c = counts_of(masks, ids).astype(np.float64)
    f = c / max(c.sum(), 1)
    med = np.median(f[f > 0])
    w = np.where(f > 0, (med / np.maximum(f, 1e-12)) ** power, 0.0)
    return torch.tensor(w / w[f > 0].mean(), dtype=torch.float32)


def train_steps(model, imgs, masks, ids, steps, rng, lr=2e-3, batch=4, power=0.5):
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    weight = class_weight(masks, ids, power)
    model.train()
    for _ in range(steps):
        pick = rng.choice(ids, size=min(batch, len(ids)), replace=len(ids) < batch)
        train_step(model, opt, imgs, masks, pick, rng, weight)
    model.eval()


@torch.no_grad()
def predict(model, imgs, batch=8):
    """(masks, mean normalised entropy per image, entropy maps, expected pixels per class (N, K))."""
    out, unc, maps, soft = [], [], [], []
    model.eval()
    for i in range(0, len(imgs), batch):
        p = torch.softmax(model(to_tensor(imgs[i:i + batch])), 1)
        ent = -(p * p.clamp_min(1e-8).log()).sum(1) / np.log(K)
        out.append(p.argmax(1).numpy().astype(np.uint8))
        unc.extend(ent.mean((1, 2)).tolist())
        maps.append(ent.numpy())
        soft.append(p.sum((2, 3)).numpy())
    return np.concatenate(out), np.array(unc), np.concatenate(maps), np.concatenate(soft)


def pick(strategy, model, tr_imgs, tr_masks, desc, pool, labelled, rng, k=4, grid=(4, 4), per_image=4):
    """What ``strategy`` asks to be labelled next: ``k`` whole pool images (a list of ids), or
    for the region strategies as many pixels in tiles (a dict id -> tiles (row, col))."""
    n_tiles, n_images = k * grid[0] * grid[1], -(-k * grid[0] * grid[1] // per_image)
    if strategy == "random":
        return [pool[j] for j in rng.permutation(len(pool))[:k]]
    if strategy == "typical":
        return select_typical({i: desc[i] for i in pool}, k, labelled=[desc[i] for i in labelled],
                              seed=int(rng.integers(1 << 30)))
    if strategy == "random-regions":
        tiles = [(r, c) for r in range(grid[0]) for c in range(grid[1])]
        return {pool[j]: [tiles[t] for t in rng.permutation(len(tiles))[:per_image]]
                for j in rng.permutation(len(pool))[:n_images]}
    masks, unc, maps, soft = predict(model, tr_imgs[pool])
    if strategy in ("coverage", "typical-coverage"):
        have = counts_of(tr_masks, labelled).astype(np.float64)
        pixels = float(tr_masks.shape[1] * tr_masks.shape[2])
        if strategy == "coverage":
            return select_coverage(dict(zip(pool, soft)), desc, k, labelled_pixels=have, image_pixels=pixels,
                                   labelled=[desc[i] for i in labelled])
        gain = {i: coverage_gain(have, s, pixels) for i, s in zip(pool, soft)}
        return select_typical({i: desc[i] for i in pool}, k, labelled=[desc[i] for i in labelled],
                              seed=int(rng.integers(1 << 30)), scores=gain)
    if strategy == "regions":
        t = {i: tile_uncertainty(e, grid) for i, e in zip(pool, maps)}
        return select_regions(t, desc, n_tiles, per_image=per_image, labelled=[desc[i] for i in labelled])
    if strategy.startswith("balanced"):
        w = rarity_weights(counts_of(tr_masks, labelled))
        u = {i: balanced_uncertainty(m, e, w) for i, m, e in zip(pool, masks, maps)}
    else:
        u = {i: float(v) for i, v in zip(pool, unc)}
    if strategy == "uncertain":
        return select_uncertain(u, k)
    return select_diverse(u, desc, k, labelled=[desc[i] for i in labelled],
                          density_power=1.0 if strategy.endswith("dense") else 0.0)


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
        train_steps(base, tr_imgs, tr_masks, start, args.init_steps, np.random.default_rng(seed),
                    power=args.class_weight_power)
        state0 = {k: v.clone() for k, v in base.state_dict().items()}
        m0 = miou(predict(base, va_imgs)[0], va_masks)
        print(f"seed {seed}: initial 4 images val mIoU {m0:.4f} ({time.time() - t0:.0f}s)", flush=True)
        for strategy in args.strategies:
            model = build_model(ModelConfig(encoder=args.encoder), K)
            model.load_state_dict(state0)
            labelled = list(start)          # images with any labelled pixel
            lab = np.full_like(tr_masks, VOID)   # what the annotator has labelled (void elsewhere)
            lab[start] = tr_masks[start]
            srng = np.random.default_rng(1000 + seed)
            curve = [{"labelled": 4, "miou": m0}]
            for r in range(args.rounds):
                pool = [i for i in range(len(tr_imgs)) if i not in labelled]
                picks = pick(strategy, model, tr_imgs, lab, desc, pool, labelled, srng,
                             grid=tuple(args.grid), per_image=args.tiles_per_image)
                if isinstance(picks, dict):       # regions: label the picked tiles only
                    for i, tiles in picks.items():
                        for tile in tiles:
                            y0, x0, y1, x1 = tile_box(tr_masks.shape[1:3], tuple(args.grid), tile)
                            lab[i, y0:y1, x0:x1] = tr_masks[i, y0:y1, x0:x1]
                    picks = list(picks)
                else:
                    lab[picks] = tr_masks[picks]
                labelled += picks
                if args.retrain:    # the label set alone decides: same start, same training stream
                    model.load_state_dict(state0)
                train_steps(model, tr_imgs, lab, labelled, args.steps, np.random.default_rng(seed * 100 + r),
                            power=args.class_weight_power)
                m = miou(predict(model, va_imgs)[0], va_masks)
                # "labelled" counts images' worth of labelled tile area, equal for every strategy
                worth = float((lab != VOID).sum() / max(1, (tr_masks != VOID).sum()) * len(tr_masks))
                area = 4 + (r + 1) * 4
                curve.append({"labelled": area, "labelled_pixels_in_images": round(worth, 2), "miou": m,
                              "picked": [tr_names[i] for i in picks]})
                print(f"seed {seed} {strategy:14s} round {r + 1}: {area} images' worth ({len(labelled)} images), "
                      f"val mIoU {m:.4f} ({time.time() - t0:.0f}s)", flush=True)
            results["runs"].append({"seed": seed, "strategy": strategy, "curve": curve})
            Path(args.out).write_text(json.dumps(results, indent=1))
    results["seconds"] = time.time() - t0
    Path(args.out).write_text(json.dumps(results, indent=1))
    table(results)


ALL_STRATEGIES = ["random", "uncertain", "diverse", "balanced", "dense", "balanced-dense", "random-regions",
                  "regions", "typical", "coverage", "typical-coverage"]


def table(results):
    runs = results["runs"]
    strategies = sorted({r["strategy"] for r in runs}, key=ALL_STRATEGIES.index)
    rounds = max(len(r["curve"]) for r in runs)
    others = [s for s in strategies if s != "random"]
    print("| labelled | " + " | ".join(strategies) + " |")
    print("|---" * (len(strategies) + 1) + "|")
    by = {(r["seed"], r["strategy"]): r["curve"] for r in runs}
    for k in range(rounds):
        row = []
        for s in strategies:
            vals = [c[k]["miou"] for (seed, st), c in by.items() if st == s and len(c) > k]
            row.append(f"{np.mean(vals):.3f} ± {np.std(vals):.3f} (n={len(vals)})")
        print(f"| {runs[0]['curve'][k]['labelled']} | " + " | ".join(row) + " |")
    if "random" not in strategies:
        return
    print("\n| strategy - random | " + " | ".join(str(runs[0]["curve"][k]["labelled"]) for k in range(1, rounds))
          + " | mean over rounds (seeds better) |")
    print("|---" * rounds + "|---|")
    for s in others:
        cells, per_seed = [], {}
        for k in range(1, rounds):
            d = {seed: c[k]["miou"] - by[(seed, "random")][k]["miou"] for (seed, st), c in by.items()
                 if st == s and (seed, "random") in by and len(c) > k and len(by[(seed, "random")]) > k}
            for seed, v in d.items():
                per_seed.setdefault(seed, []).append(v)
            cells.append(f"{np.mean(list(d.values())):+.3f} ({sum(v > 0 for v in d.values())}/{len(d)})")
        means = [np.mean(v) for v in per_seed.values()]
        print(f"| {s} | " + " | ".join(cells) + f" | {np.mean(means):+.3f} ({sum(m > 0 for m in means)}/{len(means)}) |")


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
    ap.add_argument("--strategies", nargs="+", default=["random", "uncertain", "diverse"], choices=ALL_STRATEGIES)
    ap.add_argument("--class-weight-power", type=float, default=0.5,
                    help="training class weights = median-frequency ** P of the labelled pixels (0 = plain CE)")
    ap.add_argument("--grid", type=int, nargs=2, default=[4, 4], metavar=("ROWS", "COLS"),
                    help="tile grid of the region strategies")
    ap.add_argument("--tiles-per-image", type=int, default=4,
                    help="region strategies: tiles labelled per picked image (a round labels as many tiles as "
                         "4 whole images hold, over more images)")
    ap.add_argument("--retrain", action="store_true",
                    help="each round trains from the seed's initial model (not from the last round's), so the "
                         "label set alone decides the score; use with more --steps")
    ap.add_argument("--out", default="/tmp/issue13/bench_suggestions.json")
    ap.add_argument("--table", nargs="+", help="print the table of one or more results files (runs merged) and exit")
    a = ap.parse_args()
    if a.table:
        merged = {"runs": [r for f in a.table for r in json.loads(Path(f).read_text())["runs"]]}
        table(merged)
    else:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        run(a)

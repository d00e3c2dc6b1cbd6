"""Steady fine-tuning: does a Retrain that fine-tunes end at or above its parent on val?

    .venv/bin/python benchmarks/bench_finetune.py --data sample [--seeds 0,1,2,3,4]
    .venv/bin/python benchmarks/bench_finetune.py --data camvid [--camvid-train 40 --camvid-val 20 --size 180x240]

The loop a person runs: a parent model is trained on the first labels (``--parent-images``
of the train pairs, ``--parent-epochs`` epochs, seed 0); then a few more images are
labelled (all the train pairs) and Retrain fine-tunes the parent on them, once per seed.
Each seed fine-tunes twice from the same parent:

- ``old``: the previous fine-tuning recipe, i.e. the fresh-start learning rate (``--lr``)
  with the short warm-up and BatchNorm in training mode (``finetune_lr=lr, freeze_bn=False``);
- ``new``: today's defaults (``lr x FINETUNE_LR_SCALE``, 20 % warm-up, BatchNorm statistics
  kept from the parent).

For each it records the parent's val mIoU, the kept (best-epoch) model's val mIoU, the
last epoch's and the lowest epoch's: "ends at or above its parent" counts the kept model,
the one Retrain registers, and the lowest epoch shows the mid-run dip. Sample project:
``sample_data`` (8 verified train images, the 6 val images' ground truth). CamVid: the
first N train / val frames of ``../shared/camvid``, downscaled to ``--size`` (the test
split is never used). Steps and CPU seconds are recorded with every run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from workbench.classes import ClassSchema  # noqa: E402
from workbench.ml.training import TrainConfig, train  # noqa: E402

CAMVID = REPO.parent / "shared" / "camvid"


def sample_data() -> tuple[ClassSchema, list, list]:
    """(schema, train pairs, val pairs) of the sample project."""
    root = REPO / "sample_data"
    meta = json.loads((root / "workbench.json").read_text())
    schema = ClassSchema.load(root / "classes.json")
    train_pairs, val_pairs = [], []
    for name, info in sorted(meta["images"].items()):
        stem = Path(name).stem
        if info["split"] == "train" and (root / "labels" / f"{stem}.png").is_file():
            train_pairs.append((root / name, root / "labels" / f"{stem}.png"))
        elif info["split"] == "val":
            val_pairs.append((root / name, root / "groundtruth" / f"{stem}.png"))
    return schema, train_pairs, val_pairs


def camvid_data(n_train: int, n_val: int, size: tuple[int, int], work: Path) -> tuple[ClassSchema, list, list]:
    """The first frames of CamVid train / val, downscaled (masks by nearest neighbour) into ``work``."""
    schema = ClassSchema.load(CAMVID / "classes.json")
    h, w = size
    out = []
    for split, n in (("train", n_train), ("val", n_val)):
        pairs = []
        (work / split).mkdir(parents=True, exist_ok=True)
        for img in sorted((CAMVID / split).iterdir())[:n]:
            mask = CAMVID / f"{split}annot" / img.name
            di, dm = work / split / img.name, work / split / f"{img.stem}_mask.png"
            Image.open(img).convert("RGB").resize((w, h), Image.BILINEAR).save(di)
            Image.open(mask).resize((w, h), Image.NEAREST).save(dm)
            pairs.append((di, dm))
        out.append(pairs)
    return schema, out[0], out[1]


def score(checkpoint: Path, schema: ClassSchema, pairs: list) -> float:
    """Val mIoU of a checkpoint through the Predictor (the path of the trainer's validation)."""
    from workbench.imageio import read_image
    from workbench.masks import read_mask, to_training_target
    from workbench.metrics import ConfusionMatrix, scores_from_matrix
    from workbench.ml.inference import Predictor

    predictor = Predictor.from_checkpoint(checkpoint, device="cpu", backend="torch", schema=schema)
    cm = ConfusionMatrix(schema.num_classes)
    for image, mask in pairs:
        img = read_image(image)
        target = to_training_target(read_mask(mask, schema, expected_hw=img.shape[:2]), schema, 255)
        cm.update(predictor.predict(img).mask, target, ignore_values=(255,))
    return float(scores_from_matrix(cm.matrix).miou)


def _summary(result, parent_miou: float) -> dict:
    vals = [h["val_miou"] or 0.0 for h in result.history]
    return {"kept": round(result.best_miou, 4), "last": round(vals[-1], 4), "lowest": round(min(vals), 4),
            "at_or_above_parent": result.best_miou >= parent_miou - 1e-9, "steps": result.steps,
            "cpu_s": result.history[-1].get("cpu_s"), "curve": [round(v, 3) for v in vals]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", choices=["sample", "camvid"], default="sample")
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--parent-images", type=int, default=5, help="train pairs the parent sees (default 5)")
    ap.add_argument("--parent-epochs", type=int, default=30)
    ap.add_argument("--epochs", type=int, default=10, help="fine-tuning epochs (default 10)")
    ap.add_argument("--crop", type=int, default=192)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--encoder", default="resnet18")
    ap.add_argument("--camvid-train", type=int, default=40)
    ap.add_argument("--camvid-val", type=int, default=20)
    ap.add_argument("--size", default="180x240", help="CamVid frames are downscaled to HxW (default 180x240)")
    ap.add_argument("--parent", type=Path, help="reuse this parent checkpoint (scored again here)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-finetune-"))
    if args.data == "sample":
        schema, train_pairs, val_pairs = sample_data()
    else:
        h, w = (int(v) for v in args.size.lower().split("x"))
        schema, train_pairs, val_pairs = camvid_data(args.camvid_train, args.camvid_val, (h, w), work)
    common = dict(encoder=args.encoder, crop=args.crop, batch_size=args.batch, lr=args.lr, device="cpu",
                  workers=0, threads=1)
    t0 = time.monotonic()
    if args.parent is not None:
        parent_path = args.parent
        parent_miou = score(parent_path, schema, val_pairs)
        print(f"parent: {parent_path}, val mIoU {parent_miou:.4f}", flush=True)
    else:
        parent_path = work / "parent.safetensors"
        parent = train(TrainConfig(epochs=args.parent_epochs, seed=0, **common), schema,
                       train_pairs[:args.parent_images], val_pairs, parent_path)
        parent_miou = parent.best_miou
        print(f"parent: {args.parent_images} images, {parent.steps} steps, val mIoU {parent_miou:.4f} "
              f"({time.monotonic() - t0:.0f} s)", flush=True)
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        row = {"seed": seed}
        # The old recipe's warm-up: max(1, min(50, total steps // 30)).
        total = args.epochs * max(1, len(train_pairs) // args.batch)
        old = {"finetune_lr": args.lr, "freeze_bn": False, "warmup": max(1, min(50, total // 30))}
        for name, extra in (("old", old), ("new", {})):
            cfg = TrainConfig(epochs=args.epochs, seed=seed, init=str(parent_path), **common, **extra)
            result = train(cfg, schema, train_pairs, val_pairs, work / f"{name}{seed}.safetensors")
            row[name] = _summary(result, parent_miou)
        rows.append(row)
        print(f"seed {seed}: parent {parent_miou:.3f} | old kept {row['old']['kept']:.3f} last "
              f"{row['old']['last']:.3f} lowest {row['old']['lowest']:.3f} | new kept {row['new']['kept']:.3f} "
              f"last {row['new']['last']:.3f} lowest {row['new']['lowest']:.3f}", flush=True)
    for name in ("old", "new"):
        wins = sum(r[name]["at_or_above_parent"] for r in rows)
        print(f"{name}: kept model at or above the parent in {wins} of {len(rows)} seeds; "
              f"mean kept {np.mean([r[name]['kept'] for r in rows]):.4f}, mean lowest "
              f"{np.mean([r[name]['lowest'] for r in rows]):.4f}", flush=True)
    print(f"total {time.monotonic() - t0:.0f} s wall; load {os.getloadavg()}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                         "parent_miou": parent_miou, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()

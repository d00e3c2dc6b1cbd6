"""Float16 storage of model versions: file size, and whether predictions change.

Trains a resnet18 U-Net on CamVid for a few minutes on the CPU (or takes --checkpoint),
stores a float16 copy with ``compact_checkpoint`` (what ``train_project`` does to every
version) and predicts the same CamVid val images with both files: argmax agreement per
pixel, the largest confidence difference and both mIoUs.

    .venv/bin/python benchmarks/bench_fp16_storage.py [--camvid ../shared/camvid]
        [--checkpoint CKPT] [--minutes 3] [--images 20]
    .venv/bin/python benchmarks/bench_fp16_storage.py --sample [--epochs 30]
        (the bundled sample project: train on its labels, compare on its val ground truth)
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from workbench.classes import ClassSchema  # noqa: E402
from workbench.imageio import read_image  # noqa: E402
from workbench.masks import read_mask  # noqa: E402
from workbench.metrics import ConfusionMatrix  # noqa: E402
from workbench.ml.checkpoint import compact_checkpoint  # noqa: E402
from workbench.ml.inference import Predictor  # noqa: E402


def _pairs(camvid: Path, split: str, n: int | None) -> list[tuple[Path, Path]]:
    images = sorted((camvid / split).iterdir())
    pairs = [(p, camvid / f"{split}annot" / p.name) for p in images]
    return pairs[:n] if n else pairs


def _by_stem(images: Path, masks: Path, only: set[str] | None = None) -> list[tuple[Path, Path]]:
    found = {m.stem: m for m in masks.iterdir() if m.suffix == ".png"}
    return [(p, found[p.stem]) for p in sorted(images.iterdir())
            if p.suffix in (".jpg", ".png") and p.stem in found and (only is None or p.stem in only)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--camvid", type=Path, default=REPO.parent / "shared" / "camvid")
    ap.add_argument("--checkpoint", type=Path, help="a float32 checkpoint (default: train one)")
    ap.add_argument("--minutes", type=float, default=3.0, help="training budget when training")
    ap.add_argument("--images", type=int, default=20, help="CamVid val images to compare on")
    ap.add_argument("--sample", action="store_true", help="use the bundled sample project instead")
    ap.add_argument("--epochs", type=int, help="train for this many epochs (instead of --minutes)")
    args = ap.parse_args()
    if args.sample:
        import json

        root = REPO / "sample_data"
        manifest = json.loads((root / "workbench.json").read_text())["images"]
        val = {Path(n).stem for n, v in manifest.items() if v.get("split") == "val"}
        schema = ClassSchema.load(root / "classes.json")
        train_pairs = _by_stem(root, root / "labels")
        val_pairs = _by_stem(root, root / "groundtruth", val)
    else:
        schema = ClassSchema.load(args.camvid / "classes.json")
        train_pairs = _pairs(args.camvid, "train", None)
        val_pairs = _pairs(args.camvid, "val", args.images)
    work = Path(tempfile.mkdtemp(prefix="wb-fp16-"))
    try:
        full = work / "float32.safetensors"
        if args.checkpoint is not None:
            shutil.copy(args.checkpoint, full)
        else:
            from workbench.ml.training import TrainConfig, train

            t0 = time.monotonic()
            budget = {"epochs": args.epochs} if args.epochs else {"minutes": args.minutes}
            res = train(TrainConfig(encoder="resnet18", device="cpu", workers=0, **budget),
                        schema, train_pairs, val_pairs, full)
            print(f"trained {res.epochs_done} epoch(s), {res.steps} steps in {time.monotonic() - t0:.0f} s; "
                  f"best val mIoU {res.best_miou:.3f}")
        half = work / "float16.safetensors"
        shutil.copy(full, half)
        before, after = compact_checkpoint(half)
        print(f"file size: float32 {before / 2**20:.1f} MB -> float16 {after / 2**20:.1f} MB "
              f"({after / before:.1%})")
        p32 = Predictor.from_checkpoint(full, device="cpu")
        p16 = Predictor.from_checkpoint(half, device="cpu")
        cm32, cm16 = ConfusionMatrix(schema.num_classes), ConfusionMatrix(schema.num_classes)
        same = total = 0
        worst_image = 1.0
        conf_diff = 0.0
        for image_path, mask_path in val_pairs:
            image = read_image(image_path)
            gt = read_mask(mask_path, schema)
            a, b = p32.predict(image), p16.predict(image)
            agree = int((a.mask == b.mask).sum())
            same += agree
            total += a.mask.size
            worst_image = min(worst_image, agree / a.mask.size)
            conf_diff = max(conf_diff, float(np.abs(a.confidence - b.confidence).max()))
            cm32.update(a.mask, gt, schema.ignore_values)
            cm16.update(b.mask, gt, schema.ignore_values)
        h, w = read_image(val_pairs[0][0]).shape[:2]
        print(f"{len(val_pairs)} val images ({h}x{w}): argmax agreement {same / total:.5%} of "
              f"{total:,} pixels ({total - same:,} differ); worst image {worst_image:.5%}; "
              f"largest confidence difference {conf_diff:.4f}")
        print(f"mIoU float32 {cm32.scores().miou:.4f}, float16 {cm16.scores().miou:.4f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

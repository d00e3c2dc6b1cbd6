"""Time U-Net encoders on this machine to choose the default (docs/decisions/0005).

For each encoder: parameters, inference forward (batch 1, 384x480 = a CamVid frame
padded to a multiple of 32, eval + inference_mode) and one training step (batch 4,
256x256 crops, forward + cross-entropy + backward + Adam step). Median of N runs
after a warm-up. Random initialisation (no downloads needed).

With ``--learn STEPS`` it instead trains each encoder from scratch for the same
number of steps on CamVid train crops (batch 4, 256x256, Adam 1e-3, seed 0) and
scores mIoU / pixel accuracy on 20 CamVid val images at half resolution. Equal steps,
not equal wall time, because the dev box is shared and wall time under contention is
not fair; combine with the step times of the timing table to compare per CPU minute.

    .venv/bin/python benchmarks/bench_encoders.py [--repeats 5] [--encoders a,b,...]
    .venv/bin/python benchmarks/bench_encoders.py --learn 200 --encoders resnet18,mobilenet_v2
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from pathlib import Path

import torch

from workbench.ml.device import describe_device, resolve_device
from workbench.ml.models import ModelConfig, build_model, count_parameters

ENCODERS = ["resnet18", "resnet34", "mobilenet_v2", "efficientnet-b0", "timm-efficientnet-b0",
            "mobileone_s0", "tu-mobilenetv3_large_100", "tu-mobilenetv4_conv_small"]


def _median_ms(fn, repeats: int) -> float:
    fn()  # warm-up (allocator, oneDNN kernel choice)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def bench(encoder: str, device: torch.device, repeats: int, classes: int = 11) -> dict:
    """Parameters and median milliseconds for inference and one training step."""
    torch.manual_seed(0)
    model = build_model(ModelConfig("unet", encoder), classes).to(device)
    params = count_parameters(model)
    x_inf = torch.rand(1, 3, 384, 480, device=device)
    model.eval()

    def infer() -> None:
        with torch.inference_mode():
            model(x_inf)
        if device.type == "cuda":
            torch.cuda.synchronize()

    inf_ms = _median_ms(infer, repeats)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x_tr = torch.rand(4, 3, 256, 256, device=device)
    y_tr = torch.randint(0, classes, (4, 256, 256), device=device)
    loss_fn = torch.nn.CrossEntropyLoss(ignore_index=255)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x_tr), y_tr)
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    train_ms = _median_ms(step, repeats)
    return {"encoder": encoder, "params_m": params / 1e6, "infer_ms": inf_ms, "train_ms": train_ms}


def _camvid(split: str, limit: int | None = None):
    import numpy as np

    from workbench.imageio import read_image
    from workbench.masks import decode_mask
    from workbench.classes import ClassSchema

    root = Path(__file__).resolve().parents[1].parent / "shared" / "camvid"
    schema = ClassSchema.load(root / "classes.json")
    names = sorted((root / split).iterdir())[:limit]
    images, masks = [], []
    for p in names:
        images.append(read_image(p))
        m = decode_mask((root / f"{split}annot" / p.name).read_bytes(), schema)
        m = m.copy()
        m[np.isin(m, schema.ignore_values)] = 255
        masks.append(m)
    return schema, np.stack(images), np.stack(masks)


def learn(encoder: str, steps: int, device: torch.device) -> dict:
    """Train from scratch for ``steps`` steps; score on CamVid val (half size)."""
    import numpy as np
    import torch.nn.functional as F

    schema, images, masks = _camvid("train")
    _, vimg, vmask = _camvid("val", 20)
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    model = build_model(ModelConfig("unet", encoder), schema.num_classes).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 255
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255
    for _ in range(steps):
        idx = rng.integers(0, len(images), 4)
        y0, x0 = rng.integers(0, 360 - 256), rng.integers(0, 480 - 256)
        x = torch.from_numpy(images[idx, y0:y0 + 256, x0:x0 + 256]).permute(0, 3, 1, 2).float()
        y = torch.from_numpy(masks[idx, y0:y0 + 256, x0:x0 + 256]).long()
        x = (x - mean) / std
        loss = F.cross_entropy(model(x.to(device)), y.to(device), ignore_index=255)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    model.eval()
    k = schema.num_classes
    conf = np.zeros((k, k), np.int64)
    with torch.inference_mode():
        for img, m in zip(vimg, vmask):
            x = torch.from_numpy(np.ascontiguousarray(img[::2, ::2])).permute(2, 0, 1)[None].float()
            x = F.pad((x - mean) / std, (0, 0, 0, 192 - 180), mode="reflect")
            pred = model(x.to(device))[0, :, :180].argmax(0).cpu().numpy()
            gt = m[::2, ::2]
            ok = gt != 255
            conf += np.bincount(gt[ok].astype(np.int64) * k + pred[ok], minlength=k * k).reshape(k, k)
    inter = np.diag(conf)
    union = conf.sum(0) + conf.sum(1) - inter
    iou = inter[union > 0] / union[union > 0]
    return {"steps": steps, "miou": float(iou.mean()), "acc": float(inter.sum() / conf.sum()),
            "loss": float(loss)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--encoders", default=",".join(ENCODERS))
    parser.add_argument("--learn", type=int, default=0,
                        help="instead of timing: train each encoder this many steps on CamVid")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    device = resolve_device(args.device)
    print(f"device: {describe_device(device)}, torch {torch.__version__}")
    if args.learn:
        print(f"| encoder | steps | last loss | val mIoU | val pixel acc |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for name in args.encoders.split(","):
            r = learn(name.strip(), args.learn, device)
            print(f"| {name} | {r['steps']} | {r['loss']:.2f} | {r['miou']:.3f} | {r['acc']:.3f} |",
                  flush=True)
        return
    print("| encoder | params (M) | inference 1x384x480 (ms) | train step 4x256x256 (ms) | "
          "train images/s |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name in args.encoders.split(","):
        try:
            r = bench(name.strip(), device, args.repeats)
        except Exception as exc:  # noqa: BLE001 - one broken encoder must not stop the table
            print(f"| {name} | failed: {exc} | | | |")
            continue
        print(f"| {r['encoder']} | {r['params_m']:.1f} | {r['infer_ms']:.0f} | {r['train_ms']:.0f} | "
              f"{4000 / r['train_ms']:.1f} |", flush=True)


if __name__ == "__main__":
    main()

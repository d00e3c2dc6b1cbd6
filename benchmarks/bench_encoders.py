"""Time U-Net encoders on this machine to choose the default (docs/decisions/0001).

For each encoder: parameters, inference forward (batch 1, 384x480 = a CamVid frame
padded to a multiple of 32, eval + inference_mode) and one training step (batch 4,
256x256 crops, forward + cross-entropy + backward + Adam step). Median of N runs
after a warm-up. Random initialisation (no downloads needed).

    .venv/bin/python benchmarks/bench_encoders.py [--repeats 5] [--encoders a,b,...]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--encoders", default=",".join(ENCODERS))
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    device = resolve_device(args.device)
    print(f"device: {describe_device(device)}, torch {torch.__version__}")
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

"""Time to a first useful model: the Retrain button (``workflows.train_project``) on the sample project.

    .venv/bin/python benchmarks/bench_first_model.py [--seeds 0] [--set crop=192 --set epochs=60 ...]
        [--json OUT.json]

Copies ``sample_data/`` (8 verified train images, 6 val images with ground truth) to a
temporary folder, presses Retrain there with the project's default training settings
(plus any ``--set KEY=VALUE`` overrides, as the Training settings dialog stores them),
and reports, per seed: the validation mIoU after every epoch with the optimizer steps
and the process CPU seconds at that point, the first step at which val mIoU reached
``--target`` (0.5), the registered version's val mIoU, and the whole Retrain's wall and
CPU time. On a shared machine the wall time measures the load; CPU seconds (of this
process, all threads) and steps measure the recipe: on a quiet 2-core box with one
training thread the wall time is about the CPU time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from workbench.project import Project  # noqa: E402
from workbench.workflows.training import config_from_settings, train_project  # noqa: E402


def _value(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"none": None, "true": True, "false": False}.get(text.lower(), text)


def run_once(seed: int, overrides: dict, target: float, keep: Path | None) -> dict:
    """One Retrain of a fresh copy of the sample project; the facts as plain data."""
    root = Path(tempfile.mkdtemp(prefix="first-model-"))
    folder = root / "sample"
    shutil.copytree(REPO / "sample_data", folder)
    try:
        with Project.open(folder) as project:
            # As Retrain: the project's stored settings (none in a fresh copy), unset ones left to
            # the trainer's recipe, plus the overrides.
            stored = project.settings().get("training", {})
            settings = {**stored, **overrides, "device": "cpu"}
            config, _ = config_from_settings(project, settings)
            import dataclasses

            config = dataclasses.replace(config, seed=seed)
            for key in ("patience", "schedule", "loss"):  # TrainConfig fields the dialog does not store
                if key in overrides:
                    config = dataclasses.replace(config, **{key: overrides[key]})
            t0, c0 = time.monotonic(), time.process_time()
            outcome = train_project(project, config, fine_tune=False)
            wall, cpu = time.monotonic() - t0, time.process_time() - c0
            history = outcome.result.history
            steps = 0
            curve = []
            reached = None
            for h in history:
                steps += h["steps"]
                curve.append({"steps": steps, "val_miou": round(h["val_miou"] or 0.0, 4),
                              "cpu_s": h.get("cpu_s"), "time_s": h["time_s"]})
                if reached is None and (h["val_miou"] or 0.0) >= target:
                    reached = curve[-1]
            if keep is not None:
                keep.mkdir(parents=True, exist_ok=True)
                shutil.copy2(outcome.record.path, keep / f"seed{seed}.safetensors")
            return {"seed": seed, "settings": {k: v for k, v in dataclasses.asdict(config).items()
                                               if k not in ("init",)},
                    "registered_val_miou": outcome.val_miou, "steps": outcome.result.steps,
                    "stopped_by": outcome.result.stopped_by, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
                    "reached_target_at": reached, "curve": curve,
                    "load_after": os.getloadavg()}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a training setting over the defaults (repeatable), e.g. crop=192")
    ap.add_argument("--target", type=float, default=0.5, help="val mIoU that counts as useful (0.5)")
    ap.add_argument("--keep", type=Path, help="copy each registered model here (seedN.safetensors)")
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args()
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key.strip()] = _value(value.strip())
    results = []
    for seed in (int(s) for s in args.seeds.split(",")):
        r = run_once(seed, overrides, args.target, args.keep)
        results.append(r)
        hit = r["reached_target_at"]
        print(f"seed {seed}: val mIoU {r['registered_val_miou']:.3f} after {r['steps']} steps "
              f"({r['stopped_by']}); {r['wall_s']} s wall, {r['cpu_s']} CPU s; "
              + (f"reached {args.target} at step {hit['steps']} ({hit['cpu_s']} CPU s, {hit['time_s']} s)"
                 if hit else f"never reached {args.target}"), flush=True)
        print("   curve: " + " ".join(f"{c['steps']}:{c['val_miou']:.2f}" for c in r["curve"]), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"overrides": overrides, "results": results}, indent=1))


if __name__ == "__main__":
    main()

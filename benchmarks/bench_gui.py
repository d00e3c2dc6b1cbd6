"""GUI-thread stalls during Predict all and Retrain, and the time to switch images.

A 10 ms QTimer heartbeat runs on the GUI thread; every gap beyond 10 ms is time the
event loop could not run (a stall the person would feel). Measured over:

1. Predict all on a copy of the sample project (24 images, a tiny random U-Net),
2. a short Retrain (fine-tuning settings from the sample project, a few epochs),
3. switching between 480x360 images (CamVid frames copied to a temp project) whose
   predictions are already cached: the time from the "next image" command until the
   image, its labels and its prediction are on the canvas.

Run (2-core machine, offscreen):

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_gui.py [--camvid ../shared/camvid]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parent.parent


class Heartbeat:
    """Records the gaps between 10 ms timer ticks on the GUI thread."""

    def __init__(self, interval_ms: int = 10) -> None:
        from PySide6.QtCore import QTimer

        self.interval = interval_ms / 1000.0
        self.gaps: list[float] = []
        self.times: list[float] = []
        self._last = self._t0 = time.perf_counter()
        self.timer = QTimer()
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)

    def start(self) -> None:
        self.gaps.clear()
        self.times.clear()
        self._last = self._t0 = time.perf_counter()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.gaps.append(max(0.0, now - self._last - self.interval))
        self.times.append(self._last - self._t0)
        self._last = now

    def summary(self) -> str:
        if not self.gaps:
            return "no ticks"
        ms = sorted(g * 1000 for g in self.gaps)
        p99 = ms[min(len(ms) - 1, int(0.99 * len(ms)))]
        worst = sorted(zip(self.gaps, self.times), reverse=True)[:3]
        where = ", ".join(f"{1000 * g:.0f} ms at {t:.1f} s" for g, t in worst)
        return (f"max stall {ms[-1]:.0f} ms, p99 {p99:.0f} ms, median {statistics.median(ms):.1f} ms "
                f"({len(ms)} ticks; worst: {where})")


def wait_for(app, cond, timeout_s: float) -> None:
    """Process events until ``cond()`` or the timeout."""
    end = time.perf_counter() + timeout_s
    while not cond():
        if time.perf_counter() > end:
            raise TimeoutError("benchmark step timed out")
        app.processEvents()
        time.sleep(0.001)


def tiny_checkpoint(path: Path, schema) -> Path:
    import torch

    from workbench.ml.checkpoint import CheckpointMeta, save_checkpoint
    from workbench.ml.models import ModelConfig, build_model

    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="unet", encoder="resnet18"), schema.num_classes)
    save_checkpoint(path, model, CheckpointMeta(arch="unet", encoder="resnet18", num_classes=schema.num_classes,
                                                schema=schema.to_dict()))
    return path


def bench_predict_and_train(app, tmp: Path, epochs: int) -> list[str]:
    from workbench.gui.main_window import MainWindow

    folder = tmp / "sample"
    shutil.copytree(REPO / "sample_data", folder, ignore=shutil.ignore_patterns(".workbench"))
    window = MainWindow(device="cpu")
    window.show()
    window.open_project(folder)
    project = window.project
    project.register_model(tiny_checkpoint(tmp / "tiny.safetensors", project.schema))
    window.workspace.model_changed()
    wait_for(app, lambda: not window.predictions.busy, 120)
    beat = Heartbeat()
    lines = []

    finished = []
    window.predictions.batchFinished.connect(finished.append)
    ids = [r.id for r in project.images()]
    # A fresh model version so nothing is cached: every image is really predicted.
    project.register_model(tiny_checkpoint(tmp / "tiny2.safetensors", project.schema))
    window.workspace.model_changed()
    wait_for(app, lambda: not window.predictions.busy, 120)
    t0 = time.perf_counter()
    beat.start()
    window.predictions.predict_all(ids)
    wait_for(app, lambda: finished, 600)
    beat.stop()
    lines.append(f"Predict all ({len(ids)} images, {time.perf_counter() - t0:.1f} s): {beat.summary()}")

    data = project.settings()
    data["training"] = {"arch": "unet", "encoder": "resnet18", "epochs": epochs, "batch_size": 4, "crop": 128,
                        "device": "cpu", "fine_tune": True}
    project.save_settings(data)
    done = []
    window.training.finished.connect(done.append)
    t0 = time.perf_counter()
    beat.start()
    window.model_actions.retrain()
    wait_for(app, lambda: done, 1200)
    beat.stop()
    wait_for(app, lambda: not window.metrics.busy and not window.predictions.busy, 300)
    lines.append(f"Retrain ({epochs} epochs, {time.perf_counter() - t0:.1f} s, {done[0].message}): {beat.summary()}")
    window.close_project(ask=False)
    window.close()
    return lines


def bench_switch(app, tmp: Path, camvid: Path, count: int) -> list[str]:
    import numpy as np

    from workbench.gui.main_window import MainWindow
    from workbench.project import Project

    folder = tmp / "camvid480"
    folder.mkdir()
    frames = sorted((camvid / "val").glob("*.png"))[:count]
    if not frames:
        raise SystemExit(f"no CamVid frames under {camvid / 'val'}")
    for f in frames:
        shutil.copy(f, folder / f.name)
    with Project.open(folder) as project:
        ckpt = tiny_checkpoint(tmp / "tiny_cv.safetensors", project.schema)
        version = project.register_model(ckpt).version
        rng = np.random.default_rng(0)
        for rec in project.images():
            h, w = 360, 480
            pred = rng.integers(0, project.schema.num_classes, (h, w), dtype=np.uint8)
            project.save_prediction(rec.id, version, pred, rng.random((h, w), dtype=np.float32))
    window = MainWindow(device="cpu")
    window.show()
    window.open_project(folder)
    ids = window.list_panel.visible_ids()
    ws = window.workspace

    def switch_times(rounds: int) -> list[float]:
        out = []
        for _ in range(rounds):
            for image_id in ids:
                t0 = time.perf_counter()
                ws.open_image(image_id)
                wait_for(app, lambda i=image_id: ws.prediction is not None and ws.prediction.image_id == i, 30)
                window.canvas.repaint()
                out.append(time.perf_counter() - t0)
        return out

    cold = switch_times(1)           # prediction read from the disk cache by the worker
    warm = switch_times(3)           # prediction in the memory cache
    window.close_project(ask=False)
    window.close()
    def fmt(xs: list[float]) -> str:
        worst = ", ".join(f"{1000 * x:.0f}" for x in sorted(xs)[-3:][::-1])
        return f"median {1000 * statistics.median(xs):.1f} ms, max {1000 * max(xs):.1f} ms (worst 3: {worst} ms)"

    return [f"Switch 480x360 images, prediction cached on disk ({len(cold)} switches): {fmt(cold)}",
            f"Switch 480x360 images, prediction cached in memory ({len(warm)} switches): {fmt(warm)}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--camvid", default=str(REPO.parent / "shared" / "camvid"))
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--switch-images", type=int, default=20)
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--skip-switch", action="store_true")
    args = parser.parse_args(argv)

    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        os.environ["WORKBENCH_STATE_HOME"] = str(tmp / "home")
        lines = [] if args.skip_switch else bench_switch(app, tmp, Path(args.camvid), args.switch_images)
        if not args.skip_train:
            lines += bench_predict_and_train(app, tmp, args.epochs)
    import torch

    print(f"torch threads: {torch.get_num_threads()}, cores: {os.cpu_count()}")
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Where the app's memory goes (issue 12.16): resident memory of the desktop app, stage by stage.

One process, the real window (offscreen), a project of 30 CamVid frames (480 x 360; 12
labelled train images, 6 val images with ground truth) and a U-Net resnet18:

  start, import torch, import the app (PySide6, pyqtgraph, the trainer's torchvision),
  window on the project (no model), model loaded (first prediction shown, idle),
  Predict all (peak, then idle), Retrain of one epoch (peak, then idle).

For each stage: RSS (VmRSS), the peak since the previous stage (VmHWM, reset through
/proc/self/clear_refs), the C heap glibc holds but does not use (mallinfo2 fordblks),
the model copies alive (Predictor objects and smp models found by the garbage collector)
and what ``malloc_trim`` gives back. Run on Linux:

    QT_QPA_PLATFORM=offscreen nice -n 10 .venv/bin/python benchmarks/bench_memory.py [--camvid ../shared/camvid]

``--no-trim`` measures the app without its heap trimming after jobs (the state before the fix).
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

MB = 1024 * 1024


def status_kb(field: str) -> int:
    """A field of /proc/self/status in kB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def reset_peak() -> None:
    """Start a new VmHWM window (Linux >= 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                               "fsmblks", "uordblks", "fordblks", "keepcost")]


def heap_free_mb() -> float | None:
    """Bytes glibc's malloc holds free (not returned to the system), in MiB."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = MallInfo2
        return libc.mallinfo2().fordblks / MB
    except (OSError, AttributeError):
        return None


def model_copies() -> str:
    """Predictor objects and segmentation models alive, with their parameter memory."""
    import torch

    gc.collect()
    warnings.simplefilter("ignore", FutureWarning)   # isinstance() on torch's deprecated module attributes
    predictors = models = 0
    params = 0
    seen: set[int] = set()
    for o in gc.get_objects():
        name = type(o).__name__
        if name == "Predictor":
            predictors += 1
        elif isinstance(o, torch.nn.Module) and type(o).__module__.startswith("segmentation_models_pytorch") \
                and hasattr(o, "encoder") and hasattr(o, "decoder"):
            models += 1
            for p in o.parameters():
                if id(p) not in seen:
                    seen.add(id(p))
                    params += p.numel() * p.element_size()
    return f"{predictors} predictor(s), {models} model(s), {params / MB:.0f} MiB of weights"


ROWS: list[tuple] = []


def record(stage: str, with_models: bool = True) -> None:
    rss = status_kb("VmRSS") / 1024
    peak = status_kb("VmHWM") / 1024
    anon, files = status_kb("RssAnon") / 1024, status_kb("RssFile") / 1024
    free = heap_free_mb()
    copies = model_copies() if with_models and "torch" in sys.modules else ""
    ROWS.append((stage, rss, peak, anon, files, "" if free is None else f"{free:.0f}", copies))
    print(f"{stage:<36} RSS {rss:6.0f} (anon {anon:6.0f}, files {files:5.0f})  peak {peak:6.0f}  "
          f"malloc-free {ROWS[-1][5]:>5} MiB  {copies}", flush=True)
    reset_peak()


def build_project(camvid: Path, dest: Path) -> Path:
    """30 CamVid frames: 24 train (12 labelled), 6 val with ground truth."""
    from workbench.project import Project

    images, masks, gt = dest / "images", dest / "masks", dest / "gt"
    for d in (images, masks, gt):
        d.mkdir(parents=True)
    train = sorted((camvid / "train").glob("*.png"))[:24]
    val = sorted((camvid / "val").glob("*.png"))[:6]
    for i, f in enumerate(train):
        shutil.copy(f, images)
        if i < 12:
            shutil.copy(camvid / "trainannot" / f.name, masks)
    for f in val:
        shutil.copy(f, images)
        shutil.copy(camvid / "valannot" / f.name, gt)
    shutil.copy(camvid / "classes.json", masks / "classes.json")
    from workbench.classes import ClassSchema

    with Project.open(images, schema=ClassSchema.load(camvid / "classes.json")) as p:
        p.import_masks(masks)
        p.import_masks(gt, as_="ground-truth")
        p.set_split([p.find(f.stem).id for f in val], "val")
    return images


def random_checkpoint(path: Path, schema) -> Path:
    """A resnet18 U-Net of the project's classes (random weights: the same memory as a trained one)."""
    import torch

    from workbench.ml.checkpoint import CheckpointMeta, save_checkpoint
    from workbench.ml.models import ModelConfig, build_model

    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="unet", encoder="resnet18"), schema.num_classes)
    save_checkpoint(path, model, CheckpointMeta(arch="unet", encoder="resnet18", num_classes=schema.num_classes,
                                                schema=schema.to_dict()))
    return path


def wait_for(app, cond, timeout_s: float) -> None:
    end = time.perf_counter() + timeout_s
    while not cond():
        if time.perf_counter() > end:
            raise TimeoutError("benchmark step timed out")
        app.processEvents()
        time.sleep(0.005)


def settle(app, seconds: float = 2.0) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.01)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--camvid", type=Path, default=REPO.parent / "shared" / "camvid")
    ap.add_argument("--no-trim", action="store_true", help="disable the app's heap trimming after jobs")
    args = ap.parse_args()
    if not (args.camvid / "train").is_dir():
        sys.exit(f"no CamVid at {args.camvid}")
    reset_peak()
    record("start (python, numpy)", with_models=False)
    import torch  # noqa: F401

    record("import torch")
    from PySide6.QtWidgets import QApplication

    app = QApplication([])
    from workbench.gui import memory
    from workbench.gui.main_window import MainWindow

    if args.no_trim:
        memory.ENABLED = False
    record("import the app (Qt, trainer)")
    tmp = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    os.environ["WORKBENCH_STATE_HOME"] = str(tmp / "home")
    folder = build_project(args.camvid, tmp / "camvid")
    window = MainWindow(device="cpu")
    window.show()
    settle(app, 0.5)
    record("window (no project)")
    assert window.open_project(folder), window.notifier.last_error
    settle(app)
    record("window, project open (no model)")
    project = window.project
    data = project.settings()
    data["training"] = {"arch": "unet", "encoder": "resnet18", "epochs": 1, "minutes": None, "batch_size": 4,
                        "crop": 256, "device": "cpu", "fine_tune": True, "workers": 0}
    project.save_settings(data)
    rec = project.register_model(random_checkpoint(tmp / "m.safetensors", project.schema))
    project.set_current_model(rec.version)
    window.events.current_model(rec.version)
    wait_for(app, lambda: window.workspace.prediction is not None, 300)
    settle(app)
    record("model loaded, one prediction (idle)")
    window.model_actions.predict_all()
    wait_for(app, lambda: not window.predictions.batch_running, 900)
    record("Predict all (peak during)")
    settle(app)
    record("after Predict all (idle)")
    window.model_actions.retrain()
    wait_for(app, lambda: not window.training.running, 1800)
    settle(app, 0.5)
    print(f"Retrain: {window.training_panel.status.text()} {window.notifier.last_error or ''}", flush=True)
    record("Retrain 1 epoch (peak during)")
    settle(app)
    record("after Retrain (idle)")
    window.close_project(ask=False)
    window.close()
    print()
    print("| stage | RSS MiB | anon / file-backed MiB | peak in stage MiB | malloc free MiB | model copies |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    for stage, rss, peak, anon, files, free, copies in ROWS:
        print(f"| {stage} | {rss:.0f} | {anon:.0f} / {files:.0f} | {peak:.0f} | {free} | {copies} |")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

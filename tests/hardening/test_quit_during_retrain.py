"""Issue 8.8: quitting the app while a Retrain runs closes cleanly.

A fresh process opens the app on a copy of the sample project, starts a tiny Retrain
and closes the window as soon as the first training step reported (answering "Yes"
to "Jobs are running... Stop it and close?"). Nothing may be printed about deleted
signal sources, the process exits 0, and no model file is left that the project does
not list (the run removes its partial checkpoint when cancelled; closing waits for it).

What made the bug: a cancelled run still validates its partial epoch and saves it
before it stops, which took longer than the 5 s closing used to wait on a busy
machine; the window was gone when the run next reported. "slow" makes that last step
take 8 s (a sleep in the progress callback once cancelled), so the case is the same on
every machine. "gives-up" also makes closing stop waiting at once: the worker then
outlives the window and must still end without an error.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

app = QApplication(sys.argv[:1])
QMessageBox.question = staticmethod(lambda *a, **k: QMessageBox.StandardButton.Yes)
import time
import workbench.gui.main_window as main_window
import workbench.ml.training as trainer
if sys.argv[2] == "gives-up":
    main_window.TRAINING_CLOSE_WAIT_MS = 0
    main_window.CLOSE_WAIT_MS = 0
from workbench.gui.app import run_app

real_train = trainer.train

def slow_to_stop(*args, on_progress=None, cancel=None, **kwargs):
    slept = []

    def report(p):
        if cancel is not None and cancel.cancelled and not slept:
            slept.append(1)
            time.sleep(8)          # the partial epoch's validation and save, on a busy machine
        on_progress(p)
    return real_train(*args, on_progress=report, cancel=cancel, **kwargs)

trainer.train = slow_to_stop

windows = []

def start():
    w = next(w for w in QApplication.topLevelWidgets() if isinstance(w, main_window.MainWindow))
    windows.append(w)
    data = w.project.settings()
    data["training"] = {"arch": "unet", "encoder": "resnet18", "epochs": 500, "batch_size": 2, "crop": 64,
                        "device": "cpu", "workers": 0, "fine_tune": True}
    w.project.save_settings(data)
    w.training.progress.connect(on_progress)
    w.model_actions.retrain()
    print("STARTED", w.training.running, flush=True)

def on_progress(p):
    if p.info.get("phase") == "train" and len(windows) == 1:
        windows.append("closing")
        print("CLOSING", flush=True)
        QTimer.singleShot(0, windows[0].close)

QTimer.singleShot(200, start)
sys.exit(run_app(sys.argv[1]))
"""


@pytest.mark.parametrize("wait", ["slow", "gives-up"])
def test_quitting_during_a_retrain_is_clean(tmp_path: Path, wait: str) -> None:
    folder = tmp_path / "sample"
    shutil.copytree(REPO / "sample_data", folder, ignore=shutil.ignore_patterns(".workbench"))
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "WORKBENCH_STATE_HOME": str(tmp_path / "home"),
           "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(folder), wait], capture_output=True, text=True,
                         env=env, timeout=600, cwd=REPO)
    assert "STARTED True" in out.stdout, out.stderr
    assert "CLOSING" in out.stdout, out.stderr
    assert out.returncode == 0, out.stderr
    assert "Signal source has been deleted" not in out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    if wait == "gives-up":
        return   # the run may not have reached its clean-up when the process ended; opening removes it
    # Looked at before the project is opened again: opening removes files of dead runs.
    on_disk = sorted(p.name for p in (folder / ".workbench" / "models").glob("*.safetensors*"))
    assert on_disk == [], f"stray model files: {on_disk}"
    from workbench.project import Project

    with Project.open(folder) as project:
        assert project.models() == []        # the run was cancelled: no version
        assert project.next_model_path().name == "v0001.safetensors"   # no number skipped

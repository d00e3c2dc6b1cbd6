"""Concurrency: predictions never overwrite a person's edits; one writer per project.

Covers the project API (a prediction cached for an edited image; a worker thread
saving predictions while the person saves labels), two processes opening one project
(the second is read-only and says so; a killed holder frees the lock), and two app
windows on one project (the second opens read-only with a message, cannot save, and
does not corrupt the first window's work).
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from tests.hardening import corpus
from workbench.errors import WorkbenchError
from workbench.project import Project, Status
from workbench.project.project import READ_ONLY_MESSAGE

HW = (24, 32)
SCHEMA = corpus.corpus_schema()
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(3):
        (folder / f"im{i}.png").write_bytes(corpus.good_image_bytes(*HW, seed=i))
    with Project.open(folder, schema=SCHEMA):
        pass
    return folder


def _mask(value: int) -> np.ndarray:
    return np.full(HW, value, np.uint8)


def test_prediction_never_touches_an_edited_label(folder: Path) -> None:
    with Project.open(folder) as project:
        rec = project.find("im0.png")
        project.save_label(rec.id, _mask(1), status=Status.EDITED)
        label = project.label_path(rec.id).read_bytes()
        before = project.get(rec.id)
        project.save_prediction(rec.id, 1, _mask(0), np.full(HW, 0.9, np.float32))
        after = project.get(rec.id)
        assert project.label_path(rec.id).read_bytes() == label
        assert (after.status, after.source, after.updated) == (before.status, before.source, before.updated)
        assert project.read_prediction(rec.id, 1)[0].max() == 0  # cached beside, not instead


def test_prediction_started_before_the_edit_arrives_after_it(folder: Path) -> None:
    """Predicted while unlabelled, delivered after the person saved: the person wins."""
    with Project.open(folder) as project:
        rec = project.find("im1.png")
        assert rec.status == Status.UNLABELLED
        project.save_label(rec.id, _mask(1))              # the person paints and saves
        project.save_prediction(rec.id, 2, _mask(0))      # the older request lands now
        after = project.get(rec.id)
        assert after.status == Status.EDITED and after.source == "person"
        np.testing.assert_array_equal(project.read_label(rec.id), _mask(1))


def test_worker_thread_predictions_race_with_person_saves(folder: Path) -> None:
    """A worker caching predictions while the person saves the same image 30 times."""
    with Project.open(folder) as project:
        rec = project.find("im2.png")
        errors: list[BaseException] = []
        stop = threading.Event()

        def worker() -> None:
            n = 0
            try:
                while not stop.is_set():
                    project.save_prediction(rec.id, 1 + n % 2, _mask(0), np.full(HW, 0.5, np.float32))
                    n += 1
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        thread = threading.Thread(target=worker)
        thread.start()
        try:
            for i in range(30):
                project.save_label(rec.id, _mask(i % 2), status=Status.EDITED)
        finally:
            stop.set()
            thread.join(timeout=60)
        assert not errors, errors
        after = project.get(rec.id)
        assert after.status == Status.EDITED and after.source == "person"
        np.testing.assert_array_equal(project.read_label(rec.id), _mask(1))


HOLDER = """
import sys
from workbench.project import Project
p = Project.open(sys.argv[1])
print("read_only" if p.read_only else "holding", flush=True)
sys.stdin.readline()
p.close()
"""


def _holder(folder: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert proc.stdout.readline().strip() == "holding"
    return proc


def test_second_process_opens_read_only(folder: Path) -> None:
    proc = _holder(folder)
    try:
        with Project.open(folder) as second:
            assert second.read_only
            assert [r.name for r in second.images()] == ["im0.png", "im1.png", "im2.png"]
            rec = second.find("im0.png")
            for write in (lambda: second.save_label(rec.id, _mask(1)),
                          lambda: second.set_status(rec.id, Status.VERIFIED),
                          lambda: second.save_settings({"x": 1}),
                          lambda: second.save_prediction(rec.id, 1, _mask(0))):
                with pytest.raises(WorkbenchError, match=READ_ONLY_MESSAGE):
                    write()
            assert not second.label_path(rec.id).exists()
    finally:
        proc.stdin.write("\n")
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0
    with Project.open(folder) as again:  # the holder closed: writable again
        assert not again.read_only


def test_killed_holder_frees_the_project(folder: Path) -> None:
    proc = _holder(folder)
    proc.kill()
    proc.wait(timeout=60)
    with Project.open(folder) as project:
        assert not project.read_only
        project.save_label(project.find("im0.png").id, _mask(1))


# ----- two app windows ---------------------------------------------------------------------------
def _window(qtbot, folder: Path):  # noqa: ANN001, ANN202
    from workbench.gui.main_window import MainWindow

    window = MainWindow(device="cpu")
    qtbot.addWidget(window)
    window.show()
    assert window.open_project(folder)
    return window


def test_two_windows_second_is_read_only(folder: Path, qtbot) -> None:  # noqa: ANN001
    """The second window says read-only, refuses to save, and the first keeps working."""
    from workbench.gui.tools import Tool

    first = _window(qtbot, folder)
    second = _window(qtbot, folder)
    try:
        assert not first.project.read_only and second.project.read_only
        assert "[read-only]" in second.windowTitle()
        assert "read-only" in (second.notifier.last_error or "")
        image_id = second.workspace.image_id
        assert image_id is not None  # it can still show images
        # Paint in the read-only window and try to save: refused with a message, nothing written.
        second.canvas.set_tool(Tool.FILL)
        second.session.editor.fill(2, 2, 1)
        second.session.edited()
        second.workspace.save()
        assert "read-only" in second.notifier.last_error or "another window" in second.notifier.last_error
        assert not first.project.label_path(image_id).exists()
        # The first window saves normally; its label is intact afterwards.
        first.workspace.open_image(image_id)
        first.session.editor.fill(2, 2, 1)
        first.session.edited()
        first.workspace.save()
        saved = first.project.label_path(image_id).read_bytes()
    finally:
        second.close_project(ask=False)
        second.close()
    assert first.project.label_path(image_id).read_bytes() == saved
    np.testing.assert_array_equal(first.project.read_label(image_id), _mask(1))
    first.close_project(ask=False)
    first.close()


def test_prediction_arriving_during_edits_keeps_them(folder: Path, tmp_path: Path, qtbot) -> None:  # noqa: ANN001
    """The person paints while the model predicts the same image: the paint stays, status EDITED."""
    import torch

    from workbench.ml.checkpoint import CheckpointMeta, save_checkpoint
    from workbench.ml.models import ModelConfig, build_model

    window = _window(qtbot, folder)
    try:
        project = window.project
        rec = project.find("im1.png")
        window.workspace.open_image(rec.id)
        torch.manual_seed(0)
        ckpt = tmp_path / "tiny.safetensors"
        save_checkpoint(ckpt, build_model(ModelConfig("unet", "resnet18"), SCHEMA.num_classes),
                        CheckpointMeta(arch="unet", encoder="resnet18", num_classes=SCHEMA.num_classes,
                                       schema=SCHEMA.to_dict()))
        project.register_model(ckpt)
        with qtbot.waitSignal(window.predictions.ready, timeout=60000):
            window.workspace.model_changed()          # the request leaves for the worker...
            window.session.editor.fill(0, 0, 1)       # ...while the person fills the image
            window.session.edited()
        qtbot.waitUntil(lambda: window.workspace.prediction is not None, timeout=60000)
        np.testing.assert_array_equal(window.session.editor.mask, _mask(1))
        # Not yet saved, or saved by the autosave timer while the prediction ran (on a busy
        # machine the prediction takes longer than the autosave delay): either way the paint
        # is what the session holds, and the prediction did not replace it.
        label = project.read_label(rec.id)
        assert window.session.dirty or (label is not None and (label == _mask(1)).all())
        window.workspace.save()
        after = project.get(rec.id)
        assert after.status == Status.EDITED and after.source == "person"
        np.testing.assert_array_equal(project.read_label(rec.id), _mask(1))
    finally:
        window.close_project(ask=False)
        window.close()


SECOND_APP = """
import sys
import numpy as np
from PySide6.QtWidgets import QApplication
from workbench.gui.main_window import MainWindow
app = QApplication([])
window = MainWindow(device="cpu")
window.show()
assert window.open_project(sys.argv[1])
print("TITLE", window.windowTitle())
print("BANNER", window.notifier.last_error)
window.session.editor.fill(0, 0, 1)
window.session.edited()
window.workspace.save()
print("SAVE", window.notifier.last_error)
window.close_project(ask=False)
window.close()
"""


def test_second_app_process_is_read_only(folder: Path, qtbot) -> None:  # noqa: ANN001
    """Two app instances (two processes) on one project: the second says read-only and writes nothing."""
    import os

    first = _window(qtbot, folder)
    try:
        labels = first.project.state_dir / "labels"
        before = corpus.tree_digest(labels) if labels.is_dir() else {}
        env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(REPO)}
        proc = subprocess.run([sys.executable, "-c", SECOND_APP, str(folder)], capture_output=True, text=True,
                              timeout=180, env=env, cwd=REPO)
        assert proc.returncode == 0, proc.stderr[-3000:]
        lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines() if " " in line)
        assert lines["TITLE"].endswith("[read-only]")
        assert "read-only" in lines["BANNER"]
        assert "read-only" in lines["SAVE"] or "another window" in lines["SAVE"]
        assert "Traceback" not in proc.stderr
        assert (corpus.tree_digest(labels) if labels.is_dir() else {}) == before
        assert not first.project.read_only
    finally:
        first.close_project(ask=False)
        first.close()

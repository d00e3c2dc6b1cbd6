"""The corpus in the desktop app: the list shows every file, a bad one shows an error in
the window naming it, the app keeps running, and a save that cannot be written keeps
the edits and marks the image unsaved."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.hardening import corpus
from workbench.classes import UNLABELLED


@pytest.fixture
def corpus_window(tmp_path: Path, qtbot):  # noqa: ANN001, ANN201
    from workbench.gui.main_window import MainWindow

    folder = tmp_path / "images"
    cases = corpus.image_cases(folder)
    (folder / "aaa good.png").write_bytes(corpus.good_image_bytes(48, 64, seed=9))
    window = MainWindow(device="cpu")
    qtbot.addWidget(window)
    window.show()
    assert window.open_project(folder), window.notifier.last_error
    yield window, {c.name: c for c in cases}
    window.close_project(ask=False)
    window.close()


def test_bad_images_show_errors_and_the_app_keeps_working(corpus_window) -> None:  # noqa: ANN001
    window, cases = corpus_window
    project = window.project
    records = project.images()
    assert window.list_model.rowCount() == len(records)
    listed = {r.name for r in records}
    assert {"notes.png", "zero byte.png", "truncated.jpg", "café 日本 ñ.png", "phone photo.jpg"} <= listed
    assert "twin" in (window.notifier.last_error or "")  # the shared stem is reported at open
    good = project.find("aaa good.png").id
    assert window.workspace.open_image(good)
    for case in cases.values():
        rec = project.find(case.path.name)
        if rec is None or rec.name != case.path.name:
            continue
        opened = window.workspace.open_image(rec.id)
        if case.expect == corpus.ERROR:
            assert opened is False, case.name
            message = window.notifier.last_error
            assert case.path.name in message and case.problem.lower() in message.lower(), (case.name, message)
            assert window.workspace.image_id == good and window.canvas.editor is window.session.editor
        else:
            assert opened, (case.name, window.notifier.last_error)
            assert window.session.image.shape == case.shape, case.name
            assert window.workspace.open_image(good)
    # Still usable: paint on the good image and save it.
    window.session.editor.fill(0, 0, 1)
    window.session.edited()
    window.workspace.save()
    assert project.read_label(good).max() == 1


def test_image_deleted_while_open_in_the_app(corpus_window) -> None:  # noqa: ANN001
    window, _ = corpus_window
    project = window.project
    victim = project.find("gray.png")
    (project.folder / "gray.png").unlink()
    assert window.workspace.open_image(victim.id) is False
    assert "gray.png" in window.notifier.last_error
    assert window.workspace.open_image(project.find("aaa good.png").id)


def test_save_to_an_unwritable_place_keeps_edits(corpus_window) -> None:  # noqa: ANN001
    """labels/ cannot be created (a file is in the way, as on a full or read-only disk)."""
    window, _ = corpus_window
    project = window.project
    good = project.find("aaa good.png").id
    window.workspace.open_image(good)
    labels = project.state_dir / "labels"
    if labels.is_dir():
        for p in labels.iterdir():
            p.unlink()
        labels.rmdir()
    labels.write_text("in the way")
    window.session.editor.fill(0, 0, 1)
    window.session.edited()
    window.workspace.save()
    assert "could not save" in window.notifier.last_error.lower()
    assert "NOT SAVED" in window.status_fields.saved.text()
    row = window.list_model.row_of(good)
    assert window.list_model.data(window.list_model.index(row, 1)) == "unsaved!"
    assert (window.session.editor.mask != UNLABELLED).all()  # the edits are still in memory
    labels.unlink()                                          # room again: the retry succeeds
    window.workspace.save()
    np.testing.assert_array_equal(project.read_label(good), np.ones((48, 64), np.uint8))
    assert window.list_model.data(window.list_model.index(row, 1)) != "unsaved!"


TINY_TRAINING = {"arch": "unet", "encoder": "tu-mobilenetv3_small_050", "epochs": 1, "minutes": None,
                 "lr": 1e-3, "batch_size": 2, "crop": 32, "device": "cpu", "fine_tune": True, "workers": 0}


@pytest.mark.parametrize("fault", ["truncated_image", "single_class"])
def test_retrain_refusal_is_shown_in_the_window(tmp_path: Path, qtbot, fault: str) -> None:  # noqa: ANN001
    """Retrain on a broken training image or a single class: a message in the window, no traceback."""
    from workbench.gui.main_window import MainWindow
    from workbench.project import Project, Status

    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(3):
        (folder / f"im{i}.png").write_bytes(corpus.good_image_bytes(64, 64, seed=i))
    whole = corpus.good_image_bytes(64, 64, seed=7)
    (folder / "broken.png").write_bytes(whole[: len(whole) // 2] if fault == "truncated_image" else whole)
    with Project.open(folder, schema=corpus.corpus_schema()) as project:
        for rec in project.images():
            mask = np.zeros((64, 64), np.uint8)
            if fault != "single_class":
                mask[:32] = 1
            project.save_label(rec.id, mask, status=Status.VERIFIED)
        project.save_settings({"training": TINY_TRAINING})
        labels_before = corpus.tree_digest(project.state_dir / "labels")
    window = MainWindow(device="cpu")
    qtbot.addWidget(window)
    window.show()
    assert window.open_project(folder)
    try:
        with qtbot.waitSignal(window.training.failed, timeout=120000) as blocker:
            window.training.start()
        message = blocker.args[0]
        assert "Traceback" not in message and 'File "' not in message, message
        if fault == "truncated_image":
            assert "broken.png" in message and "truncated" in message, message
        else:
            assert "label at least two classes" in message, message
        qtbot.waitUntil(lambda: not window.training.running, timeout=30000)
        assert window.notifier.last_error and message.split("\n")[0][:40] in window.notifier.last_error
        assert window.project.models() == []
        assert window.workspace.open_image(window.project.find("im1.png").id)  # still usable
    finally:
        window.close_project(ask=False)
        window.close()
    assert corpus.tree_digest(folder / ".workbench" / "labels") == labels_before


@pytest.mark.slow
def test_huge_image_opens_edits_and_saves(tmp_path: Path, qtbot) -> None:  # noqa: ANN001
    """12,000 x 12,000 pixels in the app (about 3.5 GB peak): open, fill, save, label size right."""
    from workbench import imageio
    from workbench.gui.main_window import MainWindow

    folder = tmp_path / "images"
    case = corpus.huge_image(folder)
    (folder / "aaa small.png").write_bytes(corpus.good_image_bytes())
    window = MainWindow(device="cpu")
    qtbot.addWidget(window)
    window.show()
    assert window.open_project(folder)
    try:
        rec = window.project.find(case.path.name)
        assert window.workspace.open_image(rec.id), window.notifier.last_error
        assert window.session.image.shape == case.shape
        window.session.editor.fill(6000, 6000, 1)
        window.session.edited()
        window.workspace.save()
        label = window.project.label_path(rec.id)
        assert imageio.image_size(label) == (12_000, 12_000)
        assert not window.session.dirty
    finally:
        window.close_project(ask=False)
        window.close()


def test_predict_all_over_bad_images(tmp_path: Path, qtbot) -> None:  # noqa: ANN001
    """Predict all with broken images in the list: each failure names its file, the rest are predicted."""
    from workbench.gui.main_window import MainWindow
    from workbench.ml.checkpoint import CheckpointMeta, save_checkpoint
    from workbench.ml.models import ModelConfig, build_model

    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(3):
        (folder / f"good {i}.png").write_bytes(corpus.good_image_bytes(seed=i))
    (folder / "notes.png").write_text("not an image")
    (folder / "zero.png").write_bytes(b"")
    whole = corpus.good_image_bytes()
    (folder / "cut.png").write_bytes(whole[: len(whole) // 2])
    schema = corpus.corpus_schema()
    ckpt = tmp_path / "tiny.safetensors"
    save_checkpoint(ckpt, build_model(ModelConfig("unet", "tu-mobilenetv3_small_050"), schema.num_classes),
                    CheckpointMeta(arch="unet", encoder="tu-mobilenetv3_small_050",
                                   num_classes=schema.num_classes, schema=schema.to_dict()))
    window = MainWindow(device="cpu")
    qtbot.addWidget(window)
    window.show()
    assert window.open_project(folder)
    failures: list[tuple[int, str]] = []
    window.predictions.failed.connect(lambda i, m: failures.append((i, m)))  # emitted on the GUI thread
    try:
        project = window.project
        project.save_schema(schema)
        project.register_model(ckpt)
        window.workspace.model_changed()
        ids = [r.id for r in project.images()]
        with qtbot.waitSignal(window.predictions.batchFinished, timeout=120000):
            window.predictions.predict_all(ids)
        failed_names = {project.get(i).name for i, _ in failures}
        assert failed_names == {"notes.png", "zero.png", "cut.png"}, failures
        for image_id, message in failures:
            assert project.get(image_id).name in message and "Traceback" not in message
        for i in range(3):
            assert project.read_prediction(project.find(f"good {i}.png").id, 1) is not None
        assert window.workspace.open_image(project.find("good 1.png").id)
    finally:
        window.close_project(ask=False)
        window.close()


@pytest.mark.parametrize("training", [{"epochs": "ten"}, {"batch_size": -4},
                                      {"crop": 33}, {"lr": "fast"},
                                      {"arch": "nonet"}, {"minutes": -1}])
def test_hand_edited_training_settings(tmp_path: Path, qtbot, training: dict) -> None:  # noqa: ANN001
    """settings.json edited by hand with nonsense: Retrain explains, no traceback, nothing trained."""
    from workbench.gui.main_window import MainWindow
    from workbench.project import Project, Status

    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(2):
        (folder / f"im{i}.png").write_bytes(corpus.good_image_bytes(64, 64, seed=i))
    with Project.open(folder, schema=corpus.corpus_schema()) as project:
        for rec in project.images():
            mask = np.zeros((64, 64), np.uint8)
            mask[:32] = 1
            project.save_label(rec.id, mask, status=Status.VERIFIED)
        project.save_settings({"training": {**TINY_TRAINING, **training}})
    window = MainWindow(device="cpu")
    qtbot.addWidget(window)
    window.show()
    assert window.open_project(folder)
    messages: list[str] = []
    started: list[bool] = []
    finished: list[object] = []
    window.training.failed.connect(messages.append)
    window.training.started.connect(lambda: started.append(True))
    window.training.finished.connect(finished.append)
    try:
        window.model_actions.retrain()
        if started:  # refused in the worker rather than up front: wait for its verdict
            qtbot.waitUntil(lambda: bool(finished), timeout=120000)
        shown = window.notifier.last_error or ""
        text = "\n".join([shown, *messages])
        assert shown, "nothing was said"
        assert "Traceback" not in text and 'File "' not in text, text
        assert "Error:" not in shown.split(":")[0], shown  # a sentence, not an exception class name
        assert window.project.models() == []
    finally:
        window.close_project(ask=False)
        window.close()


def test_damaged_current_model_in_the_app(tmp_path: Path, qtbot) -> None:  # noqa: ANN001
    """The current model file was truncated: prediction fails naming it; labelling still works."""
    from workbench.gui.main_window import MainWindow
    from workbench.ml.checkpoint import CheckpointMeta, save_checkpoint
    from workbench.ml.models import ModelConfig, build_model
    from workbench.project import Project

    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(2):
        (folder / f"im{i}.png").write_bytes(corpus.good_image_bytes(seed=i))
    schema = corpus.corpus_schema()
    ckpt = tmp_path / "tiny.safetensors"
    save_checkpoint(ckpt, build_model(ModelConfig("unet", "tu-mobilenetv3_small_050"), schema.num_classes),
                    CheckpointMeta(arch="unet", encoder="tu-mobilenetv3_small_050",
                                   num_classes=schema.num_classes, schema=schema.to_dict()))
    with Project.open(folder, schema=schema) as project:
        model_path = project.register_model(ckpt).path
    model_path.write_bytes(model_path.read_bytes()[:300])
    window = MainWindow(device="cpu")
    qtbot.addWidget(window)
    window.show()
    failures: list[str] = []
    window.predictions.failed.connect(lambda _i, m: failures.append(m))
    assert window.open_project(folder)
    try:
        qtbot.waitUntil(lambda: bool(failures), timeout=60000)
        assert model_path.name in failures[0] and "Traceback" not in failures[0], failures[0]
        image_id = window.workspace.image_id
        window.session.editor.fill(0, 0, 1)
        window.session.edited()
        window.workspace.save()
        assert window.project.read_label(image_id).max() == 1
    finally:
        window.close_project(ask=False)
        window.close()


def test_settings_dialog_with_hand_edited_values(qtbot) -> None:  # noqa: ANN001
    """The Training settings dialog opens on nonsense values and shows defaults instead."""
    from workbench.gui.settings_dialog import SettingsDialog

    dialog = SettingsDialog({**TINY_TRAINING, "epochs": "ten", "lr": "fast", "crop": None}, "CPU")
    qtbot.addWidget(dialog)
    assert dialog.epochs.value() >= 0 and dialog.lr.value() > 0


def test_damaged_prediction_cache_is_recomputed(tmp_path: Path, qtbot) -> None:  # noqa: ANN001
    """A cached prediction file that was damaged is predicted again and rewritten, silently."""
    from workbench import masks as mask_io
    from workbench.gui.main_window import MainWindow
    from workbench.ml.checkpoint import CheckpointMeta, save_checkpoint
    from workbench.ml.models import ModelConfig, build_model
    from workbench.project import Project

    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "a.png").write_bytes(corpus.good_image_bytes())
    schema = corpus.corpus_schema()
    ckpt = tmp_path / "tiny.safetensors"
    save_checkpoint(ckpt, build_model(ModelConfig("unet", "tu-mobilenetv3_small_050"), schema.num_classes),
                    CheckpointMeta(arch="unet", encoder="tu-mobilenetv3_small_050",
                                   num_classes=schema.num_classes, schema=schema.to_dict()))
    with Project.open(folder, schema=schema) as project:
        rec = project.images()[0]
        project.register_model(ckpt)
        cache = project.prediction_dir(1) / f"{rec.stem}.png"
    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"\x89PNG\r\n\x1a\n damaged")
    window = MainWindow(device="cpu")
    qtbot.addWidget(window)
    window.show()
    try:
        with qtbot.waitSignal(window.predictions.ready, timeout=60000):
            assert window.open_project(folder)
        qtbot.waitUntil(lambda: window.workspace.prediction is not None, timeout=60000)
        assert window.workspace.prediction.mask.shape == (24, 32)
        assert mask_io.read_mask(cache, schema, (24, 32)).shape == (24, 32)  # rewritten whole
    finally:
        window.close_project(ask=False)
        window.close()

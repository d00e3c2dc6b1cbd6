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
    # A folder listing cannot include a link pointing at itself yet (see test_bad_images).
    (folder / "loop.png").unlink()
    (folder / "aaa good.png").write_bytes(corpus.good_image_bytes(48, 64, seed=9))
    window = MainWindow(device="cpu")
    qtbot.addWidget(window)
    window.show()
    assert window.open_project(folder), window.notifier.last_error
    yield window, {c.name: c for c in cases if c.name != "symlink_loop"}
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

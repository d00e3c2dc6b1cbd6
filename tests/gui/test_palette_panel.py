"""The Classes panel: renames refuse taken names, Delete / Move ask first, locked during a Retrain."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workbench.classes import UNLABELLED, ClassSchema
from workbench.gui.palette_panel import NOT_LABELLED, PalettePanel
from workbench.project import Project

H, W = 16, 20
NAMES = ["Sky", "Building", "Pole", "Road"]


@pytest.fixture
def project(tmp_path: Path):
    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(folder / "a.png")
    p = Project.open(folder, schema=ClassSchema.default(NAMES))
    mask = np.tile(np.array([0, 1, 2, 3, 255], np.uint8), (H, W // 5))
    p.save_label(p.find("a").id, mask)
    yield p
    p.close()


class Answers:
    """Scripted replies to the panel's dialogs; records what the person was asked."""

    def __init__(self, panel: PalettePanel, text=None, choice=None, confirm=True) -> None:
        self.asked: list[str] = []
        self.text, self.choice, self.yes = text, choice, confirm
        panel.ask_text = self._text
        panel.ask_choice = self._choice
        panel.confirm = self._confirm

    def _text(self, title, label, text=""):
        self.asked.append(f"{title}: {label}")
        return self.text

    def _choice(self, title, label, choices):
        self.asked.append(f"{title}: {label} {choices}")
        return self.choice

    def _confirm(self, title, text):
        self.asked.append(f"{title}: {text}")
        return self.yes


@pytest.fixture
def panel(qtbot, project):
    widget = PalettePanel()
    qtbot.addWidget(widget)
    widget.set_project(project)
    return widget


def _select(panel: PalettePanel, name: str) -> None:
    panel.select_class(panel.project.schema.by_name(name).index)


def test_rename_to_a_taken_name_is_refused_with_a_message(panel, project, qtbot):
    Answers(panel, text="road")
    _select(panel, "Sky")
    with qtbot.waitSignal(panel.failed) as message:
        panel.rename_current()
    assert "'Sky' (class 0)" in message.args[0] and "already called 'Road'" in message.args[0]
    assert project.schema.names == NAMES
    assert panel.list.item(0).text().startswith("Sky")


def test_the_reported_rename_sequence_moves_no_pixel(panel, project):
    before = project.label_path(project.find("a").id).read_bytes()
    answers = Answers(panel)
    for name, new in [("Road", "Highway"), ("Sky", "Road")]:
        _select(panel, name)
        answers.text = new
        panel.rename_current()
    assert project.schema.names == ["Road", "Building", "Pole", "Highway"]
    assert project.label_path(project.find("a").id).read_bytes() == before


def test_delete_asks_what_pixels_become_and_confirms_with_counts(panel, project, qtbot):
    answers = Answers(panel, choice=NOT_LABELLED, confirm=False)
    _select(panel, "Building")
    panel.delete_current()  # the person says No: nothing changes
    assert project.schema.names == NAMES
    pixels = H * W // 5
    assert f"{pixels:,} pixels in 1 label file are 'Building'" in answers.asked[0]
    assert "1 label file" in answers.asked[1] and "become not labelled" in answers.asked[1]
    assert "Pole, Road move down one index" in answers.asked[1]
    answers.yes = True
    with qtbot.waitSignal(panel.masksRemapped):
        panel.delete_current()
    assert project.schema.names == ["Sky", "Pole", "Road"]
    label = project.read_label(project.find("a").id)
    assert (label == UNLABELLED).sum() == 2 * pixels and (label == 2).sum() == pixels
    assert panel.list.count() == 3


def test_delete_can_merge_into_another_class(panel, project):
    answers = Answers(panel, choice="Road")
    _select(panel, "Pole")
    panel.delete_current()
    assert "those pixels become 'Road'" in answers.asked[1]
    label = project.read_label(project.find("a").id)
    assert project.schema.names == ["Sky", "Building", "Road"] and (label == 2).sum() == 2 * H * W // 5


def test_delete_is_cancelled_when_the_open_edits_cannot_be_saved(panel, project, qtbot):
    Answers(panel, choice=NOT_LABELLED)
    panel.before_remap = lambda: False
    _select(panel, "Pole")
    with qtbot.waitSignal(panel.failed) as message:
        panel.delete_current()
    assert "could not be saved" in message.args[0] and project.schema.names == NAMES


def test_move_down_swaps_two_classes_and_keeps_every_pixel(panel, project):
    answers = Answers(panel)
    _select(panel, "Sky")
    panel.move_current(+1)
    assert "'Sky' (0 → 1) and 'Building' (1 → 0)" in answers.asked[0]
    assert project.schema.names == ["Building", "Sky", "Pole", "Road"]
    assert panel.current_class() == 1 and panel.list.currentItem().text().startswith("Sky")
    label = project.read_label(project.find("a").id)
    np.testing.assert_array_equal(label[:, 0], 1)  # the first column was Sky: still Sky


def test_locked_while_a_retrain_runs(panel, project, qtbot):
    panel.set_locked("a Retrain is running (it trains on the classes it started with)")
    assert not any(b.isEnabled() for b in panel._buttons)
    assert panel.lock_label.isVisibleTo(panel) and "Retrain is running" in panel.lock_label.text()
    with qtbot.waitSignal(panel.failed) as message:
        assert not panel.apply(lambda s: s.add_class("Car"))
    assert "cannot be changed now" in message.args[0]
    Answers(panel, text="Car")
    panel.add_class()
    assert project.schema.names == NAMES
    panel.select_nth(2)  # picking a class to paint with still works
    assert panel.current_class() == 1
    panel.set_locked(None)
    assert all(b.isEnabled() for b in panel._buttons) and not panel.lock_label.isVisibleTo(panel)
    panel.add_class()
    assert project.schema.names == NAMES + ["Car"]


def test_add_after_a_hand_edit_says_what_it_kept(panel, project, qtbot):
    path = project.classes_path
    schema = ClassSchema.load(path)
    schema.classes = schema.classes[:3]
    schema.save(path)
    project.schema = ClassSchema.load(path)  # as a reopen would see it
    Answers(panel, text="Car")
    with qtbot.waitSignal(panel.failed) as message:
        panel.add_class()
    assert "hold value 3" in message.args[0]
    assert project.schema.names == ["Sky", "Building", "Pole", "class 3 (found in labels)", "Car"]
    assert panel.current_class() == 4


def test_deleting_in_the_app_remaps_the_open_image_and_its_unsaved_edits(window, qtbot) -> None:
    project = window.project
    image_id = window.workspace.image_id
    editor = window.session.editor
    edited = editor.mask.copy()
    edited[0, 0] = 3                # an edit still in memory: class 3 (debris)
    editor.set_mask(edited, dirty=True)
    Answers(window.palette, choice=NOT_LABELLED)
    window.palette.select_class(1)  # cytoplasm
    window.palette.delete_current()
    assert project.schema.names == ["background", "nucleus", "debris"]
    label = project.read_label(image_id)
    assert label[0, 0] == 2                      # the edit was saved, then renumbered with the rest
    assert window.session.editor is not editor   # reopened from the file: no undo into old indices
    np.testing.assert_array_equal(window.session.editor.mask, label)


def test_void_and_retired_classes_are_listed_last_and_can_be_deleted(qtbot, tmp_path):
    folder = tmp_path / "v"
    folder.mkdir()
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(folder / "a.png")
    schema = ClassSchema.from_dict({"ignore_index": 2, "classes": [
        {"index": 0, "name": "bg", "color": [0, 0, 0]}, {"index": 1, "name": "fg", "color": [9, 9, 9]},
        {"index": 2, "name": "Void", "color": [1, 1, 1], "void": True},
        {"index": 7, "name": "class 7 (found in labels)", "color": [2, 2, 2], "retired": True}]})
    with Project.open(folder, schema=schema) as p:
        p.save_label(p.find("a").id, np.tile(np.array([0, 1, 2, 7], np.uint8), (H, W // 4)))
        panel = PalettePanel()
        qtbot.addWidget(panel)
        panel.set_project(p)
        texts = [panel.list.item(r).text() for r in range(panel.list.count())]
        assert texts == ["bg  [1]", "fg  [2]", "Void  (void, not trained)",
                         "class 7 (found in labels)  (retired value, ignored)"]
        panel.select_nth(2)
        panel.select_nth(3)  # number keys pick trained classes only: 3 does nothing here
        assert panel.current_class() == 1
        answers = Answers(panel, choice=NOT_LABELLED)
        panel.select_class(7)
        with qtbot.waitSignal(panel.failed):
            panel.move_current(-1)
        panel.delete_current()
        assert "become not labelled" in answers.asked[-1]
        assert p.schema.retired == [] and panel.list.count() == 3
        assert not (p.read_label(p.find("a").id) == 7).any()


def test_opening_a_project_whose_classes_were_renumbered_by_hand_says_so(qtbot, project):
    path = project.classes_path
    schema = ClassSchema.load(path)
    data = schema.to_dict()
    data["classes"][0]["index"], data["classes"][1]["index"] = 1, 0
    project.save_schema(project.schema)  # records the numbering the labels use
    path.write_text(__import__("json").dumps(data))
    project.schema = ClassSchema.load(path)  # as a reopen would see it
    panel = PalettePanel()
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.failed) as message:
        panel.set_project(project)
    assert "renumbered outside workbench" in message.args[0] and "'Sky' 0 → 1" in message.args[0]

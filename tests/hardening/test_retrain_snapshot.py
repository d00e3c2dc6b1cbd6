"""Issue 8.7: labels saved and classes added during a Retrain neither kill the run nor leak into it.

``train_project`` trains on a snapshot (hard links of the label files, a copy of the
schema) taken at its start; the model records the schema it was trained with, and if
the classes changed meanwhile it is kept as a candidate, never made current over the
model that was.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from workbench.ml.checkpoint import read_meta
from workbench.project import Project
from workbench.workflows import config_from_settings, train_project

from workflow_helpers import FAST_SETTINGS, tiny_project


@pytest.fixture(scope="module")
def one_model(tmp_path_factory) -> Path:
    """A tiny project with one trained model (v1, current)."""
    folder = tiny_project(tmp_path_factory.mktemp("snapshot"))
    with Project.open(folder) as project:
        train_project(project, config_from_settings(project, FAST_SETTINGS)[0])
    return folder


@pytest.mark.parametrize("moment", ["checking", "train"])
def test_labels_and_classes_changed_during_the_run_neither_break_nor_leak_into_it(tmp_path, moment):
    # "checking": after the first training file was checked, before the others are read
    # (without the snapshot the cleared label is missing and the new class is out of
    # the schema the run trains with); "train": during the first epoch.
    folder = tiny_project(tmp_path)
    with Project.open(folder) as project:
        config, _ = config_from_settings(project, FAST_SETTINGS)
        first = project.find("0")
        changed = {"done": False}

        def on_progress(p):
            if p.info.get("phase") == moment and not changed["done"]:
                changed["done"] = True
                project.add_class("road")                       # the schema grows mid-run
                project.save_label(first.id, np.full((64, 64), 2, np.uint8))  # uses the new class
                project.clear_label(project.find("1").id)

        out = train_project(project, config, on_progress=on_progress)
        assert changed["done"] and out.version == 1 and not out.cancelled
        meta = read_meta(project.model(1).path)
        assert meta.num_classes == 2 and meta.class_schema().names == ["background", "square"]
        assert "0.png" in meta.trained_on and "1.png" in meta.trained_on  # the snapshot was trained on
        assert project.model(1).metrics["class_names"] == ["background", "square"]


def test_classes_changed_during_a_run_keep_the_previous_model_current(one_model, tmp_path):
    folder = tmp_path / "images"
    shutil.copytree(one_model, folder)
    with Project.open(folder) as project:
        config, _ = config_from_settings(project, FAST_SETTINGS)
        done = []

        def on_progress(p):
            if p.info.get("phase") == "train" and not done:
                done.append(project.add_class("road"))

        out = train_project(project, config, on_progress=on_progress)
        assert out.version == 2 and not out.promoted and project.current_model().version == 1
        assert "the classes changed since, so v1 stays current" in out.message

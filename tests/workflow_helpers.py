"""Tiny projects and training settings shared by the workflow tests (CLI and GUI halves).

Not a test module. ``tiny_project`` makes a project of synthetic images (a bright
square on a dark background, labelled) split into train and val; ``FAST_SETTINGS``
are training settings that finish in seconds on a CPU; ``FAST_CLI`` the same as
``workbench train`` flags, so a test can train one project through the CLI and another
through the GUI's stored settings and compare the records (``record_facts``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from workbench.classes import ClassSchema
from workbench.project import Project, Split

ENCODER = "tu-mobilenetv3_small_050"
FAST_SETTINGS = {"encoder": ENCODER, "crop": 64, "batch_size": 2, "epochs": 1, "device": "cpu",
                 "workers": 0, "lr": 0.01}
FAST_CLI = ["--encoder", ENCODER, "--crop", "64", "--batch-size", "2", "--epochs", "1",
            "--device", "cpu", "--workers", "0", "--lr", "0.01"]


def make_images(folder: Path, n: int, *, seed: int = 0, size: int = 64) -> dict[str, np.ndarray]:
    """``n`` images ``0.png`` ... in ``folder``; returns their masks by stem (not written)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = {}
    for i in range(n):
        image = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
        mask = np.zeros((size, size), np.uint8)
        y, x = rng.integers(4, size - 24, 2)
        image[y:y + 20, x:x + 20] = 220
        mask[y:y + 20, x:x + 20] = 1
        Image.fromarray(image).save(folder / f"{i}.png")
        out[str(i)] = mask
    return out


def tiny_project(root: Path, *, n_train: int = 6, n_val: int = 2, n_unlabelled: int = 0,
                 val_as_ground_truth: bool = True) -> Path:
    """A project folder: labelled train images, val images with ground truth, unlabelled extras."""
    images = root / "images"
    masks = make_images(images, n_train + n_val + n_unlabelled)
    schema = ClassSchema.default(["background", "square"])
    with Project.open(images, schema=schema) as project:
        for i in range(n_train + n_val):
            rec = project.find(str(i))
            if i >= n_train:
                project.set_split(rec.id, Split.VAL)
                if val_as_ground_truth:
                    project.save_ground_truth(rec.id, masks[str(i)])
                    continue
            project.save_label(rec.id, masks[str(i)], status="verified")
    return images


def settings_with(project_folder: Path, settings: dict) -> None:
    """Store training settings in the project (as the Training settings dialog does)."""
    with Project.open(project_folder) as project:
        stored = project.settings()
        stored["training"] = dict(settings)
        project.save_settings(stored)


def train_via_cli(project_folder: Path) -> dict:
    """Train the project once with `workbench train PROJECT` (FAST_CLI); ``record_facts`` of the new version.

    The CLI half of issue 9's "both paths register identical model records": a GUI test
    trains a second ``tiny_project`` with ``settings_with(folder, FAST_SETTINGS)`` through
    the Retrain controller and compares its ``record_facts`` with this.
    """
    from workbench.cli import main
    from workbench.workflows import record_facts

    code = main(["train", str(project_folder), *FAST_CLI])
    if code != 0:
        raise AssertionError(f"workbench train exited {code}")
    with Project.open(project_folder) as project:
        return record_facts(project.models()[-1])

"""Small synthetic projects for the format tests (fmt-core's helpers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from workbench.classes import ClassInfo, ClassSchema
from workbench.formats.base import NOT_LABELLED, ExportClass, ExportItem

CAMVID = Path(__file__).resolve().parents[2].parent / "shared" / "camvid"


def schema3() -> ClassSchema:
    """Three trainable classes and a void one (CamVid's shape, small)."""
    return ClassSchema([ClassInfo(0, "sky", (128, 128, 128)), ClassInfo(1, "road", (128, 64, 128)),
                        ClassInfo(2, "car", (64, 0, 128)), ClassInfo(3, "Unlabelled", (0, 0, 0), True)], 3)


def synthetic_mask(h: int, w: int, seed: int) -> np.ndarray:
    """Blocks of classes 0-2, a void strip, some not-labelled pixels, a hole."""
    rng = np.random.default_rng(seed)
    m = np.zeros((h, w), np.uint8)
    m[h // 2:, :] = 1
    y, x = rng.integers(2, h // 2 - 6), rng.integers(2, w - 12)
    m[y:y + 6, x:x + 10] = 2
    m[y + 2:y + 4, x + 3:x + 6] = 0          # a hole in the car
    m[-3:, : w // 3] = 3                        # void
    m[:2, -5:] = NOT_LABELLED
    return m


def make_images(folder: Path, n: int = 3, h: int = 24, w: int = 32, ext: str = ".png") -> list[str]:
    """``n`` small RGB images; their names."""
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    rng = np.random.default_rng(0)
    for i in range(n):
        name = f"img{i:02d}{ext}"
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(folder / name)
        names.append(name)
    return names


def labelled_project(tmp_path: Path, n: int = 3, splits=("train", "val", "test")):
    """(image folder, {name: mask}) of a project with verified labels and splits set."""
    from workbench.project import Project

    folder = tmp_path / "images"
    names = make_images(folder, n)
    masks = {}
    with Project.open(folder, schema=schema3()) as project:
        for i, rec in enumerate(project.images()):
            h, w = project.image_shape(rec.id)
            masks[rec.name] = synthetic_mask(h, w, i)
            project.save_label(rec.id, masks[rec.name], status="verified")
            project.set_split(rec.id, splits[i % len(splits)])
    return folder, masks


def export_items(folder: Path, masks: dict[str, np.ndarray], splits=("train", "val", "test")) -> list[ExportItem]:
    """ExportItems over ``masks`` (images in ``folder``)."""
    return [ExportItem(name, folder / name, m, splits[i % len(splits)], "verified")
            for i, (name, m) in enumerate(sorted(masks.items()))]


def export_classes3() -> list[ExportClass]:
    """``schema3`` as writers see it."""
    return [ExportClass(c.name, c.index, c.color, c.void) for c in schema3().classes]


def names_per_pixel(mask: np.ndarray, schema: ClassSchema) -> np.ndarray:
    """Each pixel's class name; "" for not labelled and void (what every format keeps)."""
    lut = np.array([""] * 256, dtype=object)
    for c in schema.classes:
        if not c.void:
            lut[c.index] = c.name.casefold()
    return lut[mask]

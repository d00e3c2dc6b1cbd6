"""Scoring a model on a folder of images against ground-truth masks.

The same confusion-matrix rules as ``workbench.metrics.evaluate_folders`` (and so as
the metrics panel): images and masks pair by file stem, ignored ground-truth values
are skipped, scores come from one dataset-level matrix.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from workbench.errors import InputError, WorkbenchError
from workbench.imageio import list_images, read_image
from workbench.masks import read_mask
from workbench.metrics import ConfusionMatrix, EvaluationReport, files_by_stem, scores_from_matrix
from workbench.ml.inference import Predictor
from workbench.progress import CancelToken, ProgressCallback, check, report


def evaluate_model(images_dir: str | Path, checkpoint: str | Path, gt_dir: str | Path, *,
                   device: str = "auto", batch_size: int = 4,
                   on_progress: ProgressCallback | None = None,
                   cancel: CancelToken | None = None) -> EvaluationReport:
    """Predict every image that has a ground-truth mask and score it with the model's classes.

    A ground-truth mask without an image goes to ``missing``; an unreadable image or
    mask, or one of another size, goes to ``problems``. No masks at all is an error.
    """
    images_dir, gt_dir = Path(images_dir), Path(gt_dir)
    problems: list[str] = []
    gt_files = files_by_stem(list_images(gt_dir), problems)
    if not gt_files:
        raise WorkbenchError("no ground-truth masks found", gt_dir)
    image_files = files_by_stem(list_images(images_dir), problems)
    predictor = Predictor.from_checkpoint(checkpoint, device=device, batch_size=batch_size)
    schema = predictor.meta.class_schema()
    ignore = schema.ignore_values
    missing = [p.name for stem, p in gt_files.items() if stem not in image_files]
    todo = [stem for stem in gt_files if stem in image_files]
    truth: dict[str, np.ndarray] = {}
    unreadable: list[str] = []

    def inputs() -> Iterator[tuple[str, np.ndarray]]:
        # Lazy: one image (and its mask) decoded at a time, as the predictor asks.
        for stem in todo:
            try:
                image = read_image(image_files[stem])
                truth[stem] = read_mask(gt_files[stem], schema, expected_hw=image.shape[:2])
            except InputError as exc:
                problems.append(str(exc))
                unreadable.append(stem)
                continue
            yield stem, image

    total = ConfusionMatrix(schema.num_classes)
    per_image: dict[str, float | None] = {}
    report(on_progress, 0, len(todo), "evaluating")
    for stem, pred in predictor.predict_many(inputs(), cancel=cancel):
        check(cancel)
        m = total.compute(pred.mask, truth.pop(stem), ignore)
        total.matrix += m
        per_image[stem] = scores_from_matrix(m).miou
        report(on_progress, len(per_image) + len(unreadable), len(todo), stem,
               miou=total.scores().miou or 0.0)
    return EvaluationReport(
        scores=total.scores(), images=len(per_image), missing=missing, per_image=per_image,
        problems=problems, class_names=schema.names, confusion=total.matrix.copy())

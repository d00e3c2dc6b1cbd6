"""Scoring a model version on a project split (the metrics panel's worker body; no Qt).

One dataset-level ``ConfusionMatrix`` over every image of the split that has a
reference mask (imported ground truth, else a verified label), as GUIDE 6 asks;
predictions come from the cache when present, else from the worker's own Predictor.
"""

from __future__ import annotations

from pathlib import Path

from workbench.errors import CancelledError, WorkbenchError
from workbench.gui.prediction_service import PredictorSlot, predict_image
from workbench.metrics import ConfusionMatrix, EvaluationReport
from workbench.progress import CancelToken, ProgressCallback, check, report
from workbench.project import Project


def evaluate_split(project: Project, version: int, model_path: Path, split: str = "val", *,
                   device: str = "auto", on_progress: ProgressCallback | None = None,
                   cancel: CancelToken | None = None) -> tuple[int, str, EvaluationReport, dict[int, float | None]]:
    """(version, split, report, per-image mIoU by image id) for ``version`` on ``split``.

    The report is recorded in the project's metrics history unless it is read-only.
    """
    schema = project.schema
    records = project.images(split=split)
    cm = ConfusionMatrix(schema.num_classes)
    slot = PredictorSlot(device)
    per_image: dict[int, float | None] = {}
    per_stem: dict[str, float | None] = {}
    missing: list[str] = []
    problems: list[str] = []
    scored = 0
    for n, rec in enumerate(records):
        check(cancel)
        report(on_progress, n, len(records), f"scoring {rec.name}")
        try:
            ref = project.reference_mask(rec.id)
        except WorkbenchError as exc:
            problems.append(str(exc))
            continue
        if ref is None:
            missing.append(rec.name)
            continue
        try:
            pred = predict_image(project, rec.id, version, model_path, slot, cancel=cancel)
        except CancelledError:
            raise
        except WorkbenchError as exc:
            problems.append(str(exc))
            continue
        if pred.mask.shape != ref.shape:
            problems.append(f"{rec.name}: prediction and reference mask differ in size")
            continue
        one = ConfusionMatrix(schema.num_classes)
        one.update(pred.mask, ref, schema.ignore_values)
        cm.matrix += one.matrix
        miou = one.scores().miou
        per_image[rec.id] = miou
        per_stem[rec.stem] = miou
        scored += 1
        if miou is not None and not project.read_only:
            project.set_image_scores(rec.id, miou=miou)
    report(on_progress, len(records), len(records), "done")
    result = EvaluationReport(cm.scores(), scored, missing, per_stem, problems, schema.names, cm.matrix.copy())
    if scored and not project.read_only:
        project.record_metrics(version, split, result.to_json())
    return version, split, result, per_image

"""Score a model version on a project split: the metrics panel and ``workbench evaluate PROJECT``.

One dataset-level ``ConfusionMatrix`` over every image of the split that has a
reference mask (imported ground truth, else a verified label), as GUIDE 6 asks;
predictions come from the version's cache when present, else from a Predictor (and
are then cached). Per-image mIoU is stored for (image, version): evaluating v1 while
v2 is current leaves the numbers the image list shows (v2's) alone. No Qt here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.errors import CancelledError, WorkbenchError
from workbench.metrics import ConfusionMatrix, EvaluationReport
from workbench.progress import CancelToken, ProgressCallback, check, report
from workbench.project import Project
from workbench.project.records import parse_split
from workbench.workflows.prediction import PredictorSlot, predict_image, resolve_version


@dataclass(frozen=True)
class ProjectEvaluation:
    """What ``evaluate_project`` measured."""

    version: int
    split: str
    report: EvaluationReport
    pairs: int                                   # images of the split with a reference mask
    per_image: dict[int, float | None] = field(default_factory=dict)   # by image id

    def to_json(self) -> dict[str, Any]:
        """The folder form's JSON keys plus version and split."""
        out = self.report.to_json()
        out.update(version=self.version, split=self.split)
        return out


def evaluate_project(project: Project, *, version: int | None = None, split: str = "val",
                     device: Any = "auto", record: bool = True,
                     on_progress: ProgressCallback | None = None,
                     cancel: CancelToken | None = None) -> ProjectEvaluation:
    """Score ``version`` (default: the current model) on ``split``.

    With ``record`` (and a writable project) fresh predictions are cached, per-image
    mIoU is stored for (image, version) and the report is appended to the metrics
    history. Raises ``CancelledError`` when cancelled.
    """
    split = parse_split(split).value
    rec = resolve_version(project, version)
    save = record and not project.read_only
    schema = project.schema
    records = project.images(split=split)
    cm = ConfusionMatrix(schema.num_classes)
    slot = PredictorSlot(device)
    per_image: dict[int, float | None] = {}
    per_stem: dict[str, float | None] = {}
    missing: list[str] = []
    problems: list[str] = []
    pairs = 0
    for n, image in enumerate(records):
        check(cancel)
        report(on_progress, n, len(records), f"scoring {image.name}")
        try:
            ref = project.reference_mask(image.id)
        except WorkbenchError as exc:
            problems.append(str(exc))
            continue
        if ref is None:
            missing.append(image.name)
            continue
        pairs += 1
        try:
            pred = predict_image(project, image.id, rec.version, rec.path, slot, save=save, cancel=cancel)
        except CancelledError:
            raise
        except WorkbenchError as exc:
            if "predicts the classes" in str(exc):
                raise
            problems.append(str(exc))
            continue
        if pred.mask.shape != ref.shape:
            problems.append(f"{image.name}: prediction and reference mask differ in size")
            continue
        one = ConfusionMatrix(schema.num_classes)
        one.update(pred.mask, ref, schema.ignore_values)
        cm.matrix += one.matrix
        miou = one.scores().miou
        per_image[image.id] = miou
        per_stem[image.stem] = miou
        if miou is not None and save:
            project.set_image_scores(image.id, version=rec.version, miou=miou)
    report(on_progress, len(records), len(records), "done")
    result = EvaluationReport(cm.scores(), len(per_image), missing, per_stem, problems, schema.names,
                              cm.matrix.copy())
    if per_image and save:
        project.record_metrics(rec.version, split, result.to_json())
    return ProjectEvaluation(rec.version, split, result, pairs, per_image)


def score_checkpoint(path: Path, pairs: list[tuple[int | None, Path, Path]], schema, *,
                     device: Any = "auto", cancel: CancelToken | None = None,
                     on_progress: ProgressCallback | None = None,
                     ) -> tuple[EvaluationReport, dict[int, float | None]]:
    """Score a checkpoint on (image id, image file, reference mask file) triples.

    The trainer's promotion check: the new and the previous model are scored by this
    one function on the same pairs, so their mIoUs compare like for like.
    """
    from workbench.ml.quick_model import open_predictor  # a U-Net or a quick model (issue 13)

    predictor = open_predictor(path, device=device, schema=schema)  # classes matched by id
    return score_predictor(predictor, pairs, schema, cancel=cancel, on_progress=on_progress)


def score_predictor(predictor: Any, pairs: list[tuple[int | None, Path, Path]], schema, *,
                    cancel: CancelToken | None = None, on_progress: ProgressCallback | None = None,
                    **info: Any) -> tuple[EvaluationReport, dict[int, float | None]]:
    """Score a loaded predictor (anything with ``predict(image, cancel=)``) on the triples.

    The one scoring loop behind ``score_checkpoint`` and the quick model's in-memory
    scoring (workflows/quick.py); ``info`` goes into each progress report (e.g. a phase).
    """
    from workbench import imageio, masks

    cm = ConfusionMatrix(schema.num_classes)
    per_id: dict[int, float | None] = {}
    per_stem: dict[str, float | None] = {}
    problems: list[str] = []
    for n, (image_id, image_path, ref_path) in enumerate(pairs):
        check(cancel)
        report(on_progress, n, len(pairs), f"scoring {Path(image_path).name}", **info)
        try:
            image = imageio.read_image(image_path)
            ref = masks.read_mask(ref_path, schema, image.shape[:2])
        except WorkbenchError as exc:
            problems.append(str(exc))
            continue
        pred = predictor.predict(image, cancel=cancel)
        one = ConfusionMatrix(schema.num_classes)
        one.update(pred.mask, ref, schema.ignore_values)
        cm.matrix += one.matrix
        miou = one.scores().miou
        per_stem[Path(image_path).stem] = miou
        if image_id is not None:
            per_id[int(image_id)] = miou
    return (EvaluationReport(cm.scores(), len(per_stem), [], per_stem, problems, schema.names,
                             cm.matrix.copy()), per_id)

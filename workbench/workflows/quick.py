"""Train the quick model on a project's labels and register it as a model version.

``train_quick_project`` is ``workbench train PROJECT --quick`` and the app's "Train quick
model" (and its live update while the person paints): it fits ``ml.quick_model`` on the
verified and edited labels of the train split (scribbles included), scores it on the val
split with the same function that scores U-Net runs, and registers it as the next
version, current or a candidate by the project's promotion rule
(``workflows.models.decide_promotion``). So the quick model is the project's suggestion
until a U-Net version beats it on val, and a quick model never replaces a better U-Net.
No Qt here.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from workbench.errors import CancelledError, WorkbenchError
from workbench.progress import CancelToken, ProgressCallback, check, report
from workbench.project import Project, Split
from workbench.workflows import models as model_flows
from workbench.workflows.model_kinds import is_quick
from workbench.workflows.training import TrainOutcome, record_val_scores, val_pairs

QUICK_SETTINGS_KEY = "quick_model"   # settings.json: {"trees", "max_depth", "per_class", "seed"}


def quick_settings(project: Project) -> Any:
    """The project's quick model settings (defaults where unset), checked."""
    from workbench.ml.quick_model import QuickSettings

    stored = project.settings().get(QUICK_SETTINGS_KEY) or {}
    if not isinstance(stored, dict):
        raise WorkbenchError(f'"{QUICK_SETTINGS_KEY}" in settings.json must be an object', project.settings_path)
    return QuickSettings.from_dict(stored, project.settings_path)


def _training_data(project: Project, overrides: dict[int, np.ndarray]):
    """(image, mask, name) triples of the train split's verified/edited labels, plus in-memory ones."""
    from workbench import masks

    seen = set()
    for image_path, label_path in project.training_pairs(Split.TRAIN):
        rec = project.find(Path(image_path).name)
        if rec is None:
            continue
        seen.add(rec.id)
        image = project.read_image(rec.id)
        mask = overrides.get(rec.id)
        if mask is None:
            mask = masks.read_mask(label_path, project.schema, image.shape[:2])
        yield image, mask, rec.name
    for image_id, mask in overrides.items():
        if image_id in seen or project.get(image_id).split != Split.TRAIN:
            continue
        yield project.read_image(image_id), mask, project.get(image_id).name


def score_quick(model: Any, pairs: list[tuple[int, Path, Path]], schema: Any, *,
                cancel: CancelToken | None = None, on_progress: ProgressCallback | None = None):
    """(EvaluationReport, per-image mIoU by id) of an in-memory quick model on val pairs."""
    from workbench.workflows.evaluation import score_predictor

    return score_predictor(model, pairs, schema, cancel=cancel, on_progress=on_progress, phase="compare")


def _previous_score(project: Project, previous: Any, pairs: list, schema: Any, *, reuse: bool,
                    cancel: CancelToken | None) -> tuple[float | None, dict[int, float | None], str | None]:
    """(val mIoU, per-image, why unusable) of the model current before this run.

    ``reuse``: take the previous version's stored val mIoU when it was measured on as many
    val images as there are now (the live update: scoring a U-Net on CPU per stroke is too slow).
    """
    from workbench.workflows.evaluation import score_checkpoint
    from workbench.ml.checkpoint import class_match, read_meta

    if previous is None or not pairs:
        return None, {}, None
    try:
        if class_match(read_meta(previous.path), schema) == "different":
            return None, {}, "predicts other classes"
    except WorkbenchError as exc:
        return None, {}, f"could not be scored: {exc}"
    stored = previous.metrics.get("val_miou")
    if reuse and isinstance(stored, (int, float)) and previous.metrics.get("val_images") == len(pairs):
        return float(stored), {}, None
    try:
        rep, per = score_checkpoint(previous.path, pairs, schema, device="cpu", cancel=cancel)
    except CancelledError:
        raise
    except WorkbenchError as exc:
        return None, {}, f"could not be scored: {exc}"
    return rep.scores.miou, per, None


def train_quick_project(project: Project, *, policy: str | None = None,
                        overrides: dict[int, np.ndarray] | None = None, replace: int | None = None,
                        live: bool = False, on_progress: ProgressCallback | None = None,
                        cancel: CancelToken | None = None) -> TrainOutcome:
    """Fit the quick model on the project's labels and register it (current by the promotion rule).

    ``overrides``: {image id: mask} labels still being painted (the app's open image).
    ``replace``: a quick version this one supersedes (the previous live update); it is
    deleted once the new one is registered, unless it is still current. ``live``: reuse
    the previous model's stored val score instead of scoring it again.
    """
    from workbench.ml.quick_model import fit_quick_model

    if project.read_only:
        raise WorkbenchError("cannot train: the project is open for writing in another process", project.state_dir)
    policy = model_flows.parse_policy(policy) if policy is not None else model_flows.promotion_policy(project)
    settings = quick_settings(project)
    schema = project.schema.copy()
    overrides = dict(overrides or {})
    n_train = len(project.training_pairs(Split.TRAIN)) + sum(
        1 for i in overrides if project.get(i).split == Split.TRAIN)
    if n_train == 0:
        raise WorkbenchError("nothing to train on: paint a few strokes on an image of the train split and "
                             "save it (edited or verified images are used)")
    t0 = time.perf_counter()
    model = fit_quick_model(_training_data(project, overrides), schema, settings, total=n_train,
                            on_progress=on_progress, cancel=cancel)
    fit_s = time.perf_counter() - t0
    check(cancel)
    pairs = val_pairs(project)
    previous = project.current_model()
    # Live, over a quick model (or none): the new one replaces it whatever it scores, so val
    # scoring (a second or more per val image) would only delay the canvas; Evaluate scores it.
    skip_val = live and (previous is None or is_quick(previous))
    new_report, new_scores = (score_quick(model, pairs, schema, cancel=cancel, on_progress=on_progress)
                              if pairs and not skip_val else (None, {}))
    prev_miou, prev_scores, unusable = ((None, {}, None) if skip_val else
                                        _previous_score(project, previous, pairs, schema, reuse=live, cancel=cancel))
    check(cancel)
    out = project.next_model_path()
    version = int(out.stem[1:])
    val_miou = new_report.scores.miou if new_report is not None else None
    facts = dict(new_version=version, new_miou=val_miou,
                 previous_version=previous.version if previous is not None else None,
                 previous_miou=prev_miou, has_val=bool(pairs), previous_unusable=unusable)
    # A quick model replaces a quick model (the person's new strokes are the point); it must
    # beat a U-Net on val by the project's policy to replace it.
    rule = "always" if is_quick(previous) else policy
    promote, message = model_flows.decide_promotion(rule, project_hint=str(project.folder), **facts)
    app_message = model_flows.decide_promotion(rule, project_hint=None, **facts)[1]
    if skip_val:
        promote = True
        message = app_message = (f"v{version} (quick model, live) is current; not scored on val while you "
                                 "paint (Evaluate scores it)")
    scores = new_report.scores if new_report is not None else None
    metrics = {
        "kind": "quick", "val_miou": val_miou,
        "val_pixel_accuracy": scores.pixel_accuracy if scores is not None else None,
        "per_class_iou": list(scores.per_class_iou) if scores is not None else [],
        "previous_val_miou": prev_miou,
        "previous_version": previous.version if previous is not None else None,
        "val_source": ("not scored (live)" if skip_val else "val split") if pairs else "none",
        "val_images": len(pairs) if pairs and not skip_val else None,
        "trained_on": len(model.trained_on), "samples": int(model.labels.size),
        "classes_seen": model.classes_seen, "fit_seconds": round(fit_s, 3), "live": bool(live),
        "policy": policy, "promoted": promote, "class_names": schema.names, "stopped_by": "epochs",
    }
    model.save(out, metrics={"registered": metrics})
    try:
        record = project.register_model(out, parent=None, metrics=metrics, make_current=promote)
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    record_val_scores(project, record.version, new_scores, new_report, previous, prev_scores)
    if replace is not None:
        _drop_superseded(project, replace)
    report(on_progress, 1, 1, "done", phase="done")
    return TrainOutcome(record.version, record, promote, previous.version if previous is not None else None,
                        val_miou, prev_miou, False, message, None, None, app_message)


def _drop_superseded(project: Project, version: int) -> None:
    """Delete an older live quick version, never the current one nor a U-Net."""
    try:
        rec = project.model(int(version))
    except WorkbenchError:
        return
    cur = project.current_model()
    if is_quick(rec) and (cur is None or cur.version != rec.version):
        try:
            project.delete_model(rec.version)
        except WorkbenchError:
            pass

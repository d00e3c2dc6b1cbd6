"""Train a project and register the model: the Retrain button and ``workbench train PROJECT``.

``train_project`` is written once for both: it trains on a snapshot of the labels and
the class schema taken at the start (labels saved or classes added meanwhile can
neither break the run nor leak into it), fine-tunes the current model when asked,
stores the weights in float16, scores the new and the previous current model on the
same val images, and registers the new version, current or not by the promotion
policy (``workflows.models``). A cancelled run is never registered: its file is
removed. Under torchrun every rank trains and only rank 0 registers. No Qt here.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench import masks
from workbench.classes import ClassSchema
from workbench.errors import CancelledError, WorkbenchError
from workbench.progress import CancelToken, ProgressCallback, check, report
from workbench.project import ModelRecord, Project, Split
from workbench.workflows import models as model_flows
from workbench.workflows.model_kinds import unet_base

# Settings the Training settings dialog edits, stored under this key of project.settings().
SETTINGS_KEY = "training"
SETTING_FIELDS = ("arch", "encoder", "epochs", "minutes", "lr", "batch_size", "crop", "device", "workers",
                  "steps", "encoder_weights", "decoder", "loss")
AUTOMATIC_FIELDS = ("batch_size", "crop", "decoder", "epochs", "loss")
"""Settings left to the trainer unless a person sets them (see ``training_settings``)."""
SNAPSHOT_DIR = "training-snapshot"

# Expected JSON types of the stored settings (checked before a run: a hand-edited
# settings.json must give a sentence naming the file, not a TypeError from the trainer).
_INT_FIELDS = ("epochs", "batch_size", "crop", "workers", "steps")
_NUMBER_FIELDS = ("minutes", "lr")
_TEXT_FIELDS = ("arch", "encoder", "device", "encoder_weights", "decoder", "loss")


@dataclass(frozen=True)
class TrainOutcome:
    """How a project training run ended and what it changed."""

    version: int | None              # the version registered by this run (None: nothing registered)
    record: ModelRecord | None
    promoted: bool                   # it became current
    previous_version: int | None     # current model before the run (also the parent when fine-tuning)
    val_miou: float | None           # the new model on the val split
    previous_val_miou: float | None  # the previous current model on the SAME val pairs, in this run
    cancelled: bool
    message: str                     # one sentence for the status bar / CLI
    result: Any = None               # workbench.ml.training.TrainResult, None when not trained
    parent: int | None = None        # the version fine-tuned from (None: from scratch)
    app_message: str = ""            # the same sentence for the app: no command to type (its banner
                                     # has "Use vN anyway"); "" = message


def training_defaults() -> dict[str, Any]:
    """TrainConfig's defaults for the detected device, for the fields the dialog shows."""
    from workbench.ml.device import resolve_device
    from workbench.ml.training import TrainConfig

    try:
        cfg = TrainConfig().resolved(resolve_device("auto"))
    except WorkbenchError:
        cfg = TrainConfig()
    out = {f: getattr(cfg, f) for f in SETTING_FIELDS if hasattr(cfg, f)}
    out["fine_tune"] = True
    return out


def _stored(project: Project) -> dict[str, Any]:
    saved = project.settings().get(SETTINGS_KEY, {})
    if not isinstance(saved, dict):
        raise WorkbenchError(f'"{SETTINGS_KEY}" must be an object of training settings',
                             project.settings_path)
    return saved


def training_settings(project: Project) -> dict[str, Any]:
    """The stored training settings over the defaults (a wrongly typed stored value shows the default).

    Settings the trainer chooses per project (batch, crop, decoder, epochs: smaller for
    small projects) stay None ("automatic") unless stored, so saving the dialog does not pin them.
    """
    out = training_defaults()
    out.update({key: None for key in AUTOMATIC_FIELDS})
    try:
        saved = _stored(project)
    except WorkbenchError:
        saved = {}
    for key, value in saved.items():
        if key in out:
            try:
                check_settings({key: value}, project.settings_path)
            except WorkbenchError:
                continue
            out[key] = value
    return out


def check_settings(settings: dict[str, Any], where: Path | str) -> None:
    """Raise WorkbenchError naming ``where`` when a stored training setting has the wrong type."""
    for key, value in settings.items():
        if value is None:
            continue
        if key in _INT_FIELDS and (isinstance(value, bool) or not isinstance(value, int)):
            raise WorkbenchError(f'training setting "{key}" must be a whole number, got {value!r}; '
                                 "fix it in Model > Training settings", where)
        if key in _NUMBER_FIELDS and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise WorkbenchError(f'training setting "{key}" must be a number, got {value!r}; '
                                 "fix it in Model > Training settings", where)
        if key in _TEXT_FIELDS and not isinstance(value, str):
            raise WorkbenchError(f'training setting "{key}" must be text, got {value!r}', where)
        if key == "fine_tune" and not isinstance(value, bool):
            raise WorkbenchError(f'training setting "fine_tune" must be true or false, got {value!r}', where)


def config_from_settings(project: Project, settings: dict[str, Any] | None = None):
    """(TrainConfig, fine_tune) from ``settings`` (default: the project's stored ones).

    Only settings that were set go into the config; the rest stay None, which means
    "the recipe for the device" (``TrainConfig.resolved``).
    """
    from workbench.ml.training import TrainConfig

    if settings is None:
        settings = _stored(project)
    check_settings(settings, project.settings_path)
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    kwargs = {k: v for k, v in settings.items() if k in names and k in SETTING_FIELDS and v not in ("", None)}
    return TrainConfig(**kwargs), bool(settings.get("fine_tune", True))


def record_val_scores(project: Project, version: int, new_scores: dict[int, float | None],
                      new_report: Any, previous: Any, prev_scores: dict[int, float | None]) -> None:
    """Store the promotion check's val scores: per image for the new ``version`` (and its
    val report) and per image for the ``previous`` current model (U-Net and quick runs)."""
    for image_id, miou in new_scores.items():
        if miou is not None:
            project.set_image_scores(image_id, version=version, miou=miou)
    if new_report is not None and new_report.images:
        project.record_metrics(version, "val", new_report.to_json())
    if previous is not None:
        for image_id, miou in prev_scores.items():
            if miou is not None:
                project.set_image_scores(image_id, version=previous.version, miou=miou)


def val_pairs(project: Project) -> list[tuple[int, Path, Path]]:
    """(image id, image, reference mask file) for the val split: ground truth, else a person's label."""
    labelled = {img: lab for img, lab in project.training_pairs(Split.VAL)}
    out = []
    for rec in project.images(split=Split.VAL):
        image = project.image_path(rec.id)
        gt = project.ground_truth_path(rec.id)
        if rec.has_ground_truth and gt.is_file():
            out.append((rec.id, image, gt))
        elif image in labelled:
            out.append((rec.id, image, labelled[image]))
    return out


# ----- the snapshot ---------------------------------------------------------------------------
def _freeze(src: Path, dest: Path) -> bool:
    """Make ``dest`` hold ``src``'s content as it is now; False when ``src`` vanished.

    A hard link costs nothing and is a true snapshot: labels are only ever replaced
    (atomic.py writes a new file and renames it over the old one), never written in
    place, so the linked inode keeps the old content. Copy where links are refused.
    """
    try:
        os.link(src, dest)
        return True
    except FileNotFoundError:
        return False
    except OSError:
        pass
    from workbench.atomic import atomic_open

    try:
        with open(src, "rb") as fin, atomic_open(dest, "wb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise WorkbenchError(f"cannot snapshot a label for training: {exc.strerror or exc}", src) from exc
    return True


def remove_stale_snapshots(state_dir: Path) -> None:
    """Remove snapshot folders left by runs that died (one run per project at a time)."""
    root = state_dir / SNAPSHOT_DIR
    if root.is_dir():
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class _Job:
    """What every rank needs to train (picklable: rank 0 broadcasts it)."""

    config: Any
    schema: ClassSchema
    train: list[tuple[Path, Path]]
    val: list[tuple[int, Path, Path]]
    out: Path
    parent: int | None
    previous: ModelRecord | None
    snapshot: Path
    policy: str


def _snapshot(project: Project, folder: Path) -> tuple[list[tuple[Path, Path]], list[tuple[int, Path, Path]]]:
    train_dir, val_dir = folder / "train", folder / "val"
    train_dir.mkdir(parents=True)
    val_dir.mkdir()
    train = []
    for image, label in project.training_pairs(Split.TRAIN):
        dest = train_dir / f"{label.stem}{masks.MASK_SUFFIX}"
        if _freeze(label, dest):
            train.append((image, dest))
    val = []
    for image_id, image, ref in val_pairs(project):
        dest = val_dir / f"{ref.stem}{masks.MASK_SUFFIX}"
        if _freeze(ref, dest):
            val.append((image_id, image, dest))
    return train, val


def _prepare(project: Project, config: Any, fine_tune: bool, policy: str | None) -> _Job:
    if project.read_only:
        reason = getattr(project, "read_only_reason", None) or ""
        if reason.startswith("opened read-only: "):  # the state folder itself cannot be written
            raise WorkbenchError(f"cannot train: the project {reason}", project.state_dir)
        raise WorkbenchError("the project is open for writing in another process (the app?); "
                             "close it there, or train from the app", project.state_dir)
    if config is None:
        config, stored_fine_tune = config_from_settings(project)
        fine_tune = fine_tune and stored_fine_tune
    policy = model_flows.parse_policy(policy) if policy is not None else model_flows.promotion_policy(project)
    if not project.training_pairs(Split.TRAIN):
        raise WorkbenchError("nothing to train on: label (and save) at least one image in the "
                             "train split first - edited or verified images are used")
    current = project.current_model()
    parent = None
    base = unet_base(project, current)  # issue 13: a quick model is never a U-Net's starting point
    if config.init is None and fine_tune and base is not None:
        config = dataclasses.replace(config, init=str(base.path))
        parent = base.version
    elif config.init is not None and current is not None and \
            Path(config.init).expanduser().resolve() == current.path.resolve():
        parent = current.version
    out = project.next_model_path()
    remove_stale_snapshots(project.state_dir)
    snapshot = project.state_dir / SNAPSHOT_DIR / out.stem
    schema = project.schema.copy()
    try:
        train, val = _snapshot(project, snapshot)
    except BaseException:
        shutil.rmtree(snapshot, ignore_errors=True)
        raise
    if not train:
        shutil.rmtree(snapshot, ignore_errors=True)
        raise WorkbenchError("nothing to train on: the labels of the train split vanished while "
                             "the run started", project.state_dir)
    return _Job(config, schema, train, val, out, parent, current, snapshot, policy)


def _remove(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


def _cancelled(job: _Job | None, result: Any = None) -> TrainOutcome:
    previous = job.previous.version if job is not None and job.previous is not None else None
    return TrainOutcome(None, None, False, previous, None, None, True,
                        "training cancelled: no model version registered", result,
                        job.parent if job is not None else None)


# ----- the run ---------------------------------------------------------------------------------
def train_project(project: Project | None, config: Any = None, *, fine_tune: bool = True,
                  policy: str | None = None, on_progress: ProgressCallback | None = None,
                  cancel: CancelToken | None = None, distributed_ctx: Any = None) -> TrainOutcome:
    """Train on the project's labels and register the result as the next model version.

    ``config`` None: the project's stored training settings. ``fine_tune``: start from
    the current model (if any). ``policy``: "better" or "always" (None: the project's).
    Trains on the verified and edited labels of the train split and validates on the
    val split (ground truth where imported, else labels). Under torchrun pass the
    ``distributed_ctx``: rank 0 passes the project, the other ranks None.
    """
    from workbench.ml.checkpoint import compact_checkpoint
    from workbench.ml.training import train

    ctx = distributed_ctx
    is_main = ctx is None or ctx.is_main
    enabled = ctx is not None and ctx.enabled
    job: _Job | None = None
    error: str | None = None
    if is_main:
        if project is None:
            raise WorkbenchError("train_project needs the project (on rank 0)")
        try:
            job = _prepare(project, config, fine_tune, policy)
        except WorkbenchError as exc:
            if not enabled:
                raise
            error = str(exc)
    if enabled:
        job, error = ctx.broadcast((job, error))
    if error is not None:
        raise WorkbenchError(error)
    assert job is not None
    try:
        try:
            result = train(job.config, job.schema, job.train, [(i, r) for _, i, r in job.val], job.out,
                           on_progress=on_progress, cancel=cancel, parent=job.parent)
        except CancelledError:
            if is_main:
                _remove(job.out)
            return _cancelled(job)
        except BaseException:
            if is_main:
                _remove(job.out)
            raise
        if enabled:
            ctx.barrier()  # every rank is done reading the snapshot
        if not is_main:
            return TrainOutcome(None, None, False, None, result.best_miou, None, result.cancelled,
                                "", result, job.parent)
        if result.cancelled:
            _remove(job.out)
            return _cancelled(job, result)
        try:
            return _register(project, job, result, compact_checkpoint, on_progress, cancel,
                             ctx.device if ctx is not None else job.config.device)
        except CancelledError:
            _remove(job.out)
            return _cancelled(job, result)
    finally:
        if is_main:
            shutil.rmtree(job.snapshot, ignore_errors=True)
            try:
                job.snapshot.parent.rmdir()
            except OSError:
                pass


HALF_CHECK_IMAGES = 8
HALF_MIN_AGREEMENT = 0.995


def _store_half_if_unchanged(job: _Job, device: Any, cancel: CancelToken | None) -> dict[str, Any]:
    """Store the new weights in float16 if that leaves its predictions unchanged.

    Both copies predict up to HALF_CHECK_IMAGES val images (training images when there
    is no val split); float16 is kept when at least HALF_MIN_AGREEMENT of the pixels get
    the same class (the rest are near-ties between two classes: BENCHMARKS.md), else
    the float32 file stays. Returns the facts recorded with the version.
    """
    from workbench import imageio
    from workbench.ml.checkpoint import compact_checkpoint
    from workbench.ml.inference import Predictor

    images = [image for _, image, _ in job.val] or [image for image, _ in job.train]
    images = images[:HALF_CHECK_IMAGES]
    size32 = job.out.stat().st_size
    half = job.out.with_name(job.out.stem + ".half.tmp")
    try:
        _, size16 = compact_checkpoint(job.out, dest=half)
        full, small = (Predictor.from_checkpoint(p, device=device) for p in (job.out, half))
        same = total = 0
        for path in images:
            check(cancel)
            try:
                image = imageio.read_image(path)
            except WorkbenchError:
                continue   # the scoring pass names it
            a, b = full.predict(image, cancel=cancel), small.predict(image, cancel=cancel)
            same += int((a.mask == b.mask).sum())
            total += a.mask.size
        agreement = same / total if total else None
        if agreement is not None and agreement >= HALF_MIN_AGREEMENT:
            os.replace(half, job.out)
            return {"storage_dtype": "float16", "float16_agreement": agreement,
                    "size_bytes_float32": size32}
        return {"storage_dtype": "float32", "float16_agreement": agreement, "size_bytes_float32": size32}
    finally:
        _remove(half)


def _register(project: Project, job: _Job, result: Any, compact: Any, on_progress: ProgressCallback | None,
              cancel: CancelToken | None, device: Any) -> TrainOutcome:
    from workbench.workflows.evaluation import score_checkpoint

    from workbench.ml.onnx_backend import auto_means_torch

    with auto_means_torch():  # a few images each: an ONNX export would cost more than it saves
        return _register_scored(project, job, result, compact, on_progress, cancel, device)


def _register_scored(project: Project, job: _Job, result: Any, compact: Any,
                     on_progress: ProgressCallback | None, cancel: CancelToken | None,
                     device: Any) -> TrainOutcome:
    from workbench.workflows.evaluation import score_checkpoint

    report(on_progress, 0, None, "checking float16 storage", phase="compare")
    storage = _store_half_if_unchanged(job, device, cancel)
    version = int(job.out.stem[1:])
    has_val = bool(job.val)
    previous = job.previous
    new_report = prev_report = None
    new_scores: dict[int, float | None] = {}
    prev_scores: dict[int, float | None] = {}
    previous_unusable = None
    if has_val:
        def sub(offset: int):
            def fn(p):
                report(on_progress, offset + p.done, 2 * len(job.val), p.message, phase="compare")
            return fn if on_progress is not None else None

        new_report, new_scores = score_checkpoint(job.out, job.val, job.schema, device=device,
                                                  cancel=cancel, on_progress=sub(0))
        if previous is not None and _other_classes(previous.path, job.schema):
            previous_unusable = "predicts other classes"
        elif previous is not None:
            try:
                prev_report, prev_scores = score_checkpoint(previous.path, job.val, job.schema, device=device,
                                                            cancel=cancel, on_progress=sub(len(job.val)))
            except CancelledError:
                raise
            except WorkbenchError as exc:
                previous_unusable = f"could not be scored: {exc}"
    val_miou = new_report.scores.miou if new_report is not None else result.best_miou
    prev_miou = prev_report.scores.miou if prev_report is not None else None
    facts = dict(new_version=version, new_miou=val_miou,
                 previous_version=previous.version if previous is not None else None, previous_miou=prev_miou,
                 has_val=has_val, previous_unusable=previous_unusable)
    promote, message = model_flows.decide_promotion(job.policy, project_hint=str(project.folder), **facts)
    app_message = model_flows.decide_promotion(job.policy, project_hint=None, **facts)[1]
    if previous is not None and project.schema.to_dict() != job.schema.to_dict():
        promote = False
        message = app_message = (
            f"v{version} was trained with the classes as they were when the run started; "
            f"the classes changed since, so v{previous.version} stays current (retrain to include the change)")
    scores = new_report.scores if new_report is not None else None
    metrics = {
        "val_miou": val_miou,
        "val_pixel_accuracy": scores.pixel_accuracy if scores is not None else None,
        "per_class_iou": list(scores.per_class_iou) if scores is not None else [],
        "previous_val_miou": prev_miou,
        "previous_version": previous.version if previous is not None else None,
        "val_source": "val split" if has_val else "held-out training images",
        "val_images": len(job.val) if has_val else None,
        "train_best_val_miou": result.best_miou,
        "epochs": result.epochs_done, "steps": result.steps, "stopped_by": result.stopped_by,
        "trained_on": len(job.train), "policy": job.policy, "promoted": promote,
        "class_names": job.schema.names, **storage,
    }
    # The registry's view goes into the file too: the database is an index, and a lost
    # one is rebuilt from the model files (meta.metrics["registered"]).
    # The whole run's curves go with the version: the trainer saved the file at its best
    # epoch, so the history inside stops there (a run whose best was epoch 1 of 3 showed one point).
    compact(job.out, metrics={"registered": metrics}, half=storage["storage_dtype"] == "float16",
            history=list(result.history))
    record = project.register_model(job.out, parent=job.parent, metrics=metrics, make_current=promote)
    record_val_scores(project, record.version, new_scores, new_report, previous, prev_scores)
    if not has_val:
        # Said plainly, not only as a progress note: the score comes from images held out of
        # training (or the training images themselves), not from a val split.
        held = next((n for n in result.notes if "holding out" in n or "validating on the training" in n), "")
        if held:
            plain = f" (the project has no val images: {held.split(': ', 1)[-1].split(' (')[0]})"
            message, app_message = message + plain, app_message + plain
    return TrainOutcome(record.version, record, promote, previous.version if previous is not None else None,
                        val_miou, prev_miou, False, message, result, job.parent, app_message)


def _other_classes(checkpoint: Path, schema: Any) -> bool:
    """True when a model predicts other classes than ``schema`` (matched by id): it cannot be compared."""
    from workbench.ml.checkpoint import class_match, read_meta

    try:
        return class_match(read_meta(checkpoint), schema) == "different"
    except WorkbenchError:
        return False  # an unreadable file: scoring it says what is wrong

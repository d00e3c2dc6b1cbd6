"""Retrain with one click: ``workbench.ml.training.train`` in a worker, then a new model version.

Training works on a snapshot: the (image, label file) pairs listed when it starts
(labels are files already saved; the caller saves the current image first), so
annotation continues meanwhile. The trainer builds its own model, never the one the
prediction worker uses. When it ends, the checkpoint is registered on the GUI thread
and ``modelRegistered`` tells the window to refresh predictions and metrics.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from workbench.errors import WorkbenchError
from workbench.gui.workers import Job, JobError, JobRunner
from workbench.progress import Progress
from workbench.project import Project, Split

# Settings the dialog edits, stored under this key of project.settings().
SETTINGS_KEY = "training"
SETTING_FIELDS = ("arch", "encoder", "epochs", "minutes", "lr", "batch_size", "crop", "device", "workers")


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


def stored_settings(project: Project) -> dict[str, Any]:
    """Defaults overlaid with what the project stored (unknown keys ignored)."""
    out = training_defaults()
    try:
        saved = project.settings().get(SETTINGS_KEY, {})
    except WorkbenchError:
        saved = {}
    if isinstance(saved, dict):
        for key, value in saved.items():
            if key in out:
                try:
                    check_settings({key: value}, "settings")
                except WorkbenchError:
                    continue  # a hand-edited value of the wrong type: show the default instead
                out[key] = value
    return out


def val_pairs(project: Project) -> list[tuple[Path, Path]]:
    """(image, reference mask file) for the val split: ground truth first, else a person's label."""
    pairs = []
    labelled = {img: lab for img, lab in project.training_pairs(Split.VAL)}
    for rec in project.images(split=Split.VAL):
        image = project.image_path(rec.id)
        gt = project.state_dir / "groundtruth" / f"{rec.stem}.png"
        if rec.has_ground_truth and gt.is_file():
            pairs.append((image, gt))
        elif image in labelled:
            pairs.append((image, labelled[image]))
    return pairs


# Expected JSON types of the stored settings (checked before a run: a hand-edited
# settings.json must give a sentence naming the file, not a TypeError from the trainer).
_INT_FIELDS = ("epochs", "batch_size", "crop", "workers")
_NUMBER_FIELDS = ("minutes", "lr")
_TEXT_FIELDS = ("arch", "encoder", "device")


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


def preload_trainer() -> None:
    """Import the trainer now, on the GUI thread, before the window is shown.

    Its import (torchvision, via the data pipeline) takes ~2 s and holds the GIL in C
    extension initialisation; done lazily in the worker it froze the window for 0.5 s
    when Retrain was pressed (benchmarks/bench_gui.py).
    """
    import workbench.ml.training  # noqa: F401


def build_config(settings: dict[str, Any], init: Path | None):
    """A TrainConfig from stored settings; fine-tunes ``init`` when given and asked for."""
    from workbench.ml.training import TrainConfig

    names = {f.name for f in dataclasses.fields(TrainConfig)}
    kwargs = {k: v for k, v in settings.items() if k in names and k in SETTING_FIELDS and v not in ("", None)}
    if settings.get("fine_tune", True) and init is not None:
        kwargs["init"] = str(init)
    return TrainConfig(**kwargs)


def run_training(settings, init, schema, train_pairs, val, out_path, parent, *, on_progress=None, cancel=None):
    """The worker body: the same ``train`` the CLI calls (no Qt here).

    The config is built here, not on the GUI thread: importing the trainer (torch data
    loading, losses) takes long enough the first time to freeze the window.
    """
    from workbench.ml.training import train

    config = build_config(settings, init)
    return train(config, schema, train_pairs, val, out_path, on_progress=on_progress, cancel=cancel,
                 parent=parent)


@dataclasses.dataclass(frozen=True)
class TrainingOutcome:
    """How a run ended, for the dock and the status bar."""

    version: int | None        # the registered model version, None if nothing was registered
    parent: int | None
    cancelled: bool
    best_miou: float | None
    message: str


class TrainingController(QObject):
    """Starts, cancels and finishes training runs for one project."""

    started = Signal()
    progress = Signal(object)          # workbench.progress.Progress from the trainer
    finished = Signal(object)          # TrainingOutcome
    failed = Signal(str)
    modelRegistered = Signal(int)      # the new model version (already current)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.project: Project | None = None
        self._runner = JobRunner("training", 1, self)
        self._job: Job | None = None
        self._parent_version: int | None = None
        self._out_path: Path | None = None

    @property
    def running(self) -> bool:
        """True while a run is in progress."""
        return self._job is not None and not self._job.done

    def set_project(self, project: Project | None) -> None:
        """Train on ``project`` from now on (a running job is cancelled by the caller)."""
        self.project = project

    def start(self, settings: dict[str, Any] | None = None) -> None:
        """Start a run; raises WorkbenchError when it cannot (no labels, read-only, running)."""
        project = self.project
        if project is None:
            raise WorkbenchError("open a project first")
        if self.running:
            raise WorkbenchError("a training run is already in progress")
        if project.read_only:
            raise WorkbenchError("the project is open read-only (another window has it); cannot train")
        pairs = project.training_pairs(Split.TRAIN)
        if not pairs:
            raise WorkbenchError("nothing to train on: label (and save) at least one image in the "
                                 "train split first - edited or verified images are used")
        if settings is None:
            saved = project.settings().get(SETTINGS_KEY, {})
            if not isinstance(saved, dict):
                raise WorkbenchError(f'"{SETTINGS_KEY}" must be an object of training settings', project.settings_path)
            settings = saved
        check_settings(settings, project.settings_path)
        current = project.current_model()
        self._parent_version = current.version if current is not None else None
        self._out_path = project.next_model_path()
        self._job = Job(run_training, dict(settings), current.path if current is not None else None,
                        project.schema.copy(), list(pairs), val_pairs(project), self._out_path,
                        self._parent_version)
        self._job.signals.progress.connect(self._on_progress)
        self._job.signals.returned.connect(self._on_returned)
        self._job.signals.errored.connect(self._on_errored)
        self._runner.start(self._job)
        self.started.emit()

    def cancel(self) -> None:
        """Ask the run to stop at its next step."""
        if self._job is not None:
            self._job.cancel()

    def shutdown(self, msecs: int) -> bool:
        """Cancel and wait up to ``msecs``; True when the worker stopped."""
        self.cancel()
        return self._runner.wait(msecs)

    # ----- worker results (GUI thread) -------------------------------------------------------
    def _on_progress(self, p: Progress) -> None:
        self.progress.emit(p)

    def _on_returned(self, result) -> None:
        if self.project is None:   # the project was closed while the run ended: nothing to register
            return
        if getattr(result, "cancelled", False):
            self._remove_partial(result)
            self.finished.emit(TrainingOutcome(None, self._parent_version, True, None, "training cancelled"))
            return
        try:
            record = self.project.register_model(
                result.checkpoint, parent=self._parent_version,
                metrics={"best_val_miou": result.best_miou, "epochs": result.epochs_done})
            self.project.set_current_model(record.version)
        except WorkbenchError as exc:
            self.failed.emit(f"training finished but the model could not be registered: {exc}")
            self.finished.emit(TrainingOutcome(None, self._parent_version, False, result.best_miou, str(exc)))
            return
        best = "" if result.best_miou is None else f", best val mIoU {result.best_miou:.3f}"
        msg = f"model v{record.version} trained ({result.epochs_done} epoch(s){best})"
        self.modelRegistered.emit(record.version)
        self.finished.emit(TrainingOutcome(record.version, self._parent_version, False, result.best_miou, msg))

    def _on_errored(self, err: JobError) -> None:
        if err.cancelled:
            self.finished.emit(TrainingOutcome(None, self._parent_version, True, None, "training cancelled"))
            return
        self.failed.emit(err.message + (f"\n\n{err.details}" if err.details else ""))
        self.finished.emit(TrainingOutcome(None, self._parent_version, False, None, err.message))

    def _remove_partial(self, result) -> None:
        # A cancelled run is not a model version; its file must not be mistaken for one.
        path = Path(getattr(result, "checkpoint", "") or "")
        if self._out_path is not None and path == self._out_path and path.is_file():
            try:
                path.unlink()
            except OSError:
                pass

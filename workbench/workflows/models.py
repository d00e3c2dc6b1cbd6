"""Model versions the person controls: list, make current (rollback), delete, note, policy.

``workbench models PROJECT`` and the app's Models panel both read ``model_summaries``
and change versions through these functions. The promotion policy decides whether a
finished run becomes current: "better" (default: only when its val mIoU is at least
the current model's on the same val images) or "always". No Qt here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.errors import InputError, WorkbenchError
from workbench.project import ModelRecord, Project

POLICIES = ("better", "always")
DEFAULT_POLICY = "better"
POLICY_KEY = "promotion"          # top-level key of the project's settings.json


@dataclass(frozen=True)
class ModelSummary:
    """One model version as the Models panel and ``workbench models`` show it (plain data)."""

    version: int
    parent: int | None
    created: float                       # unix time of registration
    current: bool
    trained_on: int                      # images trained on
    val_miou: float | None
    previous_val_miou: float | None      # the model that was current, on the same val images
    per_class_iou: list[float | None]
    class_names: list[str]
    note: str
    size_bytes: int                      # the weights file on disk (0 when missing)
    history: list[dict] = field(default_factory=list)   # per-epoch training records
    epochs: int | None = None
    stopped_by: str | None = None
    storage_dtype: str = "float32"
    path: Path | None = None
    problem: str | None = None           # why the file's metadata could not be read
    recovered: str | None = None         # registered at open from a run that never finished (why)
    kind: str = "unet"                   # "unet" | "quick" (issue 13: the quick model, ml/quick_model.py)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON data (``workbench models --json``)."""
        return {"version": self.version, "parent": self.parent, "created": self.created,
                "current": self.current, "trained_on": self.trained_on, "val_miou": self.val_miou,
                "previous_val_miou": self.previous_val_miou, "per_class_iou": list(self.per_class_iou),
                "class_names": list(self.class_names), "note": self.note, "size_bytes": self.size_bytes,
                "epochs": self.epochs, "stopped_by": self.stopped_by,
                "storage_dtype": self.storage_dtype, "history": list(self.history),
                "path": str(self.path) if self.path is not None else None, "problem": self.problem,
                "recovered": self.recovered, "kind": self.kind}


def _summary(rec: ModelRecord, current: int | None, note: str) -> ModelSummary:
    from workbench.ml.checkpoint import read_meta

    m = rec.metrics
    history: list[dict] = []
    names: list[str] = []
    trained_on = m.get("trained_on")
    storage = "float32"
    problem = None
    kind = "quick" if m.get("kind") == "quick" else "unet"
    try:
        size = rec.path.stat().st_size
    except OSError:
        size, problem = 0, "the model file is missing"
    if problem is None:
        try:
            meta = read_meta(rec.path)
            history = [h for h in meta.history if isinstance(h, dict)]
            names = meta.class_schema().names
            storage = str(meta.train.get("storage_dtype", "float32"))
            kind = "quick" if meta.arch == "quick" else kind
            if not isinstance(trained_on, int):
                trained_on = len(meta.trained_on)
        except (InputError, WorkbenchError) as exc:
            problem = str(exc)
    per_class = m.get("per_class_iou")
    return ModelSummary(
        version=rec.version, parent=rec.parent, created=rec.created, current=rec.version == current,
        trained_on=trained_on if isinstance(trained_on, int) else 0,
        val_miou=_number(m.get("val_miou", m.get("best_val_miou"))),
        previous_val_miou=_number(m.get("previous_val_miou")),
        per_class_iou=[_number(v) for v in per_class] if isinstance(per_class, list) else [],
        class_names=names, note=note, size_bytes=size, history=history,
        epochs=m.get("epochs") if isinstance(m.get("epochs"), int) else None,
        stopped_by=m.get("stopped_by") if isinstance(m.get("stopped_by"), str) else None,
        storage_dtype=storage, path=rec.path, problem=problem,
        recovered=str(m["recovered"]) if m.get("recovered") else None, kind=kind)


RECOVERED_NOTE = ("recovered: its run stopped before finishing (the window closed, or the process was "
                  "killed); its val mIoU is the trainer's own check, not compared with another version")


def recovered_label(summary: ModelSummary) -> str:
    """The short word lists show for a recovered version ("" for a finished run)."""
    return "recovered (unfinished run)" if summary.recovered else ""


def _number(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def model_summaries(project: Project) -> list[ModelSummary]:
    """Every registered version, oldest first, with size on disk and training curves."""
    current = project.current_model()
    notes = project.model_notes()
    cur = current.version if current is not None else None
    return [_summary(rec, cur, notes.get(rec.version, "")) for rec in project.models()]


def use_model(project: Project, version: int) -> ModelRecord:
    """Make ``version`` the current model (rollback or forward); returns its record.

    A version whose file was deleted by hand is refused (every prediction would fail on it).
    """
    rec = project.model(int(version))
    if not rec.path.is_file():
        raise InputError(f"model v{rec.version}'s file is missing (deleted outside workbench?), so it "
                         "cannot be made current; put the file back, or delete the version", rec.path)
    project.set_current_model(int(version))
    return project.model(int(version))


def delete_model(project: Project, version: int) -> None:
    """Delete a version that is not current: its weights file, cached predictions, scores."""
    project.delete_model(int(version))


def set_model_note(project: Project, version: int, note: str) -> None:
    """Attach the person's note to a version ("" clears it)."""
    if not isinstance(note, str):
        raise WorkbenchError(f"a model note must be text, got {type(note).__name__}")
    if len(note) > 10_000:
        raise WorkbenchError(f"a model note is limited to 10,000 characters, got {len(note):,}")
    project.set_model_note(int(version), note)


def parse_policy(policy: Any, where: Path | str | None = None) -> str:
    """``policy`` checked against POLICIES; WorkbenchError listing them otherwise."""
    if policy not in POLICIES:
        raise WorkbenchError(f"unknown promotion policy {policy!r} (valid: {', '.join(POLICIES)}: "
                             '"better" makes a new model current only if it scores at least as well '
                             'on val as the current one, "always" makes every new model current)', where)
    return policy


def promotion_policy(project: Project) -> str:
    """The project's promotion policy ("better" unless set)."""
    value = project.settings().get(POLICY_KEY, DEFAULT_POLICY)
    return parse_policy(value, project.settings_path)


def set_promotion_policy(project: Project, policy: str) -> None:
    """Store the promotion policy in the project's settings."""
    policy = parse_policy(policy)
    settings = project.settings()
    settings[POLICY_KEY] = policy
    project.save_settings(settings)


def format_size(n: int | None) -> str:
    """'57.4 MB' style size (decimal units, as file managers show), for the panel and the CLI."""
    if n is None:
        return ""
    for unit, div in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= div:
            return f"{n / div:.1f} {unit}"
    return f"{n} B"


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2f}"


def decide_promotion(policy: str, *, new_version: int, new_miou: float | None,
                     previous_version: int | None, previous_miou: float | None,
                     has_val: bool, project_hint: str | None = "PROJECT",
                     previous_unusable: str | None = None) -> tuple[bool, str]:
    """(promote?, the sentence that says why) for a finished run.

    ``previous_unusable``: why the previous model could not be scored (other classes).
    ``project_hint`` None: the app's wording (its banner has the button; no command to type).
    """
    new = f"v{new_version}"
    if previous_version is None:
        if not has_val:
            return True, f"no val split: promotion cannot be judged; {new} is current"
        return True, f"{new} scored {_fmt(new_miou)} on val: {new} is now current (the first model)"
    prev = f"v{previous_version}"
    if not has_val:
        back = (f"go back with: workbench models {project_hint} --use {previous_version}"
                if project_hint is not None else f"Use this version in the Models panel makes {prev} current again")
        return True, f"no val split: promotion cannot be judged; {new} is current ({back})"
    if previous_unusable is not None:
        return True, f"{new} scored {_fmt(new_miou)} on val ({prev} {previous_unusable}): {new} is now current"
    if policy == "always":
        return True, f"{new} scored {_fmt(new_miou)} on val ({prev}: {_fmt(previous_miou)}): {new} is now current"
    if new_miou is None or previous_miou is None:
        return True, (f"{new} or {prev} could not be scored on val: promotion cannot be judged; "
                      f"{new} is current")
    if new_miou >= previous_miou:
        return True, f"{new} scored {_fmt(new_miou)} on val ({prev}: {_fmt(previous_miou)}): {new} is now current"
    said = f"{new} scored {_fmt(new_miou)} on val, below {prev}'s {_fmt(previous_miou)}: {prev} stays current"
    if project_hint is None:
        return False, f"{said}. Use {new} anyway?"
    return False, f"{said} (use it with: workbench models {project_hint} --use {new_version})"


def record_facts(rec: ModelRecord) -> dict[str, Any]:
    """What two runs of the same training must agree on, whichever path (GUI or CLI) ran them.

    Times and sizes differ between runs; the version, parent, metric keys, counts and
    how the run ended must not (issue 9: "register identical model records").
    """
    m = rec.metrics
    return {"version": rec.version, "parent": rec.parent, "metric_keys": sorted(m),
            "trained_on": m.get("trained_on"), "epochs": m.get("epochs"), "steps": m.get("steps"),
            "stopped_by": m.get("stopped_by"), "promoted": m.get("promoted"),
            "val_images": m.get("val_images"), "file": rec.path.name}

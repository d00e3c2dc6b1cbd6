"""Frame propagation: a verified label carried to the next and previous frames of a sequence.

Images are frames of a sequence when their names sort into one: the same prefix and a
frame number at the end of the stem (``0016E5_07959.png``, ``0016E5_07961.png``, ...;
``seq_f00001.jpg``). The project setting ``"sequence": {"frames": false}`` turns this
off. ``propagate_to`` carries one frame's label to another by optical flow
(``ml.propagation``) and fuses it with the current model's prediction of the target as
a prior; ``propagate_project`` (``workbench propagate PROJECT``) does it from every
verified frame to its neighbours. A propagated label is a suggestion: it is saved with
status "predicted" (never training data until a person edits or verifies it), only
where no person's label is, and the label it replaces goes to the label history. No Qt.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workbench.errors import CancelledError, WorkbenchError
from workbench.progress import CancelToken, ProgressCallback, check, report
from workbench.project import Project, Status

SEQUENCE_KEY = "sequence"
DEFAULT_MIN_CONFIDENCE = 0.5
_FRAME = re.compile(r"^(.*?)(\d+)$")
PERSON_STATUSES = (Status.EDITED, Status.VERIFIED)


def frame_key(stem: str) -> tuple[str, int] | None:
    """(sequence prefix, frame number) of a file stem, or None when it ends in no number."""
    m = _FRAME.match(stem)
    return (m.group(1), int(m.group(2))) if m else None


def sequences_enabled(project: Project) -> bool:
    """False when the project's settings say its images are not frames of a sequence."""
    value = project.settings().get(SEQUENCE_KEY, {})
    return not (isinstance(value, dict) and value.get("frames") is False)


def sequences(project: Project) -> dict[str, list[int]]:
    """{prefix: image ids in frame order} for every sequence of two or more frames."""
    groups: dict[str, list[tuple[int, int]]] = {}
    if not sequences_enabled(project):
        return {}
    for rec in project.images():
        key = frame_key(rec.stem)
        if key is not None:
            groups.setdefault(key[0], []).append((key[1], rec.id))
    return {p: [i for _, i in sorted(v)] for p, v in groups.items() if len(v) > 1}


def neighbours(project: Project, image_id: int) -> tuple[int | None, int | None]:
    """(previous frame id, next frame id) of an image in its sequence (None at either end)."""
    stem = project.get(image_id).stem
    key = frame_key(stem)
    if key is None:
        return None, None
    frames = sequences(project).get(key[0], [])
    if image_id not in frames:
        return None, None
    i = frames.index(image_id)
    return (frames[i - 1] if i > 0 else None), (frames[i + 1] if i + 1 < len(frames) else None)


@dataclass(frozen=True)
class PropagationResult:
    """A label carried from ``source_id`` to ``target_id`` (plain data)."""

    target_id: int
    source_id: int
    mask: np.ndarray              # (H, W) uint8; 255 where the fused confidence is below the threshold
    confidence: np.ndarray        # (H, W) float32 0..1
    carried: np.ndarray           # (H, W) float32 flow confidence alone (before the model prior)
    model_version: int | None     # the model whose prediction was the prior (None: flow alone)

    @property
    def labelled_fraction(self) -> float:
        """Share of the target's pixels that got a label."""
        return float(np.mean(self.mask != 255))


def _model_prior(project: Project, image_id: int, use_model: bool, slot: Any, cancel: CancelToken | None):
    if not use_model:
        return None, None, None
    rec = project.current_model()
    if rec is None:
        return None, None, None
    from workbench.workflows.prediction import PredictorSlot, predict_image

    slot = slot if slot is not None else PredictorSlot("auto")
    res = predict_image(project, image_id, rec.version, rec.path, slot, save=not project.read_only, cancel=cancel)
    return res.mask, res.confidence, rec.version


def propagate_to(project: Project, source_id: int, target_id: int, *, source_mask: np.ndarray | None = None,
                 source_confidence: np.ndarray | None = None, use_model: bool = True,
                 min_confidence: float = DEFAULT_MIN_CONFIDENCE, slot: Any = None,
                 cancel: CancelToken | None = None) -> PropagationResult:
    """Carry ``source_id``'s label (or ``source_mask``) to ``target_id``, fused with the current model.

    Nothing is saved: the app puts the result in the editor (one undo step), the CLI
    saves it through ``propagate_project``.
    """
    from workbench.ml.propagation import Carried, carry_label, fuse

    check(cancel)
    if source_mask is None:
        source_mask = project.read_label(source_id)
        if source_mask is None:
            raise WorkbenchError(f"{project.get(source_id).name} has no label to propagate: label it first")
    src = project.read_image(source_id)
    dst = project.read_image(target_id)
    if src.shape != dst.shape:
        raise WorkbenchError(f"{project.get(source_id).name} and {project.get(target_id).name} differ in size "
                             f"({src.shape[1]}x{src.shape[0]} vs {dst.shape[1]}x{dst.shape[0]}): not frames "
                             "of one sequence")
    carried = carry_label(src, source_mask, dst, source_confidence)
    check(cancel)
    model_mask, model_conf, version = _model_prior(project, target_id, use_model, slot, cancel)
    schema = project.schema
    mask, conf = fuse(Carried(carried.mask, carried.confidence), model_mask, model_conf, schema.num_classes,
                      schema.ignore_values)
    # void carried from the source stays void where the flow is sure (it is the person's "don't care")
    void_sure = np.isin(carried.mask, [v for v in schema.ignore_values if v != 255]) & \
        (carried.confidence >= min_confidence)
    mask = np.where(void_sure, carried.mask, mask).astype(np.uint8)
    conf = np.where(void_sure, carried.confidence, conf).astype(np.float32)
    mask[conf < min_confidence] = 255
    return PropagationResult(target_id, source_id, np.ascontiguousarray(mask), conf, carried.confidence, version)


@dataclass
class PropagateOutcome:
    """What ``propagate_project`` wrote and why it left frames alone."""

    written: list[tuple[str, str, float]] = field(default_factory=list)   # (target, source, labelled share)
    skipped: list[tuple[str, str]] = field(default_factory=list)          # (image, why)
    cancelled: bool = False


DIRECTIONS = ("next", "previous", "both")


def propagate_project(project: Project, *, sources: list[int] | None = None, frames: int = 1,
                      direction: str = "both", use_model: bool = True,
                      min_confidence: float = DEFAULT_MIN_CONFIDENCE,
                      on_progress: ProgressCallback | None = None,
                      cancel: CancelToken | None = None) -> PropagateOutcome:
    """From each source frame (default: every verified one) carry its label ``frames`` steps each way.

    A chain stops at a frame with a person's label (edited / verified): that label is
    better than anything carried, and the next source starts from it. Targets get
    status "predicted" and source "propagated:<source stem>".
    """
    if direction not in DIRECTIONS:
        raise WorkbenchError(f"unknown direction {direction!r} (valid: {', '.join(DIRECTIONS)})")
    if frames < 1:
        raise WorkbenchError(f"frames must be at least 1, got {frames}")
    if not 0.0 <= min_confidence <= 1.0:
        raise WorkbenchError(f"the confidence threshold must be from 0 to 1, got {min_confidence}")
    if project.read_only:
        raise WorkbenchError("the project is open for writing in another process (the app?)", project.state_dir)
    seqs = sequences(project)
    if not seqs:
        raise WorkbenchError("no image sequence found: frames of a sequence share a name prefix and end in a "
                             "frame number (clip_0001.png, clip_0002.png, ...)", project.folder)
    order = {i: (p, n) for p, ids in seqs.items() for n, i in enumerate(ids)}
    if sources is None:
        sources = [r.id for r in project.images(status=Status.VERIFIED)]
    outcome = PropagateOutcome()
    steps = [s for s in ((1,) if direction == "next" else (-1,) if direction == "previous" else (1, -1))]
    from workbench.workflows.prediction import PredictorSlot

    slot = PredictorSlot("auto")
    total = len(sources) * len(steps) * frames
    done = 0
    for source_id in sources:
        name = project.get(source_id).name
        if source_id not in order:
            outcome.skipped.append((name, "not a frame of a sequence"))
            continue
        label = project.read_label(source_id)
        if label is None:
            outcome.skipped.append((name, "has no label"))
            continue
        prefix, pos = order[source_id]
        for step in steps:
            cur_id, cur_mask, cur_conf = source_id, label, None
            for k in range(1, frames + 1):
                if cancel is not None and cancel.cancelled:
                    outcome.cancelled = True
                    return outcome
                report(on_progress, done, total, f"{name} -> {k} frame(s) {'on' if step > 0 else 'back'}")
                done += 1
                j = pos + step * k
                if not 0 <= j < len(seqs[prefix]):
                    break
                target = project.get(seqs[prefix][j])
                if target.status in PERSON_STATUSES:
                    break
                try:
                    res = propagate_to(project, cur_id, target.id, source_mask=cur_mask, source_confidence=cur_conf,
                                       use_model=use_model, min_confidence=min_confidence, slot=slot, cancel=cancel)
                except CancelledError:
                    outcome.cancelled = True
                    return outcome
                except WorkbenchError as exc:
                    outcome.skipped.append((target.name, str(exc)))
                    break
                if res.labelled_fraction == 0:
                    outcome.skipped.append((target.name, "no pixel carried with enough confidence"))
                    break
                project.save_label(target.id, res.mask, status=Status.PREDICTED,
                                   source=f"propagated:{project.get(source_id).stem}", reason="propagate")
                outcome.written.append((target.name, name, res.labelled_fraction))
                # the chain carries the flow's own confidence on, not the model prior's
                cur_id, cur_mask, cur_conf = target.id, res.mask, np.where(res.mask == 255, 0.0, res.carried)
    report(on_progress, total, total, "done")
    return outcome

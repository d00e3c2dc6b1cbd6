"""Plain, immutable records the project hands out (safe to pass between threads)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from workbench.errors import InputError


class Status(StrEnum):
    """How far a person has got with an image's label."""

    UNLABELLED = "unlabelled"
    PREDICTED = "predicted"
    EDITED = "edited"
    VERIFIED = "verified"


class Split(StrEnum):
    """Which part of the data an image belongs to."""

    TRAIN = "train"
    VAL = "val"
    TEST = "test"


def parse_status(value: Any, where: str | Path | None = None) -> Status:
    """``value`` as a Status; InputError listing the valid names otherwise."""
    try:
        return Status(str(value).lower()) if isinstance(value, str) else Status(value)
    except ValueError:
        valid = ", ".join(s.value for s in Status)
        raise InputError(f"unknown status {value!r} (valid: {valid})", where) from None


def parse_split(value: Any, where: str | Path | None = None) -> Split:
    """``value`` as a Split; InputError listing the valid names otherwise."""
    try:
        return Split(str(value).lower()) if isinstance(value, str) else Split(value)
    except ValueError:
        valid = ", ".join(s.value for s in Split)
        raise InputError(f"unknown split {value!r} (valid: {valid})", where) from None


@dataclass(frozen=True)
class ImageRecord:
    """One image of the project and the state of its label."""

    id: int
    name: str
    stem: str
    status: Status
    split: Split
    source: str | None          # "person", "import", "model:3"
    updated: float | None       # unix time of the last label change
    has_label: bool
    has_ground_truth: bool
    miou: float | None          # per-image mIoU of the current model, when known
    uncertainty: float | None   # mean entropy of the current model's prediction, when known


@dataclass(frozen=True)
class ModelRecord:
    """One registered model version (the checkpoint file lives in state/models/)."""

    version: int
    path: Path
    created: float
    parent: int | None
    metrics: dict = field(default_factory=dict)


@dataclass
class ImportReport:
    """What ``Project.import_masks`` did: counts, per-file problems, unmatched masks."""

    kind: str                                   # "labels" or "ground-truth"
    total: int = 0                              # mask files considered
    imported: int = 0
    imported_names: list[str] = field(default_factory=list)   # image names that got a mask
    problems: list[tuple[str, str]] = field(default_factory=list)  # (mask file, problem)
    unmatched: list[str] = field(default_factory=list)        # mask files with no image
    kept: list[str] = field(default_factory=list)             # images whose label a person made: left alone
    overwritten: list[str] = field(default_factory=list)      # ... replaced (overwrite=True; earlier in history)
    cancelled: bool = False

    @property
    def ok(self) -> bool:
        """True when every matched mask was imported and nothing was cancelled."""
        return not self.problems and not self.cancelled

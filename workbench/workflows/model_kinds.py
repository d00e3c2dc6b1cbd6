"""Which kind of model a version is: a U-Net or a quick model (issue 13).

The versions of a project are one list; a quick model (``ml.quick_model``) sits in it
beside U-Net versions, follows the same promotion rule, and is shown as "quick model".
A U-Net run never starts from a quick model's file: it fine-tunes the newest U-Net
version instead (or starts fresh). No Qt here.
"""

from __future__ import annotations

from workbench.project import ModelRecord, Project

QUICK_LABEL = "quick model"


def is_quick(rec: ModelRecord | None) -> bool:
    """True when ``rec`` is a quick model version (its stored metrics, else the file's header)."""
    if rec is None:
        return False
    kind = rec.metrics.get("kind") if isinstance(rec.metrics, dict) else None
    if kind is not None:
        return kind == "quick"
    from workbench.ml.quick_model import is_quick_model

    return is_quick_model(rec.path)


def unet_base(project: Project, current: ModelRecord | None) -> ModelRecord | None:
    """The version a U-Net run fine-tunes: ``current`` unless it is a quick model, then the newest U-Net."""
    if current is None or not is_quick(current):
        return current
    unets = [rec for rec in project.models() if not is_quick(rec) and rec.path.is_file()]
    return unets[-1] if unets else None


def kind_label(rec: ModelRecord | None) -> str:
    """"quick model" or "U-Net" (for lists and messages)."""
    return QUICK_LABEL if is_quick(rec) else "U-Net"

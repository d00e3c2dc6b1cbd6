"""The annotation project: an image folder plus its state (see docs/architecture.md).

State lives in ``FOLDER/.workbench/`` (or a per-user folder for read-only image
folders): SQLite for per-image state, palette PNGs for labels, ground truth and
cached predictions, safetensors files for model versions.
"""

from workbench.project.project import Project
from workbench.project.records import ImageRecord, ImportReport, ModelRecord, Split, Status

__all__ = ["Project", "ImageRecord", "ImportReport", "ModelRecord", "Split", "Status"]

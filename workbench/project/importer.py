"""Importing a folder of masks into a project, as labels or as ground truth.

Masks pair with images by file stem. Grayscale index, palette and RGB colour masks
are read through ``masks.read_mask`` and stored in the project's own format. One bad
mask is reported and skipped; the rest go on. Each imported mask is committed on its
own, so a cancelled import keeps what it already did.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from workbench import imageio, masks
from workbench.errors import CancelledError, InputError, WorkbenchError
from workbench.progress import CancelToken, ProgressCallback, check, report
from workbench.project.records import ImportReport, Status
from workbench.project.recovery import label_info

if TYPE_CHECKING:
    from workbench.project.project import Project

KINDS = {"labels": "labels", "label": "labels", "ground-truth": "ground-truth",
         "ground_truth": "ground-truth", "groundtruth": "ground-truth", "gt": "ground-truth"}


def normalise_kind(as_: str) -> str:
    """``"labels"`` or ``"ground-truth"``; WorkbenchError naming the valid choices otherwise."""
    kind = KINDS.get(str(as_).strip().lower())
    if kind is None:
        raise WorkbenchError(f"cannot import masks as {as_!r}; choose labels or ground-truth")
    return kind


def list_mask_files(mask_dir: Path) -> list[Path]:
    """Image files directly in ``mask_dir``, sorted by name (nothing decoded)."""
    if not mask_dir.is_dir():
        raise InputError("mask folder not found" if not mask_dir.exists() else "not a folder", mask_dir)
    try:
        with os.scandir(mask_dir) as entries:
            names = sorted(e.name for e in entries if imageio.is_image_file(e.name) and imageio.entry_is_file(e))
    except OSError as exc:
        raise InputError(f"cannot list the mask folder: {exc.strerror or exc}", mask_dir) from exc
    return [mask_dir / n for n in names]


def import_masks(project: "Project", mask_dir: str | Path, *, as_: str = "labels",
                 on_progress: ProgressCallback | None = None, cancel: CancelToken | None = None,
                 statuses: Mapping[str, Status] | None = None,
                 default_status: Status = Status.VERIFIED, source: str = "import") -> ImportReport:
    """Import every mask in ``mask_dir`` whose stem names an image of ``project``.

    Labels get ``statuses[stem]`` (default ``default_status``, VERIFIED) and ``source``;
    ground truth is stored apart and never changes a label or a status.
    """
    kind = normalise_kind(as_)
    mask_dir = Path(mask_dir).expanduser()
    files = list_mask_files(mask_dir)
    rep = ImportReport(kind=kind, total=len(files))
    by_stem = {rec.stem: rec for rec in project.images()}
    seen: dict[str, Path] = {}
    label = "labels" if kind == "labels" else "ground truth"
    report(on_progress, 0, len(files), f"importing {label}")
    for i, path in enumerate(files):
        try:
            check(cancel)
        except CancelledError:
            rep.cancelled = True
            break
        stem = path.stem
        rec = by_stem.get(stem)
        if rec is None:
            rep.unmatched.append(path.name)
        elif stem in seen:
            rep.problems.append((str(path), f"another mask for image {rec.name} was used: "
                                            f"{seen[stem].name}"))
        else:
            seen[stem] = path
            try:
                hw = project.image_shape(rec.id)
                mask = masks.read_mask(path, project.schema, hw)
                if kind == "labels":
                    status = (statuses or {}).get(stem, default_status)
                    masks.write_mask(project.label_path(rec.id), mask, project.schema,
                                     info=label_info(status, source, time.time()))
                    project._record_label(rec.id, status, source)
                else:
                    masks.write_mask(project.ground_truth_path(rec.id), mask, project.schema)
                    project._record_ground_truth(rec.id)
            except InputError as exc:
                # The message names the image when the image is at fault, else the mask.
                where = exc.path if exc.path is not None and exc.path != path else None
                problem = exc.problem if where is None else f"{exc.problem} ({where.name})"
                rep.problems.append((str(path), problem))
            except WorkbenchError as exc:
                rep.problems.append((str(path), str(exc)))
            else:
                rep.imported += 1
                rep.imported_names.append(rec.name)
        report(on_progress, i + 1, len(files), f"importing {label}",
               imported=rep.imported, problems=len(rep.problems))
    return rep

"""Importing a folder of masks into a project, as labels or as ground truth.

Masks pair with images by file stem. Grayscale index, palette and RGB colour masks
are read through ``masks.read_mask`` and stored in the project's own format. One bad
mask is reported and skipped; the rest go on. Each imported mask is committed on its
own, so a cancelled import keeps what it already did.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from workbench import imageio, masks
from workbench.errors import CancelledError, InputError, WorkbenchError
from workbench.progress import CancelToken, ProgressCallback, check, report
from workbench.project.records import ImageRecord, ImportReport, Status, parse_status

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


def made_by_person(rec: ImageRecord) -> bool:
    """True when the image's label was made or changed by a person (an import must not replace it)."""
    if not rec.has_label:
        return False
    if rec.source is None:  # provenance lost (an old project): an edited or verified label counts
        return rec.status in (Status.EDITED, Status.VERIFIED)
    return rec.source == "person"


def check_image_complete(path: Path) -> None:
    """Decode ``path`` far enough to find a truncated or corrupt file; InputError naming it.

    PNG: every chunk's checksum up to the end marker (no decompression); JPEG: a draft
    decode at 1/8 scale; other formats: a full decode.
    """
    from PIL import Image, UnidentifiedImageError

    imageio.check_regular_file(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                fmt = img.format
                if fmt == "PNG":
                    img.verify()
                    return
                if fmt == "JPEG":
                    img.draft("RGB", (max(1, img.width // 8), max(1, img.height // 8)))
                img.load()
    except FileNotFoundError:
        raise InputError("image file is missing", path) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InputError(imageio.too_large_message(exc), path) from None
    except UnidentifiedImageError:
        raise InputError("not a readable image", path) from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        msg = str(exc)
        if "truncat" in msg.lower() or "broken data stream" in msg.lower() or isinstance(exc, EOFError):
            raise InputError("truncated image file (the end of the file is missing)", path) from None
        if "broken" in msg.lower() or "crc" in msg.lower():
            raise InputError(f"damaged or truncated image file ({msg})", path) from None
        raise InputError(f"cannot decode image: {msg}", path) from None
    except MemoryError:
        raise InputError("image too large to load into memory", path) from None


def store_mask(project: "Project", rec: ImageRecord, mask, *, kind: str, status: Status | str = Status.VERIFIED,
               source: str = "import", overwrite: bool = False) -> str:
    """Store one validated mask (project values) as the image's label or ground truth.

    The one rule every importer follows: a label a person made or changed is left alone
    ("kept") unless ``overwrite``; a label that is replaced goes to the label history
    first ("overwritten" when a person's, else "imported"). Ground truth never touches
    the label or the status.
    """
    if kind == "labels":
        person = made_by_person(rec)
        if person and not overwrite:
            return "kept"
        project._write_label(rec.id, mask, parse_status(status), source,
                             "import --overwrite" if person else "import")
        return "overwritten" if person else "imported"
    masks.write_mask(project.ground_truth_path(rec.id), mask, project.schema)
    project._record_ground_truth(rec.id)
    return "imported"


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
                 default_status: Status = Status.VERIFIED, source: str = "import",
                 overwrite: bool = False) -> ImportReport:
    """Import every mask in ``mask_dir`` whose stem names an image of ``project``.

    Labels get ``statuses[stem]`` (default ``default_status``, VERIFIED) and ``source``;
    ground truth is stored apart and never changes a label or a status. A label made or
    changed by a person is left alone and listed in ``ImportReport.kept`` unless
    ``overwrite``; a label that is replaced goes to the image's label history first.
    Every paired image is decoded once, so a truncated or corrupt image is a problem
    naming it (its header alone would pass).
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
            if kind == "labels" and made_by_person(rec) and not overwrite:
                rep.kept.append(rec.name)
                report(on_progress, i + 1, len(files), f"importing {label}",
                       imported=rep.imported, problems=len(rep.problems))
                continue
            try:
                hw = project.image_shape(rec.id)
                check_image_complete(project.image_path(rec.id))
                mask = masks.read_mask(path, project.schema, hw)
                outcome = store_mask(project, rec, mask, kind=kind,
                                     status=(statuses or {}).get(stem, default_status),
                                     source=source, overwrite=overwrite)
                if outcome == "overwritten":
                    rep.overwritten.append(rec.name)
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

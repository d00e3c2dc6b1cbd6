"""Renumbering stored masks when a class changes index, as one crash-safe change.

A class change that moves pixels -- ``Project.add_class`` pushing a void class up,
``Project.move_class``, ``Project.delete_class`` (its pixels become 255 or the class it
is merged into) -- renumbers every label, ground-truth mask and cached prediction
holding an affected value and replaces ``classes.json``. A crash half-way through
would leave masks that no longer match the schema, so the change is staged:

1. the renumbered masks are written beside the originals (``<stem>.png.renumber``);
2. a journal naming them and the new schema is written atomically (the commit point);
3. each staged file is renamed over its original, the schema saved, the journal removed.

Opening the project replays a journal it finds (a rename already done is skipped) and
removes staged files that no journal names (the crash came before the commit point,
so nothing had changed yet).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from workbench import masks
from workbench.atomic import atomic_write_text, is_temp_file, read_regular_bytes
from workbench.classes import ClassSchema
from workbench.errors import InputError, WorkbenchError
from workbench.project import label_history

JOURNAL = "schema-change.json"
LAYOUT = "classes.layout.json"
"""{class id: index} of the classes.json workbench last wrote: the numbering the stored
masks use. A classes.json whose ids sit at other indices was renumbered by hand."""
STAGED_SUFFIX = ".renumber"
MASK_FOLDERS = ("labels", "groundtruth")
PREDICTIONS = "predictions"
CONFIDENCE_SUFFIX = ".conf.png"
_VERSION_DIR = re.compile(r"v\d{4,}")


def _stored_masks(state: Path) -> Iterator[tuple[Path, bool]]:
    """(path, is_cached_prediction) of every mask a class change must renumber.

    Cached predictions are renumbered too: they are shown and accepted into labels, so
    they must mean what the labels mean. Their confidence images are not masks.
    """
    for sub in MASK_FOLDERS:
        folder = state / sub
        if folder.is_dir():
            for path in sorted(folder.glob(f"*{masks.MASK_SUFFIX}")):
                yield path, False
    pred = state / PREDICTIONS
    if pred.is_dir():
        for version in sorted(pred.iterdir()):
            if version.is_dir() and _VERSION_DIR.fullmatch(version.name):
                for path in sorted(version.glob(f"*{masks.MASK_SUFFIX}")):
                    if not path.name.endswith(CONFIDENCE_SUFFIX):
                        yield path, True


def stage_rewrite(state: Path, path: Path, old_mask: np.ndarray, new_mask: np.ndarray,
                  schema: ClassSchema) -> Path:
    """Write the renumbered version of one stored mask beside it; returns the staged file.

    The single place where a class change rewrites a mask: ``path`` is a label
    (``state/labels/<stem>.png``), a ground truth (``state/groundtruth/``) or a cached
    prediction (``state/predictions/v0001/``); ``old_mask`` is what it holds now. The staged
    file replaces ``path`` only after the journal is committed. (Label history hooks in
    here to keep the version a remap replaces.)
    """
    stage = path.with_name(path.name + STAGED_SUFFIX)
    masks.write_mask(stage, new_mask, schema, masks.read_mask_info(path))  # a label keeps its record
    return stage


def renumber_masks(state: Path, old: ClassSchema, new: ClassSchema, moves: dict[int, int]) -> list[Path]:
    """Apply ``moves`` ({old index: new index}) to every stored mask and save ``new``.

    Returns the masks that were rewritten.
    """
    lut = np.arange(256, dtype=np.uint8)
    for src, dst in moves.items():
        lut[src] = dst
    moved = np.array(sorted(moves), dtype=np.uint8)
    staged: list[Path] = []
    try:
        for path, cached in _stored_masks(state):
            if is_temp_file(path) or not path.is_file():
                continue
            try:
                raw = masks.decode_mask(path.read_bytes(), old, path)
            except (OSError, InputError) as exc:
                if cached:
                    continue  # an unreadable cached prediction never blocks the change (its read names it)
                if isinstance(exc, InputError):
                    raise
                raise WorkbenchError(f"cannot read the mask to renumber it: {exc}", path) from exc
            if np.isin(raw, moved).any():
                if not cached and path.parent.name == "labels":  # the label as it was goes to its history first
                    label_history.keep(state, path.stem, path, source=None, status=None,
                                       reason="class remap", schema=old, mask=raw)
                staged.append(stage_rewrite(state, path, raw, lut[raw], new))
        journal = {"staged": [str(p.relative_to(state).as_posix()) for p in staged],
                   "schema": new.to_dict()}
        atomic_write_text(state / JOURNAL, json.dumps(journal))
    except BaseException:
        for stage in staged:
            stage.unlink(missing_ok=True)
        raise
    _apply(state, journal)
    return [stage.with_name(stage.name[: -len(STAGED_SUFFIX)]) for stage in staged]


def recover(state: Path) -> bool:
    """Finish a schema change a crash interrupted; True when one was replayed."""
    path = state / JOURNAL
    if path.is_file():
        try:
            journal = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"cannot finish an interrupted class change: {exc}", path) from None
        except RecursionError:
            raise InputError("cannot finish an interrupted class change: the journal is nested too deeply "
                             "(not a workbench file)", path) from None
        _apply(state, journal)
        return True
    folders = [state / sub for sub in MASK_FOLDERS]
    if (state / PREDICTIONS).is_dir():
        folders += [v for v in (state / PREDICTIONS).iterdir() if _VERSION_DIR.fullmatch(v.name)]
    for folder in folders:
        for leftover in folder.glob(f"*{STAGED_SUFFIX}"):
            leftover.unlink(missing_ok=True)
    return False


def _apply(state: Path, journal: object) -> None:
    path = state / JOURNAL
    if not isinstance(journal, dict) or not isinstance(journal.get("staged"), list):
        raise InputError("not a class-change journal", path)
    schema = ClassSchema.from_dict(journal.get("schema"), path)
    for rel in journal["staged"]:
        parts = Path(str(rel)).parts
        # The journal is a file in the project: it may only name staged masks of this project.
        in_masks = len(parts) == 2 and parts[0] in MASK_FOLDERS
        in_predictions = (len(parts) == 3 and parts[0] == PREDICTIONS
                          and _VERSION_DIR.fullmatch(parts[1]) is not None)
        if not (in_masks or in_predictions) or not parts[-1].endswith(masks.MASK_SUFFIX + STAGED_SUFFIX):
            raise InputError(f"class-change journal names {rel!r}, not a staged mask", path)
        stage = state.joinpath(*parts)
        if stage.is_file():
            try:
                os.replace(stage, stage.with_name(parts[-1][: -len(STAGED_SUFFIX)]))
            except OSError as exc:
                raise WorkbenchError(f"cannot renumber the mask: {exc.strerror or exc}", stage) from exc
    schema.save(state / "classes.json")
    save_layout(state, schema)
    path.unlink(missing_ok=True)  # last: a crash before this replays the whole change


def save_layout(state: Path, schema: ClassSchema) -> None:
    """Record the numbering stored masks use now (after every class change workbench makes)."""
    layout = {c.id: c.index for c in schema.classes}
    atomic_write_text(state / LAYOUT, json.dumps({"classes": layout}, sort_keys=True))


def read_layout(state: Path) -> dict[str, int] | None:
    """The recorded numbering, or None when there is none (older projects) or it is unreadable."""
    try:
        data = json.loads(read_regular_bytes(state / LAYOUT).decode("utf-8"))  # never blocks on a pipe
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None
    layout = data.get("classes") if isinstance(data, dict) else None
    if not isinstance(layout, dict) or not all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) for k, v in layout.items()):
        return None
    return layout

"""Seeding a new project from ``FOLDER/workbench.json`` (classes, labels, ground truth, splits).

The manifest is read and checked completely before anything is created, so a bad one
fails with a clear message and leaves no half-made project. Every path is relative to
FOLDER and must stay inside it. See docs/project-format.md for the format.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import InputError
from workbench.project.importer import import_masks
from workbench.project.records import Split, Status, parse_split, parse_status

if TYPE_CHECKING:
    from workbench.project.project import Project

MANIFEST_NAME = "workbench.json"
_PATH_KEYS = ("classes", "ground_truth", "labels")


@dataclass
class ImageEntry:
    """What the manifest says about one image."""

    split: Split | None = None
    status: Status | None = None


@dataclass
class Manifest:
    """A parsed, checked ``workbench.json``; paths are absolute and inside FOLDER."""

    path: Path
    classes: Path | None = None
    ground_truth: Path | None = None
    labels: Path | None = None
    images: dict[str, ImageEntry] = field(default_factory=dict)


def _inside(folder: Path, value: Any, key: str, manifest: Path) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise InputError(f'"{key}" must be a path relative to the project folder, got {value!r}', manifest)
    rel = Path(value)
    if rel.is_absolute() or rel.drive:
        raise InputError(f'"{key}" is an absolute path ({value}); paths must be relative to '
                         f"the project folder", manifest)
    root = folder.resolve()
    target = (root / rel).resolve()
    if target != root and root not in target.parents:
        raise InputError(f'"{key}" ({value}) points outside the project folder; paths must stay '
                         f"inside it", manifest)
    return target


def read_manifest(folder: str | Path) -> Manifest | None:
    """The checked manifest of ``folder``, or None when it has none."""
    folder = Path(folder)
    path = folder / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON (line {exc.lineno}: {exc.msg})", path) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the project manifest: {exc}", path) from exc
    if not isinstance(data, dict):
        raise InputError("the project manifest must be a JSON object", path)
    # Other top-level keys (e.g. the generator's "seed") are left to the tools that write them.
    man = Manifest(path)
    for key in _PATH_KEYS:
        if data.get(key) is not None:
            setattr(man, key, _inside(folder, data[key], key, path))
    if man.classes is not None and not man.classes.is_file():
        raise InputError(f'"classes" file not found: {man.classes}', path)
    for key in ("labels", "ground_truth"):
        target = getattr(man, key)
        if target is not None and not target.is_dir():
            raise InputError(f'"{key}" folder not found: {target}', path)
    images = data.get("images") or {}
    if not isinstance(images, dict):
        raise InputError('"images" must be an object mapping file names to {"split", "status"}', path)
    for name, entry in images.items():
        if "/" in name or "\\" in name or name in ("", ".", ".."):
            raise InputError(f'images: {name!r} must be a file name in the project folder', path)
        if not isinstance(entry, dict):
            raise InputError(f'images[{name!r}] must be an object like {{"split": "val"}}', path)
        bad = sorted(set(entry) - {"split", "status"})
        if bad:
            raise InputError(f'images[{name!r}]: unknown keys {bad} (valid: split, status)', path)
        man.images[name] = ImageEntry(
            parse_split(entry["split"], path) if entry.get("split") is not None else None,
            parse_status(entry["status"], path) if entry.get("status") is not None else None)
    return man


def apply_manifest(project: "Project", man: Manifest) -> list[str]:
    """Seed a freshly created project; returns problems to show (never raises on one file)."""
    problems: list[str] = []
    where = man.path.name
    statuses: dict[str, Status] = {}
    splits: dict[Split, list[int]] = {}
    for name, entry in man.images.items():
        rec = project.find(name)
        if rec is None or rec.name != name:
            problems.append(f"{where}: images[{name!r}]: no such image in the folder")
            continue
        if entry.split is not None:
            splits.setdefault(entry.split, []).append(rec.id)
        if entry.status is not None:
            statuses[rec.stem] = entry.status
    for split, ids in splits.items():  # one write (and one snapshot) per split, not per image
        project.set_split(ids, split)
    imported: set[str] = set()
    for folder, kind in ((man.labels, "labels"), (man.ground_truth, "ground-truth")):
        if folder is None:
            continue
        rep = import_masks(project, folder, as_=kind, statuses=statuses)
        problems.extend(f"{Path(f).name}: {p}" for f, p in rep.problems)
        problems.extend(f"{folder.name}/{n}: no image with this stem" for n in rep.unmatched)
        if kind == "labels":
            imported = {Path(n).stem for n in rep.imported_names}
    for stem, status in statuses.items():
        if stem not in imported and status != Status.UNLABELLED:
            problems.append(f"{where}: status {status.value!r} for {stem} ignored: it has no label")
    return problems

"""Every label format, by name, and detection of which one a source is.

Detection asks each specific format in turn (VOC, Cityscapes, COCO, CVAT, labelme,
YOLO); the index PNG folder is the fallback, chosen only when no specific format
matches (any folder of PNGs looks like one). Several specific matches are an error that
names them: the person says which with ``--format``.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from workbench.errors import InputError, WorkbenchError
from workbench.formats.base import FormatSpec

# name -> module under workbench.formats; detection order (specific first, index last)
MODULES: dict[str, str] = {
    "voc": "voc",
    "cityscapes": "cityscapes",
    "coco": "coco",
    "cvat": "cvat",
    "labelme": "labelme",
    "yolo": "yolo",
    "index": "index",
}
FALLBACK = "index"
NAMES = ("index", "voc", "coco", "cityscapes", "labelme", "cvat", "yolo")   # shown to people


def _load(name: str) -> FormatSpec | None:
    module = MODULES[name]
    try:
        mod = importlib.import_module(f"workbench.formats.{module}")
    except ModuleNotFoundError as exc:
        if exc.name == f"workbench.formats.{module}":
            return None  # a format still being built is simply absent
        raise
    return mod.FORMAT


def all_formats() -> list[FormatSpec]:
    """The available formats, in the order people see them (index, voc, coco, ...)."""
    return [spec for spec in (_load(n) for n in NAMES) if spec is not None]


def names() -> list[str]:
    """Names of the available formats."""
    return [spec.name for spec in all_formats()]


def get(name: str) -> FormatSpec:
    """The format called ``name``; WorkbenchError listing the valid names otherwise."""
    key = str(name).strip().lower()
    spec = _load(key) if key in MODULES else None
    if spec is None:
        raise WorkbenchError(f"unknown format {name!r}; choose one of {', '.join(names())}")
    return spec


def matches(src: str | Path) -> list[FormatSpec]:
    """Every specific format (not the fallback) whose detector accepts ``src``."""
    src = Path(src)
    out = []
    for name in MODULES:
        if name == FALLBACK:
            continue
        spec = _load(name)
        if spec is not None and _accepts(spec, src):
            out.append(spec)
    return out


def _accepts(spec: FormatSpec, src: Path) -> bool:
    # a detector that trips over an unreadable file or folder simply does not match
    try:
        return bool(spec.detect(src))
    except (OSError, ValueError, UnicodeError):
        return False


def detect(src: str | Path) -> FormatSpec | None:
    """The one format ``src`` is; None when nothing matches; WorkbenchError when several do."""
    src = Path(src).expanduser()
    if not src.exists():
        raise InputError("not found", src)
    found = matches(src)
    if len(found) > 1:
        raise WorkbenchError(f"{src}: looks like more than one format ({', '.join(s.name for s in found)}); "
                             f"say which with --format")
    if found:
        return found[0]
    fallback = _load(FALLBACK)
    if fallback is not None and _accepts(fallback, src):
        return fallback
    return None


def detect_or_explain(src: str | Path) -> FormatSpec:
    """``detect``, with a WorkbenchError naming ``src`` and the formats when nothing matches."""
    spec = detect(src)
    if spec is None:
        kind = "file" if Path(src).is_file() else "folder"
        raise WorkbenchError(f"{src}: cannot tell which label format this {kind} is; give it with "
                             f"--format ({', '.join(names())})")
    return spec

"""Class files a dataset ships: a ``classes.json`` (our layout, CamVid's), a plain list
of names, one a line (labelme's ``labels.txt``, VOC's ``class_names.txt``), or a list of
``R G B name`` lines (the original CamVid's ``label_colors.txt``).

In a names file the line number is the class value, counted over the lines that are
classes: ``__ignore__`` (labelme's first line) is not a class -- its pixels are not
labelled -- and ``_background_`` is class 0 named ``background``. Blank lines and lines
starting with ``#`` are skipped.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from workbench.atomic import atomic_write_text
from workbench.classes import ClassSchema, name_key
from workbench.errors import InputError
from workbench.formats.base import NOT_LABELLED, DatasetClass, ExportClass

IGNORE_NAMES = {"__ignore__", "_ignore_", "__ignored__"}
BACKGROUND_NAMES = {"_background_", "__background__"}
MAX_CLASS_FILE_BYTES = 4 * 1024 * 1024


def _read_text(path: Path) -> str:
    if not path.exists():
        raise InputError("class file not found", path)
    if not path.is_file():
        raise InputError("cannot read class file: not a regular file", path)
    if path.stat().st_size > MAX_CLASS_FILE_BYTES:
        raise InputError("class file is too large to be a list of classes", path)
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InputError("cannot read class file: it is not UTF-8 text; save it as UTF-8", path) from None
    except OSError as exc:
        raise InputError(f"cannot read class file: {exc.strerror or exc}", path) from None


def parse_names(text: str, where: str | Path) -> list[DatasetClass]:
    """Classes of a names file (one a line); InputError naming ``where`` when it holds none."""
    out: list[DatasetClass] = []
    seen: dict[str, int] = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.lower() in IGNORE_NAMES:
            continue
        name = "background" if line.lower() in BACKGROUND_NAMES else line
        key = name_key(name)
        if key in seen:
            raise InputError(f"line {lineno}: class {name!r} is listed twice (first on line {seen[key]})", where)
        seen[key] = lineno
        if len(out) >= NOT_LABELLED:
            raise InputError(f"more than {NOT_LABELLED} classes (line {lineno})", where)
        out.append(DatasetClass(name=name, value=len(out)))
    if not out:
        raise InputError("the class file names no class", where)
    return out


COLOUR_LINE = re.compile(r"^\s*(\d{1,3})\s+(\d{1,3})\s+(\d{1,3})\s+(\S.*?)\s*$")


def parse_colour_names(text: str, where: str | Path) -> list[DatasetClass]:
    """CamVid's ``label_colors.txt`` (``R G B Name`` a line) as classes with colours.

    ``Void`` is void; values are line order (the file's masks are colour masks).
    """
    out: list[DatasetClass] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        m = COLOUR_LINE.match(raw)
        if m is None or any(int(v) > 255 for v in m.groups()[:3]):
            raise InputError(f"line {lineno}: expected 'R G B name', got {raw.strip()!r:.60}", where)
        name = m.group(4)
        if len(out) >= NOT_LABELLED:
            raise InputError(f"more than {NOT_LABELLED} classes (line {lineno})", where)
        out.append(DatasetClass(name, len(out), tuple(int(v) for v in m.groups()[:3]),
                                void=name_key(name) in ("void", "unlabelled", "unlabeled")))
    if not out:
        raise InputError("the colour list names no class", where)
    return out


def from_schema(schema: ClassSchema) -> list[DatasetClass]:
    """The classes of a schema as a dataset's classes (values = mask indices)."""
    return [DatasetClass(c.name, c.index, tuple(c.color), c.void) for c in schema.classes if not c.retired]


def read_class_file(path: str | Path) -> list[DatasetClass]:
    """Classes from a classes.json (JSON object) or a names file (anything else)."""
    path = Path(path).expanduser()
    text = _read_text(path)
    stripped = text.lstrip()
    if path.suffix.lower() == ".json" or stripped.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"not valid JSON (line {exc.lineno}: {exc.msg})", path) from None
        except RecursionError:
            raise InputError("not a class file: JSON nested too deeply", path) from None
        return from_schema(ClassSchema.from_dict(data, path))
    first = next((line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")), "")
    if COLOUR_LINE.match(first):
        return parse_colour_names(text, path)
    return parse_names(text, path)


def schema_from_classes(classes: list[DatasetClass], name: str = "") -> ClassSchema:
    """A project schema holding ``classes``: trainable ones numbered 0..K-1 in value order,
    void ones after them (their pixels stay void, not unlabelled)."""
    from workbench.classes import ClassInfo, default_color

    # a name listed twice (a hand-written label map) is one class: values are mapped by
    # name, so both values land on it
    seen: set[str] = set()
    unique = []
    for c in sorted(classes, key=lambda c: c.value):
        key = name_key(c.name) or f"class {c.value}"
        if key not in seen:
            seen.add(key)
            unique.append(c)
    trainable = [c for c in unique if not c.void]
    void = [c for c in unique if c.void]
    if not trainable:
        raise InputError("the dataset's classes are all void: there is nothing to train on")
    infos = []
    for i, c in enumerate(trainable + void):
        color = c.color if c.color is not None else default_color(i)
        infos.append(ClassInfo(i, c.name.strip() or f"class {c.value}", tuple(int(v) for v in color), c.void))
    return ClassSchema(infos, None, name)


def write_classes_json(path: str | Path, classes: list[ExportClass], name: str = "") -> None:
    """Write ``classes`` as a classes.json (our / CamVid's layout), atomically."""
    void = [c.value for c in classes if c.void]
    data = {"name": name, "ignore_index": void[0] if len(void) == 1 else None,
            "classes": [{"index": c.value, "name": c.name, "color": list(c.color),
                         **({"void": True} if c.void else {})} for c in classes]}
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def write_names(path: str | Path, names: list[str], *, ignore_line: bool = False) -> None:
    """Write a names file, one a line (``__ignore__`` first when ``ignore_line``), atomically."""
    lines = (["__ignore__"] if ignore_line else []) + list(names)
    atomic_write_text(path, "\n".join(lines) + "\n")

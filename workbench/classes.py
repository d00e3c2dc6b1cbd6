"""Class schema: names, colours and the void/ignore index of a project.

JSON layout (as ``../shared/camvid/classes.json``)::

    {"name": "...", "ignore_index": 11,
     "classes": [{"index": 0, "name": "Sky", "color": [128, 128, 128]}, ...,
                 {"index": 11, "name": "Unlabelled", "color": [0, 0, 0], "void": true}]}

Trainable classes are the non-void ones and must use the indices ``0..K-1``; a void
class (and 255, "not labelled", always) is ignored by training and metrics.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from workbench.atomic import atomic_write_text
from workbench.errors import InputError

UNLABELLED = 255
"""Mask value for a pixel nobody has labelled yet; ignored by training and metrics."""

# A palette with well-separated hues for new projects (after the Pascal VOC and
# Tableau palettes): readable over photographs and distinct from each other.
DEFAULT_COLORS: list[tuple[int, int, int]] = [
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
    (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
    (0, 128, 128), (220, 190, 255), (170, 110, 40), (255, 250, 200), (128, 0, 0),
    (170, 255, 195), (128, 128, 0), (255, 215, 180), (0, 0, 128), (128, 128, 128),
]


@dataclass(frozen=True)
class ClassInfo:
    """One class: its mask value, display name, RGB colour and whether it is void."""

    index: int
    name: str
    color: tuple[int, int, int]
    void: bool = False


@dataclass
class ClassSchema:
    """The classes of a project; the single place that maps mask values to meaning."""

    classes: list[ClassInfo]
    ignore_index: int | None = None
    name: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    # ----- construction -------------------------------------------------------------
    @classmethod
    def default(cls, names: list[str] | int = 2, name: str = "") -> "ClassSchema":
        """A new schema with the given class names (or N numbered classes)."""
        if isinstance(names, int):
            names = [f"class {i}" for i in range(names)]
        infos = [ClassInfo(i, n, default_color(i)) for i, n in enumerate(names)]
        return cls(infos, None, name)

    @classmethod
    def from_dict(cls, data: Any, source: str | Path | None = None) -> "ClassSchema":
        """Build a schema from parsed JSON; raises ``InputError`` naming ``source``."""
        where = source if source is not None else "class schema"
        if not isinstance(data, dict) or not isinstance(data.get("classes"), list):
            raise InputError('expected a JSON object with a "classes" list', where)
        infos = []
        for i, item in enumerate(data["classes"]):
            if not isinstance(item, dict):
                raise InputError(f"classes[{i}] is not an object", where)
            index, cname, color = item.get("index"), item.get("name"), item.get("color")
            if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < UNLABELLED:
                raise InputError(f"classes[{i}].index must be an integer 0-254, got {index!r}", where)
            if not isinstance(cname, str) or not cname.strip():
                raise InputError(f"classes[{i}].name must be a non-empty string, got {cname!r}", where)
            if (not isinstance(color, (list, tuple)) or len(color) != 3
                    or not all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in color)):
                raise InputError(f"classes[{i}].color must be three integers 0-255, got {color!r}", where)
            void = item.get("void", False)
            if not isinstance(void, bool):
                raise InputError(f"classes[{i}].void must be true or false, got {void!r}", where)
            infos.append(ClassInfo(index, cname.strip(), tuple(color), void))
        ignore = data.get("ignore_index")
        if ignore is not None and (not isinstance(ignore, int) or isinstance(ignore, bool)
                                   or not 0 <= ignore <= UNLABELLED):
            raise InputError(f"ignore_index must be an integer 0-255 or null, got {ignore!r}", where)
        name = data.get("name", "")
        try:
            return cls(infos, ignore, name if isinstance(name, str) else "")
        except ValueError as exc:
            raise InputError(str(exc), where) from exc

    @classmethod
    def load(cls, path: str | Path) -> "ClassSchema":
        """Read a schema JSON file; errors name the file and the problem."""
        path = Path(path)
        try:
            # utf-8-sig: Windows editors (Notepad) start a UTF-8 file with a byte-order mark.
            text = path.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise InputError("class file not found", path) from None
        except UnicodeDecodeError as exc:
            raise InputError(f"cannot read class file: it is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} "
                             f"at position {exc.start}); save it as UTF-8", path) from None
        except OSError as exc:
            raise InputError(f"cannot read class file: {exc.strerror or exc}", path) from exc
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"not valid JSON (line {exc.lineno}: {exc.msg})", path) from exc
        except RecursionError:
            raise InputError("not a class schema: JSON nested too deeply", path) from None
        return cls.from_dict(data, path)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form (same layout as CamVid's classes.json)."""
        out: dict[str, Any] = {"name": self.name, "ignore_index": self.ignore_index, "classes": []}
        for c in self.classes:
            item: dict[str, Any] = {"index": c.index, "name": c.name, "color": list(c.color)}
            if c.void:
                item["void"] = True
            out["classes"].append(item)
        return out

    def save(self, path: str | Path) -> None:
        """Write the schema as JSON, atomically."""
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    # ----- validation ---------------------------------------------------------------
    def validate(self) -> None:
        """Raise ``ValueError`` unless indices are unique and trainable ones are 0..K-1."""
        indices = [c.index for c in self.classes]
        if len(set(indices)) != len(indices):
            raise ValueError(f"class indices must be unique, got {sorted(indices)}")
        if self.ignore_index is not None and self.ignore_index != UNLABELLED:
            for c in self.classes:
                if c.index == self.ignore_index and not c.void:
                    # A class named as ignore_index is void whatever its flag says.
                    self.classes[self.classes.index(c)] = replace(c, void=True)
        trainable = sorted(c.index for c in self.classes if not c.void)
        if not trainable:
            raise ValueError("the schema needs at least one class that is not void")
        if trainable != list(range(len(trainable))):
            raise ValueError(f"non-void class indices must be 0..{len(trainable) - 1}, got {trainable}")
        self.classes.sort(key=lambda c: c.index)

    # ----- queries ------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        """Number of trainable (non-void) classes: the model's output channels."""
        return sum(not c.void for c in self.classes)

    @property
    def trainable(self) -> list[ClassInfo]:
        """The non-void classes, in index order."""
        return [c for c in self.classes if not c.void]

    @property
    def names(self) -> list[str]:
        """Names of the trainable classes, in index order."""
        return [c.name for c in self.trainable]

    @property
    def ignore_values(self) -> tuple[int, ...]:
        """Mask values excluded from loss and metrics: void classes, ignore_index, 255."""
        vals = {UNLABELLED} | {c.index for c in self.classes if c.void}
        if self.ignore_index is not None:
            vals.add(self.ignore_index)
        return tuple(sorted(vals))

    @property
    def valid_values(self) -> tuple[int, ...]:
        """Every value a stored mask may hold."""
        return tuple(sorted({c.index for c in self.classes} | set(self.ignore_values)))

    def by_index(self, index: int) -> ClassInfo | None:
        """The class with this mask value, or None."""
        for c in self.classes:
            if c.index == index:
                return c
        return None

    def class_name(self, value: int) -> str:
        """Human name for a mask value, including 'not labelled' for 255."""
        if value == UNLABELLED:
            return "not labelled"
        c = self.by_index(int(value))
        return c.name if c else f"unknown ({value})"

    def lut_rgba(self, alpha: int = 255) -> np.ndarray:
        """(256, 4) uint8 lookup table: mask value -> RGBA; void and 255 transparent."""
        lut = np.zeros((256, 4), np.uint8)
        for c in self.classes:
            lut[c.index, :3] = c.color
            lut[c.index, 3] = 0 if c.void else alpha
        return lut

    def palette(self) -> list[int]:
        """768-entry flat RGB palette for PIL 'P' images (index -> class colour)."""
        pal = np.zeros((256, 3), np.uint8)
        for c in self.classes:
            pal[c.index] = c.color
        pal[UNLABELLED] = (255, 255, 255)
        return pal.reshape(-1).tolist()

    # ----- editing ------------------------------------------------------------------
    def add_class(self, name: str, color: tuple[int, int, int] | None = None) -> ClassInfo:
        """Append a trainable class; void classes move up to keep 0..K-1 contiguous.

        Appending keeps every existing label valid, except that a void class sitting at
        index K is moved to the next free index (stored masks that use it must be
        remapped by the caller: ``Project.add_class`` does that).
        """
        k = self.num_classes
        blocking = self.by_index(k)
        if blocking is not None:
            free = max(c.index for c in self.classes) + 1
            if free >= UNLABELLED:
                raise ValueError("no free class index left")
            self.classes[self.classes.index(blocking)] = replace(blocking, index=free)
            if self.ignore_index == k:
                self.ignore_index = free
        info = ClassInfo(k, name.strip() or f"class {k}", tuple(color) if color else default_color(k))
        self.classes.append(info)
        self.validate()
        return info

    def rename_class(self, index: int, name: str) -> None:
        """Give class ``index`` a new name."""
        self._replace(index, name=name.strip() or self.class_name(index))

    def recolor_class(self, index: int, color: tuple[int, int, int]) -> None:
        """Give class ``index`` a new RGB colour."""
        self._replace(index, color=tuple(int(v) for v in color))

    def _replace(self, index: int, **changes: Any) -> None:
        c = self.by_index(index)
        if c is None:
            raise KeyError(f"no class with index {index}")
        self.classes[self.classes.index(c)] = replace(c, **changes)

    def copy(self) -> "ClassSchema":
        """An independent copy (ClassInfo objects are immutable)."""
        return ClassSchema(list(self.classes), self.ignore_index, self.name, dict(self.extra))


def default_color(i: int) -> tuple[int, int, int]:
    """Colour for the i-th class of a new project."""
    if i < len(DEFAULT_COLORS):
        return DEFAULT_COLORS[i]
    rng = np.random.default_rng(i)
    return tuple(int(v) for v in rng.integers(40, 256, 3))

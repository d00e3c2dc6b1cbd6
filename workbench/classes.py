"""Class schema: names, colours and the void/ignore index of a project.

JSON layout (as ``../shared/camvid/classes.json``, plus ``id``)::

    {"name": "...", "ignore_index": 11,
     "classes": [{"index": 0, "name": "Sky", "color": [128, 128, 128], "id": "c0-5d1b2e"}, ...,
                 {"index": 11, "name": "Unlabelled", "color": [0, 0, 0], "void": true, "id": ...}]}

Trainable classes are the non-void ones and must use the indices ``0..K-1``; a void
class (and 255, "not labelled", always) is ignored by training and metrics.

Identity: every class has an ``id`` that renames and index moves never change; it is
what the project and checkpoints match classes by (never the name, never the index).
A file without ids (CamVid's, older projects) gets ids derived from index and name, so
loading the same file twice gives the same ids; a class added later gets a fresh random
id. Names are unique (case-insensitive, ignoring surrounding spaces).

A *retired* class (``"retired": true``, always void) stands for mask values that stored
labels still hold but whose class is gone (a class dropped from classes.json by hand):
the pixels keep "no class" as their meaning, are ignored by training and metrics, and
no new class is given that value while masks hold it.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import stat
import unicodedata
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
    """One class: its mask value, display name, RGB colour, whether it is void, its identity.

    ``id`` is left empty only while building a schema; ``ClassSchema`` fills it in.
    """

    index: int
    name: str
    color: tuple[int, int, int]
    void: bool = False
    id: str = ""
    retired: bool = False


MAX_ID_LENGTH = 64


def derived_class_id(index: int, name: str) -> str:
    """The id a class without one gets: stable for the same index and name."""
    key = f"{index}:{name.strip().casefold()}".encode("utf-8")
    digest = hashlib.sha1(key, usedforsecurity=False).hexdigest()[:6]
    return f"c{index}-{digest}"


def new_class_id(taken: set[str] | frozenset[str] = frozenset()) -> str:
    """A fresh random id for a new class (never one in ``taken``)."""
    while True:
        cid = "k" + secrets.token_hex(5)
        if cid not in taken:
            return cid


def name_key(name: str) -> str:
    """What two names are compared by: case-insensitive, surrounding spaces ignored.

    Unicode-normalised too (NFC): "café" typed as one precomposed é and as e plus a
    combining accent look the same, so they are one name.
    """
    return unicodedata.normalize("NFC", name.strip()).casefold()


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
    def from_dict(cls, data: Any, source: str | Path | None = None, *,
                  rename_duplicates: bool = False) -> "ClassSchema":
        """Build a schema from parsed JSON; raises ``InputError`` naming ``source``.

        ``rename_duplicates``: a name used twice gets " (2)" appended instead of being an
        error -- for checkpoints written before names had to be unique, which nobody can
        fix by hand; a project's classes.json is refused instead (the person edits it).
        """
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
            retired = item.get("retired", False)
            if not isinstance(retired, bool):
                raise InputError(f"classes[{i}].retired must be true or false, got {retired!r}", where)
            cid = item.get("id", "")
            if not isinstance(cid, str) or ("id" in item and not cid.strip()) or len(cid) > MAX_ID_LENGTH:
                raise InputError(f"classes[{i}].id must be a non-empty string of at most {MAX_ID_LENGTH} "
                                 f"characters, got {cid!r:.80}", where)
            infos.append(ClassInfo(index, cname.strip(), tuple(color), void or retired, cid.strip(), retired))
        ignore = data.get("ignore_index")
        if ignore is not None and (not isinstance(ignore, int) or isinstance(ignore, bool)
                                   or not 0 <= ignore <= UNLABELLED):
            raise InputError(f"ignore_index must be an integer 0-255 or null, got {ignore!r}", where)
        name = data.get("name", "")
        if rename_duplicates:
            infos = _unique_names(infos)
        try:
            return cls(infos, ignore, name if isinstance(name, str) else "")
        except ValueError as exc:
            raise InputError(str(exc), where) from exc

    @classmethod
    def load(cls, path: str | Path) -> "ClassSchema":
        """Read a schema JSON file; errors name the file and the problem."""
        path = Path(path)
        try:  # a pipe or device named classes.json would block the read forever
            mode = path.stat().st_mode
        except FileNotFoundError:
            raise InputError("class file not found", path) from None
        except OSError as exc:
            raise InputError(f"cannot read class file: {exc.strerror or exc}", path) from exc
        if stat.S_ISDIR(mode):
            raise InputError("cannot read class file: Is a directory", path)
        if not stat.S_ISREG(mode):
            raise InputError("cannot read class file: not a regular file (a pipe, socket or device)", path)
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
            if c.retired:
                item["retired"] = True
            item["id"] = c.id
            out["classes"].append(item)
        return out

    def save(self, path: str | Path) -> None:
        """Write the schema as JSON, atomically."""
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    # ----- validation ---------------------------------------------------------------
    def validate(self) -> None:
        """Raise ``ValueError`` unless indices, ids and names are unique and trainable ones are 0..K-1.

        Classes without an id get one derived from index and name (deterministic).
        """
        indices = [c.index for c in self.classes]
        if len(set(indices)) != len(indices):
            raise ValueError(f"class indices must be unique, got {sorted(indices)}")
        self._check_names()
        self._fill_ids()
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

    def _check_names(self) -> None:
        seen: dict[str, ClassInfo] = {}
        for c in sorted(self.classes, key=lambda c: c.index):
            if not c.name.strip():
                raise ValueError(f"class {c.index} needs a name")
            other = seen.get(name_key(c.name))
            if other is not None:
                raise ValueError(f"two classes are named {c.name.strip()!r}: class {other.index} "
                                 f"({other.name!r}) and class {c.index} ({c.name!r}); class names "
                                 "must be unique (case and surrounding spaces are ignored)")
            seen[name_key(c.name)] = c

    def _fill_ids(self) -> None:
        given = [c.id for c in self.classes if c.id]
        dup = sorted({i for i in given if given.count(i) > 1})
        if dup:
            holders = [f"{c.index} ({c.name!r})" for c in self.classes if c.id == dup[0]]
            raise ValueError(f"class id {dup[0]!r} is used by more than one class: "
                             + " and ".join(holders))
        taken = set(given)
        for n in sorted(range(len(self.classes)), key=lambda n: self.classes[n].index):
            c = self.classes[n]
            if c.retired and not c.void:
                c = self.classes[n] = replace(c, void=True)
            if c.id:
                continue
            cid = derived_class_id(c.index, c.name)
            while cid in taken:  # a hand-edited file may hold a derived id already
                cid += "x"
            taken.add(cid)
            self.classes[n] = replace(c, id=cid)

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

    @property
    def ids(self) -> list[str]:
        """Ids of the trainable classes, in index order (what checkpoints are matched by)."""
        return [c.id for c in self.trainable]

    @property
    def retired(self) -> list[int]:
        """Mask values kept out of use: stored masks hold them but their class is gone."""
        return [c.index for c in self.classes if c.retired]

    def by_id(self, class_id: str) -> ClassInfo | None:
        """The class with this id, or None."""
        for c in self.classes:
            if c.id == class_id:
                return c
        return None

    def by_name(self, name: str) -> ClassInfo | None:
        """The class with this name (case-insensitive, spaces ignored), or None."""
        key = name_key(name)
        for c in self.classes:
            if name_key(c.name) == key:
                return c
        return None

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

    def describe(self, c: ClassInfo) -> str:
        """'Road' (class 3) for messages."""
        return f"{c.name!r} (class {c.index})"

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
        if name.strip():
            self._refuse_taken_name(name)
        if self.ignore_index == k:
            self.describe_ignore_index()  # a bare ignore_index at K: its pixels move up with a void class
        blocking = self.by_index(k)
        if blocking is not None:
            free = max([c.index for c in self.classes]
                       + [self.ignore_index if self.ignore_index not in (None, UNLABELLED) else 0]) + 1
            if free >= UNLABELLED:
                raise ValueError("no free class index left")
            self.classes[self.classes.index(blocking)] = replace(blocking, index=free)
            if self.ignore_index == k:
                self.ignore_index = free
        name = name.strip() or self._free_name(f"class {k}")
        info = ClassInfo(k, name, tuple(color) if color else default_color(k),
                         id=new_class_id({c.id for c in self.classes}))
        self.classes.append(info)
        self.validate()
        return info

    def describe_ignore_index(self) -> ClassInfo | None:
        """Give an ``ignore_index`` that no class holds a void class of its own; the new class or None.

        Then the value has an identity that moves with it (``add_class`` pushes it up).
        """
        if self.ignore_index in (None, UNLABELLED) or self.by_index(self.ignore_index) is not None:
            return None
        info = ClassInfo(self.ignore_index, self._free_name("ignored"), (0, 0, 0), void=True,
                         id=new_class_id({c.id for c in self.classes}))
        self.classes.append(info)
        self.validate()
        return info

    def _free_name(self, base: str) -> str:
        name, n = base, 2
        while self.by_name(name) is not None:
            name, n = f"{base} ({n})", n + 1
        return name

    def _refuse_taken_name(self, name: str, index: int | None = None) -> None:
        other = self.by_name(name)
        if other is None or other.index == index:
            return
        why = (f"class {other.index} is already called {other.name!r}; class names must be unique "
               "(case and surrounding spaces are ignored)")
        if index is not None:
            old = self.describe(self.by_index(index))
            raise ValueError(f"cannot rename {old} to {name.strip()!r}: {why}")
        raise ValueError(why)

    def rename_class(self, index: int, name: str) -> None:
        """Give class ``index`` a new name; ``ValueError`` if another class has it already."""
        if self.by_index(index) is None:
            raise KeyError(f"no class with index {index}")
        if not name.strip():
            return  # a blank name keeps the old one
        self._refuse_taken_name(name, index)
        self._replace(index, name=name.strip())

    def remove_class(self, class_id: str) -> ClassInfo:
        """Remove a class by id; trainable classes above it move down one index.

        Only the schema changes: ``Project.delete_class`` remaps the stored masks.
        """
        gone = self.by_id(class_id)
        if gone is None:
            raise KeyError(f"no class with id {class_id!r}")
        if not gone.void and self.num_classes == 1:
            raise ValueError(f"cannot delete {gone.name!r}: it is the only class that is not void")
        rest = [c for c in self.classes if c.id != class_id]
        if not gone.void:
            rest = [replace(c, index=c.index - 1) if not c.void and c.index > gone.index else c
                    for c in rest]
        self.classes = rest
        if self.ignore_index == gone.index:
            self.ignore_index = None
        self.validate()
        return gone

    def move_class(self, class_id: str, index: int) -> None:
        """Give a trainable class another index 0..K-1; the classes between shift by one."""
        c = self.by_id(class_id)
        if c is None:
            raise KeyError(f"no class with id {class_id!r}")
        if c.void:
            raise ValueError(f"{c.name!r} is void: only classes that are trained can be moved")
        if not 0 <= index < self.num_classes:
            raise ValueError(f"index must be 0..{self.num_classes - 1}, got {index}")
        order = [t for t in self.trainable if t.id != class_id]
        order.insert(index, c)
        new = {t.id: replace(t, index=i) for i, t in enumerate(order)}
        self.classes = [new.get(t.id, t) for t in self.classes]
        self.validate()

    def recolor_class(self, index: int, color: tuple[int, int, int]) -> None:
        """Give class ``index`` a new RGB colour."""
        self._replace(index, color=tuple(int(v) for v in color))

    def _replace(self, index: int, **changes: Any) -> None:
        c = self.by_index(index)
        if c is None:
            raise KeyError(f"no class with index {index}")
        self.classes[self.classes.index(c)] = replace(c, **changes)

    def same_ids_as(self, other: "ClassSchema") -> bool:
        """True when both schemas hold the same classes (by id) at the same indices."""
        return sorted((c.index, c.id) for c in self.classes) == sorted((c.index, c.id) for c in other.classes)

    def copy(self) -> "ClassSchema":
        """An independent copy (ClassInfo objects are immutable)."""
        return ClassSchema(list(self.classes), self.ignore_index, self.name, dict(self.extra))


def _unique_names(infos: list[ClassInfo]) -> list[ClassInfo]:
    seen: set[str] = set()
    out = []
    for c in sorted(infos, key=lambda c: c.index):
        name, n = c.name, 2
        while name_key(name) in seen:
            name, n = f"{c.name} ({n})", n + 1
        seen.add(name_key(name))
        out.append(replace(c, name=name) if name != c.name else c)
    return out


def default_color(i: int) -> tuple[int, int, int]:
    """Colour for the i-th class of a new project."""
    if i < len(DEFAULT_COLORS):
        return DEFAULT_COLORS[i]
    rng = np.random.default_rng(i)
    return tuple(int(v) for v in rng.integers(40, 256, 3))

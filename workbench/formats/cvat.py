"""CVAT for images 1.1 XML (``annotations.xml``), as CVAT 2.x exports and imports it.

Read: the labels of ``<meta>`` (any of ``task``, ``job`` or ``project``: name and
``#rrggbb`` colour) give the classes in their order; every ``<image name width height>``
gives one mask. Area shapes are painted in the AREA convention of
:mod:`workbench.formats.raster` (pixel centres inside the shape): ``<polygon>``,
``<box>`` (with ``rotation``), ``<ellipse>`` and ``<mask rle left top width height>``.
The mask RLE is CVAT's own: comma-separated run lengths over the ``width x height`` box,
row by row (row-major), the first run counting 0s. Shapes are drawn by ``z_order``, and
in document order within one z_order, later over earlier, as CVAT stacks them.
``<polyline>``, ``<points>``, ``<cuboid>``, ``<skeleton>`` and ``<tag>`` cover no area:
they are listed, not painted. Pixels no shape covers are not labelled. Labels that
``<meta>`` does not list are added after the listed ones and reported; a label named
``__ignore__`` paints "not labelled". ``subset`` (Train / Validation / Test) gives the split.

SRC is the XML file, a folder holding ``annotations.xml`` (or one ``*.xml``), or the zip
CVAT downloads (its ``annotations.xml`` is read in place).

Write: ``annotations.xml`` with every trainable project class in ``<meta><task><labels>`` and one
``<polygon>`` per region (traced as raster.vectorise does, z_order 0, document order
is paint order), images under ``images/`` unless "none". CVAT polygons have no holes:
a hole is rebuilt by the shapes drawn after it. CVAT cannot paint "not labelled" (and
refuses labels its task lacks), so a region with a not-labelled hole is written as a
``<mask>`` of its exact pixels instead of a polygon. Void classes are not written: their
pixels are not labelled (the void rule of :mod:`workbench.formats.raster`); reading, a label
named like a void class (``Unlabelled``) is a void class.
"""

from __future__ import annotations

import io
import math
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO
from xml.sax.saxutils import quoteattr

import numpy as np

from workbench.atomic import atomic_open
from workbench.errors import InputError
from workbench.formats import images as image_files
from workbench.formats import raster
from workbench.formats.base import (NOT_LABELLED, DatasetClass, ExportClass, ExportItem, FormatSpec,
                                    ImageSize, Problem, ReadItem, ReadResult, WriteReport)
from workbench.formats.class_files import IGNORE_NAMES

XML_NAME = "annotations.xml"
AREA_TAGS = ("polygon", "box", "ellipse", "mask")
NO_AREA_TAGS = ("polyline", "points", "cuboid", "skeleton", "tag")
SPLIT_NAMES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
               "test": "test", "testing": "test"}
SUBSETS = {"train": "Train", "val": "Validation", "test": "Test"}   # CVAT's default subset names
MAX_XML_BYTES = 2 * 1024 ** 3


def _zip_member(path: Path) -> str | None:
    """The annotations.xml inside a CVAT export zip, or None."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if n.rsplit("/", 1)[-1] == XML_NAME]
    except (OSError, zipfile.BadZipFile):
        return None
    return min(names, key=len) if names else None


def find_xml(src: Path) -> Path | None:
    """The CVAT XML file for ``src`` (the file itself, the one in a folder, or a CVAT zip)."""
    src = Path(src)
    if src.is_file():
        if src.suffix.lower() == ".zip":
            return src if _zip_member(src) is not None else None
        return src if src.suffix.lower() == ".xml" else None
    if not src.is_dir():
        return None
    if (src / XML_NAME).is_file():
        return src / XML_NAME
    xmls = sorted(p for p in src.glob("*.xml") if p.is_file())
    return xmls[0] if len(xmls) == 1 else None


def detect(src: Path) -> bool:
    """True when ``src`` is (or holds) an XML whose root is CVAT's ``<annotations>``."""
    path = find_xml(src)
    if path is None:
        return False
    try:
        with _open_xml(path) as fh:
            head = fh.read(4096).decode("utf-8", "replace")
    except (OSError, zipfile.BadZipFile):
        return False
    return "<annotations" in head and ("<version>1.1</version>" in head or "<meta" in head or "<image " in head)


def _open_xml(path: Path) -> IO[bytes]:
    """The XML's bytes: the file, or the annotations.xml of a zip (read into memory, as
    the parser would hold the whole tree anyway)."""
    if path.suffix.lower() == ".zip":
        with zipfile.ZipFile(path) as zf:
            member = _zip_member(path)
            if member is None:
                raise OSError(f"no {XML_NAME} in the zip")
            if zf.getinfo(member).file_size > MAX_XML_BYTES:
                raise OSError("its annotations.xml is too large to be a CVAT annotation file")
            return io.BytesIO(zf.read(member))
    return open(path, "rb")


def _colour(text: str | None) -> tuple[int, int, int] | None:
    if not text:
        return None
    text = text.strip().lstrip("#")
    if len(text) != 6:
        return None
    try:
        return int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16)
    except ValueError:
        return None


def _meta_labels(root: ET.Element) -> list[tuple[str, tuple[int, int, int] | None]]:
    """Names and colours of ``<meta>``'s labels (task, job or project), sub-labels left out."""
    meta = root.find("meta")
    out: list[tuple[str, tuple[int, int, int] | None]] = []
    if meta is None:
        return out
    seen = set()
    for labels in meta.iter("labels"):
        for label in labels.findall("label"):
            name = (label.findtext("name") or "").strip()
            if (not name or name in seen or name.lower() in IGNORE_NAMES
                    or (label.findtext("parent") or "").strip()):
                continue
            seen.add(name)
            out.append((name, _colour(label.findtext("color"))))
    return out


def _floats(el: ET.Element, *keys: str) -> list[float]:
    vals = [float(el.attrib[k]) for k in keys]
    raster.check_coords(np.asarray(vals))
    return vals


def _points_attr(text: str) -> np.ndarray:
    pairs = [p.split(",") for p in text.strip().split(";") if p.strip()]
    if any(len(p) != 2 for p in pairs):
        raise ValueError("points are not x,y pairs separated by ';'")
    return raster.as_points([[float(x), float(y)] for x, y in pairs])


def _box_polygon(el: ET.Element) -> np.ndarray:
    xtl, ytl, xbr, ybr = _floats(el, "xtl", "ytl", "xbr", "ybr")
    pts = np.array([[xtl, ytl], [xbr, ytl], [xbr, ybr], [xtl, ybr]], float)
    angle = float(el.attrib.get("rotation", 0) or 0)
    if angle:
        # CVAT turns boxes clockwise (y down) about their centre, in degrees
        c = pts.mean(axis=0)
        t = math.radians(angle)
        rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
        pts = (pts - c) @ rot.T + c
    return pts


def _ellipse_polygon(el: ET.Element) -> np.ndarray:
    cx, cy, rx, ry = _floats(el, "cx", "cy", "rx", "ry")
    # about one vertex per pixel of circumference, within 32..720
    n = min(720, max(32, int(2 * math.pi * max(abs(rx), abs(ry), 1))))
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    pts = np.stack([rx * np.cos(t), ry * np.sin(t)], axis=1)
    angle = math.radians(float(el.attrib.get("rotation", 0) or 0))
    if angle:
        rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        pts = pts @ rot.T
    return pts + [cx, cy]


def decode_rle(rle: str, width: int, height: int) -> np.ndarray:
    """A CVAT mask RLE (runs over the box, row-major, 0s first) as a bool ``height x width``.

    Runs that stop short leave the rest of the box 0, as CVAT's own ``rle2Mask`` does;
    runs past the box are an error.
    """
    counts = [int(v) for v in rle.replace(" ", "").split(",") if v != ""]
    if any(c < 0 for c in counts):
        raise ValueError("negative run length")
    if width <= 0 or height <= 0:
        raise ValueError(f"an empty {width}x{height} box")
    total = sum(counts)
    if total > width * height:
        raise ValueError(f"the runs add up to {total} pixels, the {width}x{height} box has {width * height}")
    values = np.zeros(len(counts), bool)
    values[1::2] = True
    flat = np.zeros(width * height, bool)
    flat[:total] = np.repeat(values, counts)
    return flat.reshape(height, width)


def encode_rle(stencil: np.ndarray) -> str:
    """CVAT's RLE of a bool box (row-major runs, the first one counting 0s, maybe 0)."""
    flat = np.asarray(stencil, bool).ravel()
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        counts = [0] + counts
    return ", ".join(str(c) for c in counts)


def read(src: Path, *, image_size: ImageSize | None = None,
         classes: list[DatasetClass] | None = None) -> ReadResult:
    """Read a CVAT for images 1.1 XML (see the module docstring)."""
    path = find_xml(Path(src))
    if path is None:
        raise InputError("no CVAT annotations.xml here", src)
    if path.stat().st_size > MAX_XML_BYTES:
        raise InputError("too large to be a CVAT annotation file", path)
    try:
        with _open_xml(path) as fh:
            root = ET.parse(fh).getroot()
    except ET.ParseError as exc:
        raise InputError(f"not valid XML ({exc})", path) from None
    except (OSError, zipfile.BadZipFile) as exc:
        raise InputError(f"cannot read: {getattr(exc, 'strerror', None) or exc}", path) from None
    if root.tag != "annotations":
        raise InputError(f"not a CVAT annotation file: the root element is <{root.tag}>, not <annotations>", path)
    problems: list[Problem] = []
    where = str(path)
    if classes is None:
        classes = raster.mark_void_names(
            [DatasetClass(name, i, colour) for i, (name, colour) in enumerate(_meta_labels(root))])
    by_name = {c.name: c.value for c in classes}
    images = root.findall("image")
    extra: list[str] = []
    for el in images:
        for shape in el:
            label = shape.attrib.get("label")
            if (shape.tag in AREA_TAGS and label and label not in by_name and label.lower() not in IGNORE_NAMES
                    and label not in extra):
                extra.append(label)
    if extra:
        problems.append(Problem(where, f"labels that <meta> does not list (added as classes): {', '.join(extra)}"))
        used = {c.value for c in classes}
        free = (v for v in range(NOT_LABELLED) if v not in used)
        classes = classes + raster.mark_void_names([DatasetClass(name, next(free)) for name in extra])
        by_name = {c.name: c.value for c in classes}
    if root.find("track") is not None:
        problems.append(Problem(where, "<track> elements (CVAT for video) are not read: export the task "
                                       "as CVAT for images 1.1"))
    if not images and root.find("track") is None:
        problems.append(Problem(where, "no <image> elements"))
    result = ReadResult(classes=classes, items=[], problems=problems)

    def items() -> Iterator[ReadItem]:
        for el in images:
            item = _read_image(el, where, by_name, image_size, result.problems)
            if item is not None:
                yield item

    result.items = items()
    return result


def _read_image(el: ET.Element, where: str, by_name: dict[str, int], image_size: ImageSize | None,
                problems: list[Problem]) -> ReadItem | None:
    name = el.attrib.get("name")
    if not name:
        problems.append(Problem(where, f"<image id={el.attrib.get('id', '?')!r}> has no name; skipped"))
        return None
    here = f"{where} (image {name})"
    try:
        own = (int(el.attrib["height"]), int(el.attrib["width"]))
    except (KeyError, ValueError):
        own = None
    size = image_size(name) if image_size is not None else None
    if size is not None and own is not None and tuple(size) != own:
        problems.append(Problem(here, f"annotated as {own[1]}x{own[0]} but the image is {size[1]}x{size[0]}; "
                                      f"skipped"))
        return None
    size = size or own
    if size is None or size[0] <= 0 or size[1] <= 0:
        problems.append(Problem(here, "no width / height and no such image in the project; skipped"))
        return None
    h, w = size
    mask = np.full((h, w), NOT_LABELLED, np.uint8)
    shapes = []
    no_area: dict[str, int] = {}
    for order, shape in enumerate(el):
        if shape.tag in NO_AREA_TAGS:
            no_area[shape.tag] = no_area.get(shape.tag, 0) + 1
            continue
        if shape.tag not in AREA_TAGS:
            continue
        try:
            z = int(shape.attrib.get("z_order", 0) or 0)
        except ValueError:
            z = 0
        shapes.append((z, order, shape))
    shapes.sort(key=lambda s: (s[0], s[1]))
    clipped: list[str] = []
    for n, (_z, _order, shape) in enumerate(shapes, 1):
        label = shape.attrib.get("label", "")
        if label.lower() in IGNORE_NAMES:
            value = NOT_LABELLED
        elif label in by_name:
            value = by_name[label]
        else:
            problems.append(Problem(here, f"<{shape.tag}> {n} has no known label ({label!r}); skipped"))
            continue
        what = f"<{shape.tag}> {n} ({label})"
        try:
            if shape.tag == "mask":
                left, top = int(float(shape.attrib["left"])), int(float(shape.attrib["top"]))
                bw, bh = int(float(shape.attrib["width"])), int(float(shape.attrib["height"]))
                if bw * bh > 4 * h * w:
                    raise ValueError(f"a {bw}x{bh} mask box, far larger than the {w}x{h} image")
                stencil = decode_rle(shape.attrib["rle"], bw, bh)
                r0, c0, r1, c1 = max(top, 0), max(left, 0), min(top + bh, h), min(left + bw, w)
                if r0 >= r1 or c0 >= c1:
                    problems.append(Problem(here, f"{what} lies outside the {w}x{h} image; skipped"))
                    continue
                if (r0, c0, r1, c1) != (top, left, top + bh, left + bw):
                    clipped.append(what)
                sub = stencil[r0 - top:r1 - top, c0 - left:c1 - left]
                mask[r0:r1, c0:c1][sub] = value
                continue
            if shape.tag == "polygon":
                pts = _points_attr(shape.attrib["points"])
                if len(pts) < 3:
                    raise ValueError(f"a polygon needs at least 3 points, has {len(pts)}")
            elif shape.tag == "box":
                pts = _box_polygon(shape)
            else:
                pts = _ellipse_polygon(shape)
        except KeyError as exc:
            problems.append(Problem(here, f"{what} lacks its {exc.args[0]!r} attribute; skipped"))
            continue
        except ValueError as exc:
            problems.append(Problem(here, f"{what}: {exc}; skipped"))
            continue
        placed = raster.placement(pts, h, w, raster.AREA)
        if placed == "outside":
            problems.append(Problem(here, f"{what} lies outside the {w}x{h} image; skipped"))
            continue
        if placed == "clipped":
            clipped.append(what)
        raster.paint_polygon(mask, pts, value, raster.AREA)
    if clipped:
        problems.append(Problem(here, f"shapes partly outside the {w}x{h} image, clipped: {', '.join(clipped)}"))
    if no_area:
        listed = ", ".join(f"{k} {t}" for t, k in sorted(no_area.items()))
        problems.append(Problem(here, f"shapes with no area, not painted: {listed}"))
    subset = (el.attrib.get("subset") or "").strip().lower()
    return ReadItem(image=name, mask=mask, source=where, split=SPLIT_NAMES.get(subset))


# ----- write ----------------------------------------------------------------------------
def _hex(color: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*(int(c) for c in color))


def _fmt(v: float) -> str:
    return f"{v:.2f}"


def write(out: Path, items: Iterable[ExportItem], classes: list[ExportClass], *,
          images: str = "copy") -> WriteReport:
    """Write ``annotations.xml`` (and ``images/`` unless "none") under ``out``."""
    out = Path(out)
    image_files.check_mode(images)
    rep = WriteReport()
    # void classes are not written: their pixels are not labelled, <meta> does not list
    # them (raster.trainable, raster.without_void)
    trainable = raster.trainable(classes)
    names = {c.value: c.name for c in trainable}
    body: list[str] = []
    count = 0
    for item in items:
        mask = raster.without_void(item.mask, classes)
        h, w = mask.shape
        _, values = raster.named_values(mask, names, item.name, rep.problems)
        subset = f" subset={quoteattr(SUBSETS.get(item.split, item.split))}" if item.split else ""
        body.append(f"  <image id=\"{count}\" name={quoteattr(item.name)} width=\"{w}\" height=\"{h}\"{subset}>")
        for value, shape in _shapes(mask, values):
            label = quoteattr(names[value])
            if isinstance(shape, tuple):
                left, top, stencil = shape
                body.append(f"    <mask label={label} source=\"manual\" occluded=\"0\" rle=\"{encode_rle(stencil)}\" "
                            f"left=\"{left}\" top=\"{top}\" width=\"{stencil.shape[1]}\" "
                            f"height=\"{stencil.shape[0]}\" z_order=\"0\">\n    </mask>")
            else:
                pts = ";".join(f"{_fmt(x)},{_fmt(y)}" for x, y in shape)
                body.append(f"    <polygon label={label} source=\"manual\" occluded=\"0\" "
                            f"points=\"{pts}\" z_order=\"0\">\n    </polygon>")
        body.append("  </image>")
        image_files.place_into(rep, item.image_path, out / "images" / item.name, images)
        count += 1
    labels = [(c.name, _hex(c.color)) for c in trainable]
    head = ["<?xml version=\"1.0\" encoding=\"utf-8\"?>", "<annotations>", "  <version>1.1</version>",
            "  <meta>", "    <task>", "      <name>segmentation-workbench export</name>",
            f"      <size>{count}</size>", "      <mode>annotation</mode>", "      <labels>"]
    for name, colour in labels:
        head += ["        <label>", f"          <name>{_escape(name)}</name>", f"          <color>{colour}</color>",
                 "          <type>polygon</type>", "          <attributes>", "          </attributes>",
                 "        </label>"]
    head += ["      </labels>", "    </task>", "  </meta>"]
    path = out / XML_NAME
    with atomic_open(path, "w") as fh:
        fh.write("\n".join(head + body + ["</annotations>"]) + "\n")
    rep.files.append(path)
    rep.written = count
    return rep


def _shapes(mask: np.ndarray, values: list[int]) -> list[tuple[int, np.ndarray | tuple[int, int, np.ndarray]]]:
    """The shapes that paint ``mask`` in CVAT: (value, polygon) or (value, (left, top, stencil)).

    Polygons, traced as raster.vectorise does. CVAT has no way to paint "not labelled" and
    refuses labels a task does not have, so a polygon that would cover not-labelled pixels
    (a hole in a region) is written as a ``<mask>`` of its pixels less those: exact, and
    still one shape of the class.
    """
    regions = raster.vectorise(mask, raster.AREA, values=values, void_regions=True)
    void = mask == NOT_LABELLED
    out: list = []
    needs_masks = any(r.value == NOT_LABELLED for r in regions)
    for r in regions:
        if r.value == NOT_LABELLED:
            continue
        if needs_masks:
            cover = np.zeros(mask.shape, np.uint8)
            raster.paint_polygon(cover, r.points, 1, raster.AREA)
            hit = cover.astype(bool)
            if (hit & void).any():
                keep = hit & ~void
                rows, cols = np.nonzero(keep)
                if len(rows) == 0:
                    continue
                top, left = int(rows.min()), int(cols.min())
                out.append((r.value, (left, top, keep[top:rows.max() + 1, left:cols.max() + 1])))
                continue
        out.append((r.value, r.points))
    return out


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


FORMAT = FormatSpec(
    name="cvat", title="CVAT for images 1.1", detect=detect, read=read, write=write, lossless=False,
    source_kind="file",
    description="annotations.xml: polygons, boxes, ellipses and mask RLE per image; labels in <meta>")

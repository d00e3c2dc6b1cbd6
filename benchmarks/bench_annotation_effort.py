"""Annotation effort: how many actions a simulated annotator needs to reach a target agreement.

    .venv/bin/python benchmarks/bench_annotation_effort.py --images DIR --masks DIR --classes FILE
        [--model CKPT] [--limit N] [--target 0.95] [--json] [--max-actions 200] [--jobs N]
        [--device cpu] [--grabcut-size 4096]

A simulated annotator who knows the ground truth turns a mask into one that agrees with
it on at least ``--target`` of the non-void pixels, through the project's own editing
API (``LabelEditor`` and the operations in ``workbench.editing``: the functions the app
calls). Three arms on the same images:

- **scratch**: an empty mask; polygon, fill and brush.
- **model-manual**: the model's prediction accepted (1 action); the same manual tools.
- **model-assisted**: the prediction accepted with Accept confident (1 action, at
  threshold 0, i.e. everywhere: an annotator who knows the truth gains nothing by
  leaving pixels unlabelled), then every tool: magic wand, smart region (GrabCut with
  the U-Net prior of the class), superpixel clicks / drags, and the manual tools.

Counting: a click, a box drag or one brush / superpixel stroke = 1 action; a polygon =
1 action per vertex, vertices from ``cv2.approxPolyDP`` at epsilon 2 px on each
contour (holes of 10 px or more are polygons too); moving a slider (brush size in
steps 1-64 px, wand tolerance, superpixel size) to another value = 1 action. A brush
stroke is straight, along the target's principal axis; the wand is tried at three
points of the target with four tolerances, the smart region as a box around the target
(100 px or more), with and without the U-Net prior; a superpixel (8-64 px) drag is that
straight path, or a zig-zag over a group of cells costing one stroke per row of cells
across the group's narrower side. The annotator always works on the
largest remaining error region (8-connected pixels whose label differs from the truth):
the largest connected part of that region's majority true class is the target. Every
tool the arm allows proposes candidate actions for it; each is tried through the editor
and undone, and the one that makes the most pixels right (net) per action is kept (a
tool that makes no net gain is never used). A region no candidate improves is skipped. At
most ``--max-actions`` (200) per image; an image that stops below the target counts the
actions it used and is not counted in ``reached_target``.

The per-image table goes to stdout (stderr with ``--json``); the last stdout line is one
JSON object: {"images", "scratch", "model_manual", "model_assisted", "ratio_assisted",
"ratio_manual", "reached_target", ...} with mean actions per arm. ``reached_target`` is
the fraction of images on which every arm that ran reached the target (per arm in
"reached"). Without ``--model`` only the scratch arm runs and the model keys are null.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from workbench.classes import UNLABELLED, ClassSchema
from workbench.editing import LabelEditor
from workbench.editing.confidence import confident_region
from workbench.editing.geometry import polygon_mask
from workbench.editing.smart_region import class_prior, smart_region
from workbench.editing.superpixels import SuperpixelCache, superpixel_selection
from workbench.editing.wand import magic_wand
from workbench.errors import InputError, WorkbenchError
from workbench.imageio import list_images, read_image
from workbench.masks import ignore_lut, read_mask

EPSILON = 2.0                      # approxPolyDP epsilon, pixels (the rule)
MIN_HOLE = 10                      # holes smaller than this are not traced
WAND_TOLERANCES = (12, 24, 40, 64)
WAND_DEFAULT = 24
SP_SIZES = (8, 16, 32, 64)
SP_DEFAULT = 16
SMART_MIN_AREA = 100
BRUSH_RADII = (1, 2, 4, 8, 16, 32, 64)
BRUSH_DEFAULT = 8
ARMS = ("scratch", "model_manual", "model_assisted")


# ----- one candidate action --------------------------------------------------------------
@dataclass
class Candidate:
    """An action the annotator could take: its tool, cost in actions, how to apply it."""

    tool: str
    cost: int
    apply: Callable[[LabelEditor], object]
    state: dict = field(default_factory=dict)  # slider settings it leaves behind


@dataclass
class ArmResult:
    actions: int
    agreement: float
    reached: bool
    tools: Counter


class Annotator:
    """Greedy simulated annotator over one image, for one arm."""

    def __init__(self, image: np.ndarray, gt: np.ndarray, valid: np.ndarray, *, assisted: bool,
                 pred: np.ndarray | None = None, conf: np.ndarray | None = None,
                 sp_cache: SuperpixelCache | None = None, key: str = "") -> None:
        self.image, self.gt, self.valid = image, gt, valid
        self.assisted = assisted
        self.pred, self.conf = pred, conf
        self.sp_cache = sp_cache or SuperpixelCache()
        self.key = key
        self.n_valid = max(1, int(valid.sum()))
        self.state = {"tolerance": WAND_DEFAULT, "sp_size": SP_DEFAULT, "radius": BRUSH_DEFAULT}
        self._cell_points: dict[int, np.ndarray] = {}
        self.rng = np.random.default_rng(0)

    # ----- measuring -------------------------------------------------------------------
    def correct(self, mask: np.ndarray, box: tuple[int, int, int, int] | None = None) -> int:
        if box is None:
            return int(((mask == self.gt) & self.valid).sum())
        y0, x0, y1, x1 = box
        return int(((mask[y0:y1, x0:x1] == self.gt[y0:y1, x0:x1]) & self.valid[y0:y1, x0:x1]).sum())

    def gain(self, ed: LabelEditor, cand: Candidate) -> int:
        """Net pixels made right by ``cand`` (tried through the editor, then undone)."""
        try:
            box = cand.apply(ed)
        except InputError:
            return 0
        if box is None:
            return 0
        after = self.correct(ed.mask, box)
        ed.undo()
        return after - self.correct(ed.mask, box)

    # ----- candidates for one target ------------------------------------------------------
    def candidates(self, target: np.ndarray, region: np.ndarray, c: int) -> list[Candidate]:
        out = [self._polygon(target, c), self._fill(target, c)]
        out += self._brush(target, c)
        if self.assisted:
            out += self._wand(target, c)
            out += self._smart(target, c)
            out += self._superpixels(target, c)
        return [cand for cand in out if cand is not None]

    def _interior_points(self, target: np.ndarray, n: int) -> list[tuple[int, int]]:
        dist = cv2.distanceTransform(np.pad(target, 1).astype(np.uint8), cv2.DIST_L2, 3)[1:-1, 1:-1]
        y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
        pts = [(int(y), int(x))]
        ys, xs = np.nonzero(target)
        for i in self.rng.choice(ys.size, size=min(n - 1, ys.size), replace=False):
            pts.append((int(ys[i]), int(xs[i])))
        return pts

    def _polygon(self, target: np.ndarray, c: int) -> Candidate | None:
        contours, hierarchy = cv2.findContours(target.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
        if not contours:
            return None
        polys: list[tuple[np.ndarray, bool]] = []
        for cnt, hier in zip(contours, hierarchy[0]):
            hole = hier[3] != -1
            if hole and cv2.contourArea(cnt) < MIN_HOLE:
                continue
            approx = cv2.approxPolyDP(cnt, EPSILON, True).reshape(-1, 2)
            if len(approx) < 3:  # a speck or a thin line: its bounding rectangle, 4 clicks
                x, y, w, h = cv2.boundingRect(cnt)
                approx = np.array([[x, y], [x + w - 1, y], [x + w - 1, y + h - 1], [x, y + h - 1]])
            polys.append((approx.astype(np.float64), hole))
        cost = sum(len(p) for p, _ in polys)
        shape = target.shape

        def apply(ed: LabelEditor):
            if len(polys) == 1:
                return ed.fill_polygon([tuple(p) for p in polys[0][0]], c)
            sel = np.zeros(shape, bool)
            for pts, hole in polys:  # outer polygons first in RETR_CCOMP order; holes cut out
                found = polygon_mask([tuple(p) for p in pts], shape)
                if found is None:
                    continue
                (y0, x0, y1, x1), m = found
                if hole:
                    sel[y0:y1, x0:x1] &= ~m
                else:
                    sel[y0:y1, x0:x1] |= m
            return ed.paint_selection(sel, c, kind="polygon")

        return Candidate("polygon", cost, apply)

    def _fill(self, target: np.ndarray, c: int) -> Candidate:
        y, x = self._interior_points(target, 1)[0]
        return Candidate("fill", 1, lambda ed: ed.fill(y, x, c))

    def _brush(self, target: np.ndarray, c: int) -> list[Candidate]:
        dist = cv2.distanceTransform(np.pad(target, 1).astype(np.uint8), cv2.DIST_L2, 3)[1:-1, 1:-1]
        ys, xs = np.nonzero(target)
        if ys.size == 0:
            return []
        # One straight stroke along the target's principal axis, as wide as the target.
        pts = np.stack([ys, xs], 1).astype(np.float64)
        mean = pts.mean(0)
        _, _, vt = np.linalg.svd(pts - mean, full_matrices=False)
        axis = vt[0]
        proj = (pts - mean) @ axis
        # One straight stroke along the target's principal axis, with the brush size
        # (a slider with steps) nearest the target's half-width or a bit under it.
        widest = float(dist.max())
        wanted = {max(1.0, widest), max(1.0, float(np.percentile(dist[target], 75)))}
        radii = {min(BRUSH_RADII, key=lambda r: abs(r - w)) for w in wanted}
        out = []
        for r in sorted(radii):
            lo, hi = proj.min() + r, proj.max() - r
            if hi < lo:
                lo = hi = (proj.min() + proj.max()) / 2
            p0, p1 = mean + lo * axis, mean + hi * axis

            def apply(ed: LabelEditor, p0=p0, p1=p1, r=r):
                ed.begin_stroke(c)
                ed.stroke_to(p0[0], p0[1], r)
                ed.stroke_to(p1[0], p1[1], r)
                return ed.end_stroke()

            out.append(Candidate("brush", 1 + self._slider_cost("radius", r), apply, {"radius": r}))
        return out

    def _points_of_cells(self, size: int, labels: np.ndarray) -> np.ndarray:
        """(N, 2) one pixel (y, x) inside each superpixel: where a click on it lands."""
        if size not in self._cell_points:
            _, first = np.unique(labels.ravel(), return_index=True)
            self._cell_points[size] = np.stack(np.unravel_index(first, labels.shape), 1)
        return self._cell_points[size]

    @staticmethod
    def _axis_path(target: np.ndarray) -> list[tuple[int, int]] | None:
        """Pixels (y, x) every 2 px along the target's principal axis, inside the target."""
        ys, xs = np.nonzero(target)
        if ys.size < 2:
            return None
        pts = np.stack([ys, xs], 1).astype(np.float64)
        mean = pts.mean(0)
        axis = np.linalg.svd(pts - mean, full_matrices=False)[2][0]
        proj = (pts - mean) @ axis
        ts = np.arange(proj.min(), proj.max() + 1, 2.0)
        line = np.rint(mean + ts[:, None] * axis).astype(int)
        h, w = target.shape
        line = line[(line[:, 0] >= 0) & (line[:, 0] < h) & (line[:, 1] >= 0) & (line[:, 1] < w)]
        line = line[target[line[:, 0], line[:, 1]]]
        return [(int(y), int(x)) for y, x in line] or None

    def _slider_cost(self, name: str, value: int) -> int:
        return 0 if self.state[name] == value else 1

    def _wand(self, target: np.ndarray, c: int) -> list[Candidate]:
        out = []
        for y, x in self._interior_points(target, 3):
            for tol in WAND_TOLERANCES:
                def apply(ed: LabelEditor, y=y, x=x, tol=tol):
                    return ed.paint_selection(magic_wand(self.image, (y, x), tol), c, kind="wand")

                out.append(Candidate("wand", 1 + self._slider_cost("tolerance", tol), apply, {"tolerance": tol}))
        return out

    def _smart(self, target: np.ndarray, c: int) -> list[Candidate]:
        ys, xs = np.nonzero(target)
        h, w = target.shape
        pad = 3
        box = (max(0, int(xs.min()) - pad), max(0, int(ys.min()) - pad),
               min(w, int(xs.max()) + 1 + pad), min(h, int(ys.max()) + 1 + pad))
        # Small targets are the wand's, the brush's and the superpixels'; a box drag
        # around a few dozen pixels is never the better action and GrabCut is the slow one.
        if box[2] - box[0] < 4 or box[3] - box[1] < 4 or ys.size < SMART_MIN_AREA:
            return []
        priors: list[np.ndarray | None] = [None]
        if self.pred is not None:
            priors.append(class_prior(self.pred, self.conf, c))
        out = []
        for prior in priors:
            cache: dict[str, np.ndarray] = {}

            def apply(ed: LabelEditor, prior=prior, cache=cache):
                if "sel" not in cache:  # GrabCut is randomised: compute once, reuse
                    cache["sel"] = smart_region(self.image, box, prior=prior)
                return ed.paint_selection(cache["sel"], c, kind="smart-region")

            out.append(Candidate("smart-region" if prior is None else "smart-region+prior", 1, apply))
        return out

    def _superpixels(self, target: np.ndarray, c: int) -> list[Candidate]:
        out = []
        truth_c = (self.gt == c) & self.valid
        for size in SP_SIZES:
            labels = self.sp_cache.get(self.key, self.image, size)
            n = int(labels.max()) + 1
            in_target = np.bincount(labels[target], minlength=n)
            if not in_target.any():
                continue
            of_c = np.bincount(labels[truth_c], minlength=n)
            of_valid = np.maximum(1, np.bincount(labels[self.valid], minlength=n))
            extra = self._slider_cost("sp_size", size)
            where = self._points_of_cells(size, labels)
            best = int(np.argmax(in_target))
            click = [tuple(int(v) for v in where[best])]
            out.append(Candidate("superpixel", 1 + extra,
                                 lambda ed, pts=click, lab=labels: ed.paint_selection(
                                     superpixel_selection(lab, pts), c, kind="superpixel"), {"sp_size": size}))
            # A straight drag along the target's principal axis: the cells under its path.
            line = self._axis_path(target)
            if line is not None:
                out.append(Candidate("superpixel", 1 + extra,
                                     lambda ed, pts=line, lab=labels: ed.paint_selection(
                                         superpixel_selection(lab, pts), c, kind="superpixel"),
                                     {"sp_size": size}))
            # Zig-zag drags over every touched cell that is mostly class c: per connected
            # group of cells, one pass per row of cells across its narrower side.
            for frac in (0.5, 0.75):
                cells = np.flatnonzero((in_target > 0) & (of_c / of_valid >= frac))
                if cells.size == 0:
                    continue
                lut = np.zeros(n, bool)
                lut[cells] = True
                union = lut[labels].astype(np.uint8)
                groups, _, gstats, _ = cv2.connectedComponentsWithStats(union, connectivity=8)
                strokes = sum(max(1, math.ceil(min(int(gstats[g, 2]), int(gstats[g, 3])) / size))
                              for g in range(1, groups))
                pts = [tuple(int(v) for v in where[cell]) for cell in cells]
                out.append(Candidate("superpixel", strokes + extra,
                                     lambda ed, pts=pts, lab=labels: ed.paint_selection(
                                         superpixel_selection(lab, pts), c, kind="superpixel"),
                                     {"sp_size": size}))
        return out

    # ----- the loop ----------------------------------------------------------------------
    def run(self, mask: np.ndarray, *, target: float, max_actions: int, start_actions: int = 0,
            start_tool: str | None = None) -> ArmResult:
        ed = LabelEditor(mask)
        actions = start_actions
        tools: Counter = Counter()
        if start_tool:
            tools[start_tool] += start_actions
        skipped = np.zeros(self.gt.shape, bool)
        correct = self.correct(ed.mask)
        while correct / self.n_valid < target and actions < max_actions:
            err = ((ed.mask != self.gt) & self.valid & ~skipped).astype(np.uint8)
            n, labels, stats, _ = cv2.connectedComponentsWithStats(err, connectivity=8)
            if n <= 1:
                break
            r = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
            x, y, w, h = (int(v) for v in stats[r, :4])
            region = np.zeros(self.gt.shape, bool)
            region[y:y + h, x:x + w] = labels[y:y + h, x:x + w] == r
            classes = np.bincount(self.gt[region], minlength=256)
            c = int(np.argmax(classes))
            part = (region & (self.gt == c)).astype(np.uint8)
            m, plabels, pstats, _ = cv2.connectedComponentsWithStats(part, connectivity=8)
            tgt = plabels == 1 + int(np.argmax(pstats[1:, cv2.CC_STAT_AREA]))
            best, best_key = None, (0.0, 0)
            for cand in self.candidates(tgt, region, c):
                if cand.cost > max_actions - actions:
                    continue
                g = self.gain(ed, cand)
                if g <= 0:
                    continue
                # Plain greedy: most pixels made right per action. Pricing what an action
                # leaves wrong as the polygons that would finish it (a look-ahead) was
                # tried and cost more actions on CamVid: a ragged remainder is usually
                # fixed by another cheap stroke, not a polygon.
                key = (g / cand.cost, g)
                if key > best_key:
                    best, best_key = cand, key
            if best is None:
                skipped |= region
                continue
            best.apply(ed)
            actions += best.cost
            tools[best.tool] += best.cost
            self.state.update(best.state)
            correct = self.correct(ed.mask)
        agreement = correct / self.n_valid
        return ArmResult(actions, agreement, agreement >= target, tools)


# ----- per image ---------------------------------------------------------------------------
def run_image(args: tuple) -> dict:
    """All arms on one image: (key, image, gt, valid, pred, conf, target, max_actions)."""
    key, image, gt, valid, pred, conf, target, max_actions = args
    cv2.setNumThreads(1)
    out: dict = {"image": key, "pred_agreement": None}
    empty = np.full(gt.shape, UNLABELLED, np.uint8)
    t0 = time.perf_counter()
    out["scratch"] = Annotator(image, gt, valid, assisted=False, key=key).run(
        empty.copy(), target=target, max_actions=max_actions)
    if pred is not None:
        base = Annotator(image, gt, valid, assisted=False, key=key)
        out["pred_agreement"] = base.correct(pred) / base.n_valid
        # model-manual: "Accept prediction" on the whole image, 1 action.
        manual = empty.copy()
        LabelEditor(manual).accept_prediction(pred)
        out["model_manual"] = base.run(manual, target=target, max_actions=max_actions,
                                       start_actions=1, start_tool="accept")
        # model-assisted: "Accept confident" (threshold 0: everywhere), 1 action.
        assisted = empty.copy()
        LabelEditor(assisted).accept_where(pred, confident_region(pred, conf, 0.0))
        ann = Annotator(image, gt, valid, assisted=True, pred=pred, conf=conf, key=key)
        out["model_assisted"] = ann.run(assisted, target=target, max_actions=max_actions,
                                        start_actions=1, start_tool="accept-confident")
    out["seconds"] = time.perf_counter() - t0
    return out


def load_pairs(images: Path, masks: Path, limit: int | None, every: int = 1) -> list[tuple[Path, Path]]:
    by_stem = {p.stem: p for p in list_images(masks)}
    pairs = [(p, by_stem[p.stem]) for p in list_images(images) if p.stem in by_stem][::max(1, every)]
    if not pairs:
        raise InputError("no image in this folder has a mask with the same file stem", images)
    return pairs[:limit] if limit else pairs


def grabcut_4k(size: int) -> str:
    """Time one smart-region box on a synthetic size x size image (a noisy disc)."""
    rng = np.random.default_rng(0)
    yy, xx = np.ogrid[:size, :size]
    disc = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 3) ** 2
    img = np.empty((size, size, 3), np.uint8)
    img[:] = (60, 140, 60)
    img[disc] = (190, 70, 60)
    img = cv2.add(img, rng.integers(0, 24, img.shape, dtype=np.uint8))
    m = size // 8
    t = time.perf_counter()
    sel = smart_region(img, (m, m, size - m, size - m))
    dt = time.perf_counter() - t
    iou = float((sel & disc).sum() / max(1, (sel | disc).sum()))
    return f"smart_region on {size}x{size}, box {size - 2 * m}x{size - 2 * m}: {dt:.2f} s, IoU {iou:.3f}"


OBJECT_CLASSES = "Car,Pedestrian,SignSymbol,Bicyclist,Pole"
"""Default ``--objects``: the CamVid classes whose connected regions are the objects."""


def smart_iou(pairs: list[tuple[Path, Path]], schema: ClassSchema, predictor, n_objects: int,
              objects: str = OBJECT_CLASSES, min_area: int = 300, pad: int = 3) -> list[str]:
    """IoU of smart_region(box) with the true object, over ``n_objects`` objects.

    ``objects``: kinds of object separated by ",", each one class name or several joined
    by "+" (one object = a connected region of their union: "cytoplasm+nucleus" is a
    cell; the prior is then that of the first class). Objects are the 8-connected
    regions (``min_area`` px or more) of each kind in the ground truth, taken evenly
    over all of them; the box is the object's bounding
    box plus ``pad`` px, as a person drags it. Each is run without and (with a model) with
    the prior of its class, with the code before the fix (no upscale, the old prior
    rules), the upscale alone and today's code. Returns the table's lines.
    """
    import importlib

    sr = importlib.import_module("workbench.editing.smart_region")  # the module, not the function

    by_name = {c.name: c.index for c in schema.classes}
    kinds_wanted: list[tuple[int, ...]] = []
    for kind in objects.split(","):
        names = [n.strip() for n in kind.split("+") if n.strip()]
        missing = [n for n in names if n not in by_name]
        if missing:
            raise InputError(f"--objects: no class named {', '.join(missing)}; the classes are "
                             + ", ".join(by_name))
        kinds_wanted.append(tuple(by_name[n] for n in names))
    found = []
    for img_path, mask_path in pairs:
        image = read_image(img_path)
        gt = read_mask(mask_path, schema, image.shape[:2])
        for kind in kinds_wanted:
            n, lab, stats, _ = cv2.connectedComponentsWithStats(np.isin(gt, kind).astype(np.uint8), connectivity=8)
            found += [(img_path, mask_path, kind, i, stats[i]) for i in range(1, n) if stats[i, 4] >= min_area]
    if not found:
        raise InputError(f"no object region of {objects} in these masks")
    pick = [found[int(i)] for i in np.linspace(0, len(found) - 1, min(n_objects, len(found)))]
    # (name, MIN_SIDE, PRIOR_BG, MIN_PRIOR_FILL): "before" is the code before the fix
    # exactly (no upscale; every pixel under 0.5 starts as background; a prior is used
    # from 0.5 % of the box), then the upscale alone, then today's code.
    today = (sr.MIN_SIDE, sr.PRIOR_BG, sr.MIN_PRIOR_FILL)
    arms = [("before", 0, 0.5, 0.005), (f"upscale to {today[0]} only", today[0], 0.5, 0.005),
            (f"after (upscale, prior < {today[1]} / fill {today[2]})", *today)]
    priors = (False, True) if predictor is not None else (False,)
    ious: dict = {(a[0], p): [] for a in arms for p in priors}
    cpu: dict = {k: 0.0 for k in ious}
    cache: dict = {}
    try:
        for img_path, mask_path, c, i, st in pick:
            if img_path not in cache:
                image = read_image(img_path)
                gt = read_mask(mask_path, schema, image.shape[:2])
                pred = predictor.predict(image) if predictor is not None else None
                cache = {img_path: (image, gt, pred)}
            image, gt, pred = cache[img_path]
            _, lab, _, _ = cv2.connectedComponentsWithStats(np.isin(gt, c).astype(np.uint8), connectivity=8)
            truth = lab == i
            x, y, w, h = (int(v) for v in st[:4])
            box = (max(0, x - pad), max(0, y - pad), min(gt.shape[1], x + w + pad), min(gt.shape[0], y + h + pad))
            for arm, side, prior_bg, fill in arms:
                sr.MIN_SIDE, sr.PRIOR_BG, sr.MIN_PRIOR_FILL = side, prior_bg, fill
                for use_prior in priors:
                    if use_prior is False and side == arms[-1][1] and arm != arms[-1][0]:
                        continue  # without a prior the prior rules change nothing
                    prior = class_prior(pred.mask, pred.confidence, c[0]) if use_prior else None
                    cv2.setRNGSeed(0)
                    t = time.process_time()
                    sel = smart_region(image, box, prior=prior)
                    cpu[(arm, use_prior)] += time.process_time() - t
                    ious[(arm, use_prior)].append(float((sel & truth).sum() / max(1, (sel | truth).sum())))
    finally:
        sr.MIN_SIDE, sr.PRIOR_BG, sr.MIN_PRIOR_FILL = today
    names = {c.index: c.name for c in schema.classes}
    kinds = Counter("+".join(names[k] for k in c) for _, _, c, _, _ in pick)
    lines = [f"smart region IoU over {len(pick)} objects ({', '.join(f'{k} {v}' for k, v in kinds.items())}), "
             f"box = bounding box + {pad} px",
             "| code | prior | mean IoU | median | IoU < 0.1 | IoU >= 0.7 | CPU s / box |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for (arm, use_prior), v in ious.items():
        if not v:
            continue
        a = np.array(v)
        lines.append(f"| {arm} | {'model' if use_prior else 'none'} | {a.mean():.3f} | {np.median(a):.3f} | "
                     f"{int((a < 0.1).sum())} | {int((a >= 0.7).sum())} | {cpu[(arm, use_prior)] / len(a):.2f} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", required=True, type=Path)
    ap.add_argument("--masks", required=True, type=Path)
    ap.add_argument("--classes", required=True, type=Path)
    ap.add_argument("--model", type=Path, help="checkpoint for the two model arms")
    ap.add_argument("--limit", type=int, help="first N images (by name, after --every)")
    ap.add_argument("--every", type=int, default=1, help="every K-th image by name (spread over a sequence)")
    ap.add_argument("--target", type=float, default=0.95, help="agreement to reach (default 0.95)")
    ap.add_argument("--json", action="store_true", help="table to stderr; stdout has only the JSON line")
    ap.add_argument("--max-actions", type=int, default=200)
    ap.add_argument("--jobs", type=int, default=1, help="images simulated in parallel processes")
    ap.add_argument("--device", default="cpu", help="device for the model's predictions (default cpu)")
    ap.add_argument("--grabcut-size", type=int, default=0, help="also time smart region on an NxN image")
    ap.add_argument("--smart-iou", type=int, default=0, metavar="N",
                    help="only measure smart region's IoU on N object regions (before / after the upscale)")
    ap.add_argument("--objects", default=OBJECT_CLASSES,
                    help="--smart-iou objects: class names, ',' between kinds, '+' joins classes into one")
    args = ap.parse_args(argv)
    table = sys.stderr if args.json else sys.stdout

    def say(line: str = "") -> None:
        print(line, file=table, flush=True)

    try:
        schema = ClassSchema.load(args.classes)
        pairs = load_pairs(args.images, args.masks, args.limit, args.every)
        ignore = ignore_lut(schema)
        predictor = None
        if args.model is not None:
            from workbench.ml.inference import Predictor

            predictor = Predictor.from_checkpoint(args.model, device=args.device, schema=schema)
        if args.smart_iou:
            say(f"# {platform.node()} {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
            for line in smart_iou(pairs, schema, predictor, args.smart_iou, args.objects):
                say(line)
            return 0
        jobs = []
        for img_path, mask_path in pairs:
            try:
                image = read_image(img_path)
                gt = read_mask(mask_path, schema, image.shape[:2])
            except InputError as exc:  # one bad pair is reported and skipped, not fatal
                print(f"skipped: {exc}", file=sys.stderr)
                continue
            if not (~ignore[gt]).any():
                print(f"skipped: {mask_path}: no pixel of the mask is a class (all void)", file=sys.stderr)
                continue
            pred = conf = None
            if predictor is not None:
                p = predictor.predict(image)
                pred, conf = p.mask, p.confidence
            jobs.append((img_path.stem, image, gt, ~ignore[gt], pred, conf, args.target, args.max_actions))
    except WorkbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not jobs:
        print("error: no image could be used (see the messages above)", file=sys.stderr)
        return 2

    say(f"# {platform.node()} {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; "
        f"{len(jobs)} images, target {args.target}, max {args.max_actions} actions")
    say(f"{'image':<24} {'pred':>6} {'scratch':>9} {'manual':>9} {'assisted':>9}   s")
    results = []

    def row(res: dict) -> None:
        def cell(arm: str) -> str:
            r = res.get(arm)
            return "-" if r is None else f"{r.actions}{'' if r.reached else '*'}"
        pa = "-" if res["pred_agreement"] is None else f"{res['pred_agreement']:.3f}"
        say(f"{res['image']:<24} {pa:>6} {cell('scratch'):>9} {cell('model_manual'):>9} "
            f"{cell('model_assisted'):>9} {res['seconds']:5.1f}")

    t0 = time.perf_counter()
    if args.jobs > 1:
        import multiprocessing as mp

        with mp.get_context("fork").Pool(args.jobs) as pool:
            for res in pool.imap(run_image, jobs):
                results.append(res)
                row(res)
    else:
        for job in jobs:
            res = run_image(job)
            results.append(res)
            row(res)
    say("(* = target not reached within the action limit)")

    summary: dict = {"images": len(results)}
    reached: dict = {}
    for arm in ARMS:
        runs = [r[arm] for r in results if arm in r]
        summary[arm] = float(np.mean([x.actions for x in runs])) if runs else None
        reached[arm] = float(np.mean([x.reached for x in runs])) if runs else None
    s, m, a = summary["scratch"], summary["model_manual"], summary["model_assisted"]
    summary["ratio_assisted"] = s / a if a else None
    summary["ratio_manual"] = s / m if m else None
    summary["reached_target"] = float(np.mean([all(r[arm].reached for arm in ARMS if arm in r) for r in results]))
    summary["reached"] = reached
    summary["target"] = args.target
    summary["final_agreement"] = {arm: float(np.mean([r[arm].agreement for r in results if arm in r]))
                                  for arm in ARMS if any(arm in r for r in results)}
    if any("model_assisted" in r for r in results):
        tools: Counter = Counter()
        for r in results:
            tools.update(r["model_assisted"].tools)
        summary["assisted_actions_by_tool"] = dict(tools.most_common())
        summary["mean_pred_agreement"] = float(np.mean([r["pred_agreement"] for r in results]))
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    if args.grabcut_size:
        say(grabcut_4k(args.grabcut_size))
    print(json.dumps({k: (round(v, 4) if isinstance(v, float) and math.isfinite(v) else v)
                      for k, v in summary.items()}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

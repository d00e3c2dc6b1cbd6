"""Suggest the next images to label: uncertain ones, at most one per stretch of similar frames.

Plain "most uncertain" picks near-duplicate consecutive frames of a video: the model is
unsure about the same scene four times, and labelling it four times teaches it once
(issue 13 measured it no better than random). Here each image has a small appearance
descriptor (a blurred 16 x 12 thumbnail in Lab); an image is "covered" by a labelled or
already-picked image closer than ``spread`` times the typical nearest-neighbour
distance of the collection, and covered images are not picked. Among the uncovered ones
the most uncertain (mean prediction entropy of the current model) goes first, weighted
by how far it is from everything labelled (coverage in feature space). For each pick
the most uncertain regions are ranked too, so the person can start where the model is
most unsure. No Qt here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from workbench.errors import WorkbenchError
from workbench.progress import CancelToken, ProgressCallback, check, report
from workbench.project import Project, Split, Status

DESCRIPTOR_SIZE = (16, 12)     # (width, height) of the thumbnail descriptor
DEFAULT_SPREAD = 2.0           # "similar" = closer than this many typical nearest-neighbour distances
STRATEGIES = ("diverse", "uncertain", "typical", "coverage", "random")
RARITY_POWER = 0.5             # rarity weight = (median class share / class share) ** this
RARITY_CAP = 4.0               # ... clipped to [1/cap, cap]; classes not labelled yet get cap
DEFAULT_BALANCED = False       # class-balanced uncertainty in "diverse" (bench_suggestions.py decides)
DEFAULT_DENSITY_POWER = 0.0    # information-density weight in "diverse" (bench_suggestions.py decides)


def descriptor(image: np.ndarray) -> np.ndarray:
    """A small appearance vector of an (H, W, 3) uint8 image: blurred Lab thumbnail, float32."""
    small = cv2.resize(cv2.GaussianBlur(image, (0, 0), max(1.0, image.shape[1] / 64)), DESCRIPTOR_SIZE,
                       interpolation=cv2.INTER_AREA)
    lab = cv2.cvtColor(small, cv2.COLOR_RGB2LAB).astype(np.float32) / 255.0
    return lab.reshape(-1)


def typical_distance(vectors: np.ndarray) -> float:
    """Median distance of each vector to its nearest other vector (the scale of 'near-duplicate')."""
    if len(vectors) < 2:
        return 1.0
    d = _pairwise(vectors, vectors)
    np.fill_diagonal(d, np.inf)
    return float(np.median(d.min(axis=1))) or 1e-6


def _pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    aa = (a * a).sum(1)[:, None]
    bb = (b * b).sum(1)[None, :]
    return np.sqrt(np.maximum(aa + bb - 2.0 * a @ b.T, 0.0))


def rarity_weights(counts: np.ndarray, *, power: float = RARITY_POWER, cap: float = RARITY_CAP) -> np.ndarray:
    """Per-class weights from the labelled pixel ``counts``: (median share / share) ** power, in [1/cap, cap].

    A class nobody has labelled yet gets ``cap``: an image the model thinks shows it is
    worth more to label, because mIoU averages over classes and the rare ones are the
    ones a few labels leave at zero.
    """
    counts = np.asarray(counts, np.float64)
    if counts.sum() <= 0:
        return np.ones(len(counts), np.float32)
    share = counts / counts.sum()
    seen = share > 0
    med = float(np.median(share[seen]))
    w = np.full(len(counts), cap, np.float64)
    w[seen] = np.clip((med / share[seen]) ** power, 1.0 / cap, cap)
    return w.astype(np.float32)


def balanced_uncertainty(mask: np.ndarray, uncertainty_map: np.ndarray, weights: np.ndarray) -> float:
    """Mean over pixels of uncertainty x the rarity weight of the predicted class."""
    m = np.asarray(mask).astype(np.intp)
    w = np.asarray(weights, np.float32)
    m = np.where(m < len(w), m, 0)
    return float(np.mean(np.asarray(uncertainty_map, np.float32) * w[m]))


def density(descriptors: np.ndarray, scale: float) -> np.ndarray:
    """How typical each descriptor is of the collection: mean Gaussian similarity (bandwidth 4 x scale).

    Uncertainty alone favours outliers (a sequence unlike the rest, a dark frame); weighting
    by density favours images like many others, whose labels teach the model about many
    images at once (Settles and Craven's information density).
    """
    bw = 4.0 * max(scale, 1e-6)
    d = _pairwise(descriptors, descriptors)
    return np.exp(-(d / bw) ** 2 / 2).mean(axis=1)


def select_diverse(uncertainty: Mapping[int, float], descriptors: Mapping[int, np.ndarray], k: int, *,
                   labelled: Sequence[np.ndarray] = (), spread: float = DEFAULT_SPREAD,
                   scale: float | None = None, density_power: float = 0.0) -> list[int]:
    """``k`` candidate ids: most uncertain first, never two within ``spread`` x scale of each other.

    ``labelled``: descriptors of images already labelled (they cover their neighbours too).
    ``scale``: the near-duplicate distance (default: ``typical_distance`` of all descriptors).
    ``density_power``: weight each candidate's uncertainty by ``density`` ** this (0 = off).
    When every candidate is covered before ``k`` are picked, the rule relaxes (half the
    radius) rather than returning fewer.
    """
    ids = [i for i in uncertainty if i in descriptors]
    if not ids or k <= 0:
        return []
    cand = np.stack([descriptors[i] for i in ids])
    unc = np.array([float(uncertainty[i]) for i in ids])
    lab = np.stack(list(labelled)) if len(labelled) else np.zeros((0, cand.shape[1]), np.float32)
    if scale is None:
        scale = typical_distance(np.concatenate([cand, lab]) if len(lab) else cand)
    radius = spread * scale
    if density_power:
        unc = unc * density(cand, scale) ** density_power

    def score(dmin: np.ndarray, radius: float, _picked: list[int]) -> np.ndarray:
        # coverage weight: far from everything labelled counts a little more (saturates at 2 radii)
        weight = np.minimum(1.0, dmin / (2 * radius))   # inf (nothing near yet) -> 1
        return unc * (0.5 + 0.5 * weight)

    return [ids[j] for j in _pick_apart(cand, lab, k, radius, score)]


def _pick_apart(cand: np.ndarray, lab: np.ndarray, k: int, radius: float,
                score: Callable[[np.ndarray, float, list[int]], np.ndarray]) -> list[int]:
    """Up to ``k`` row indices of ``cand``, best ``score`` first, none within ``radius`` of a
    labelled (``lab``) or already-picked row.

    ``score(dmin, radius, picked)`` rates every candidate given its distance to the nearest
    labelled or picked row and the indices picked so far. When every candidate is covered
    before ``k`` are picked, the radius halves rather than the picks stopping short.
    """
    dmin = _pairwise(cand, lab).min(axis=1) if len(lab) else np.full(len(cand), np.inf)
    picked: list[int] = []
    free = np.ones(len(cand), bool)
    while len(picked) < min(k, len(cand)):
        open_ = free & (dmin >= radius)
        if not open_.any():
            if radius <= 1e-9 or not free.any():
                break
            radius *= 0.5          # everything is covered: relax rather than stop short
            continue
        j = int(np.argmax(np.where(open_, score(dmin, radius, picked), -np.inf)))
        picked.append(j)
        free[j] = False
        dmin = np.minimum(dmin, _pairwise(cand, cand[j:j + 1])[:, 0])
    return picked


TYPICALITY_NEIGHBOURS = 20    # typicality = 1 / mean distance to this many nearest neighbours


def select_typical(descriptors: Mapping[int, np.ndarray], k: int, *, labelled: Sequence[np.ndarray] = (),
                   seed: int = 0, scores: Mapping[int, float] | None = None) -> list[int]:
    """``k`` candidate ids that cover the collection: one typical image per uncovered cluster.

    TypiClust (Hacohen et al., "Active learning on a budget", 2022): with few labels a
    model's uncertainty says more about how odd an image looks than about what would teach
    it, so cover instead. The candidates and the labelled images are clustered (k-means on
    the descriptors) into len(labelled) + k groups; from the largest groups that hold no
    labelled image, the most typical member (densest neighbourhood) is picked. Needs no model.
    ``scores`` (optional, e.g. ``coverage_gain``): pick instead the best-scoring member among
    the more typical half of each group (typical, so not an outlier; best, so most useful).
    """
    from sklearn.cluster import KMeans

    ids = list(descriptors)
    if not ids or k <= 0:
        return []
    cand = np.stack([descriptors[i] for i in ids]).astype(np.float64)
    lab = np.stack(list(labelled)).astype(np.float64) if len(labelled) else np.zeros((0, cand.shape[1]))
    data = np.concatenate([cand, lab])
    n_clusters = min(len(lab) + k, len(data))
    groups = KMeans(n_clusters=n_clusters, n_init=3, random_state=seed).fit_predict(data)
    cand_groups, lab_groups = groups[:len(ids)], set(groups[len(ids):].tolist())

    def typicality(members: np.ndarray) -> np.ndarray:
        d = _pairwise(cand[members], data[groups == groups[members[0]]])
        n = min(TYPICALITY_NEIGHBOURS, d.shape[1] - 1)
        if n < 1:
            return np.ones(len(members))
        return 1.0 / (np.sort(d, axis=1)[:, 1:n + 1].mean(axis=1) + 1e-9)

    sizes = np.bincount(groups, minlength=n_clusters)
    order = sorted(set(cand_groups.tolist()) - lab_groups, key=lambda g: -sizes[g])
    picked: list[int] = []
    for g in order:
        members = np.flatnonzero(cand_groups == g)
        typ = typicality(members)
        if scores is None:
            best = int(np.argmax(typ))
        else:
            s = np.array([float(scores.get(ids[m], 0.0)) for m in members])
            best = int(np.argmax(np.where(typ >= np.median(typ), s, -np.inf)))
        picked.append(ids[int(members[best])])
        if len(picked) == k:
            return picked
    # more picks than uncovered groups: the most typical of the rest
    rest = [j for j in range(len(ids)) if ids[j] not in picked]
    dens = density(cand[rest], typical_distance(cand)) if rest else np.zeros(0)
    picked += [ids[rest[j]] for j in np.argsort(-dens)[:k - len(picked)]]
    return picked


COVERAGE_SCALE = 0.02    # class coverage saturates at about this share of an image's pixels


def coverage_gain(labelled_pixels: np.ndarray, expected_pixels: np.ndarray, image_pixels: float) -> float:
    """How much labelling an image would add to the coverage of the classes.

    Coverage of a class is log(1 + pixels / (COVERAGE_SCALE x an image's pixels)): the first
    few hundred pixels of a class teach the model more than the next thousands, and mIoU
    averages over classes, so a class nobody has labelled counts most. ``expected_pixels``
    is the model's soft count per class in the image (its probabilities summed), so a class
    the model only half-believes in still counts.
    """
    tau = COVERAGE_SCALE * max(float(image_pixels), 1.0)
    lab = np.asarray(labelled_pixels, np.float64)
    exp = np.asarray(expected_pixels, np.float64)
    return float(np.sum(np.log1p((lab + exp) / tau) - np.log1p(lab / tau)))


def expected_pixels(mask: np.ndarray, confidence: np.ndarray | None, num_classes: int) -> np.ndarray:
    """Soft pixel count per class of a prediction: each pixel counts its confidence for its class.

    (The cached prediction keeps the argmax and its probability, not every class's: this
    is the probability mass of the predicted classes, the part of the soft count it has.)
    """
    m = np.asarray(mask).ravel().astype(np.intp)
    w = np.ones(m.shape, np.float64) if confidence is None else np.asarray(confidence, np.float64).ravel()
    keep = m < num_classes
    return np.bincount(m[keep], weights=w[keep], minlength=num_classes)[:num_classes]


def select_coverage(expected: Mapping[int, np.ndarray], descriptors: Mapping[int, np.ndarray], k: int, *,
                    labelled_pixels: np.ndarray, image_pixels: float, labelled: Sequence[np.ndarray] = (),
                    spread: float = DEFAULT_SPREAD) -> list[int]:
    """``k`` candidate ids that add most to the coverage of the classes, one per stretch of similar frames.

    Greedy on ``coverage_gain``: after each pick its expected class pixels count as labelled,
    so the next pick goes after the classes still thin (a set-cover of the classes rather
    than k images that all show the same rare class). Near-duplicates of labelled or picked
    images are skipped as in ``select_diverse`` (relaxing rather than stopping short).
    """
    ids = [i for i in expected if i in descriptors]
    if not ids or k <= 0:
        return []
    cand = np.stack([descriptors[i] for i in ids])
    lab = np.stack(list(labelled)) if len(labelled) else np.zeros((0, cand.shape[1]), np.float32)
    radius = spread * typical_distance(np.concatenate([cand, lab]) if len(lab) else cand)
    have = np.asarray(labelled_pixels, np.float64)
    exp = np.stack([np.asarray(expected[i], np.float64) for i in ids])

    def score(_dmin: np.ndarray, _radius: float, picked: list[int]) -> np.ndarray:
        counts = have + exp[picked].sum(axis=0)    # what is picked counts as labelled
        return np.array([coverage_gain(counts, e, image_pixels) for e in exp])

    return [ids[j] for j in _pick_apart(cand, lab, k, radius, score)]


def select_uncertain(uncertainty: Mapping[int, float], k: int) -> list[int]:
    """The plain rule: the ``k`` most uncertain ids."""
    return sorted(uncertainty, key=lambda i: -float(uncertainty[i]))[:k]


@dataclass(frozen=True)
class Region:
    """An uncertain region of one image: box (y0, x0, y1, x1) half-open, pixels, mean uncertainty."""

    box: tuple[int, int, int, int]
    pixels: int
    uncertainty: float

    @property
    def score(self) -> float:
        """Pixels x mean uncertainty: how much there is to correct."""
        return self.pixels * self.uncertainty


def uncertain_regions(uncertainty_map: np.ndarray, *, top: int = 3, threshold: float | None = None,
                      min_pixels: int = 64) -> list[Region]:
    """The ``top`` connected regions of high uncertainty (1 - confidence), largest score first."""
    u = cv2.GaussianBlur(uncertainty_map.astype(np.float32), (0, 0), 2.0)
    thr = float(threshold) if threshold is not None else max(0.2, float(np.quantile(u, 0.85)))
    n, labels, stats, _ = cv2.connectedComponentsWithStats((u >= thr).astype(np.uint8), connectivity=8)
    out = []
    for c in range(1, n):
        x, y, w, h, area = (int(v) for v in stats[c])
        if area < min_pixels:
            continue
        out.append(Region((y, x, y + h, x + w), area, float(u[labels == c].mean())))
    return sorted(out, key=lambda r: -r.score)[:top]


DEFAULT_TILE_GRID = (4, 4)     # (rows, cols) of the tiles regions are ranked by
DEFAULT_TILES_PER_IMAGE = 4    # tiles to label per suggested image in region mode (a quarter of it)


def tile_uncertainty(uncertainty_map: np.ndarray, grid: tuple[int, int] = DEFAULT_TILE_GRID) -> np.ndarray:
    """Mean uncertainty of each tile of a ``grid`` (rows, cols) laid over the map: (rows, cols) float32.

    Tiles, not connected components, so that the amount asked of the person is the same
    for every suggestion (a budget of tiles is a budget of pixels).
    """
    u = np.asarray(uncertainty_map, np.float32)
    out = np.zeros(grid, np.float32)
    for r in range(grid[0]):
        for c in range(grid[1]):
            y0, x0, y1, x1 = tile_box(u.shape[:2], grid, (r, c))
            out[r, c] = u[y0:y1, x0:x1].mean() if y1 > y0 and x1 > x0 else 0.0
    return out


def tile_box(shape: tuple[int, int], grid: tuple[int, int], tile: tuple[int, int]) -> tuple[int, int, int, int]:
    """Box (y0, x0, y1, x1), half-open, of tile (row, col) of ``grid`` over an image of ``shape`` (h, w)."""
    (h, w), (rows, cols), (r, c) = shape, grid, tile
    return r * h // rows, c * w // cols, (r + 1) * h // rows, (c + 1) * w // cols


def select_regions(tiles: Mapping[int, np.ndarray], descriptors: Mapping[int, np.ndarray], n_tiles: int, *,
                   per_image: int = DEFAULT_TILES_PER_IMAGE, labelled: Sequence[np.ndarray] = (),
                   spread: float = DEFAULT_SPREAD) -> dict[int, list[tuple[int, int]]]:
    """About ``n_tiles`` tiles to label: the most uncertain ``per_image`` tiles of diverse images.

    ``tiles``: per candidate image its ``tile_uncertainty`` grid, NaN where a tile is already
    labelled. An image scores the mean of its ``per_image`` best open tiles; images are
    chosen by ``select_diverse`` on that score (one per stretch of similar frames), so a
    budget of pixels is spread over ``n_tiles / per_image`` scenes instead of spent on a few
    whole ones, each giving the part the model is least sure of. Returns image id -> tiles
    (row, col), most uncertain first.
    """
    per_image = max(1, int(per_image))
    best: dict[int, list[tuple[int, int]]] = {}
    score: dict[int, float] = {}
    for i, grid in tiles.items():
        g = np.asarray(grid, np.float32)
        flat = np.where(np.isnan(g), -np.inf, g).ravel()
        order = [int(j) for j in np.argsort(-flat, kind="stable") if np.isfinite(flat[j])][:per_image]
        if not order:
            continue
        best[i] = [(j // g.shape[1], j % g.shape[1]) for j in order]
        score[i] = float(flat[order].mean())
    k = -(-max(0, n_tiles) // per_image)
    picks = select_diverse(score, descriptors, k, labelled=labelled, spread=spread)
    return {i: best[i] for i in picks}


def _labelled_rarity(project: Project, labelled: Sequence[Any], cancel: CancelToken | None) -> np.ndarray:
    """``rarity_weights`` of the pixels people labelled in ``labelled`` (unreadable labels skipped)."""
    return rarity_weights(_labelled_counts(project, labelled, cancel))


def _labelled_counts(project: Project, labelled: Sequence[Any], cancel: CancelToken | None) -> np.ndarray:
    """Pixels per class people labelled in ``labelled`` (unreadable labels skipped)."""
    k = project.schema.num_classes
    counts = np.zeros(k, np.int64)
    for r in labelled:
        check(cancel)
        try:
            mask = project.read_label(r.id)
        except WorkbenchError:
            continue
        if mask is not None:
            counts += np.bincount(mask[mask < k].ravel(), minlength=k)[:k]
    return counts


@dataclass(frozen=True)
class Suggestion:
    """One image to label next, why, and where to start."""

    image_id: int
    name: str
    uncertainty: float
    regions: list[Region] = field(default_factory=list)


@dataclass(frozen=True)
class SuggestOutcome:
    """What ``suggest_images`` found."""

    version: int
    suggestions: list[Suggestion]
    candidates: int                 # images it chose among
    strategy: str


def suggest_images(project: Project, *, count: int = 4, strategy: str = "diverse",
                   spread: float = DEFAULT_SPREAD, seed: int = 0, device: Any = "auto",
                   balanced: bool = DEFAULT_BALANCED, density_power: float = DEFAULT_DENSITY_POWER,
                   on_progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> SuggestOutcome:
    """The next ``count`` train images to label (without a person's label), by ``strategy``.

    Uses the current model's predictions (made and cached where missing, as Predict all).
    "diverse" scores each image by its uncertainty (class-balanced when ``balanced``: each
    pixel's uncertainty weighted by the rarity of its predicted class among the labelled
    pixels), times ``density`` ** ``density_power``, and picks at most one per stretch of
    similar frames. "typical" ignores the model: one typical image of each of the largest
    groups of similar images that nothing labelled covers (``select_typical``). "coverage"
    picks the images whose predicted classes add most to what the labels cover, rare and
    unlabelled classes first, one per stretch of similar frames (``select_coverage``).
    """
    from workbench.workflows.prediction import PredictorSlot, predict_image, resolve_version

    if strategy not in STRATEGIES:
        raise WorkbenchError(f"unknown strategy {strategy!r} (valid: {', '.join(STRATEGIES)})")
    if count < 1:
        raise WorkbenchError(f"count must be at least 1, got {count}")
    rec = resolve_version(project, None)
    train = project.images(split=Split.TRAIN)
    cands = [r for r in train if r.status in (Status.UNLABELLED, Status.PREDICTED)]
    labelled = [r for r in train if r.status in (Status.EDITED, Status.VERIFIED)]
    if not cands:
        raise WorkbenchError("every train image already has a person's label: nothing to suggest")
    slot = PredictorSlot(device)
    weights = _labelled_rarity(project, labelled, cancel) if (balanced and strategy == "diverse") else None
    k = project.schema.num_classes
    have = _labelled_counts(project, labelled, cancel) if strategy == "coverage" else np.zeros(k)
    soft: dict[int, np.ndarray] = {}
    pixels: list[float] = []
    unc: dict[int, float] = {}
    conf_maps: dict[int, np.ndarray | None] = {}
    desc: dict[int, np.ndarray] = {}
    total = len(cands) + len(labelled)
    for n, r in enumerate(cands):
        check(cancel)
        report(on_progress, n, total, f"predicting {r.name}")
        try:
            res = predict_image(project, r.id, rec.version, rec.path, slot, save=not project.read_only,
                                cancel=cancel)
            image = project.read_image(r.id)
        except WorkbenchError:
            continue   # an unreadable image is not suggested (Predict all names it)
        if weights is not None and res.confidence is not None:
            u = balanced_uncertainty(res.mask, 1.0 - res.confidence, weights)
        elif res.uncertainty is None and res.confidence is not None:
            u = float(np.mean(1.0 - res.confidence))
        else:
            u = float(res.uncertainty or 0.0)
        unc[r.id] = u
        conf_maps[r.id] = res.confidence
        if strategy == "coverage":
            soft[r.id] = expected_pixels(res.mask, res.confidence, k)
            pixels.append(float(np.asarray(res.mask).size))
        desc[r.id] = descriptor(image)
    lab_desc = []
    for n, r in enumerate(labelled):
        check(cancel)
        report(on_progress, len(cands) + n, total, f"reading {r.name}")
        try:
            lab_desc.append(descriptor(project.read_image(r.id)))
        except WorkbenchError:
            continue
    if strategy == "diverse":
        picks = select_diverse(unc, desc, count, labelled=lab_desc, spread=spread, density_power=density_power)
    elif strategy == "uncertain":
        picks = select_uncertain(unc, count)
    elif strategy == "coverage":
        picks = select_coverage(soft, desc, count, labelled_pixels=have, image_pixels=float(np.median(pixels)) if pixels else 1.0,
                                labelled=lab_desc, spread=spread)
    elif strategy == "typical":
        picks = select_typical({i: desc[i] for i in unc}, count, labelled=lab_desc, seed=seed)
    else:
        rng = np.random.default_rng(seed)
        pool = sorted(unc)
        picks = [pool[i] for i in rng.permutation(len(pool))[:count]]
    out = []
    for i in picks:
        cm = conf_maps.get(i)
        regions = uncertain_regions(1.0 - cm) if cm is not None else []
        out.append(Suggestion(i, project.get(i).name, unc[i], regions))
    report(on_progress, total, total, "done")
    return SuggestOutcome(rec.version, out, len(unc), strategy)

"""The quick model: an ilastik-style pixel classifier that learns from the first scribbles.

Each pixel is described by multi-scale filter responses of each colour channel
(Gaussian, gradient magnitude, Laplacian of Gaussian, difference of Gaussians,
structure-tensor and Hessian eigenvalues, at ``SCALES``; OpenCV), and a scikit-learn
random forest is fitted on the labelled pixels (scribbles included), subsampled per
class. It trains in seconds and predicts a 480 x 360 image in about a second on two
cores (BENCHMARKS.md, "Quick model").

Storage. A quick model version is ONE ``.safetensors`` file, like a U-Net version: the
tensors are the sampled training features (float16) and their labels, the header holds
the usual ``CheckpointMeta`` with ``arch = "quick"`` and the forest's settings. Loading
refits the forest from those samples with the stored seed (deterministic, seconds).
Why not pickle the fitted forest: projects are shared, and unpickling a file a person
was sent runs code (issue 8 made every model file safe to open). Why not the trees as
arrays: scikit-learn's tree internals change between versions; refitting from the
samples depends only on the public ``fit`` API. No torch, no Qt here.
"""

from __future__ import annotations

import json
import threading
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from workbench.classes import ClassSchema
from workbench.errors import InputError, WorkbenchError
from workbench.progress import CancelToken, ProgressCallback, check, report

ARCH = "quick"                      # CheckpointMeta.arch of a quick model file
FEATURE_SET = "filters-v1"          # CheckpointMeta.encoder: which features the samples hold
SCALES: tuple[float, ...] = (0.7, 1.6, 3.5, 5.0)
FILTERS_PER_SCALE = 8               # gaussian, |grad|, LoG, DoG, 2 structure-tensor, 2 Hessian eigenvalues
DEFAULT_TREES = 24
DEFAULT_MAX_DEPTH = 12
DEFAULT_PER_CLASS = 2000            # sampled pixels per class over the whole training set
PREDICT_CHUNK = 65_536              # pixels per predict_proba call (memory bound, cancel points)

# scikit-learn warns about its own joblib use when the forest runs in a worker thread
# (the app's); it is about configuration propagation, not results. Only that message.
warnings.filterwarnings("ignore", message=r".*sklearn\.utils\.parallel\.delayed. should be used", category=UserWarning)


def feature_count(channels: int = 3, scales: Sequence[float] = SCALES) -> int:
    """Number of features per pixel: the raw channels plus FILTERS_PER_SCALE per channel and scale."""
    return channels * (1 + FILTERS_PER_SCALE * len(scales))


def _eig2(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (larger, smaller) of the symmetric 2x2 matrices [[a, b], [b, c]]."""
    half_trace = (a + c) * 0.5
    root = np.sqrt(((a - c) * 0.5) ** 2 + b * b)
    return half_trace + root, half_trace - root


def pixel_features(image: np.ndarray, scales: Sequence[float] = SCALES) -> np.ndarray:
    """(H, W, F) float32 filter responses of an (H, W, C) uint8 image (F = ``feature_count``).

    Derivatives are scale-normalised (times sigma, sigma squared) so one forest can
    compare responses across scales. Channels are taken as they are (RGB).
    """
    if image.ndim == 2:
        image = image[:, :, None]
    img = image.astype(np.float32) / 255.0
    h, w, c = img.shape
    out = np.empty((h, w, feature_count(c, scales)), np.float32)
    k = 0
    for ch in range(c):
        x = np.ascontiguousarray(img[:, :, ch])
        out[:, :, k] = x
        k += 1
        for s in scales:
            g = cv2.GaussianBlur(x, (0, 0), s, borderType=cv2.BORDER_REFLECT)
            gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3) * (0.5 * s)
            gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3) * (0.5 * s)
            gxx = cv2.Sobel(g, cv2.CV_32F, 2, 0, ksize=3) * (s * s)
            gyy = cv2.Sobel(g, cv2.CV_32F, 0, 2, ksize=3) * (s * s)
            gxy = cv2.Sobel(g, cv2.CV_32F, 1, 1, ksize=3) * (0.25 * s * s)
            out[:, :, k] = g
            out[:, :, k + 1] = np.sqrt(gx * gx + gy * gy)
            out[:, :, k + 2] = gxx + gyy                                       # LoG
            out[:, :, k + 3] = g - cv2.GaussianBlur(x, (0, 0), 1.6 * s, borderType=cv2.BORDER_REFLECT)
            outer = 2.0 * s                                                    # structure tensor window
            sxx = cv2.GaussianBlur(gx * gx, (0, 0), outer, borderType=cv2.BORDER_REFLECT)
            syy = cv2.GaussianBlur(gy * gy, (0, 0), outer, borderType=cv2.BORDER_REFLECT)
            sxy = cv2.GaussianBlur(gx * gy, (0, 0), outer, borderType=cv2.BORDER_REFLECT)
            out[:, :, k + 4], out[:, :, k + 5] = _eig2(sxx, sxy, syy)
            out[:, :, k + 6], out[:, :, k + 7] = _eig2(gxx, gxy, gyy)
            k += FILTERS_PER_SCALE
    return out


@dataclass(frozen=True)
class QuickSettings:
    """How a quick model samples and fits (stored with it, so a refit is the same forest)."""

    trees: int = DEFAULT_TREES
    max_depth: int = DEFAULT_MAX_DEPTH
    per_class: int = DEFAULT_PER_CLASS
    seed: int = 0
    scales: tuple[float, ...] = SCALES
    threads: int = 2

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data for the file header."""
        return {"kind": "quick", "trees": self.trees, "max_depth": self.max_depth,
                "per_class": self.per_class, "seed": self.seed, "scales": list(self.scales),
                "threads": self.threads}

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: Path | str | None = None) -> "QuickSettings":
        """Checked settings from a file header; InputError naming the bad field."""
        def num(key: str, low: int, high: int, default: int) -> int:
            v = d.get(key, default)
            if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high:
                raise InputError(f"quick model setting {key!r} must be an integer from {low} to {high}, "
                                 f"got {v!r:.40}", where)
            return v
        scales = d.get("scales", list(SCALES))
        if not (isinstance(scales, list) and 1 <= len(scales) <= 8 and all(
                isinstance(s, (int, float)) and not isinstance(s, bool) and 0.3 <= s <= 32 for s in scales)):
            raise InputError("quick model setting 'scales' must be 1 to 8 numbers from 0.3 to 32", where)
        return cls(trees=num("trees", 1, 500, DEFAULT_TREES), max_depth=num("max_depth", 1, 64, DEFAULT_MAX_DEPTH),
                   per_class=num("per_class", 1, 1_000_000, DEFAULT_PER_CLASS), seed=num("seed", 0, 2**31 - 1, 0),
                   scales=tuple(float(s) for s in scales), threads=num("threads", 1, 256, 2))


@dataclass
class Samples:
    """Sampled training pixels: features (N, F) and class indices (N,), added image by image."""

    features: list[np.ndarray] = field(default_factory=list)
    labels: list[np.ndarray] = field(default_factory=list)

    def stacked(self) -> tuple[np.ndarray, np.ndarray]:
        """(features float32 (N, F), labels uint8 (N,))."""
        if not self.features:
            return np.zeros((0, 0), np.float32), np.zeros((0,), np.uint8)
        return np.concatenate(self.features).astype(np.float32), np.concatenate(self.labels)


def sample_pixels(features: np.ndarray, mask: np.ndarray, num_classes: int, per_class: int,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """At most ``per_class`` labelled pixels of each trainable class of one image.

    Pixels that are 255 or void (>= num_classes) are never sampled: a scribble is a
    mask that is mostly 255.
    """
    flat = mask.reshape(-1)
    feats = features.reshape(-1, features.shape[-1])
    picks = []
    for cls in range(num_classes):
        where = np.flatnonzero(flat == cls)
        if where.size == 0:
            continue
        if where.size > per_class:
            where = np.sort(rng.choice(where, per_class, replace=False))
        picks.append(where)
    if not picks:
        return np.zeros((0, feats.shape[1]), np.float32), np.zeros((0,), np.uint8)
    idx = np.concatenate(picks)
    return feats[idx].astype(np.float16), flat[idx].astype(np.uint8)


def balance(x: np.ndarray, y: np.ndarray, per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """At most ``per_class`` samples of each class over all images (seeded)."""
    rng = np.random.default_rng(seed)
    keep = []
    for cls in np.unique(y):
        where = np.flatnonzero(y == cls)
        if where.size > per_class:
            where = np.sort(rng.choice(where, per_class, replace=False))
        keep.append(where)
    idx = np.concatenate(keep) if keep else np.zeros((0,), np.int64)
    return x[idx], y[idx]


@dataclass(frozen=True)
class QuickPrediction:
    """Per-pixel outputs, the same fields as ``ml.inference.Prediction``."""

    mask: np.ndarray          # (H, W) uint8 class index
    confidence: np.ndarray    # (H, W) float32 largest class probability
    entropy: np.ndarray       # (H, W) float32 entropy / log K (0 certain .. 1 uniform)
    probabilities: np.ndarray | None = None   # (H, W, K) float32 when asked for


class QuickModel:
    """A fitted random forest over ``pixel_features``, with the samples it was fitted on."""

    def __init__(self, schema: ClassSchema, features: np.ndarray, labels: np.ndarray,
                 settings: QuickSettings = QuickSettings(), trained_on: Sequence[str] = ()) -> None:
        from sklearn.ensemble import RandomForestClassifier

        if labels.size == 0:
            raise WorkbenchError("the quick model needs labelled pixels: paint a few strokes of at least "
                                 "one class on an image of the train split, and save")
        if features.ndim != 2 or features.shape[0] != labels.shape[0]:
            raise InputError(f"quick model samples are malformed: features {features.shape}, labels {labels.shape}")
        if features.shape[1] != feature_count(3, settings.scales):
            raise InputError(f"quick model samples have {features.shape[1]} features; its settings make "
                             f"{feature_count(3, settings.scales)}")
        if int(labels.max()) >= schema.num_classes:
            raise InputError(f"quick model samples hold class {int(labels.max())}, beyond its "
                             f"{schema.num_classes} classes")
        self.schema = schema
        self.settings = settings
        self.features = np.ascontiguousarray(features, np.float16)
        self.labels = np.ascontiguousarray(labels, np.uint8)
        self.trained_on = list(trained_on)
        self.forest = RandomForestClassifier(
            n_estimators=settings.trees, max_depth=settings.max_depth, min_samples_leaf=2,
            max_features="sqrt", n_jobs=settings.threads, random_state=settings.seed)
        self.forest.fit(self.features.astype(np.float32), self.labels)
        self._lock = threading.Lock()   # predict_proba from two threads on one forest is safe, but
        #                                 n_jobs threads each: serialise to keep CPU use at `threads`

    @property
    def classes_seen(self) -> list[int]:
        """Class indices that have training pixels (the others are never predicted)."""
        return [int(c) for c in self.forest.classes_]

    def probabilities(self, image: np.ndarray, *, cancel: CancelToken | None = None,
                      on_progress: ProgressCallback | None = None) -> np.ndarray:
        """(H, W, K) float32 class probabilities (0 for classes without training pixels)."""
        feats = pixel_features(image, self.settings.scales)
        h, w, f = feats.shape
        flat = feats.reshape(-1, f)
        k = self.schema.num_classes
        probs = np.zeros((flat.shape[0], k), np.float32)
        cols = np.asarray(self.forest.classes_, np.int64)
        n = flat.shape[0]
        for start in range(0, n, PREDICT_CHUNK):
            check(cancel)
            report(on_progress, start, n, "quick model")
            with self._lock:
                probs[start:start + PREDICT_CHUNK, cols] = self.forest.predict_proba(flat[start:start + PREDICT_CHUNK])
        return probs.reshape(h, w, k)

    def predict(self, image: np.ndarray, *, cancel: CancelToken | None = None,
                on_progress: ProgressCallback | None = None, keep_probabilities: bool = False) -> QuickPrediction:
        """Mask, confidence and normalised entropy of one (H, W, 3) uint8 image."""
        probs = self.probabilities(image, cancel=cancel, on_progress=on_progress)
        return prediction_from_probabilities(probs, keep=keep_probabilities)

    # ----- the file -------------------------------------------------------------------------
    def save(self, path: str | Path, *, metrics: dict[str, Any] | None = None) -> None:
        """Write the samples + settings as one safetensors model file, atomically."""
        from safetensors.numpy import save as save_bytes

        from workbench.atomic import atomic_write_bytes

        meta = {"arch": ARCH, "encoder": FEATURE_SET, "num_classes": self.schema.num_classes,
                "schema": self.schema.to_dict(), "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0],
                "train": self.settings.to_dict(), "history": [], "metrics": dict(metrics or {}),
                "parent": None, "trained_on": list(self.trained_on)}
        from datetime import datetime, timezone

        meta["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        meta["format_version"] = 1
        data = save_bytes({"features": self.features, "labels": self.labels},
                          metadata={"workbench": json.dumps(meta, sort_keys=True, allow_nan=False)})
        atomic_write_bytes(Path(path), data)
        _remember(Path(path), self)

    @classmethod
    def load(cls, path: str | Path, *, schema: ClassSchema | None = None, cached: bool = True) -> "QuickModel":
        """Refit the forest from a quick model file (no unpickling; seconds).

        ``schema``: the project's classes; they must be the file's classes (matched by
        id, as U-Net versions are): a quick model is refitted, never adapted. ``cached``: reuse
        the forest this process fitted for this very file (same path, size and mtime).
        """
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        from workbench.ml.checkpoint import class_match, read_meta

        path = Path(path)
        fitted = _recall(path) if cached else None
        if fitted is not None and (schema is None or fitted.schema.ids == schema.ids):
            return fitted      # this process fitted (or loaded) this very file: no second refit
        meta = read_meta(path)
        if meta.arch != ARCH:
            raise InputError(f"not a quick model file (architecture {meta.arch!r})", path)
        if meta.encoder != FEATURE_SET:
            raise InputError(f"quick model features {meta.encoder!r} are not known to this workbench "
                             f"(it reads {FEATURE_SET!r})", path)
        settings = QuickSettings.from_dict(meta.train, path)
        file_schema = meta.class_schema()
        match = class_match(meta, schema) if schema is not None else "same"
        if match not in ("same", "reordered"):
            raise WorkbenchError(f"this quick model predicts the classes {', '.join(file_schema.names)}; the "
                                 f"project has {', '.join(schema.names)}: train a new quick model", path)
        try:
            tensors = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise InputError(f"cannot read the quick model's samples ({exc})", path) from None
        if set(tensors) != {"features", "labels"}:
            raise InputError(f"a quick model file holds 'features' and 'labels', this one {sorted(tensors)}", path)
        labels = tensors["labels"]
        if match == "reordered" and schema is not None:  # classes moved (Project.move_class): follow by id
            lut = np.arange(256, dtype=np.uint8)
            for c in file_schema.classes:
                if c.index < file_schema.num_classes:
                    lut[c.index] = schema.by_id(c.id).index
            labels = lut[labels]
        model = cls(schema if schema is not None else file_schema, tensors["features"], labels,
                    settings, meta.trained_on)
        _remember(path, model)
        return model


# Forests this process fitted, by file identity (path, size, mtime): the live update fits a
# model, saves it, and the prediction worker then opens the same file; refitting it there
# would double the wait. Bounded; a file changed on disk has another identity.
_FITTED: dict[tuple[str, int, int], QuickModel] = {}
_FITTED_LOCK = threading.Lock()
_FITTED_MAX = 4


def _identity(path: Path) -> tuple[str, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return str(path.resolve()), st.st_size, st.st_mtime_ns


def _remember(path: Path, model: QuickModel) -> None:
    key = _identity(path)
    if key is None:
        return
    with _FITTED_LOCK:
        _FITTED.pop(key, None)
        _FITTED[key] = model
        while len(_FITTED) > _FITTED_MAX:
            _FITTED.pop(next(iter(_FITTED)))


def _recall(path: Path) -> QuickModel | None:
    key = _identity(path)
    with _FITTED_LOCK:
        return _FITTED.get(key) if key is not None else None


def prediction_from_probabilities(probs: np.ndarray, *, keep: bool = False) -> QuickPrediction:
    """Argmax mask, max probability and normalised entropy from (H, W, K) probabilities."""
    k = probs.shape[-1]
    mask = np.argmax(probs, axis=-1).astype(np.uint8)
    conf = probs.max(axis=-1).astype(np.float32)
    p = np.clip(probs, 1e-7, 1.0)
    ent = -(probs * np.log(p)).sum(axis=-1) / np.log(k) if k > 1 else np.zeros(mask.shape, np.float32)
    return QuickPrediction(np.ascontiguousarray(mask), conf, np.clip(ent, 0, 1).astype(np.float32),
                           probs if keep else None)


def fit_quick_model(pairs: Iterable[tuple[np.ndarray, np.ndarray, str]], schema: ClassSchema,
                    settings: QuickSettings = QuickSettings(), *, total: int | None = None,
                    on_progress: ProgressCallback | None = None,
                    cancel: CancelToken | None = None) -> QuickModel:
    """Fit a quick model on (image, mask, name) triples: features, per-class samples, forest."""
    rng = np.random.default_rng(settings.seed)
    samples = Samples()
    names = []
    for n, (image, mask, name) in enumerate(pairs):
        check(cancel)
        report(on_progress, n, total, f"features of {name}", phase="features")
        if mask.shape != image.shape[:2]:
            raise InputError(f"label is {mask.shape[1]}x{mask.shape[0]} but the image is "
                             f"{image.shape[1]}x{image.shape[0]}", name)
        if not np.any(mask < schema.num_classes):
            continue
        x, y = sample_pixels(pixel_features(image, settings.scales), mask, schema.num_classes,
                             settings.per_class, rng)
        samples.features.append(x)
        samples.labels.append(y)
        names.append(name)
    check(cancel)
    x, y = samples.stacked()
    x, y = balance(x, y, settings.per_class, settings.seed)
    report(on_progress, total, total, f"fitting the forest on {len(y):,} pixels", phase="fit")
    return QuickModel(schema, x, y, settings, names)


def is_quick_model(path: str | Path) -> bool:
    """True when the model file at ``path`` is a quick model (header only)."""
    from workbench.ml.checkpoint import read_meta

    try:
        return read_meta(path).arch == ARCH
    except (InputError, WorkbenchError):
        return False


class QuickPredictor:
    """A quick model behind the ``Predictor`` interface (``predict``, ``meta``, ``device``)."""

    def __init__(self, model: QuickModel, meta: Any) -> None:
        self.model = model
        self.meta = meta
        self.device = "cpu"
        self.backend_note = "quick model (scikit-learn random forest)"

    def predict(self, image: np.ndarray, *, on_progress: ProgressCallback | None = None,
                cancel: CancelToken | None = None) -> QuickPrediction:
        """Mask, confidence and entropy, as ``Predictor.predict``."""
        return self.model.predict(image, cancel=cancel, on_progress=on_progress)


def open_predictor(path: str | Path, *, device: Any = "auto", schema: ClassSchema | None = None,
                   **unet_options: Any) -> Any:
    """The predictor for any model version file: a QuickPredictor or an ``ml.inference.Predictor``.

    ``unet_options`` (``backend``, ``threads``) go to ``Predictor.from_checkpoint`` for a U-Net.
    """
    from workbench.ml.checkpoint import read_meta

    meta = read_meta(path)
    if meta.arch == ARCH:
        return QuickPredictor(QuickModel.load(path, schema=schema), meta)
    from workbench.ml.inference import Predictor

    return Predictor.from_checkpoint(path, device=device, schema=schema, **unet_options)


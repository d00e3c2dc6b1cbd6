"""Generator of the bundled sample project: synthetic fluorescence micrographs of cells.

Nothing is downloaded: every image is synthesised with numpy and OpenCV from a seed,
so the sample project is small, deterministic and free of licence questions. The
images are hard enough that a U-Net has to learn (uneven illumination, blur, shot
noise, low-contrast cells, debris that looks like stray nuclei) yet easy enough that a
few minutes of CPU training gives a visible improvement.

Layout written to ``out_dir`` (the project folder):

    cell_01.jpg ... cell_24.jpg     source images (JPEG, quality 90)
    classes.json                    background / cytoplasm / nucleus / debris
    groundtruth/<stem>.png          complete reference masks for every image
    labels/<stem>.png               verified labels for the seeded training images
    workbench.json                  seed manifest: split and status per image
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from workbench.atomic import atomic_write_bytes, atomic_write_text
from workbench.classes import ClassInfo, ClassSchema
from workbench.errors import WorkbenchError
from workbench.masks import write_mask
from workbench.progress import CancelToken, ProgressCallback, check, report

BACKGROUND, CYTOPLASM, NUCLEUS, DEBRIS = 0, 1, 2, 3

NUM_IMAGES = 24
JPEG_QUALITY = 90
MANIFEST_NAME = "workbench.json"


def sample_schema() -> ClassSchema:
    """The four classes of the sample project."""
    return ClassSchema([
        ClassInfo(BACKGROUND, "background", (40, 40, 40)),
        ClassInfo(CYTOPLASM, "cytoplasm", (60, 180, 75)),
        ClassInfo(NUCLEUS, "nucleus", (0, 130, 200)),
        ClassInfo(DEBRIS, "debris", (245, 130, 48)),
    ], ignore_index=None, name="Sample cells (synthetic fluorescence)")


@dataclass
class SampleSummary:
    """What ``generate`` wrote: the folder, image names per split/status, byte count."""

    folder: Path
    images: list[str] = field(default_factory=list)
    verified: list[str] = field(default_factory=list)
    val: list[str] = field(default_factory=list)
    total_bytes: int = 0


# ----- shapes ---------------------------------------------------------------------------
def _blob_polygon(rng: np.random.Generator, cx: float, cy: float, radius: float,
                  roughness: float, points: int = 72) -> np.ndarray:
    """An irregular closed outline: a circle bent by a few random harmonics, then
    stretched and rotated, as cell outlines are."""
    theta = np.linspace(0.0, 2.0 * np.pi, points, endpoint=False)
    r = np.ones_like(theta)
    for k in range(2, 7):
        r += rng.uniform(0.0, roughness / k) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    r = radius * np.clip(r, 0.45, None)
    stretch = rng.uniform(0.75, 1.3)
    x, y = r * np.cos(theta) * stretch, r * np.sin(theta) / stretch
    phi = rng.uniform(0, np.pi)
    xr = x * np.cos(phi) - y * np.sin(phi) + cx
    yr = x * np.sin(phi) + y * np.cos(phi) + cy
    return np.round(np.stack([xr, yr], axis=1)).astype(np.int32)


def _fill(shape: tuple[int, int], poly: np.ndarray) -> np.ndarray:
    out = np.zeros(shape, np.uint8)
    cv2.fillPoly(out, [poly], 1, lineType=cv2.LINE_8)
    return out.astype(bool)


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], scale: float,
                  octaves: int = 3) -> np.ndarray:
    """Perlin-like value noise: upsampled random grids summed over octaves, std 1."""
    h, w = shape
    total = np.zeros(shape, np.float32)
    amp = 1.0
    for _ in range(octaves):
        gh, gw = max(2, int(h / scale) + 2), max(2, int(w / scale) + 2)
        grid = rng.standard_normal((gh, gw)).astype(np.float32)
        total += amp * cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
        scale /= 2.0
        amp *= 0.5
    return (total - total.mean()) / (total.std() + 1e-6)


# ----- one image ------------------------------------------------------------------------
def render_cell_image(rng: np.random.Generator, height: int, width: int,
                      density: float) -> tuple[np.ndarray, np.ndarray]:
    """Draw one synthetic micrograph; returns (RGB uint8 image, uint8 class mask).

    ``density`` in [0, 1] sets how crowded the field is.
    """
    shape = (height, width)
    labels = np.zeros(shape, np.uint8)
    cell_id = np.zeros(shape, np.int32)  # which cell owns a pixel (for per-cell brightness)

    # Cells by rejection sampling: neighbours may touch and overlap a little, like a
    # confluent culture, but a nucleus is never buried under another cell.
    mean_r = rng.uniform(16, 30)
    target = int(round((height * width) / (np.pi * mean_r ** 2) * (0.12 + 0.55 * density)))
    placed: list[tuple[float, float, float]] = []
    tries = 0
    while len(placed) < target and tries < target * 30:
        tries += 1
        r = float(np.clip(rng.normal(mean_r, mean_r * 0.25), 9, 48))
        cx, cy = rng.uniform(-0.3 * r, width + 0.3 * r), rng.uniform(-0.3 * r, height + 0.3 * r)
        if any((cx - x) ** 2 + (cy - y) ** 2 < (0.85 * (r + q)) ** 2 for x, y, q in placed):
            continue
        placed.append((cx, cy, r))
        cell = _fill(shape, _blob_polygon(rng, cx, cy, r, roughness=0.5))
        nr = r * rng.uniform(0.3, 0.5)
        off, ang = rng.uniform(0, 0.35) * (r - nr), rng.uniform(0, 2 * np.pi)
        nucleus = _fill(shape, _blob_polygon(rng, cx + off * np.cos(ang), cy + off * np.sin(ang),
                                             nr, roughness=0.2)) & cell
        labels[cell] = CYTOPLASM
        labels[nucleus] = NUCLEUS
        cell_id[cell] = len(placed)

    # Debris: small angular fragments on the background only; some are round and bright
    # enough to pass for a lone nucleus, so context (no cytoplasm around) matters.
    debris_paint = np.zeros((*shape, 3), np.float32)
    debris_colours = np.array([[0.95, 0.85, 0.55],    # autofluorescent yellow
                               [0.30, 0.40, 0.90],    # nucleus-like blue
                               [0.25, 0.65, 0.30]],   # cytoplasm-like green fragments
                              np.float32)
    for _ in range(int(rng.integers(8, 20 + int(40 * density)))):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        n = int(rng.integers(4, 9))
        ang = np.sort(rng.uniform(0, 2 * np.pi, n))
        rad = rng.uniform(3.0, 13.0) * rng.uniform(0.45, 1.0, n)
        poly = np.round(np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)], 1)).astype(np.int32)
        frag = _fill(shape, poly) & (labels == BACKGROUND)
        labels[frag] = DEBRIS
        mix = rng.dirichlet((0.6, 0.6, 0.6))
        debris_paint[frag] = (mix @ debris_colours) * rng.uniform(0.35, 1.1)

    # ---- appearance: per-image stain strengths so that contrast varies between images
    n_cells = len(placed)
    cell_gain = np.concatenate([[0.0], rng.uniform(0.35, 1.35, n_cells)]).astype(np.float32)
    per_cell = cell_gain[cell_id]
    cyto_col = np.array([0.22, 0.70, 0.30], np.float32) * rng.uniform(0.3, 0.9)
    # Spectral cross-talk varies between images: nuclei pick up some green.
    nuc_col = np.array([0.25, rng.uniform(0.35, 0.7), 1.00], np.float32) * rng.uniform(0.45, 1.0)
    bg_col = np.array([0.05, 0.06, 0.08], np.float32) * rng.uniform(0.4, 2.0)

    coarse = _smooth_noise(rng, shape, scale=24.0)
    fine = _smooth_noise(rng, shape, scale=5.0, octaves=2)
    # Cytoplasm fades towards the membrane: brightness grows with distance to the edge.
    inside = (labels == CYTOPLASM) | (labels == NUCLEUS)
    edge = cv2.distanceTransform(inside.astype(np.uint8), cv2.DIST_L2, 3)
    falloff = 0.45 + 0.55 * np.clip(edge / rng.uniform(5, 12), 0, 1)

    img = np.broadcast_to(bg_col, (*shape, 3)) * (1 + 0.25 * coarse[..., None])
    cyto_tex = np.clip(1 + 0.3 * coarse + 0.15 * fine, 0.2, None) * falloff * per_cell
    nuc_tex = np.clip(1 + 0.35 * fine + 0.1 * coarse, 0.2, None) * per_cell
    is_c, is_n, is_d = labels == CYTOPLASM, labels == NUCLEUS, labels == DEBRIS
    img = img.copy()
    # Out-of-focus haze: soft patches of stray fluorescence in the background, about as
    # bright as a dim cell, so brightness alone does not say "cell".
    haze = np.clip(_smooth_noise(rng, shape, scale=70.0, octaves=2) - 0.3, 0, None)
    img += (haze * rng.uniform(0.05, 0.35))[..., None] * cyto_col
    img[is_c] += cyto_tex[is_c, None] * cyto_col
    # A nucleus sits inside the cytoplasm, so it carries some cytoplasm signal too.
    img[is_n] += nuc_tex[is_n, None] * nuc_col + 0.4 * falloff[is_n, None] * per_cell[is_n, None] * cyto_col
    img[is_d] += debris_paint[is_d]

    # Optics: defocus blur, then uneven illumination (tilted field plus vignetting).
    sigma = rng.uniform(0.8, 2.2)
    img = cv2.GaussianBlur(img.astype(np.float32), (0, 0), sigma)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    xn, yn = xx / width - 0.5, yy / height - 0.5
    tilt = rng.uniform(0.0, 0.7)
    direction = rng.uniform(0, 2 * np.pi)
    field_ = 1 + tilt * (xn * np.cos(direction) + yn * np.sin(direction))
    field_ *= 1 - rng.uniform(0.1, 0.6) * (xn ** 2 + yn ** 2) * 2
    img *= field_[..., None]
    img *= rng.uniform(0.8, 1.2, 3).astype(np.float32)  # per-image channel balance

    # Sensor: Poisson shot noise at a random photon budget, plus read noise.
    peak = rng.uniform(30, 250)
    img = rng.poisson(np.clip(img, 0, None) * peak).astype(np.float32) / peak
    img += rng.normal(0, 0.012, img.shape).astype(np.float32)
    img = np.clip(img * rng.uniform(0.9, 1.3), 0, 1) ** 0.85  # display gamma
    return (img * 255 + 0.5).astype(np.uint8), labels


def _encode_jpeg(rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:  # only on an OpenCV build without JPEG support
        raise WorkbenchError("OpenCV could not encode a JPEG image")
    return buf.tobytes()


def _split_plan(n: int) -> tuple[set[int], set[int]]:
    """(val indices, verified indices): every 4th image is val; the first 8 of the rest
    are verified training labels; the remaining training images start unlabelled."""
    val = {i for i in range(n) if i % 4 == 3}
    verified = set([i for i in range(n) if i not in val][:8])
    return val, verified


# ----- the project ----------------------------------------------------------------------
def generate(out_dir: str | Path, seed: int = 0, *, num_images: int = NUM_IMAGES,
             overwrite: bool = False, on_progress: ProgressCallback | None = None,
             cancel: CancelToken | None = None) -> SampleSummary:
    """Write the sample project to ``out_dir``; the same seed gives the same bytes.

    Refuses a non-empty folder unless ``overwrite`` (then only its own files are replaced).
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise WorkbenchError("exists and is not a folder", out)
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise WorkbenchError("folder is not empty; choose a new or empty folder (sample-data --force overwrites)", out)
    if num_images < 1:
        raise WorkbenchError(f"num_images must be at least 1, got {num_images}")
    schema = sample_schema()
    summary = SampleSummary(out)
    val, verified = _split_plan(num_images)
    manifest: dict = {"classes": "classes.json", "ground_truth": "groundtruth", "labels": "labels",
                      "seed": seed, "images": {}}
    for i in range(num_images):
        check(cancel)
        rng = np.random.default_rng([seed, i])  # per-image stream: images are independent
        h, w = (int(v) for v in rng.integers(256, 513, 2))
        density = float(rng.uniform(0.0, 1.0))
        rgb, mask = render_cell_image(rng, h, w, density)
        name = f"cell_{i + 1:02d}.jpg"
        stem = name.rsplit(".", 1)[0]
        jpeg = _encode_jpeg(rgb)
        atomic_write_bytes(out / name, jpeg)
        write_mask(out / "groundtruth" / f"{stem}.png", mask, schema)
        entry = {"split": "val" if i in val else "train",
                 "status": "verified" if i in verified else "unlabelled"}
        if i in verified:
            write_mask(out / "labels" / f"{stem}.png", mask, schema)
            summary.verified.append(name)
        if i in val:
            summary.val.append(name)
        manifest["images"][name] = entry
        summary.images.append(name)
        report(on_progress, i + 1, num_images, name)
    schema.save(out / "classes.json")
    atomic_write_text(out / MANIFEST_NAME, json.dumps(manifest, indent=2) + "\n")
    summary.total_bytes = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()
                                and ".workbench" not in p.parts)
    return summary

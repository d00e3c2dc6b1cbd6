"""The polygon <-> mask rule (workbench.formats.raster): coverage conventions and round trips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workbench.formats import raster
from workbench.formats.base import NOT_LABELLED

CAMVID = Path(__file__).resolve().parents[2].parent / "shared" / "camvid"


def synthetic() -> np.ndarray:
    """Shapes with holes (one not labelled, one another class), thin parts, touching classes."""
    m = np.full((64, 80), NOT_LABELLED, np.uint8)
    m[4:50, 4:70] = 1                  # big region ...
    m[12:30, 16:40] = NOT_LABELLED     # ... with a not-labelled hole
    m[16:22, 22:28] = 2                # ... holding an island of class 2
    m[34:46, 44:60] = 3                # a hole filled by class 3
    m[38:42, 48:52] = 1                # ... with class 1 again inside it
    m[52, 0:80] = 4                    # a one-pixel line across the image
    m[0:64, 76] = 0                    # a one-pixel column touching the line
    m[56:64, 0:10] = 5                 # touching class 6 below
    m[60:64, 10:20] = 6
    m[58, 30] = 2                      # a single pixel
    for i in range(8):                 # a diagonal staircase, 8-connected only
        m[54 + i, 40 + i] = 3
    return m


def test_area_box_covers_pixels_whose_centres_are_inside():
    canvas = np.zeros((20, 20), np.uint8)
    raster.paint_polygon(canvas, np.array([[0, 0], [10, 0], [10, 10], [0, 10]], float), 1, raster.AREA)
    rows, cols = np.nonzero(canvas)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (0, 9, 0, 9)
    assert canvas.sum() == 100


def test_labelme_box_covers_its_outline_too():
    canvas = np.zeros((20, 20), np.uint8)
    raster.paint_polygon(canvas, np.array([[0, 0], [10, 0], [10, 10], [0, 10]], float), 1, raster.LABELME)
    assert canvas.sum() == 121  # pixels 0..10 inclusive: integer coordinates are pixel centres


def test_area_fill_matches_a_point_in_polygon_test():
    # an independent rule: skimage's point-in-polygon at the pixel centres, on polygons
    # whose vertices never put a centre on an edge (ties are where rasterisers differ)
    from skimage.draw import polygon

    rng = np.random.default_rng(7)
    for _ in range(60):
        pts = rng.uniform(-8, 58, (int(rng.integers(3, 10)), 2)) + 0.013
        expected = np.zeros((48, 52), np.uint8)
        rr, cc = polygon(pts[:, 1] - 0.5, pts[:, 0] - 0.5, expected.shape)
        expected[rr, cc] = 1
        got = np.zeros_like(expected)
        raster.paint_polygon(got, pts, 1, raster.AREA)
        assert (got != expected).sum() <= 1


@pytest.mark.parametrize("convention", [raster.AREA, raster.LABELME])
@pytest.mark.parametrize("order", ["document", "area"])
def test_round_trip_of_synthetic_shapes_is_exact(convention, order):
    m = synthetic()
    regions = raster.vectorise(m, convention, order=order, void_regions=True)
    back = raster.rasterise(regions, *m.shape, convention, order=order)
    assert (back == m).all()


def test_holes_come_back_from_shapes_drawn_after_without_void_shapes():
    m = synthetic()
    regions = raster.vectorise(m, raster.AREA)
    assert all(r.value != NOT_LABELLED for r in regions)
    back = raster.rasterise(regions, *m.shape, raster.AREA)
    assert raster.agreement(m, back) == 1.0               # every labelled pixel as it was
    assert (back[12:30, 16:40] == 1).sum() > 0           # the void hole took the class around it


def test_vertices_in_area_convention_sit_a_quarter_pixel_inside():
    m = np.full((10, 10), NOT_LABELLED, np.uint8)
    m[2:5, 3:7] = 0
    (region,) = raster.vectorise(m, raster.AREA)
    xs, ys = region.points[:, 0], region.points[:, 1]
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (3.25, 6.75, 2.25, 4.75)


def test_placement():
    pts = np.array([[1, 1], [5, 1], [5, 5]], float)
    assert raster.placement(pts, 10, 10) == "inside"
    assert raster.placement(pts + 7, 10, 10) == "clipped"
    assert raster.placement(pts + 20, 10, 10) == "outside"


def test_as_points_refuses_bad_coordinates():
    with pytest.raises(ValueError):
        raster.as_points([1, 2, 3])
    with pytest.raises(ValueError):
        raster.as_points([[1, float("nan")], [2, 2], [3, 3]])
    assert raster.as_points([1, 2, 3, 4]).shape == (2, 2)


@pytest.mark.skipif(not (CAMVID / "trainannot").is_dir(), reason="../shared/camvid not present")
@pytest.mark.parametrize("convention,order", [(raster.AREA, "area"), (raster.AREA, "document"),
                                              (raster.LABELME, "document")])
def test_round_trip_on_camvid_masks(convention, order):
    for path in sorted((CAMVID / "trainannot").glob("*.png"))[:3]:
        m = np.asarray(Image.open(path)).astype(np.uint8)
        m = np.where(m == 11, NOT_LABELLED, m).astype(np.uint8)   # CamVid's void as not labelled
        regions = raster.vectorise(m, convention, order=order)
        back = raster.rasterise(regions, *m.shape, convention, order=order)
        assert raster.agreement(m, back) >= 0.99, path.name


def test_coordinates_far_outside_are_refused_not_overflowed():
    with pytest.raises(ValueError, match="beyond"):
        raster.as_points([[1, 1], [1e30, 1], [1, 1e30]])
    # within the limit, an edge far outside still fills what is inside the image
    canvas = np.zeros((10, 10), np.uint8)
    raster.paint_polygon(canvas, np.array([[-9e5, -9e5], [9e5, -9e5], [9e5, 9e5], [-9e5, 9e5]]), 1, raster.AREA)
    assert canvas.all()


@pytest.mark.parametrize("order", ["document", "area"])
def test_keyhole_polygons_keep_not_labelled_holes_without_void_shapes(order):
    m = synthetic()
    regions = raster.vectorise(m, raster.AREA, order=order, keyhole=True)
    assert all(r.value != NOT_LABELLED for r in regions)
    back = raster.rasterise(regions, *m.shape, raster.AREA, order=order)
    assert (back == m).all()
    with pytest.raises(ValueError):
        raster.vectorise(m, raster.LABELME, keyhole=True)

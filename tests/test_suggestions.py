"""Suggestions: near-duplicate frames are not picked twice; regions; the project workflow and CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workbench.errors import WorkbenchError
from workbench.workflows.suggestions import (RARITY_CAP, balanced_uncertainty, coverage_gain, density, descriptor, expected_pixels,
                                             rarity_weights, select_coverage, select_diverse, select_regions,
                                             select_typical, select_uncertain, tile_box, tile_uncertainty,
                                             typical_distance, uncertain_regions)


def stretches(seed: int = 0) -> tuple[dict[int, np.ndarray], dict[int, float], dict[int, str]]:
    """Three stretches of four near-identical frames; stretch A is the most uncertain throughout."""
    rng = np.random.default_rng(seed)
    centres = {"A": rng.normal(0, 1, 48), "B": rng.normal(0, 1, 48), "C": rng.normal(0, 1, 48)}
    desc, unc, which = {}, {}, {}
    base_unc = {"A": 0.9, "B": 0.6, "C": 0.4}
    i = 0
    for name, c in centres.items():
        for _ in range(4):
            desc[i] = (c + rng.normal(0, 0.02, 48)).astype(np.float32)
            unc[i] = base_unc[name] + rng.uniform(0, 0.05)
            which[i] = name
            i += 1
    return desc, unc, which


def test_near_duplicate_frames_are_not_picked_twice():
    desc, unc, which = stretches()
    plain = select_uncertain(unc, 3)
    assert [which[i] for i in plain] == ["A", "A", "A"]          # what issue 13 saw on CamVid
    diverse = select_diverse(unc, desc, 3)
    assert sorted(which[i] for i in diverse) == ["A", "B", "C"]
    assert which[diverse[0]] == "A" and diverse[0] == plain[0]   # the most uncertain still goes first


def test_labelled_images_cover_their_neighbours_and_the_rule_relaxes_rather_than_stopping_short():
    desc, unc, which = stretches(1)
    labelled_a = [desc[0] + 0.001]
    picks = select_diverse({i: u for i, u in unc.items() if i != 0}, desc, 2, labelled=labelled_a)
    assert sorted(which[i] for i in picks) == ["B", "C"]          # A is labelled already
    many = select_diverse(unc, desc, 6)
    assert len(many) == 6 and len(set(many)) == 6 and {which[i] for i in many[:3]} == {"A", "B", "C"}


def test_typical_distance_and_descriptor():
    a = np.zeros((40, 60, 3), np.uint8)
    b = a.copy()
    b[:, 30:] = 255
    da, db = descriptor(a), descriptor(b)
    assert da.shape == (16 * 12 * 3,) and np.linalg.norm(da - db) > 1
    assert typical_distance(np.stack([da, da + 0.01, db, db + 0.01])) == pytest.approx(0.01 * np.sqrt(len(da)), rel=1e-2)


def test_uncertain_regions_are_ranked_by_how_much_there_is_to_fix():
    u = np.zeros((100, 100), np.float32)
    u[10:20, 10:20] = 0.9        # small, very unsure
    u[50:90, 40:90] = 0.6        # large, unsure
    regions = uncertain_regions(u, threshold=0.3)
    assert len(regions) == 2
    big, small = regions
    assert big.box[0] <= 50 <= big.box[2] and small.box[0] <= 10 <= small.box[2]
    assert big.score > small.score


def test_tiles_score_their_own_pixels_and_boxes_cover_the_image_once():
    u = np.zeros((90, 120), np.float32)
    u[:45, 60:] = 1.0                               # the top-right quarter is unsure
    t = tile_uncertainty(u, (2, 2))
    assert t.shape == (2, 2) and t[0, 1] == pytest.approx(1.0) and t[[0, 1, 1], [0, 0, 1]].max() == 0
    cover = np.zeros((91, 121), np.int32)           # odd sizes: tiles still cover every pixel once
    for r in range(3):
        for c in range(4):
            y0, x0, y1, x1 = tile_box((91, 121), (3, 4), (r, c))
            cover[y0:y1, x0:x1] += 1
    assert (cover == 1).all()


def test_select_regions_spreads_a_tile_budget_over_diverse_images_and_skips_labelled_tiles():
    desc, unc, which = stretches(2)
    tiles = {}
    for i, u in unc.items():
        g = np.full((2, 2), u * 0.1, np.float32)
        g[1, 1] = u                                  # one clearly unsure tile per image
        tiles[i] = g
    tiles[0] = tiles[0].copy()
    tiles[0][1, 1] = np.nan                          # image 0's unsure tile is labelled already
    picked = select_regions(tiles, desc, 3, per_image=1)
    assert len(picked) == 3 and sorted(which[i] for i in picked) == ["A", "B", "C"]
    assert all(t == [(1, 1)] for i, t in picked.items())   # the unsure tile of each, image 0 passed over
    assert 0 not in picked
    two = select_regions(tiles, desc, 4, per_image=2)  # 4 tiles, 2 per image: two images
    assert len(two) == 2 and all(len(t) == 2 and t[0] == (1, 1) for t in two.values())
    full = {i: np.full((1, 1), np.nan, np.float32) for i in tiles}
    assert select_regions(full, desc, 3) == {}      # nothing left open: nothing asked


def test_select_typical_covers_the_groups_nobody_labelled_with_their_most_typical_member():
    rng = np.random.default_rng(3)
    centres = {"A": rng.normal(0, 1, 24), "B": rng.normal(0, 1, 24) + 6, "C": rng.normal(0, 1, 24) - 6}
    sizes = {"A": 12, "B": 8, "C": 4}
    desc, which = {}, {}
    for name, c in centres.items():
        for _ in range(sizes[name]):
            desc[len(desc)] = (c + rng.normal(0, 0.3, 24)).astype(np.float32)
            which[len(which)] = name
    two = select_typical(desc, 2)
    assert sorted(which[i] for i in two) == ["A", "B"]            # the two largest groups first
    for i in two:                                                  # ... by a member near its group's centre
        members = np.stack([desc[j] for j in desc if which[j] == which[i]])
        dist = np.linalg.norm(members - members.mean(0), axis=1)
        assert np.linalg.norm(desc[i] - members.mean(0)) <= np.quantile(dist, 0.5)
    labelled_a = [centres["A"].astype(np.float32)]
    rest = {i: d for i, d in desc.items() if which[i] != "A" or i % 2}
    picks = select_typical(rest, 2, labelled=labelled_a)
    assert sorted(which[i] for i in picks) == ["B", "C"]          # A is covered by its label
    many = select_typical(desc, 5)
    assert len(many) == 5 and len(set(many)) == 5 and select_typical({}, 3) == []


def test_coverage_gain_favours_classes_nobody_labelled_and_saturates():
    have = np.array([5000.0, 5000.0, 0.0])
    assert coverage_gain(have, np.array([100.0, 0, 0]), 1000) < coverage_gain(have, np.array([0, 0, 100.0]), 1000)
    assert coverage_gain(have, np.zeros(3), 1000) == 0.0
    first = coverage_gain(have, np.array([0, 0, 200.0]), 1000)
    again = coverage_gain(have + np.array([0, 0, 200.0]), np.array([0, 0, 200.0]), 1000)
    assert 0 < again < first                      # the second image of a class adds less than the first


def test_expected_pixels_counts_confidence_per_predicted_class():
    mask = np.array([[0, 0, 1], [1, 2, 9]], np.uint8)      # 9: outside the classes, not counted
    conf = np.array([[1.0, 0.5, 0.25], [0.25, 1.0, 1.0]], np.float32)
    assert expected_pixels(mask, conf, 3).tolist() == [1.5, 0.5, 1.0]
    assert expected_pixels(mask, None, 3).tolist() == [2, 2, 1]


def test_select_coverage_spreads_picks_over_the_thin_classes_and_skips_near_duplicates():
    desc, _, which = stretches(4)
    # stretch A shows class 2 (unlabelled so far), B class 3 (unlabelled), C only the labelled class 0
    show = {"A": np.array([900.0, 0, 100, 0]), "B": np.array([950.0, 0, 0, 50]), "C": np.array([1000.0, 0, 0, 0])}
    expected = {i: show[which[i]] for i in desc}
    have = np.array([20000.0, 3000, 0, 0])
    picks = select_coverage(expected, desc, 2, labelled_pixels=have, image_pixels=1000)
    assert sorted(which[i] for i in picks) == ["A", "B"]           # one per thin class, not two frames of A
    three = select_coverage(expected, desc, 3, labelled_pixels=have, image_pixels=1000)
    assert [which[i] for i in three][:2] == [which[i] for i in picks] and which[three[2]] == "C"
    assert select_coverage({}, desc, 2, labelled_pixels=have, image_pixels=1000) == []


def test_rarity_weights_favour_classes_few_pixels_show():
    w = rarity_weights(np.array([1000, 1000, 10, 0]))
    assert w[0] == pytest.approx(w[1]) and w[2] > w[0]
    assert w[3] == RARITY_CAP                          # never labelled: the most worth finding
    assert w[2] == pytest.approx(RARITY_CAP)           # (1000 / 10) ** 0.5 = 10, clipped to the cap
    assert np.all(rarity_weights(np.zeros(3)) == 1)    # nothing labelled yet: all alike


def test_balanced_uncertainty_weights_pixels_by_their_predicted_class():
    unsure = np.full((10, 10), 0.5, np.float32)
    common, rare = np.zeros((10, 10), np.uint8), np.ones((10, 10), np.uint8)
    w = np.array([1.0, 3.0], np.float32)
    assert balanced_uncertainty(common, unsure, w) == pytest.approx(0.5)
    assert balanced_uncertainty(rare, unsure, w) == pytest.approx(1.5)
    assert balanced_uncertainty(np.full((10, 10), 200, np.uint8), unsure, w) == pytest.approx(0.5)  # unknown -> 0


def test_density_prefers_typical_images_and_steers_the_pick():
    desc, unc, which = stretches(2)
    lone = len(desc)
    desc[lone] = np.random.default_rng(5).normal(0, 1, 48).astype(np.float32) * 3   # an outlier, alone
    unc[lone] = 0.95                                                               # and the most uncertain
    scale = typical_distance(np.stack(list(desc.values())))
    dens = density(np.stack([desc[i] for i in sorted(desc)]), scale)
    assert dens[lone] < dens[:lone].min()
    assert select_diverse(unc, desc, 1)[0] == lone                  # uncertainty alone takes the outlier
    assert which.get(select_diverse(unc, desc, 1, density_power=1.0)[0]) == "A"


# ----- the project workflow ------------------------------------------------------------------
def video_project(root: Path) -> Path:
    """Two scenes of five near-identical frames each, one labelled frame of a third scene, quick model."""
    from workbench.classes import ClassSchema
    from workbench.project import Project
    from workbench.workflows.quick import train_quick_project

    folder = root / "video"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    scenes = {"a": (30, 200), "b": (200, 40), "c": (120, 120)}
    k = 0
    for scene, (lo, hi) in scenes.items():
        base = rng.integers(0, 255, (48, 64, 3)).astype(np.int16)
        base[:, :32] = lo
        base[:, 32:] = hi
        for _ in range(5 if scene != "c" else 1):
            frame = np.clip(base + rng.integers(-3, 4, base.shape), 0, 255).astype(np.uint8)
            Image.fromarray(frame).save(folder / f"clip_{k:04d}.png")
            k += 1
    schema = ClassSchema.default(["left", "right"])
    with Project.open(folder, schema=schema) as project:
        mask = np.full((48, 64), 255, np.uint8)
        mask[10:20, 5:25] = 0
        mask[10:20, 40:60] = 1
        project.save_label(project.find("clip_0010").id, mask, status="verified")
        train_quick_project(project)
    return folder


def test_suggest_images_picks_one_frame_per_scene(tmp_path: Path):
    from workbench.project import Project
    from workbench.workflows.suggestions import suggest_images

    folder = video_project(tmp_path)
    with Project.open(folder) as project:
        out = suggest_images(project, count=2, device="cpu")
        scenes = sorted(int(s.name[5:9]) // 5 for s in out.suggestions)
        assert scenes == [0, 1], [s.name for s in out.suggestions]
        assert out.candidates == 10 and out.version == 1
        weighted = suggest_images(project, count=2, device="cpu", balanced=True, density_power=1.0)
        assert sorted(int(s.name[5:9]) // 5 for s in weighted.suggestions) == [0, 1]
        plain = suggest_images(project, count=2, strategy="uncertain", device="cpu")
        assert len(plain.suggestions) == 2
        typical = suggest_images(project, count=2, strategy="typical", device="cpu")
        assert sorted(int(s.name[5:9]) // 5 for s in typical.suggestions) == [0, 1]   # a scene each
        assert typical.strategy == "typical"
        covering = suggest_images(project, count=2, strategy="coverage", device="cpu")
        assert sorted(int(s.name[5:9]) // 5 for s in covering.suggestions) == [0, 1]  # no two of one scene
        with pytest.raises(WorkbenchError, match="unknown strategy"):
            suggest_images(project, strategy="best")


def test_cli_suggest(tmp_path: Path, capsys):
    import json

    from workbench.cli import main

    folder = video_project(tmp_path)
    assert main(["suggest", str(folder), "--count", "2", "--json", "--device", "cpu", "--balanced",
                 "--density", "1"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["suggestions"]) == 2 and data["strategy"] == "diverse"
    empty = tmp_path / "none"
    empty.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(empty / "a.png")
    assert main(["suggest", str(empty)]) == 2
    assert "no model yet" in capsys.readouterr().err

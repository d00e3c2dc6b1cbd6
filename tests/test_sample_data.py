"""The bundled sample project: generator, committed folder, CLI, and seeding a Project."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from workbench.classes import ClassSchema
from workbench.cli import main
from workbench.errors import WorkbenchError
from workbench.imageio import image_size, list_images, read_image
from workbench.masks import read_mask
from workbench.sample_data import (BACKGROUND, CYTOPLASM, DEBRIS, NUCLEUS, generate, render_cell_image,
                                   sample_schema)

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "sample_data"


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sample") / "proj"
    generate(out, seed=0, num_images=6)
    return out


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_layout_and_manifest(small):
    manifest = json.loads((small / "workbench.json").read_text())
    assert manifest["classes"] == "classes.json"
    assert manifest["ground_truth"] == "groundtruth" and manifest["labels"] == "labels"
    names = [p.name for p in list_images(small)]
    assert names == [f"cell_{i:02d}.jpg" for i in range(1, 7)]
    assert set(manifest["images"]) == set(names)
    schema = ClassSchema.load(small / "classes.json")
    assert schema.names == ["background", "cytoplasm", "nucleus", "debris"]
    for name, entry in manifest["images"].items():
        stem = name[:-4]
        w, h = image_size(small / name)
        assert 256 <= w <= 512 and 256 <= h <= 512
        gt = read_mask(small / "groundtruth" / f"{stem}.png", schema, expected_hw=(h, w))
        assert entry["split"] in ("train", "val") and entry["status"] in ("verified", "unlabelled")
        label = small / "labels" / f"{stem}.png"
        assert label.exists() == (entry["status"] == "verified")
        if label.exists():
            assert entry["split"] == "train"
            assert np.array_equal(read_mask(label, schema), gt)
    statuses = [(e["split"], e["status"]) for e in manifest["images"].values()]
    assert statuses.count(("val", "unlabelled")) == 1 and statuses.count(("train", "verified")) == 5


def test_same_seed_same_bytes_other_seed_differs(small, tmp_path):
    generate(tmp_path / "again", seed=0, num_images=6)
    assert _files(tmp_path / "again") == _files(small)
    generate(tmp_path / "other", seed=1, num_images=2)
    assert (tmp_path / "other" / "cell_01.jpg").read_bytes() != (small / "cell_01.jpg").read_bytes()


def test_images_look_like_their_masks():
    # Not a trivial task, but learnable: class means are ordered as in fluorescence
    # (cells brighter than background, nuclei bluer than cytoplasm), every class appears,
    # and no single colour threshold separates cytoplasm from background perfectly.
    rng = np.random.default_rng(5)
    img, mask = render_cell_image(rng, 300, 360, density=0.7)
    assert img.shape == (300, 360, 3) and img.dtype == np.uint8 and mask.shape == (300, 360)
    assert set(np.unique(mask).tolist()) == {BACKGROUND, CYTOPLASM, NUCLEUS, DEBRIS}
    f = img.astype(float)
    bg, cyto, nuc = (f[mask == c].mean(axis=0) for c in (BACKGROUND, CYTOPLASM, NUCLEUS))
    assert cyto[1] > bg[1] + 20              # cytoplasm is green
    assert nuc[2] > cyto[2] + 10             # nuclei are bluer
    green = f[..., 1]
    overlap = np.percentile(green[mask == CYTOPLASM], 10) < np.percentile(green[mask == BACKGROUND], 99)
    assert overlap
    assert img.std() > 10


def test_refuses_a_non_empty_folder_unless_overwriting(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(WorkbenchError, match="not empty"):
        generate(tmp_path, num_images=1)
    generate(tmp_path, num_images=1, overwrite=True)
    assert (tmp_path / "mine.txt").read_text() == "keep me"
    assert (tmp_path / "cell_01.jpg").is_file()
    (tmp_path / "file").write_text("x")
    with pytest.raises(WorkbenchError, match="not a folder"):
        generate(tmp_path / "file")


def test_cli_writes_a_project(tmp_path, capsys):
    assert main(["sample-data", str(tmp_path / "p"), "--images", "2", "--seed", "3"]) == 0
    assert "wrote 2 images" in capsys.readouterr().out
    assert len(list_images(tmp_path / "p")) == 2
    assert main(["sample-data", str(tmp_path / "p"), "--images", "2"]) == 2
    assert "not empty" in capsys.readouterr().err


def test_committed_sample_data_is_what_the_generator_makes(tmp_path):
    """sample_data/ must be regenerated (scripts/make_sample_data.py) when the generator changes."""
    total = sum(p.stat().st_size for p in SAMPLE.rglob("*") if p.is_file() and ".workbench" not in p.parts)
    assert total < 5_000_000
    summary = generate(tmp_path / "fresh", seed=0)
    assert len(summary.images) == 24 and len(summary.verified) == 8 and len(summary.val) == 6
    assert json.loads((SAMPLE / "workbench.json").read_text()) == \
        json.loads((tmp_path / "fresh" / "workbench.json").read_text())
    schema = sample_schema()
    for name in summary.images:
        stem = name[:-4]
        assert np.array_equal(read_mask(SAMPLE / "groundtruth" / f"{stem}.png", schema),
                              read_mask(tmp_path / "fresh" / "groundtruth" / f"{stem}.png", schema))
        # JPEG encoders may differ by a rounding step between libjpeg builds
        diff = np.abs(read_image(SAMPLE / name).astype(int) - read_image(tmp_path / "fresh" / name))
        assert diff.mean() < 1.0, name


def test_seeds_a_project(small, tmp_path):
    from workbench.project import Project, Split, Status

    project = Project.open(small, state_dir=tmp_path / "state")
    try:
        assert project.problems == []
        assert project.schema.names == sample_schema().names
        assert len(project.images()) == 6
        verified = project.images(status=Status.VERIFIED)
        assert len(verified) == 5 and all(r.split == Split.TRAIN and r.has_label for r in verified)
        val = project.images(split=Split.VAL)
        assert [r.name for r in val] == ["cell_04.jpg"]
        assert all(r.has_ground_truth for r in project.images())
    finally:
        project.close()

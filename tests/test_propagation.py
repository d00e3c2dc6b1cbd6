"""Frame propagation: a label moves with a translated image; sequences; the project workflow and CLI."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from workbench.classes import ClassSchema
from workbench.errors import WorkbenchError
from workbench.ml.propagation import Carried, carry_along, carry_label, fuse
from workbench.project import Project, Status

SCHEMA = ClassSchema.default(["ground", "car"])
H, W = 120, 160


def textured_scene(shift: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A textured background with a textured 'car' square, the whole scene shifted right by ``shift``."""
    rng = np.random.default_rng(seed)
    big = cv2.GaussianBlur(rng.integers(0, 255, (H, W + 40)).astype(np.float32), (0, 0), 2)
    big = cv2.normalize(big, None, 40, 200, cv2.NORM_MINMAX)
    mask = np.zeros((H, W + 40), np.uint8)
    big[40:80, 50:90] = 255 - big[40:80, 50:90]
    mask[40:80, 50:90] = 1
    img = big[:, 20 - shift:20 - shift + W]
    return np.repeat(img[:, :, None], 3, axis=2).astype(np.uint8), mask[:, 20 - shift:20 - shift + W].copy()


def test_propagation_moves_a_label_with_a_translated_image():
    src, src_mask = textured_scene(0)
    dst, dst_mask = textured_scene(6)
    carried = carry_label(src, src_mask, dst)
    sure = carried.confidence > 0.5
    assert sure.mean() > 0.8
    assert (carried.mask[sure] == dst_mask[sure]).mean() > 0.98
    # the car moved 6 px right: its carried label did too (not where it was in the source)
    cols = np.flatnonzero((carried.mask == 1).any(axis=0))
    assert abs(cols.min() - 36) <= 1 and abs(cols.max() - 75) <= 1   # 30..69 in the source
    # pixels that entered at the left edge came from outside the source: no confidence
    assert carried.confidence[:, :3].max() < 0.5


def test_confidence_falls_where_the_flow_cannot_be_trusted():
    src, src_mask = textured_scene(0)
    other, _ = textured_scene(0, seed=9)          # a different scene: no consistent motion
    same = carry_label(src, src_mask, src)
    unrelated = carry_label(src, src_mask, other)
    assert same.confidence.mean() > 0.9
    assert unrelated.confidence.mean() < same.confidence.mean() - 0.2


def test_chains_decay_and_fusion_prefers_the_confident_source():
    frames = [textured_scene(2 * k)[0] for k in range(4)]
    chain = carry_along(frames, textured_scene(0)[1])
    assert len(chain) == 3
    assert chain[-1].confidence.mean() < chain[0].confidence.mean()
    _, truth = textured_scene(6)
    last = chain[-1]
    sure = last.confidence > 0.5
    assert (last.mask[sure] == truth[sure]).mean() > 0.95
    # a model that says "car" everywhere at 0.6 loses where the flow is sure, wins where it has nothing
    carried = Carried(np.array([[0, 255]], np.uint8), np.array([[0.9, 0.0]], np.float32))
    mask, conf = fuse(carried, np.array([[1, 1]], np.uint8), np.array([[0.6, 0.6]], np.float32), 2)
    assert mask.tolist() == [[0, 1]] and conf[0, 0] > 0.9


def sequence_project(root: Path, n: int = 4) -> Path:
    folder = root / "clip"
    folder.mkdir(parents=True)
    for k in range(n):
        Image.fromarray(textured_scene(3 * k)[0]).save(folder / f"clip_{k:04d}.png")
    Image.fromarray(textured_scene(0, seed=3)[0]).save(folder / "other.png")
    with Project.open(folder, schema=SCHEMA) as project:
        project.save_label(project.find("clip_0001").id, textured_scene(3)[1], status="verified")
    return folder


def test_sequences_and_neighbours(tmp_path: Path):
    from workbench.workflows.propagation import frame_key, neighbours, sequences

    assert frame_key("0016E5_07959") == ("0016E5_", 7959) and frame_key("other") is None
    folder = sequence_project(tmp_path)
    with Project.open(folder) as project:
        ids = [project.find(f"clip_{k:04d}").id for k in range(4)]
        assert list(sequences(project).values()) == [ids]
        assert neighbours(project, ids[1]) == (ids[0], ids[2])
        assert neighbours(project, project.find("other").id) == (None, None)
        settings = project.settings()
        settings["sequence"] = {"frames": False}
        project.save_settings(settings)
        assert sequences(project) == {}


def test_propagate_project_fills_neighbours_and_never_touches_a_persons_label(tmp_path: Path):
    from workbench.workflows.propagation import propagate_project

    folder = sequence_project(tmp_path)
    with Project.open(folder) as project:
        person = textured_scene(9)[1].copy()
        person[:] = 0
        project.save_label(project.find("clip_0003").id, person, status="edited")
        out = propagate_project(project, frames=3, use_model=False)
        written = {t for t, _, _ in out.written}
        assert written == {"clip_0000.png", "clip_0002.png"}        # clip_0003 is the person's
        for k in (0, 2):
            rec = project.find(f"clip_{k:04d}")
            assert rec.status == Status.PREDICTED and rec.source == "propagated:clip_0001"
            got = project.read_label(rec.id)
            truth = textured_scene(3 * k)[1]
            sure = got != 255
            assert sure.mean() > 0.8 and (got[sure] == truth[sure]).mean() > 0.97
        assert np.array_equal(project.read_label(project.find("clip_0003").id), person)
        # propagated labels are not training data until reviewed
        assert len(project.training_pairs("train")) == 2
        with pytest.raises(WorkbenchError, match="unknown direction"):
            propagate_project(project, direction="sideways")


def test_cli_propagate(tmp_path: Path, capsys):
    from workbench.cli import main

    folder = sequence_project(tmp_path)
    assert main(["propagate", str(folder), "--from", "clip_0001", "--direction", "next", "--no-model"]) == 0
    out = capsys.readouterr().out
    assert "clip_0002.png: label carried from clip_0001.png" in out and "clip_0000" not in out
    assert main(["propagate", str(folder), "--from", "nope"]) == 2
    assert "no image named 'nope'" in capsys.readouterr().err
    flat = tmp_path / "flat"
    flat.mkdir()
    Image.fromarray(textured_scene(0)[0]).save(flat / "a.png")
    assert main(["propagate", str(flat)]) == 2
    assert "no image sequence found" in capsys.readouterr().err

"""`workbench predict` (folder and PROJECT) and `workbench train PROJECT` under torchrun (gloo, 2 CPUs)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from workbench.cli import main
from workbench.masks import read_mask
from workbench.project import Project

from workflow_helpers import ENCODER, FAST_CLI, make_images, tiny_project

REPO = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(*argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
           "--master-addr", "127.0.0.1", "--master-port", str(_free_port()), "-m", "workbench", *argv]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A random tiny 2-class model (no training needed to check who predicts what)."""
    import torch

    from workbench.classes import ClassSchema
    from workbench.ml.checkpoint import CheckpointMeta, save_checkpoint
    from workbench.ml.models import ModelConfig, build_model

    schema = ClassSchema.default(["background", "square"])
    torch.manual_seed(0)
    model = build_model(ModelConfig("unet", ENCODER), 2)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    save_checkpoint(path, model, CheckpointMeta("unet", ENCODER, 2, schema.to_dict()))
    return path


def test_predict_folder_under_torchrun_shares_the_images_and_matches_one_process(checkpoint, tmp_path):
    images = tmp_path / "images"
    make_images(images, 5)
    proc = _torchrun("predict", str(images), "--model", str(checkpoint), "--out", str(tmp_path / "two"),
                     "--device", "cpu")
    assert proc.stdout.count("wrote 5 mask(s)") == 1   # rank 0 reports the total
    assert "2 processes, about 3 each" in proc.stderr
    assert main(["predict", str(images), "--model", str(checkpoint), "--out", str(tmp_path / "one"),
                 "--device", "cpu"]) == 0
    for i in range(5):
        two = read_mask(tmp_path / "two" / f"{i}.png", _schema())
        one = read_mask(tmp_path / "one" / f"{i}.png", _schema())
        np.testing.assert_array_equal(two, one)


def _schema():
    from workbench.classes import ClassSchema

    return ClassSchema.default(["background", "square"])


def test_predict_project_under_torchrun_caches_every_image_and_rank0_records_them(checkpoint, tmp_path):
    folder = tiny_project(tmp_path, n_train=0, n_val=0, n_unlabelled=5)
    with Project.open(folder) as project:
        project.register_model(checkpoint)
    proc = _torchrun("predict", str(folder), "--device", "cpu")
    assert proc.stdout.count("model v1: predicted 5 image(s)") == 1
    with Project.open(folder) as project:
        records = project.images()
        assert len(records) == 5
        for rec in records:
            assert project.read_prediction(rec.id, 1) is not None
            assert rec.status == "predicted" and rec.source == "model:1"
            assert rec.uncertainty is not None   # recorded by rank 0 for rank 1's images too


def test_train_project_under_torchrun_registers_once(tmp_path):
    folder = tiny_project(tmp_path)
    proc = _torchrun("train", str(folder), *FAST_CLI, "--threads", "1")
    assert proc.stdout.count("registered model version 1") == 1
    with Project.open(folder) as project:
        assert [m.version for m in project.models()] == [1]
        from workbench.ml.checkpoint import read_meta

        meta = read_meta(project.model(1).path)
        assert meta.train["world_size"] == 2 and meta.train["storage_dtype"] == "float16"
        assert not (project.state_dir / "training-snapshot").exists()

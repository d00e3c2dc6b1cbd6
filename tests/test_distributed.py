"""Two CPU processes (gloo) under torchrun train one model: same weights, one writer."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from workbench.classes import ClassSchema
from workbench.masks import write_mask
from workbench.ml.checkpoint import read_meta

HERE = Path(__file__).resolve().parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_hold_identical_weights_and_only_rank0_writes(tmp_path: Path) -> None:
    schema = ClassSchema.default(["background", "square"])
    schema.save(tmp_path / "classes.json")
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        image = rng.integers(0, 60, (64, 64, 3), dtype=np.uint8)
        mask = np.zeros((64, 64), np.uint8)
        y, x = rng.integers(4, 36, 2)
        image[y:y + 20, x:x + 20] = 220
        mask[y:y + 20, x:x + 20] = 1
        Image.fromarray(image).save(images / f"{i}.png")
        write_mask(masks / f"{i}.png", mask, schema)
    reports = tmp_path / "reports"
    reports.mkdir()
    out = tmp_path / "model.safetensors"
    env = {**os.environ, "WB_TEST_REPORT_DIR": str(reports), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
           "--master-addr", "127.0.0.1", "--master-port", str(_free_port()),
           str(HERE / "distributed_worker.py"), "train", str(images), "--masks", str(masks),
           "--classes", str(tmp_path / "classes.json"), "--out", str(out), "--epochs", "2",
           "--encoder", "tu-mobilenetv3_small_050", "--crop", "64", "--batch-size", "2",
           "--device", "cpu", "--workers", "0", "--threads", "1"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    digests = {r: (reports / f"rank{r}.digest").read_text() for r in (0, 1)}
    assert digests[0] == digests[1]  # DDP kept the replicas identical
    assert (reports / "rank0.saved").is_file() and not (reports / "rank1.saved").exists()
    meta = read_meta(out)
    assert meta.train["world_size"] == 2
    # 8 images, 1 held out for validation: 7 train over 2 ranks, batch 2 -> 2 steps per epoch.
    assert [h["steps"] for h in meta.history][:1] == [2]
    assert proc.stdout.count("finished: 2 epoch(s)") == 1  # only rank 0 prints

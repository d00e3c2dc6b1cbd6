"""Shared test setup: Qt offscreen before anything imports it, and CamVid fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TQDM_DISABLE", "1")
# Keep torch to the machine's cores without oversubscribing when tests run in parallel.
os.environ.setdefault("OMP_NUM_THREADS", "2")

REPO = Path(__file__).resolve().parent.parent
CAMVID = (REPO.parent / "shared" / "camvid").resolve()


@pytest.fixture(scope="session")
def camvid() -> Path:
    """Path to ../shared/camvid (the real CamVid data beside the checkout)."""
    if not (CAMVID / "classes.json").is_file():
        pytest.fail(f"CamVid data not found at {CAMVID}: tests expect ../shared/camvid beside the repo")
    return CAMVID


@pytest.fixture(autouse=True)
def _isolated_state_home(tmp_path_factory, monkeypatch):
    """Project state for read-only folders goes to a temp dir, never the user's data dir."""
    monkeypatch.setenv("WORKBENCH_STATE_HOME", str(tmp_path_factory.mktemp("state-home")))

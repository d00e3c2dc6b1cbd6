"""ONNX Runtime backend: same argmax as PyTorch, exported once, cached by weights, fallbacks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from workbench.classes import ClassSchema
from workbench.errors import WorkbenchError
from workbench.ml import onnx_backend
from workbench.ml.checkpoint import CheckpointMeta, compact_checkpoint, save_checkpoint
from workbench.ml.inference import Predictor
from workbench.ml.models import ModelConfig, build_model

pytestmark = pytest.mark.skipif(not onnx_backend.available(), reason="onnxruntime / onnx not installed")

ENCODER = "tu-mobilenetv3_small_050"  # small: the export takes seconds


def _image(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
    return np.ascontiguousarray(np.kron(small, np.ones((8, 8, 1), np.uint8))[:h, :w])


def _checkpoint(folder: Path, seed: int = 0, name: str = "v0001.safetensors") -> Path:
    torch.manual_seed(seed)
    model = build_model(ModelConfig("unet", ENCODER), 4).eval()
    meta = CheckpointMeta("unet", ENCODER, 4, ClassSchema.default(4).to_dict())
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    save_checkpoint(path, model, meta)
    return path


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _checkpoint(tmp_path_factory.mktemp("onnx"))


def test_onnx_gives_the_same_argmax_as_pytorch(ckpt: Path) -> None:
    onnx = Predictor.from_checkpoint(ckpt, device="cpu", backend="onnx")
    torch_p = Predictor.from_checkpoint(ckpt, device="cpu", backend="torch")
    assert onnx.backend == "onnx" and torch_p.backend == "torch"
    # Sizes that need padding, one batch of two same-size images, and a tiled image.
    images = [("a", _image(70, 90, 1)), ("b", _image(70, 90, 2)), ("c", _image(64, 64, 3))]
    for (ka, pa), (kb, pb) in zip(onnx.predict_many(images), torch_p.predict_many(images)):
        assert ka == kb
        np.testing.assert_array_equal(pa.mask, pb.mask)
        np.testing.assert_allclose(pa.confidence, pb.confidence, atol=1e-4)
        np.testing.assert_allclose(pa.entropy, pb.entropy, atol=1e-4)
    tiled_onnx = Predictor.from_checkpoint(ckpt, device="cpu", backend="onnx", tile=64, overlap=16)
    tiled_torch = Predictor.from_checkpoint(ckpt, device="cpu", backend="torch", tile=64, overlap=16)
    big = _image(150, 130, 4)
    np.testing.assert_array_equal(tiled_onnx.predict(big).mask, tiled_torch.predict(big).mask)


def test_export_is_cached_beside_the_checkpoint_and_reused(tmp_path: Path) -> None:
    path = _checkpoint(tmp_path / "models")
    first = Predictor.from_checkpoint(path, device="cpu")  # auto = ONNX Runtime on a CPU
    exports = list(path.parent.glob("*.onnx"))
    assert first.backend == "onnx" and len(exports) == 1
    assert exports[0].name.startswith("v0001.") and "exported" in first.backend_note
    stamp = exports[0].stat().st_mtime_ns
    second = Predictor.from_checkpoint(path, device="cpu")
    assert "cached" in second.backend_note and exports[0].stat().st_mtime_ns == stamp
    # Registering rewrites the metadata only: the weights' key, and so the export, stay.
    compact_checkpoint(path, metrics={"registered": {"val_miou": 0.5}}, half=False)
    assert list(path.parent.glob("*.onnx")) == exports
    # New weights under the same name: a new export, and the stale one is removed.
    _checkpoint(tmp_path / "models", seed=1)
    third = Predictor.from_checkpoint(path, device="cpu")
    now = list(path.parent.glob("*.onnx"))
    assert len(now) == 1 and now != exports and "exported" in third.backend_note


def test_key_follows_the_class_layout(ckpt: Path) -> None:
    assert onnx_backend.cache_key(ckpt, (0, 1, 2, 3)) != onnx_backend.cache_key(ckpt, (1, 0, 2, 3))
    assert onnx_backend.cache_key(ckpt, None) == onnx_backend.cache_key(ckpt, None)


def test_torch_backend_writes_no_export(tmp_path: Path) -> None:
    path = _checkpoint(tmp_path)
    p = Predictor.from_checkpoint(path, device="cpu", backend="torch")
    assert p.backend == "torch" and not list(tmp_path.glob("*.onnx"))
    with onnx_backend.auto_means_torch():
        assert Predictor.from_checkpoint(path, device="cpu").backend == "torch"
    assert not list(tmp_path.glob("*.onnx"))


def test_unwritable_folder_falls_back_to_pytorch_or_refuses(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    path = _checkpoint(tmp_path / "ro")
    # The folder-permission check, as a read-only mount answers it (root ignores chmod).
    monkeypatch.setattr(onnx_backend.os, "access", lambda p, mode: False)
    p = Predictor.from_checkpoint(path, device="cpu")
    assert p.backend == "torch" and "cannot write" in p.backend_note
    assert p.predict(_image(40, 40)).mask.shape == (40, 40)
    assert not list(path.parent.glob("*.onnx"))
    with pytest.raises(WorkbenchError, match="--backend onnx"):
        Predictor.from_checkpoint(path, device="cpu", backend="onnx")


def test_damaged_export_is_made_again(tmp_path: Path) -> None:
    path = _checkpoint(tmp_path)
    Predictor.from_checkpoint(path, device="cpu")
    (export,) = tmp_path.glob("*.onnx")
    export.write_bytes(b"not an onnx file")
    again = Predictor.from_checkpoint(path, device="cpu")
    assert again.backend == "onnx" and "re-exported" in again.backend_note
    assert again.predict(_image(40, 40)).mask.shape == (40, 40)


def test_unknown_backend_is_refused(ckpt: Path) -> None:
    with pytest.raises(WorkbenchError, match="--backend must be one of"):
        Predictor.from_checkpoint(ckpt, device="cpu", backend="tensorrt")


def test_predictor_slot_and_predict_project_use_onnx(tmp_path: Path) -> None:
    from workbench.workflows.prediction import PredictorSlot

    path = _checkpoint(tmp_path)
    slot = PredictorSlot("cpu")
    assert slot.get(1, path).backend == "onnx"
    assert PredictorSlot("cpu", backend="torch").get(1, path).backend == "torch"

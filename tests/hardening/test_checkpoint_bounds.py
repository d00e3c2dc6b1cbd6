"""Untrusted checkpoint sizes: every size-bearing field is bounded before anything is built.

A forged ``mean`` of 100,000 values once built a 100,000-channel convolution (2 GB,
8 s) before the weights' shapes were compared; 1,000,000 values tried 12.5 GB. Each
forged field here must be refused by ``read_meta`` (and so by every loader) with a
message naming the file and the field. The weights' shapes in the safetensors header
are compared with the declared architecture on the meta device, before a real model or
the weights are allocated. No timing is asserted: a refusal that came after a huge
allocation would show up as a MemoryError or a different message, not as slowness.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from tests.hardening import corpus
from workbench.cli import main
from workbench.errors import InputError
from workbench.ml import checkpoint
from workbench.ml.inference import Predictor
from workbench.ml.models import ModelConfig, build_model

SCHEMA = corpus.corpus_schema()


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, dict[str, torch.Tensor]]:
    """A real tiny checkpoint: (path, its metadata as a dict, its weights)."""
    folder = tmp_path_factory.mktemp("bounds")
    model = build_model(ModelConfig("unet", "resnet18"), SCHEMA.num_classes)
    meta = checkpoint.CheckpointMeta(arch="unet", encoder="resnet18", num_classes=SCHEMA.num_classes,
                                     schema=SCHEMA.to_dict(), train={"crop": 64, "batch_size": 2})
    path = folder / "good.safetensors"
    checkpoint.save_checkpoint(path, model, meta)
    return path, json.loads(meta.to_json()), load_file(str(path))


def _forge(folder: Path, name: str, data: dict, weights: dict[str, torch.Tensor]) -> Path:
    path = folder / f"{name}.safetensors"
    save_file(weights, str(path), metadata={checkpoint.METADATA_KEY: json.dumps(data)})
    return path


def _classes(n: int) -> dict:
    return {"classes": [{"index": i % 255, "name": f"c{i}", "color": [i % 256, 0, 0]} for i in range(n)]}


# field, forged value, words the message must hold (besides the file and the field name)
FORGED = [
    ("mean", [0.5] * 100_000, "1 to 16, one per input channel"),
    ("std", [0.5] * 1_000_000, "1 to 16, one per input channel"),
    ("mean", [], "1 to 16, one per input channel"),
    ("num_classes", 100_000, "at most 255"),
    ("num_classes", 256, "at most 255"),
    ("schema", _classes(300), "at most 255 classes"),
    ("history", [{}] * 100_001, "at most 100000 records"),
    ("trained_on", ["x"] * 1_000_001, "at most 1,000,000 strings"),
    ("trained_on", ["x" * 5000], "at most 4096 characters"),
    ("arch", "u" * 10_000, "at most 200 characters"),
    ("encoder", "r" * 10_000, "at most 200 characters"),
    ("parent", "p" * 10_000, "at most 4096 characters"),
    ("metrics", {f"k{i}": 1 for i in range(10_001)}, "at most 10000 entries"),
    ("train", {f"k{i}": 1 for i in range(10_001)}, "at most 10000 entries"),
]


@pytest.mark.parametrize(("field", "value", "words"), FORGED,
                         ids=[f"{f}-{i}" for i, (f, _, _) in enumerate(FORGED)])
def test_forged_size_field_is_refused_naming_file_and_field(good: tuple, tmp_path: Path, field: str,
                                                            value: object, words: str) -> None:
    _, data, weights = good
    path = _forge(tmp_path, f"forged {field}", {**data, field: value}, weights)
    for load in (checkpoint.read_meta, checkpoint.load_checkpoint,
                 lambda p: Predictor.from_checkpoint(p, device="cpu")):
        with pytest.raises(InputError) as info:
            load(path)
        message = str(info.value)
        assert path.name in message and f"'{field}'" in message and words in message, message


@pytest.mark.parametrize(("key", "value"), [("crop", 10**9), ("batch_size", 0), ("tile", 10**7),
                                            ("epochs", -1), ("workers", 10**6), ("crop", "256"),
                                            ("threads", True)])
def test_forged_training_numbers_are_refused(good: tuple, tmp_path: Path, key: str, value: object) -> None:
    """Numbers in the stored training settings that would size something when reused."""
    _, data, weights = good
    path = _forge(tmp_path, f"train {key}", {**data, "train": {**data["train"], key: value}}, weights)
    with pytest.raises(InputError) as info:
        checkpoint.read_meta(path)
    assert path.name in str(info.value) and f"'train.{key}'" in str(info.value), str(info.value)


def test_huge_header_is_refused_before_it_is_parsed(good: tuple, tmp_path: Path) -> None:
    """A header length of 90 MB (safetensors itself allows 100 MB) is refused from its 8 bytes."""
    path = tmp_path / "huge header.safetensors"
    size = 90_000_000
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", size))
        fh.write(b"{" + b" " * (size - 2) + b"}")
    with pytest.raises(InputError) as info:
        checkpoint.read_meta(path)
    message = str(info.value)
    assert path.name in message and "header is 90,000,000 bytes" in message and "at most" in message


def test_huge_metadata_string_is_refused(good: tuple, tmp_path: Path) -> None:
    _, data, weights = good
    path = tmp_path / "long meta.safetensors"
    text = json.dumps({**data, "train": {"note": "n" * (17 * 2**20)}})
    save_file(weights, str(path), metadata={checkpoint.METADATA_KEY: text})
    with pytest.raises(InputError) as info:
        checkpoint.read_meta(path)
    assert path.name in str(info.value) and "metadata is" in str(info.value)


def test_declared_architecture_is_checked_against_the_header_before_building(
        good: tuple, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """resnet18 weights declared as resnet152: refused from the header, no real model built."""
    _, data, weights = good
    path = _forge(tmp_path, "declared resnet152", {**data, "encoder": "resnet152"}, weights)
    built: list[str] = []
    real_build = checkpoint.build_model

    def spy(config: ModelConfig, num_classes: int) -> torch.nn.Module:
        model = real_build(config, num_classes)
        built.append(next(model.parameters()).device.type)
        return model

    monkeypatch.setattr(checkpoint, "build_model", spy)
    with pytest.raises(InputError) as info:
        checkpoint.load_checkpoint(path)
    message = str(info.value)
    assert path.name in message and "weights do not fit" in message and "resnet152" in message
    assert built == ["meta"], f"a real model was built before the shape check: {built}"


def test_in_channels_mismatch_is_caught_from_the_header(good: tuple, tmp_path: Path) -> None:
    """Four mean/std values (within bounds) but 3-channel weights: named before building."""
    _, data, weights = good
    path = _forge(tmp_path, "four channels", {**data, "mean": [0.5] * 4, "std": [0.2] * 4}, weights)
    with pytest.raises(InputError) as info:
        checkpoint.load_checkpoint(path)
    assert path.name in str(info.value) and "encoder.conv1.weight" in str(info.value)


def test_good_checkpoint_still_loads_and_predicts(good: tuple) -> None:
    path, _, _ = good
    model, meta = checkpoint.load_checkpoint(path)
    assert meta.num_classes == SCHEMA.num_classes and not model.training
    predictor = Predictor.from_checkpoint(path, device="cpu")
    out = predictor.predict(torch.zeros((40, 48, 3), dtype=torch.uint8).numpy())
    assert out.mask.shape == (40, 48)


def test_cli_refuses_forged_mean(good: tuple, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, data, weights = good
    path = _forge(tmp_path, "cli mean", {**data, "mean": [0.5] * 100_000, "std": [0.5] * 100_000}, weights)
    images = tmp_path / "images"
    images.mkdir()
    (images / "a.png").write_bytes(corpus.good_image_bytes())
    assert main(["predict", str(images), "--model", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "cli mean.safetensors" in err and "'mean'" in err and "Traceback" not in err

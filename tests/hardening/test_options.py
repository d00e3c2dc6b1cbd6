"""Options checked up front (issue 8.10): one sentence naming the flag, exit 2, no traceback.

``train --seed -1``, ``--crop 32 --batch-size 1`` (BatchNorm needs more than one value
per channel) and ``--class-weight-power nan`` (which once trained a whole run before
failing to save it) are refused before any data is decoded; ``--threads 100000`` and
``--workers 100000`` (once a thousand loader processes, memory exhausted, orphans left)
are capped to the machine's cores with a note. The checks live in ``TrainConfig`` so
the CLI, the app's settings and the API get the same sentences.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.hardening import corpus
from workbench import options
from workbench.cli import main
from workbench.errors import WorkbenchError
from workbench.masks import write_mask
from workbench.ml import checkpoint
from workbench.ml.models import ModelConfig, build_model
from workbench.ml.training import TrainConfig

SCHEMA = corpus.corpus_schema()
ENCODER = "tu-mobilenetv3_small_050"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two 64 x 64 images with two-class masks, a classes file, a tiny checkpoint."""
    root = tmp_path_factory.mktemp("options")
    images, labels = root / "images", root / "labels"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        image = rng.integers(0, 70, (64, 64, 3), dtype=np.uint8)
        mask = np.zeros((64, 64), np.uint8)
        image[16:40, 16:40] = 220
        mask[16:40, 16:40] = 1
        Image.fromarray(image).save(images / f"im{i}.png")
        write_mask(labels / f"im{i}.png", mask, SCHEMA)
    classes = root / "classes.json"
    SCHEMA.save(classes)
    model_path = root / "model.safetensors"
    model = build_model(ModelConfig("unet", "resnet18"), SCHEMA.num_classes)
    checkpoint.save_checkpoint(model_path, model, checkpoint.CheckpointMeta(
        arch="unet", encoder="resnet18", num_classes=SCHEMA.num_classes, schema=SCHEMA.to_dict()))
    return {"images": images, "labels": labels, "classes": classes, "model": model_path, "root": root}


def _no_traceback(*texts: str) -> None:
    for text in texts:
        assert "Traceback" not in text and "File \"" not in text, text


def _train(data: dict[str, Path], out: Path, *extra: str) -> list[str]:
    return ["train", str(data["images"]), "--masks", str(data["labels"]), "--classes", str(data["classes"]),
            "--out", str(out), "--device", "cpu", "--encoder", ENCODER, *extra]


TRAIN_REFUSED = [
    (["--seed", "-1"], "--seed must be >= 0, got -1"),
    (["--seed", str(2**40)], "--seed must be <= 4294967295"),
    (["--crop", "32", "--batch-size", "1"], "--batch-size 1 with --crop 32"),
    (["--crop", "32"], "--batch-size 8 (there are only 1 training image(s), so batches hold 1)"),  # 1 held out
    (["--arch", "deeplabv3plus", "--crop", "64", "--batch-size", "1"], "pools the whole image"),
    (["--class-weight-power", "nan"], "--class-weight-power must be a finite number, got nan"),
    (["--class-weight-power", "inf"], "--class-weight-power must be a finite number, got inf"),
    (["--class-weight-power", "-1"], "--class-weight-power must be >= 0"),
    (["--lr", "nan"], "--lr (learning rate) must be a finite number, got nan"),
    (["--lr=-inf"], "--lr (learning rate) must be a finite number"),
    (["--minutes", "inf"], "minutes"),
    (["--minutes", "nan"], "minutes"),
    (["--epochs", "1000000"], "--epochs must be <= 100000"),
    (["--crop", "8192"], "--crop must be <= 4096"),
    (["--batch-size", "1000000"], "--batch-size must be <= 65536"),
    (["--threads", "0"], "--threads must be"),
    (["--workers", "-1"], "--workers must be"),
]


@pytest.mark.parametrize(("extra", "words"), TRAIN_REFUSED, ids=[" ".join(e) for e, _ in TRAIN_REFUSED])
def test_train_refuses_option_up_front(data: dict[str, Path], tmp_path: Path, extra: list[str], words: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m.safetensors"
    argv = _train(data, out, *extra)
    if "--crop" not in extra:
        argv += ["--crop", "64"]
    if "--epochs" not in extra:
        argv += ["--epochs", "1"]
    rc = main(argv)
    stdout, err = capsys.readouterr()
    _no_traceback(stdout, err)
    assert rc == 2 and "workbench: error:" in err and words in err, err
    assert "epoch(s)" not in stdout and not out.exists()  # refused before training, not after


def _children() -> list[int]:
    """Live child processes of this process (from /proc; [] where there is none)."""
    me = str(os.getpid())
    found = []
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = entry.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == me and fields[0] != "Z":
            found.append(int(entry.parent.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to list child processes")
def test_workers_and_threads_are_capped_to_the_cores_with_a_note(data: dict[str, Path], tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    cores = options.machine_cores()
    before = set(_children())
    out = tmp_path / "m.safetensors"
    rc = main(_train(data, out, "--epochs", "1", "--crop", "64", "--batch-size", "2",
                     "--workers", "100000", "--threads", "100000"))
    stdout, err = capsys.readouterr()
    _no_traceback(stdout, err)
    assert rc == 0, err
    assert f"--workers 100000 is more than this machine's {cores} CPU core(s): using {cores} loader" in err
    assert f"--threads 100000 is more than this machine's {cores} CPU core(s): using {cores} threads" in err
    meta = checkpoint.read_meta(out)
    assert meta.train["workers"] == cores and meta.train["threads"] == cores
    assert set(_children()) <= before, "loader processes outlived the run"


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"seed": -1}, "--seed must be >= 0, got -1"),
    ({"class_weight_power": float("nan")}, "--class-weight-power must be a finite number, got nan"),
    ({"val_fraction": 1.0}, "--val-fraction must be < 1"),
    ({"scale": (0.5, float("inf"))}, "--scale (its high end) must be a finite number"),
    ({"scale": (2.0, 1.0)}, "--scale must be low <= high"),
    ({"scale": (0.5, 1000.0)}, "--scale (its high end) must be <= 8"),
    ({"color_jitter": float("nan")}, "--color-jitter must be a finite number"),
    ({"epochs": 2.5}, "--epochs must be a whole number"),
    ({"batch_size": True}, "--batch-size must be a whole number"),
    ({"dice": "yes"}, "--dice must be true or false"),
    ({"arch": "evilnet"}, "unknown architecture 'evilnet'"),
])
def test_api_and_settings_get_the_same_sentences(kwargs: dict, words: str) -> None:
    """TrainConfig checks on construction, so the app's settings and the API fail the same way."""
    with pytest.raises(WorkbenchError) as info:
        TrainConfig(**kwargs)
    assert words in str(info.value)


def test_a_field_changed_after_construction_is_checked_before_the_run(tmp_path: Path) -> None:
    from workbench.ml.training import train

    config = TrainConfig(device="cpu", epochs=1)
    config.seed = -5
    with pytest.raises(WorkbenchError, match="--seed must be >= 0, got -5"):
        train(config, SCHEMA, [(tmp_path / "a.png", tmp_path / "a.png")], [], tmp_path / "m.safetensors")


PREDICT_REFUSED = [
    (["--batch-size", "0"], "--batch-size must be >= 1, got 0"),
    (["--batch-size", "100000"], "--batch-size must be <= 4096"),
    (["--tile", "100"], "--tile must be >= 256, got 100"),
    (["--tile", str(10**9)], "--tile must be <= 16384"),
]


@pytest.mark.parametrize(("extra", "words"), PREDICT_REFUSED, ids=[" ".join(e) for e, _ in PREDICT_REFUSED])
def test_predict_refuses_numbers_up_front(data: dict[str, Path], tmp_path: Path, extra: list[str], words: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["predict", str(data["images"]), "--model", str(data["model"]), "--out", str(tmp_path / "out"),
               "--device", "cpu", *extra])
    stdout, err = capsys.readouterr()
    _no_traceback(stdout, err)
    assert rc == 2 and words in err, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("value", "words"), [("0", "must be >= 1"), ("100000", "must be <= 4096")])
def test_evaluate_refuses_batch_size(data: dict[str, Path], value: str, words: str,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["evaluate", str(data["images"]), "--model", str(data["model"]), "--gt", str(data["labels"]),
               "--device", "cpu", "--batch-size", value])
    stdout, err = capsys.readouterr()
    _no_traceback(stdout, err)
    assert rc == 2 and f"--batch-size {words}" in err, err


@pytest.mark.parametrize(("extra", "words"), [(["--seed", "-1"], "--seed must be >= 0, got -1"),
                                              (["--images", "100000000"], "--images must be <= 10000")])
def test_sample_data_refuses_numbers(tmp_path: Path, extra: list[str], words: str,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["sample-data", str(tmp_path / "sample"), *extra])
    stdout, err = capsys.readouterr()
    _no_traceback(stdout, err)
    assert rc == 2 and words in err, err


def test_validators_refuse_nan_and_infinity_everywhere() -> None:
    for bad in (float("nan"), float("inf"), float("-inf")):
        with pytest.raises(WorkbenchError, match="--x must be a finite number"):
            options.check_float("x", bad)
        with pytest.raises(WorkbenchError, match="--x must be a whole number"):
            options.check_int("x", bad)
    assert options.check_int("x", 3.0) == 3
    assert options.cap_to_cores("workers", 3, cores=4) == (3, None)
    assert options.cap_to_cores("workers", 9, cores=4)[0] == 4


def test_batch_norm_failure_of_an_unlisted_architecture_is_a_sentence(data: dict[str, Path], tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The up-front table misses an architecture: the first step's BatchNorm error is still a sentence."""
    from workbench.ml import training

    monkeypatch.setattr(training, "POOLED_ARCHS", frozenset())
    pairs = [(data["images"] / f"im{i}.png", data["labels"] / f"im{i}.png") for i in range(2)]
    config = TrainConfig(arch="deeplabv3plus", encoder="resnet18", device="cpu", epochs=1, crop=64,
                         batch_size=1, workers=0, class_weights=False)
    with pytest.raises(WorkbenchError, match="deeplabv3plus cannot train with batch 1 at crop 64: BatchNorm"):
        training.train(config, SCHEMA, pairs[:1], pairs[1:], tmp_path / "m.safetensors")
    assert not (tmp_path / "m.safetensors").exists()

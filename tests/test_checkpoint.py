"""Checkpoints: one safetensors file, validated metadata, class checks, no unpickling."""

from __future__ import annotations

import json
import pickle

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save as st_save

from workbench.classes import ClassSchema
from workbench.errors import InputError, WorkbenchError
from workbench.ml.checkpoint import (HEAD_PREFIX, METADATA_KEY, CheckpointMeta, load_checkpoint,
                                     read_meta, save_checkpoint)
from workbench.ml.models import ModelConfig, build_model

SCHEMA = ClassSchema.default(["road", "car", "tree"])


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(ModelConfig("unet", "resnet18"), 3)


def _meta(**kw) -> CheckpointMeta:
    base = dict(arch="unet", encoder="resnet18", num_classes=3, schema=SCHEMA.to_dict(),
                train={"epochs": 2, "lr": 1e-3}, history=[{"epoch": 1, "loss": 0.5}],
                metrics={"val_miou": 0.4}, parent="v0001.safetensors", trained_on=["a.png", "b.png"])
    base.update(kw)
    return CheckpointMeta(**base)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory, model):
    path = tmp_path_factory.mktemp("ckpt") / "v0002.safetensors"
    save_checkpoint(path, model, _meta())
    return path


def test_round_trip_weights_and_meta_identical(ckpt, model):
    loaded, meta = load_checkpoint(ckpt)
    assert meta == _meta(created=meta.created)
    assert read_meta(ckpt) == meta
    a, b = model.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not loaded.training


def test_one_file_with_json_in_the_header(ckpt):
    assert [p.name for p in ckpt.parent.iterdir()] == [ckpt.name]  # no temp file left
    with safe_open(str(ckpt), framework="pt") as fh:
        data = json.loads(fh.metadata()[METADATA_KEY])
    assert data["arch"] == "unet" and data["schema"]["classes"][1]["name"] == "car"
    assert data["format_version"] == 1 and data["mean"] == pytest.approx([0.485, 0.456, 0.406])


def _write_raw(path, data) -> None:
    text = data if isinstance(data, str) else json.dumps(data)
    path.write_bytes(st_save({"w": torch.zeros(1)}, metadata={METADATA_KEY: text}))


@pytest.mark.parametrize("field, value", [
    ("num_classes", "3"), ("num_classes", True), ("arch", 5), ("mean", "imagenet"),
    ("std", [0.2, 0.0, 0.2]), ("schema", []), ("train", []), ("history", {}), ("metrics", None),
    ("parent", 7), ("trained_on", ["a.png", 3]), ("created", 1700000000), ("format_version", "1"),
])
def test_read_meta_names_file_and_wrong_field(tmp_path, field, value):
    data = json.loads(_meta().to_json())
    data[field] = value
    path = tmp_path / "bad.safetensors"
    _write_raw(path, data)
    with pytest.raises(InputError) as err:
        read_meta(path)
    assert "bad.safetensors" in str(err.value) and repr(field) in str(err.value)


@pytest.mark.parametrize("data, expected", [
    ("{not json", "not valid JSON"), ([1, 2], "not a JSON object"),
    ({"arch": "unet"}, "lacks the field 'encoder'"),
])
def test_read_meta_rejects_broken_metadata(tmp_path, data, expected):
    path = tmp_path / "m.safetensors"
    _write_raw(path, data)
    with pytest.raises(InputError, match=expected):
        read_meta(path)


def test_read_meta_checks_schema_agrees_with_num_classes(tmp_path):
    path = tmp_path / "m.safetensors"
    _write_raw(path, json.loads(_meta(num_classes=4).to_json()))
    with pytest.raises(InputError, match="num_classes is 4 but its class schema has 3"):
        read_meta(path)


def test_newer_format_is_refused(tmp_path):
    path = tmp_path / "m.safetensors"
    _write_raw(path, json.loads(_meta(format_version=2).to_json()))
    with pytest.raises(InputError, match="newer workbench"):
        read_meta(path)


def test_safetensors_without_workbench_metadata(tmp_path):
    path = tmp_path / "plain.safetensors"
    path.write_bytes(st_save({"w": torch.zeros(1)}))
    with pytest.raises(InputError, match="no workbench metadata"):
        read_meta(path)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "nope.safetensors")


class _Exploit:
    """A pickle that would create a file if anything unpickled it."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_pickle_files_are_refused_and_never_unpickled(tmp_path, model):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.safetensors"
    evil.write_bytes(pickle.dumps(_Exploit(marker)))
    pt = tmp_path / "model.pt"
    torch.save(model.state_dict(), pt)
    for path in (evil, pt):
        with pytest.raises(InputError, match="not a safetensors checkpoint") as err:
            load_checkpoint(path)
        assert path.name in str(err.value)
    assert not marker.exists()


def test_weights_of_the_wrong_shape_are_a_clear_error(tmp_path):
    path = tmp_path / "m.safetensors"
    torch.manual_seed(1)
    four = build_model(ModelConfig("unet", "resnet18"), 4)
    save_checkpoint(path, four, _meta())  # metadata says 3 classes
    with pytest.raises(InputError) as err:
        load_checkpoint(path)
    msg = str(err.value)
    assert "weights do not fit" in msg and "segmentation_head.0.weight" in msg and "m.safetensors" in msg


def test_failed_save_leaves_the_old_file(tmp_path, model, ckpt):
    path = tmp_path / "keep.safetensors"
    path.write_bytes(ckpt.read_bytes())
    with pytest.raises(WorkbenchError, match="cannot serialise"):
        save_checkpoint(path, model, _meta(metrics={"val_miou": float("nan")}))
    assert read_meta(path) == read_meta(ckpt)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.safetensors"]


def test_same_classes_load_without_adapting(ckpt):
    _, meta = load_checkpoint(ckpt, schema=SCHEMA.copy())
    assert "adapted_head" not in meta.train


def test_other_classes_are_refused_listing_both(ckpt):
    project = ClassSchema.default(["road", "car", "tree", "sky"])
    with pytest.raises(WorkbenchError) as err:
        load_checkpoint(ckpt, schema=project)
    msg = str(err.value)
    assert "3 classes (road, car, tree)" in msg and "4 (road, car, tree, sky)" in msg
    renamed = ClassSchema.default(["road", "bus", "tree"])
    with pytest.raises(WorkbenchError, match="road, bus, tree"):
        load_checkpoint(ckpt, schema=renamed)


def test_adapt_head_keeps_encoder_and_decoder(ckpt, model):
    project = ClassSchema.default(["road", "car", "tree", "sky", "sign"])
    adapted, meta = load_checkpoint(ckpt, schema=project, adapt_head=True)
    assert meta.num_classes == 5 and meta.class_schema().names == project.names
    assert meta.train["adapted_head"] == {"from_classes": ["road", "car", "tree"],
                                          "to_classes": project.names, "layers": "segmentation_head"}
    old, new = model.state_dict(), adapted.state_dict()
    assert old.keys() == new.keys()
    for key in old:
        if key.startswith(HEAD_PREFIX):
            assert new[key].shape[0] == 5 and new[key].shape != old[key].shape
        else:
            assert torch.equal(old[key], new[key]), key
    with torch.no_grad():
        assert adapted(torch.rand(1, 3, 64, 64)).shape == (1, 5, 64, 64)
    # The adapted model saves and loads as an ordinary 5-class checkpoint.
    out = ckpt.parent / "adapted.safetensors"
    save_checkpoint(out, adapted, meta)
    _, again = load_checkpoint(out, schema=project)
    assert again.num_classes == 5

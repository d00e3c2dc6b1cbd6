"""Untrusted files: checkpoints are never unpickled; projects never reach outside their folder.

A pickled ``.pt`` (plain, or one whose ``__reduce__`` would create a marker file) is
refused by every loader, under any extension; wrong tensor shapes and metadata of the
wrong type are refused with a message naming the file and the field. A seed manifest
or a tampered project database naming paths outside the folder is refused.
"""

from __future__ import annotations

import builtins
import json
import pickle
import re
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from tests.hardening import corpus
from workbench.cli import main
from workbench.errors import InputError, WorkbenchError
from workbench.ml import checkpoint
from workbench.ml.inference import Predictor
from workbench.ml.models import ModelConfig, build_model
from workbench.project import Project

REPO = Path(__file__).resolve().parents[2]
SCHEMA = corpus.corpus_schema()


class Payload:
    """Unpickling this calls ``open(marker, "w")``: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):  # noqa: ANN204
        return (builtins.open, (self.marker, "w"))


@pytest.fixture(scope="module")
def model_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A good tiny checkpoint plus hostile and broken variants of it."""
    folder = tmp_path_factory.mktemp("ckpt")
    marker = folder / "PWNED"
    model = build_model(ModelConfig("unet", "resnet18"), SCHEMA.num_classes)
    meta = checkpoint.CheckpointMeta(arch="unet", encoder="resnet18", num_classes=SCHEMA.num_classes,
                                     schema=SCHEMA.to_dict())
    files = {"good": folder / "good.safetensors"}
    checkpoint.save_checkpoint(files["good"], model, meta)
    state = model.state_dict()
    # Pickles: torch's zip format and a raw pickle, under .pt and under .safetensors.
    torch.save(state, folder / "weights.pt")
    files["torch_pt"] = folder / "weights.pt"
    files["torch_renamed"] = folder / "renamed.safetensors"
    files["torch_renamed"].write_bytes(files["torch_pt"].read_bytes())
    torch.save({"state_dict": state, "hook": Payload(marker)}, folder / "evil.pt")
    files["evil_torch"] = folder / "evil.pt"
    files["evil_pickle"] = folder / "evil.safetensors"
    files["evil_pickle"].write_bytes(pickle.dumps(Payload(marker)))
    files["evil_pth"] = folder / "evil.pth"
    files["evil_pth"].write_bytes(pickle.dumps({"model": Payload(marker)}))
    # Safetensors with the wrong shapes: the head of a 5-class model, a missing tensor.
    header = {checkpoint.METADATA_KEY: meta.to_json()}
    weights = load_file(str(files["good"]))
    wrong = dict(weights)
    head = next(k for k in wrong if k.startswith("segmentation_head") and k.endswith("weight"))
    wrong[head] = torch.zeros((5, *wrong[head].shape[1:]))
    save_file(wrong, str(folder / "wrong shape.safetensors"), metadata=header)
    files["wrong_shape"] = folder / "wrong shape.safetensors"
    missing = {k: v for k, v in weights.items() if k != head}
    save_file(missing, str(folder / "missing tensor.safetensors"), metadata=header)
    files["missing_tensor"] = folder / "missing tensor.safetensors"
    # Metadata of the wrong type.
    for name, field, value in [("meta_num_classes_str", "num_classes", "2"),
                               ("meta_mean_str", "mean", "0.5"),
                               ("meta_schema_list", "schema", [1, 2]),
                               ("meta_arch_unknown", "arch", "evilnet"),
                               ("meta_encoder_unknown", "encoder", "resnet9000")]:
        data = json.loads(meta.to_json())
        data[field] = value
        path = folder / f"{name}.safetensors"
        save_file(weights, str(path), metadata={checkpoint.METADATA_KEY: json.dumps(data)})
        files[name] = path
    files["no_meta"] = folder / "no meta.safetensors"
    save_file(weights, str(files["no_meta"]))
    files["marker"] = marker
    return files


PICKLES = ["torch_pt", "torch_renamed", "evil_torch", "evil_pickle", "evil_pth"]
LOADERS = {
    "read_meta": checkpoint.read_meta,
    "load_checkpoint": checkpoint.load_checkpoint,
    "predictor": lambda p: Predictor.from_checkpoint(p, device="cpu"),
}


@pytest.mark.parametrize("loader", sorted(LOADERS))
@pytest.mark.parametrize("name", PICKLES)
def test_pickles_are_refused_and_never_run(model_files: dict[str, Path], name: str, loader: str) -> None:
    path = model_files[name]
    with pytest.raises(InputError) as info:
        LOADERS[loader](path)
    message = str(info.value)
    assert path.name in message and "not a safetensors checkpoint" in message
    assert "never pickled" in message and "pickled PyTorch file" in message
    assert "SafetensorError" not in message  # what the file is, not what the parser tripped on
    assert not model_files["marker"].exists(), "unpickling ran code from the file"


def test_cli_refuses_pickle(model_files: dict[str, Path], tmp_path: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    """``workbench predict`` / ``evaluate --model`` with a pickle: exit 2, clear message."""
    images = tmp_path / "images"
    images.mkdir()
    (images / "a.png").write_bytes(corpus.good_image_bytes())
    gt = tmp_path / "gt"
    gt.mkdir()
    Image.fromarray(np.zeros((24, 32), np.uint8)).save(gt / "a.png")
    for argv in (["predict", str(images), "--model", str(model_files["evil_pickle"]),
                  "--out", str(tmp_path / "out")],
                 ["evaluate", str(images), "--model", str(model_files["evil_torch"]), "--gt", str(gt)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "not a safetensors checkpoint" in err and "Traceback" not in err
    assert not model_files["marker"].exists()


def test_project_register_does_not_unpickle(model_files: dict[str, Path], tmp_path: Path) -> None:
    """Registering a pickle copies bytes; loading it later is refused; nothing runs."""
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "a.png").write_bytes(corpus.good_image_bytes())
    with Project.open(folder, schema=SCHEMA) as project:
        try:
            rec = project.register_model(model_files["evil_pickle"])
        except WorkbenchError:
            rec = None  # refusing at registration is fine too
        if rec is not None:
            with pytest.raises(InputError, match="not a safetensors checkpoint"):
                Predictor.from_checkpoint(rec.path, device="cpu")
    assert not model_files["marker"].exists()


def test_no_unpickling_call_in_the_package() -> None:
    """Nothing in workbench/ calls torch.load, pickle.load(s) or torch.jit.load."""
    pattern = re.compile(r"\b(torch\.load|pickle\.loads?|torch\.jit\.load|cPickle|dill\.load)\s*\(")
    offenders = [f"{p.relative_to(REPO)}:{i}" for p in (REPO / "workbench").rglob("*.py")
                 for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
                 if pattern.search(line) and not line.lstrip().startswith("#")]
    assert offenders == []


@pytest.mark.parametrize(("name", "words"), [
    ("wrong_shape", "wrong shape"),
    ("missing_tensor", "missing"),
])
def test_wrong_shapes_are_refused(model_files: dict[str, Path], name: str, words: str) -> None:
    path = model_files[name]
    with pytest.raises(InputError) as info:
        checkpoint.load_checkpoint(path)
    message = str(info.value)
    assert path.name in message and "weights do not fit" in message and words in message


@pytest.mark.parametrize(("name", "words"), [
    ("meta_num_classes_str", "'num_classes' must be a positive integer"),
    ("meta_mean_str", "'mean' must be a list of numbers"),
    ("meta_schema_list", "'schema' must be an object"),
    ("meta_arch_unknown", "evilnet"),
    ("meta_encoder_unknown", "resnet9000"),
    ("no_meta", "no workbench metadata"),
])
def test_bad_metadata_is_refused(model_files: dict[str, Path], name: str, words: str) -> None:
    path = model_files[name]
    with pytest.raises(WorkbenchError) as info:
        checkpoint.load_checkpoint(path)
    assert path.name in str(info.value) and words in str(info.value)


def test_good_checkpoint_still_loads(model_files: dict[str, Path]) -> None:
    """The control: the untouched file loads, so the refusals above are about the damage."""
    model, meta = checkpoint.load_checkpoint(model_files["good"])
    assert meta.num_classes == 2 and not model.training


# ----- paths outside the project folder ----------------------------------------------------------
def _folder_with_manifest(tmp_path: Path, manifest: dict) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "a.png").write_bytes(corpus.good_image_bytes())
    (folder / "labels").mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "a.png").write_bytes(corpus.good_image_bytes())
    SCHEMA.save(outside / "classes.json")
    (folder / "workbench.json").write_text(json.dumps(manifest))
    return folder


@pytest.mark.parametrize("manifest", [
    {"labels": "../outside"},
    {"labels": "labels/../../outside"},
    {"ground_truth": "../../x"},
    {"classes": "../outside/classes.json"},
    {"classes": "/etc/passwd"},
    {"images": {"../outside/a.png": {"split": "val"}}},
], ids=["parent", "dotdot_inside", "two_up", "classes_parent", "absolute", "image_name"])
def test_manifest_paths_outside_are_refused(tmp_path: Path, manifest: dict) -> None:
    folder = _folder_with_manifest(tmp_path, manifest)
    with pytest.raises(InputError) as info:
        Project.open(folder)
    assert "workbench.json" in str(info.value)
    assert not (folder / ".workbench" / "project.sqlite").exists(), "a half-made project was left"


def test_manifest_symlink_out_of_folder_is_refused(tmp_path: Path) -> None:
    """A folder inside the project that is a link to elsewhere counts as outside."""
    folder = _folder_with_manifest(tmp_path, {"labels": "masks"})
    (folder / "masks").symlink_to(tmp_path / "outside")
    with pytest.raises(InputError, match="outside the project folder"):
        Project.open(folder)


def test_tampered_database_paths_stay_inside(tmp_path: Path) -> None:
    """A project database edited to name ``../../x`` never makes the project touch it."""
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "a.png").write_bytes(corpus.good_image_bytes())
    victim = tmp_path / "victim.png"
    victim.write_bytes(b"precious")
    with Project.open(folder, schema=SCHEMA):
        pass
    db = folder / ".workbench" / "project.sqlite"
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("INSERT INTO images(name, stem) VALUES (?, ?)", ("../../victim.png", "../../../victim"))
    conn.close()
    with Project.open(folder) as project:
        names = [r.name for r in project.images()]
        assert names == ["a.png"], "a row naming a file outside the folder is listed"
        rec = project.find("../../victim.png")
        assert rec is None
    assert victim.read_bytes() == b"precious"


def test_tampered_model_path_stays_inside(tmp_path: Path, model_files: dict[str, Path]) -> None:
    """A models row edited to point at ``../../x.safetensors`` is not used as a model path."""
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "a.png").write_bytes(corpus.good_image_bytes())
    with Project.open(folder, schema=SCHEMA) as project:
        project.register_model(model_files["good"])
    db = folder / ".workbench" / "project.sqlite"
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE models SET path = ?", ("../../../outside.safetensors",))
    conn.close()
    with Project.open(folder) as project:
        models_dir = (project.state_dir / "models").resolve()
        try:
            records = project.models()
        except InputError as exc:  # refusing the tampered row is as good as ignoring it
            assert "project.sqlite" in str(exc) or "outside" in str(exc)
            return
        for rec in records:
            assert models_dir in rec.path.resolve().parents, f"model path escapes: {rec.path}"


@pytest.mark.parametrize("staged", ["../../victim.png.renumber", "labels/../../victim.png.renumber",
                                    "/tmp/x.png.renumber", "labels/a.png"])
def test_class_change_journal_cannot_name_outside_files(tmp_path: Path, staged: str) -> None:
    """The crash-recovery journal is a file in the project too: it may only name staged masks."""
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "a.png").write_bytes(corpus.good_image_bytes())
    victim = tmp_path / "victim.png"
    victim.write_bytes(b"precious")
    with Project.open(folder, schema=SCHEMA):
        pass
    journal = folder / ".workbench" / "schema-change.json"
    journal.write_text(json.dumps({"staged": [staged], "schema": SCHEMA.to_dict()}))
    with pytest.raises(InputError) as info:
        Project.open(folder)
    assert "schema-change.json" in str(info.value) and "not a staged mask" in str(info.value)
    assert victim.read_bytes() == b"precious"

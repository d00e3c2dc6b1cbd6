"""Issue 8.6: file names that are not UTF-8 (Latin-1 bytes) are listed and used everywhere.

``os.fsdecode(b"caf\\xe9.png")`` is ``"caf\\udce9.png"``: a str that cannot be encoded as
UTF-8. The database stores such names as their bytes, temp names keep them byte for
byte, and JSON writes them as escapes, so nothing fails on them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workbench.atomic import NAME_MAX, temp_name
from workbench.cli import main
from workbench.project import Project, Split, Status

HW = (64, 64)
RAW_NAMES = [b"caf\xe9", b"na\xefve", b"plain", b"x\xff"]
NAMES = [os.fsdecode(n) for n in RAW_NAMES]
FAST = ["--encoder", "tu-mobilenetv3_small_050", "--crop", "64", "--batch-size", "2",
        "--device", "cpu", "--workers", "0"]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    for sub in ("imgs", "masks"):
        (tmp_path / sub).mkdir()
    for stem in NAMES:
        Image.fromarray(rng.integers(0, 255, (*HW, 3), dtype=np.uint8)).save(tmp_path / "imgs" / f"{stem}.png")
        Image.fromarray(rng.integers(0, 2, HW, dtype=np.uint8)).save(tmp_path / "masks" / f"{stem}.png")
    return tmp_path


def test_names_are_really_not_utf8(data: Path) -> None:
    listed = sorted(os.listdir(os.fsencode(data / "imgs")))
    assert b"caf\xe9.png" in listed
    with pytest.raises(UnicodeEncodeError):
        NAMES[0].encode("utf-8")


def test_open_save_reopen_and_rebuild(data: Path) -> None:
    images = data / "imgs"
    with Project.open(images) as p:
        assert sorted(r.name for r in p.images()) == sorted(f"{n}.png" for n in NAMES)
        assert p.problems == []
        rec = p.find(NAMES[0])
        assert rec is not None and p.find(f"{NAMES[0]}.png").id == rec.id
        p.save_label(rec.id, np.ones(HW, np.uint8))
        p.set_split(rec.id, Split.VAL)
        p.set_status(rec.id, Status.VERIFIED)
        p.save_prediction(p.find(NAMES[1]).id, 1, np.zeros(HW, np.uint8), np.ones(HW, np.float32))
        assert p.read_label(rec.id).sum() == HW[0] * HW[1]
    assert os.path.exists(os.fsencode(images / ".workbench" / "labels") + b"/caf\xe9.png")
    with Project.open(images) as p:
        rec = p.find(NAMES[0])
        assert (rec.status, rec.split, rec.has_label) == (Status.VERIFIED, Split.VAL, True)
    json.loads((images / ".workbench" / "images.json").read_text())  # valid JSON, escaped
    for f in (images / ".workbench").glob("project.sqlite*"):
        f.unlink()
    with Project.open(images) as p:  # rebuilt from the files: the snapshot round-trips the name
        rec = p.find(NAMES[0])
        assert (rec.status, rec.split, rec.has_label) == (Status.VERIFIED, Split.VAL, True)


def test_temp_names_keep_the_bytes() -> None:
    tmp = temp_name(NAMES[0] + ".png")
    assert os.fsencode(tmp).endswith(b"caf\xe9.png")
    long = os.fsdecode(b"\xe9" * 300)
    assert len(os.fsencode(temp_name(long))) <= NAME_MAX
    utf8_long = "é" * 200  # cut on a character boundary, never inside one
    assert temp_name(utf8_long).encode("utf-8")


def test_import_train_predict_evaluate_through_the_cli(data: Path, capsys: pytest.CaptureFixture) -> None:
    images, masks = data / "imgs", data / "masks"
    assert main(["import", str(images), "--masks", str(masks)]) == 0
    assert "imported 4 of 4 labels" in capsys.readouterr().out
    with Project.open(images) as p:
        p.set_split(p.find(NAMES[3]).id, Split.VAL)
    assert main(["train", str(images), "--epochs", "1", *FAST]) == 0
    out = capsys.readouterr()
    assert "registered model version 1" in out.out, out.err
    model = images / ".workbench" / "models" / "v0001.safetensors"
    from workbench.ml.checkpoint import read_meta

    assert sorted(read_meta(model).trained_on) == sorted(f"{n}.png" for n in NAMES[:3])
    preds = data / "preds"
    assert main(["predict", str(images), "--model", str(model), "--out", str(preds), "--device", "cpu"]) == 0
    assert "wrote 4 mask(s)" in capsys.readouterr().out
    assert b"caf\xe9.png" in os.listdir(os.fsencode(preds))
    assert main(["evaluate", str(images), "--model", str(model), "--gt", str(masks), "--device", "cpu",
                 "--json", "--per-image"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["images"] == 4 and set(report["per_image"]) == set(NAMES)


def test_the_app_lists_and_opens_such_an_image(data: Path, qtbot, monkeypatch) -> None:  # noqa: ANN001
    from workbench.gui.main_window import MainWindow

    monkeypatch.setenv("WORKBENCH_STATE_HOME", str(data / "home"))
    window = MainWindow(device="cpu")
    qtbot.addWidget(window, before_close_func=lambda w: w.close_project(ask=False))
    window.show()
    assert window.open_project(data / "imgs"), window.notifier.last_error
    rec = window.project.find(NAMES[0])
    window.workspace.open_image(rec.id)
    assert window.workspace.image_id == rec.id
    table = window.list_panel.table.model()
    shown = [str(table.index(r, 0).data()) for r in range(table.rowCount())]
    assert len(shown) == 4 and any(s.startswith("caf") for s in shown), shown
    window.session.editor.fill(2, 2, 1)
    window.session.edited()
    window.workspace.save()
    assert window.project.get(rec.id).has_label
    window.close_project(ask=False)


def test_project_folder_whose_name_is_not_utf8(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("WORKBENCH_STATE_HOME", str(tmp_path / "home"))
    folder = Path(os.fsdecode(os.fsencode(tmp_path) + b"/donn\xe9es"))
    folder.mkdir()
    Image.fromarray(np.zeros((*HW, 3), np.uint8)).save(folder / "a.png")
    with Project.open(folder) as p:
        p.save_label(p.find("a").id, np.zeros(HW, np.uint8))
    with Project.open(folder / ".workbench") as p:   # the stored folder path round-trips
        assert p.folder == folder and p.find("a").has_label
    folder.chmod(0o555)                              # a read-only folder: per-user state, hashed by bytes
    try:
        (folder / ".workbench").rename(tmp_path / "moved")
        with Project.open(folder) as p:
            assert str(p.state_dir).startswith(str(tmp_path / "home"))
    finally:
        folder.chmod(0o755)

"""The corpus through the CLI: ``import``, ``predict``, ``evaluate``, ``train``.

For every command: a bad file gets a message naming it and the problem, the good
files are still processed, the exit status says something went wrong (1, or 2 when
nothing could be done), no traceback is printed, and existing labels do not change.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.hardening import corpus
from workbench import imageio, masks
from workbench.cli import main
from workbench.ml import checkpoint
from workbench.ml.models import ModelConfig, build_model
from workbench.project import Project, Status

REPO = Path(__file__).resolve().parents[2]
HW = (24, 32)
# Stem of a good image -> corpus mask case used as its mask.
MASK_FOR = {"good 0": "palette_ok", "good 1": "gray_ok", "good 2": "wrong_size", "good 3": "values_outside",
            "good 4": "rgb_unknown_colour", "good 5": "zero_byte_mask", "good 6": "truncated_mask",
            "good 7": "text_mask", "good 8": "gray16_too_big", "good 9": "rgb_ok"}
BAD_MASKS = {stem: name for stem, name in MASK_FOR.items() if not name.endswith("_ok")}


def _ok_mask(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).choice(np.array([0, 1, 255], np.uint8), size=HW)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Images (10 good + the whole image corpus), masks (the mask corpus), schema, a model."""
    root = tmp_path_factory.mktemp("cli")
    images = root / "images"
    cases = corpus.image_cases(images)
    for i in range(10):
        (images / f"good {i}.png").write_bytes(corpus.good_image_bytes(*HW, seed=i))
    mask_cases = {c.name: c for c in corpus.mask_cases(root / "mask corpus", HW)}
    mask_dir = root / "masks"
    mask_dir.mkdir()
    for stem, name in MASK_FOR.items():
        src = mask_cases[name].path
        (mask_dir / f"{stem}{src.suffix}").write_bytes(src.read_bytes())
    (mask_dir / "orphan.png").write_bytes(mask_cases["palette_ok"].path.read_bytes())
    classes = root / "classes.json"
    schema = corpus.corpus_schema()
    schema.save(classes)
    gt = root / "gt"
    for i in range(10):
        masks.write_mask(gt / f"good {i}.png", _ok_mask(i), schema)
    for case in cases:  # ground truth for the bad images too, so evaluate meets them
        if case.expect == corpus.ERROR and imageio.is_image_file(case.path):
            masks.write_mask(gt / f"{case.path.stem}.png", _ok_mask(0), schema)
    model = build_model(ModelConfig("unet", "resnet18"), schema.num_classes)
    ckpt = root / "tiny.safetensors"
    checkpoint.save_checkpoint(ckpt, model, checkpoint.CheckpointMeta(
        arch="unet", encoder="resnet18", num_classes=schema.num_classes, schema=schema.to_dict()))
    listed = {p.name for p in imageio.list_images(images)}
    return {"root": root, "images": images, "cases": cases, "masks": mask_dir, "classes": classes,
            "gt": gt, "ckpt": ckpt, "mask_cases": mask_cases, "listed": listed}


def _no_traceback(*texts: str) -> None:
    for text in texts:
        assert "Traceback" not in text and 'File "' not in text, text[-2000:]


def test_import_reports_each_bad_mask(world: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state"
    rc = main(["import", str(world["images"]), "--masks", str(world["masks"]), "--classes",
               str(world["classes"]), "--state-dir", str(state)])
    out, err = capsys.readouterr()
    _no_traceback(out, err)
    assert rc == 1, err
    for stem, name in BAD_MASKS.items():
        case = world["mask_cases"][name]
        line = next((ln for ln in err.splitlines() if f"{stem}{case.path.suffix}" in ln), None)
        assert line is not None, f"{stem}: not reported in {err}"
        assert case.problem.lower() in line.lower(), line
    assert "orphan.png" in out  # a mask with no image is listed, not an error
    with Project.open(world["images"], state_dir=state) as project:
        labelled = sorted(r.stem for r in project.images() if r.has_label)
        assert labelled == ["good 0", "good 1", "good 9"]
        assert all(project.find(s).status == Status.VERIFIED for s in labelled)


def test_bad_reimport_keeps_existing_labels(world: dict, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """Importing broken masks over existing labels changes no label and no status."""
    state = tmp_path / "state"
    good = tmp_path / "good masks"
    schema = corpus.corpus_schema()
    for i in range(4):
        masks.write_mask(good / f"good {i}.png", _ok_mask(i), schema)
    assert main(["import", str(world["images"]), "--masks", str(good), "--classes", str(world["classes"]),
                 "--state-dir", str(state)]) == 0
    before = corpus.tree_digest(state / "labels")
    with Project.open(world["images"], state_dir=state) as project:
        statuses = {r.stem: (r.status, r.source, r.updated) for r in project.images()}
    capsys.readouterr()
    assert main(["import", str(world["images"]), "--masks", str(world["masks"]),
                 "--state-dir", str(state)]) == 1
    _no_traceback(*capsys.readouterr())
    after = corpus.tree_digest(state / "labels")
    # good 0 / good 1 were re-imported from valid masks (their content may change); the
    # stems whose new mask is broken keep their label byte for byte.
    for stem in ("good 2", "good 3"):
        assert after[f"{stem}.png"] == before[f"{stem}.png"]
    with Project.open(world["images"], state_dir=state) as project:
        for stem in ("good 2", "good 3"):
            rec = project.find(stem)
            assert (rec.status, rec.source, rec.updated) == statuses[stem]


def test_predict_skips_bad_images_and_names_them(world: dict, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "pred"
    rc = main(["predict", str(world["images"]), "--model", str(world["ckpt"]), "--out", str(out_dir),
               "--device", "cpu"])
    out, err = capsys.readouterr()
    _no_traceback(out, err)
    assert rc == 1
    for case in world["cases"]:
        if case.path.name not in world["listed"]:
            continue  # not an image file in the listing (folder, pipe, broken link)
        if case.expect == corpus.ERROR:
            line = next((ln for ln in err.splitlines() if case.path.name in ln), None)
            assert line is not None and case.problem.lower() in line.lower(), (case.name, err)
            assert not (out_dir / f"{case.path.stem}.png").exists()
        elif case.name != "dup_stem_jpg":  # twin.jpg is skipped: twin.png owns the stem
            pred = masks.read_mask(out_dir / f"{case.path.stem}.png", corpus.corpus_schema(),
                                   case.shape[:2])
            assert pred.shape == case.shape[:2]
    assert "twin.jpg" in err and "same stem" in err
    for i in range(10):
        assert (out_dir / f"good {i}.png").is_file()


def test_evaluate_pred_lists_bad_masks(world: dict, capsys: pytest.CaptureFixture[str]) -> None:
    """Broken predicted masks are listed as problems; the good ones are scored."""
    rc = main(["evaluate", "--pred", str(world["masks"]), "--gt", str(world["gt"]), "--classes",
               str(world["classes"])])
    out, err = capsys.readouterr()
    _no_traceback(out, err)
    assert rc == 0
    assert "images scored   3" in out
    for stem, name in BAD_MASKS.items():
        assert stem in out, f"{stem} ({name}) is not listed among the problems"


def test_evaluate_bad_ground_truth(world: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Broken ground truth is named too, and swapping roles changes nothing on disk."""
    before = corpus.tree_digest(world["masks"])
    rc = main(["evaluate", "--pred", str(world["gt"]), "--gt", str(world["masks"]), "--classes",
               str(world["classes"])])
    out, err = capsys.readouterr()
    _no_traceback(out, err)
    assert rc == 0
    for stem in BAD_MASKS:
        assert stem in out
    assert corpus.tree_digest(world["masks"]) == before


def test_evaluate_model_on_bad_images(world: dict, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["evaluate", str(world["images"]), "--model", str(world["ckpt"]), "--gt", str(world["gt"]),
               "--device", "cpu"])
    out, err = capsys.readouterr()
    _no_traceback(out, err)
    assert rc == 0
    for case in world["cases"]:
        if case.expect == corpus.ERROR and case.path.name in world["listed"]:
            assert case.path.name in out + err, f"{case.name} not reported"


def test_train_refuses_bad_pair_with_its_name(world: dict, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """A broken mask stops training before it starts, naming the file and the problem."""
    rc = main(["train", str(world["images"]), "--masks", str(world["masks"]), "--classes",
               str(world["classes"]), "--out", str(tmp_path / "m.safetensors"), "--epochs", "1",
               "--crop", "32", "--batch-size", "2", "--device", "cpu", "--encoder", "tu-mobilenetv3_small_050"])
    out, err = capsys.readouterr()
    _no_traceback(out, err)
    assert rc == 2
    assert "good " in err and ("pixels but its image" in err or "not a readable mask" in err
                               or "empty file" in err or "outside the class schema" in err), err
    assert not (tmp_path / "m.safetensors").exists()


def test_subprocess_predict_prints_no_traceback(world: dict, tmp_path: Path) -> None:
    """The real console entry point, in its own process, on part of the corpus."""
    folder = tmp_path / "some"
    folder.mkdir()
    for name in ("good 0.png", "notes.png", "zero byte.png", "truncated.jpg", "bomb.png"):
        (folder / name).write_bytes((world["images"] / name).read_bytes())
    env = {**os.environ, "PYTHONPATH": str(REPO), "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "workbench", "predict", str(folder), "--model",
                           str(world["ckpt"]), "--out", str(tmp_path / "p"), "--device", "cpu"],
                          capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    _no_traceback(proc.stdout, proc.stderr)
    assert proc.returncode == 1
    for name in ("notes.png", "zero byte.png", "truncated.jpg", "bomb.png"):
        assert name in proc.stderr
    assert (tmp_path / "p" / "good 0.png").is_file()


def test_missing_paths_are_errors_not_tracebacks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nowhere = str(tmp_path / "nowhere")
    for argv in (["import", nowhere, "--masks", nowhere],
                 ["predict", nowhere, "--model", nowhere, "--out", str(tmp_path / "o")],
                 ["evaluate", "--pred", nowhere, "--gt", nowhere, "--classes", nowhere],
                 ["train", nowhere, "--masks", nowhere, "--classes", nowhere, "--out", nowhere + ".safetensors"]):
        rc = main(argv)
        out, err = capsys.readouterr()
        _no_traceback(out, err)
        assert rc == 2 and "nowhere" in err, (argv, err)


def test_sixteen_bit_and_odd_images_predict_upright(world: dict, tmp_path: Path) -> None:
    """EXIF-rotated and 1x1 images get masks of their displayed size."""
    out_dir = tmp_path / "pred"
    folder = tmp_path / "odd"
    folder.mkdir()
    for name in ("exif_rotated", "one_pixel", "gray16_png", "cmyk_jpeg"):
        case = next(c for c in world["cases"] if c.name == name)
        (folder / case.path.name).write_bytes(case.path.read_bytes())
    assert main(["predict", str(folder), "--model", str(world["ckpt"]), "--out", str(out_dir),
                 "--device", "cpu"]) == 0
    assert Image.open(out_dir / "phone photo.png").size == (24, 32)
    assert Image.open(out_dir / "one pixel.png").size == (1, 1)


def _odd_mask_folder(world: dict, tmp_path: Path, self_link: bool = False) -> Path:
    """Good masks plus a pipe, a dangling link, a folder (and a self-link) named like masks."""
    folder = tmp_path / "odd masks"
    folder.mkdir()
    for i in range(3):
        (folder / f"good {i}.png").write_bytes((world["gt"] / f"good {i}.png").read_bytes())
    os.mkfifo(folder / "good 5.png")
    (folder / "good 6.png").symlink_to("missing.png")
    (folder / "good 7.png").mkdir()
    if self_link:
        (folder / "good 8.png").symlink_to("good 8.png")
    return folder


def test_odd_entries_in_a_mask_folder(world: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Pipes, dangling links and folders among masks: no hang, no crash, the good ones used."""
    folder = _odd_mask_folder(world, tmp_path)
    state = tmp_path / "state"
    rc = main(["import", str(world["images"]), "--masks", str(folder), "--classes", str(world["classes"]),
               "--state-dir", str(state)])
    out, err = capsys.readouterr()
    _no_traceback(out, err)
    assert rc in (0, 1), err
    with Project.open(world["images"], state_dir=state) as project:
        assert sorted(r.stem for r in project.images() if r.has_label) == ["good 0", "good 1", "good 2"]
    rc = main(["evaluate", "--pred", str(folder), "--gt", str(world["gt"]), "--classes", str(world["classes"])])
    out, err = capsys.readouterr()
    _no_traceback(out, err)
    assert rc == 0 and "images scored   3" in out
    rc = main(["train", str(world["images"]), "--masks", str(folder), "--classes", str(world["classes"]),
               "--out", str(tmp_path / "m.safetensors"), "--epochs", "1", "--crop", "32", "--batch-size", "2",
               "--device", "cpu", "--encoder", "tu-mobilenetv3_small_050"])
    out, err = capsys.readouterr()
    _no_traceback(out, err)
    assert rc == 0, err
    assert (tmp_path / "m.safetensors").is_file()


def test_self_link_in_a_mask_folder(world: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _odd_mask_folder(world, tmp_path, self_link=True)
    rc = main(["import", str(world["images"]), "--masks", str(folder), "--classes", str(world["classes"]),
               "--state-dir", str(tmp_path / "state")])
    out, err = capsys.readouterr()
    _no_traceback(out, err)
    assert rc in (0, 1), err


def test_import_masks_for_bad_images(world: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A good mask whose image is broken: the problem names the image, the rest imports."""
    folder = tmp_path / "masks"
    ok = world["mask_cases"]["palette_ok"].path.read_bytes()
    # Images whose header is unreadable, and truncated ones whose header is intact (the
    # import decodes each paired image, so those are named too: issue 8.10).
    broken = [c for c in world["cases"] if c.expect == corpus.ERROR and c.path.name in world["listed"]]
    for case in broken:
        (folder / f"{case.path.stem}.png").parent.mkdir(exist_ok=True)
        (folder / f"{case.path.stem}.png").write_bytes(ok)
    (folder / "good 0.png").write_bytes(ok)
    rc = main(["import", str(world["images"]), "--masks", str(folder), "--classes", str(world["classes"]),
               "--state-dir", str(tmp_path / "state")])
    out, err = capsys.readouterr()
    _no_traceback(out, err)
    assert rc == 1 and "imported 1 of" in out
    for case in broken:
        assert case.path.name in err and case.problem.lower() in err.lower(), case.name


@pytest.mark.parametrize("name", ["schema_not_json", "schema_dup_index", "schema_deep", "schema_latin1"])
def test_bad_classes_file_on_the_command_line(world: dict, tmp_path: Path, name: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """``--classes`` naming a broken schema: exit 2 naming it, and no project is created."""
    case = next(c for c in corpus.schema_cases(tmp_path / "schemas") if c.name == name)
    state = tmp_path / "state"
    for argv in (["import", str(world["images"]), "--masks", str(world["masks"]), "--classes", str(case.path),
                  "--state-dir", str(state)],
                 ["evaluate", "--pred", str(world["gt"]), "--gt", str(world["gt"]), "--classes", str(case.path)]):
        rc = main(argv)
        out, err = capsys.readouterr()
        _no_traceback(out, err)
        assert rc == 2 and case.path.name in err and case.problem.lower() in err.lower(), err
    assert not (state / "project.sqlite").exists()


@pytest.mark.slow
def test_huge_mask_import_and_evaluate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A 12,000 x 12,000 image and mask through ``import`` and ``evaluate --pred``."""
    images = tmp_path / "images"
    case = corpus.huge_image(images)
    mask_dir = tmp_path / "masks"
    mask_dir.mkdir()
    # A grey PNG of one value is a valid index mask: every pixel is class 1.
    (mask_dir / case.path.name).write_bytes(corpus.constant_png(12_000, 12_000, value=1))
    classes = tmp_path / "classes.json"
    corpus.corpus_schema().save(classes)
    rc = main(["import", str(images), "--masks", str(mask_dir), "--classes", str(classes)])
    out, err = capsys.readouterr()
    _no_traceback(out, err)
    assert rc == 0 and "imported 1 of 1" in out, err
    rc = main(["evaluate", "--pred", str(mask_dir), "--gt", str(images / ".workbench" / "labels"),
               "--classes", str(classes)])
    out, err = capsys.readouterr()
    _no_traceback(out, err)
    assert rc == 0 and "144,000,000 pixels scored" in out and "mIoU            1.0000" in out


def test_non_ascii_names_on_an_ascii_console(world: dict, tmp_path: Path) -> None:
    """A console that cannot encode ``café 日本 ñ`` (legacy code page, ASCII locale) shows escapes."""
    pred = tmp_path / "pred"
    gt = tmp_path / "gt"
    schema = corpus.corpus_schema()
    for name in ("café 日本 ñ.png", "plain.png"):
        masks.write_mask(pred / name, _ok_mask(1), schema)
        masks.write_mask(gt / name, _ok_mask(2), schema)
    env = {**os.environ, "PYTHONPATH": str(REPO), "TQDM_DISABLE": "1", "PYTHONIOENCODING": "ascii"}
    proc = subprocess.run([sys.executable, "-m", "workbench", "evaluate", "--pred", str(pred), "--gt", str(gt),
                           "--classes", str(world["classes"])], capture_output=True, timeout=120, env=env)
    out, err = proc.stdout.decode("ascii"), proc.stderr.decode("ascii")
    _no_traceback(out, err)
    assert proc.returncode == 0, err
    assert "caf\\xe9" in out and "plain" in out


@pytest.mark.parametrize(("option", "word"), [
    (["--minutes", "inf"], "minutes"), (["--lr", "inf"], "learning rate"),
    (["--minutes", "nan"], "minutes"), (["--lr", "nan"], "learning rate"), (["--epochs", "-3"], "epochs"),
    (["--crop", "33"], "crop"), (["--batch-size", "0"], "batch-size")])
def test_train_rejects_impossible_numbers(world: dict, tmp_path: Path, option: list[str], word: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """Out-of-range training options on good data: exit 2 with a message, no traceback."""
    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir()
    labels.mkdir()
    for i in range(2):
        (images / f"good {i}.png").write_bytes((world["images"] / f"good {i}.png").read_bytes())
        (labels / f"good {i}.png").write_bytes((world["gt"] / f"good {i}.png").read_bytes())
    rc = main(["train", str(images), "--masks", str(labels), "--classes", str(world["classes"]),
               "--out", str(tmp_path / "m.safetensors"), "--device", "cpu",
               "--encoder", "tu-mobilenetv3_small_050", *option])
    out, err = capsys.readouterr()
    _no_traceback(out, err)
    assert rc == 2 and "workbench: error:" in err and word in err, err
    assert "epoch(s)" not in out  # refused before training, not after it
    assert not (tmp_path / "m.safetensors").exists()


def test_import_without_classes_meets_a_bomb_mask(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Class inference (no --classes) reads every mask: a forged 50,000 x 50,000 header is reported."""
    images, mask_dir = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    mask_dir.mkdir()
    for stem in ("a", "b"):
        (images / f"{stem}.png").write_bytes(corpus.good_image_bytes())
    masks.write_mask(mask_dir / "a.png", _ok_mask(0), corpus.corpus_schema())
    header = struct.pack(">IIBBBBB", 50_000, 50_000, 8, 0, 0, 0, 0)
    (mask_dir / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n" + corpus.png_chunk(b"IHDR", header)
                                     + corpus.png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
                                     + corpus.png_chunk(b"IEND", b""))
    rc = main(["import", str(images), "--masks", str(mask_dir)])
    out, err = capsys.readouterr()
    _no_traceback(out, err)
    assert rc == 1 and "imported 1 of 2" in out, (out, err)
    assert "b.png" in err and "too large" in err


def test_train_meets_a_bomb_mask(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A training mask whose header claims 50,000 x 50,000 pixels: refused naming it, no traceback."""
    images, mask_dir = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    mask_dir.mkdir()
    (images / "a.png").write_bytes(corpus.good_image_bytes())
    header = struct.pack(">IIBBBBB", 50_000, 50_000, 8, 0, 0, 0, 0)
    (mask_dir / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n" + corpus.png_chunk(b"IHDR", header)
                                     + corpus.png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
                                     + corpus.png_chunk(b"IEND", b""))
    classes = tmp_path / "classes.json"
    corpus.corpus_schema().save(classes)
    rc = main(["train", str(images), "--masks", str(mask_dir), "--classes", str(classes), "--out",
               str(tmp_path / "m.safetensors"), "--device", "cpu", "--epochs", "1"])
    out, err = capsys.readouterr()
    _no_traceback(out, err)
    assert rc == 2 and "a.png" in err and "too large" in err, err

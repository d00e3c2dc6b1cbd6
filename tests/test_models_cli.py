"""The project forms of the CLI: train, models, evaluate and predict PROJECT (thin over workflows)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
from pathlib import Path

import pytest

from workbench.cli import main
from workbench.project import Project
from workbench.workflows import record_facts, train_project

from workflow_helpers import FAST_CLI, FAST_SETTINGS, settings_with, tiny_project, train_via_cli


@pytest.fixture(scope="module")
def cli_project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A project trained twice through `workbench train PROJECT`; the two stdout texts."""
    folder = tiny_project(tmp_path_factory.mktemp("cli"), n_unlabelled=2)
    outs = []
    for _ in range(2):
        with _captured() as cap:
            assert main(["train", str(folder), *FAST_CLI]) == 0
        outs.append(cap["out"])
    return folder, outs


@contextlib.contextmanager
def _captured():
    import io
    import sys

    out, err = io.StringIO(), io.StringIO()
    old = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    box: dict[str, str] = {}
    try:
        yield box
    finally:
        sys.stdout, sys.stderr = old
        box["out"], box["err"] = out.getvalue(), err.getvalue()


def _copy(folder: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "images"
    shutil.copytree(folder, dest)
    return dest


def test_train_project_registers_and_says_what_became_current(cli_project):
    folder, (first, second) = cli_project
    assert "registered model version 1 (v0001.safetensors)" in first
    assert "v1 scored" in first and "v1 is now current (the first model)" in first
    assert "registered model version 2 (v0002.safetensors)" in second
    assert ("v2 is now current" in second) or ("v1 stays current" in second and "--use 2" in second)


def test_cli_and_stored_settings_register_identical_records(cli_project, tmp_path):
    # The CLI half of "one workflow": the same project trained with the app's stored
    # settings through workflows.train_project registers the same model record.
    other = tiny_project(tmp_path, n_unlabelled=2)
    settings_with(other, FAST_SETTINGS)
    with Project.open(other) as project:
        out = train_project(project, None)
        api = record_facts(out.record)
    with Project.open(cli_project[0]) as project:
        cli = record_facts(project.model(1))
    assert api == cli
    assert cli["metric_keys"] and cli["trained_on"] == 6 and cli["file"] == "v0001.safetensors"
    # and the helper the GUI-side test uses gives the same facts for a third copy
    assert train_via_cli(tiny_project(tmp_path / "third", n_unlabelled=2)) == cli


def test_models_lists_uses_notes_and_deletes(cli_project, tmp_path, capsys):
    folder = _copy(cli_project[0], tmp_path)
    assert main(["models", str(folder)]) == 0
    table = capsys.readouterr().out
    assert "v1" in table and "v2" in table and "2 version(s)" in table and "promotion policy: better" in table
    assert main(["models", str(folder), "--use", "1", "--note", "2", "too few epochs"]) == 0
    out = capsys.readouterr().out
    assert "v1 is now the current model" in out and "note set on v2" in out
    assert main(["models", str(folder), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["current"] == 1 and data["policy"] == "better"
    v1, v2 = data["models"]
    assert (v1["current"], v2["current"], v2["note"], v2["parent"]) == (True, False, "too few epochs", 1)
    assert v1["size_bytes"] > 0 and v1["storage_dtype"] == "float16" and len(v1["history"]) == 1
    assert {"val_miou", "previous_val_miou", "per_class_iou", "trained_on", "created"} <= set(v1)
    assert main(["models", str(folder), "--delete", "1"]) == 2
    assert "v1 is the current model and cannot be deleted" in capsys.readouterr().err
    assert main(["models", str(folder), "--delete", "2", "--policy", "always"]) == 0
    assert "deleted v2" in capsys.readouterr().out
    with Project.open(folder) as project:
        assert [m.version for m in project.models()] == [1]
        assert not (project.state_dir / "models" / "v0002.safetensors").exists()
        assert project.settings()["promotion"] == "always"


@pytest.mark.parametrize("argv, message", [
    (["--use", "9"], "no model version 9 (registered: 1, 2)"),
    (["--use", "two"], "--use must be a model version number such as 3"),
    (["--delete", "0"], "--delete must be a model version number"),
    (["--note", "5", "x"], "no model version 5"),
])
def test_models_bad_version_numbers_are_named(cli_project, tmp_path, capsys, argv, message):
    folder = _copy(cli_project[0], tmp_path)
    assert main(["models", str(folder), *argv]) == 2
    assert message in capsys.readouterr().err


def test_models_of_a_folder_that_is_no_project(tmp_path, capsys):
    assert main(["models", str(tmp_path)]) == 2
    assert "no project here yet" in capsys.readouterr().err
    assert main(["models", str(tmp_path / "nowhere")]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_evaluate_project_json_has_the_folder_form_keys_plus_version_and_split(cli_project, tmp_path, capsys):
    from workbench.metrics import ConfusionMatrix, EvaluationReport

    folder = _copy(cli_project[0], tmp_path)
    assert main(["evaluate", str(folder), "--model", "1", "--json", "--device", "cpu"]) == 0
    data = json.loads(capsys.readouterr().out)
    cm = ConfusionMatrix(2)
    folder_keys = set(EvaluationReport(cm.scores(), 0, [], {}, [], ["a", "b"], cm.matrix).to_json())
    assert set(data) == folder_keys | {"version", "split"}
    assert (data["version"], data["split"], data["images"]) == (1, "val", 2)
    with Project.open(folder) as project:
        assert len(project.image_scores(1)) == 2
        assert project.metrics_history()[-1]["version"] == 1
    assert main(["evaluate", str(folder), "--device", "cpu"]) == 0
    assert "on the val split" in capsys.readouterr().out
    assert main(["evaluate", str(folder), "--split", "test", "--device", "cpu"]) == 2
    assert "the test split has no images" in capsys.readouterr().err
    assert main(["evaluate", str(folder), "--model", "8"]) == 2
    assert "no model version 8" in capsys.readouterr().err
    assert main(["evaluate", str(folder), "--model", "v1.safetensors"]) == 2
    assert "--model CKPT needs --gt DIR" in capsys.readouterr().err


def test_predict_project_fills_the_cache(cli_project, tmp_path, capsys):
    folder = _copy(cli_project[0], tmp_path)
    assert main(["predict", str(folder), "--model", "1", "--device", "cpu"]) == 0
    assert "model v1: predicted 4 image(s) into the project's prediction cache" in capsys.readouterr().out
    assert main(["predict", str(folder), "--model", "1", "--only", "all", "--device", "cpu"]) == 0
    assert "predicted 6 image(s)" in capsys.readouterr().out and True
    with Project.open(folder) as project:
        assert all(project.read_prediction(r.id, 1) is not None for r in project.images())
    assert main(["predict", str(folder), "--model", "3"]) == 2
    assert "no model version 3" in capsys.readouterr().err
    assert main(["predict", str(folder), "--confidence"]) == 2
    assert "--confidence belongs to the folder form" in capsys.readouterr().err


def test_predict_and_train_on_a_project_without_model_or_labels(tmp_path, capsys):
    folder = tiny_project(tmp_path, n_train=0, n_val=0, n_unlabelled=2)
    assert main(["predict", str(folder)]) == 2
    assert "the project has no model yet" in capsys.readouterr().err
    assert main(["train", str(folder), *FAST_CLI]) == 2
    assert "nothing to train on" in capsys.readouterr().err


def test_ctrl_c_during_train_project_registers_nothing_and_exits_130(tmp_path, monkeypatch, capsys):
    import workbench.commands.bars as bars

    folder = tiny_project(tmp_path)
    real = bars.progress_bar

    @contextlib.contextmanager
    def interrupting_bar(desc, unit="it", disable=False):
        with real(desc, unit, disable) as bar:
            def on_progress(p):
                bar(p)
                if p.info.get("phase") == "train":
                    os.kill(os.getpid(), signal.SIGINT)   # what Ctrl+C sends
            yield on_progress

    monkeypatch.setattr(bars, "progress_bar", interrupting_bar)
    assert main(["train", str(folder), *FAST_CLI]) == 130
    err = capsys.readouterr().err
    assert "the run will not be registered" in err
    assert "training cancelled: no model version registered" in err
    with Project.open(folder) as project:
        assert project.models() == []
        assert list((project.state_dir / "models").glob("*.safetensors")) == []


def test_a_hand_edited_policy_still_lists_and_is_named_before_training(cli_project, tmp_path, capsys):
    folder = _copy(cli_project[0], tmp_path)
    with Project.open(folder) as project:
        settings = project.settings()
        settings["promotion"] = "sometimes"
        project.save_settings(settings)
    assert main(["models", str(folder)]) == 0
    assert "promotion policy: unreadable (" in capsys.readouterr().out
    assert main(["train", str(folder), *FAST_CLI]) == 2
    assert "unknown promotion policy 'sometimes'" in capsys.readouterr().err
    assert main(["models", str(folder), "--policy", "better"]) == 0
    assert "promotion policy: better" in capsys.readouterr().out


def test_models_lists_a_recovered_version_as_such(cli_project, tmp_path, capsys):
    """A model file a stopped run left is registered at open as recovered: the list says so."""
    folder = _copy(cli_project[0], tmp_path)
    models = folder / ".workbench" / "models"
    last = sorted(models.glob("v*.safetensors"))[-1]
    n = int(last.stem[1:]) + 1
    shutil.copy(last, models / f"v{n:04d}.safetensors")
    assert main(["models", str(folder)]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.strip().startswith(f"v{n} "))
    assert "[recovered (unfinished run)]" in row and not row.startswith("*")
    assert "its run stopped before finishing" in out
    assert main(["models", str(folder), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["models"]
    assert listed[-1]["version"] == n and listed[-1]["recovered"].startswith("from a run that ended")
    assert listed[0]["recovered"] is None


def test_evaluate_an_empty_split_says_so_without_a_table(cli_project, capsys):
    """The tiny project has no test split: one sentence, exit 2, no table of n/a scores."""
    assert main(["evaluate", str(cli_project[0]), "--split", "test"]) == 2
    captured = capsys.readouterr()
    assert "the test split has no images" in captured.err
    assert "mIoU" not in captured.out and "Traceback" not in captured.err


def test_train_project_uses_the_apps_stored_settings_with_flags_over_them(tmp_path, monkeypatch, capsys):
    """`workbench train PROJECT` and Retrain build the config from the same stored settings
    (Model > Training settings); options given on the command line win, a budget as a pair."""
    from workbench.workflows import training as training_flow

    folder = tiny_project(tmp_path)
    settings_with(folder, {**FAST_SETTINGS, "epochs": 3, "minutes": 9.0, "crop": 96})
    seen = []

    def fake_train(project, config, **kw):
        seen.append((config, kw["fine_tune"]))
        raise training_flow.WorkbenchError("stop here")
    monkeypatch.setattr("workbench.workflows.train_project", fake_train)
    assert main(["train", str(folder), "--epochs", "1"]) == 2
    config, fine_tune = seen[-1]
    assert (config.epochs, config.minutes, config.crop, config.lr) == (1, None, 96, FAST_SETTINGS["lr"])
    assert config.encoder == FAST_SETTINGS["encoder"] and fine_tune
    assert "the project's training settings" in capsys.readouterr().err
    assert main(["train", str(folder)]) == 2
    assert (seen[-1][0].epochs, seen[-1][0].minutes) == (3, 9.0)


def test_models_sizes_use_the_panels_units(cli_project, capsys):
    from workbench.workflows.models import format_size, model_summaries

    assert main(["models", str(cli_project[0])]) == 0
    out = capsys.readouterr().out
    with Project.open(cli_project[0]) as project:
        sizes = [format_size(s.size_bytes) for s in model_summaries(project)]
    assert all(size in out for size in sizes) and format_size(28_723_992) == "28.7 MB"


def test_output_into_a_closed_pipe_prints_no_traceback(tmp_path):
    """`workbench models P | head -1`: the reader leaves early; no BrokenPipeError traceback."""
    import subprocess
    import sys

    folder = tmp_path / "imgs"
    folder.mkdir()
    from PIL import Image
    import numpy as np
    for i in range(3):
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / f"a{i}.png")
    from workbench.project import Project
    Project.open(folder).close()
    code = f"import sys\nfrom workbench.cli import main\nsys.exit(main(['labels', {str(folder)!r}]))"
    # -u: each print is written at once, so the failed write happens inside the command
    proc = subprocess.Popen([sys.executable, "-u", "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            restore_signals=False)  # SIGPIPE ignored, as in a shell-started Python
    proc.stdout.close()   # nobody reads: the first write fails with EPIPE
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert proc.returncode == 141, err
    assert "Traceback" not in err and "BrokenPipe" not in err, err

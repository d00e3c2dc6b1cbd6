"""workbench.workflows on tiny synthetic projects: train, promote, evaluate, predict, versions."""

from __future__ import annotations

import dataclasses
import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from workbench.errors import WorkbenchError
from workbench.metrics import ConfusionMatrix, EvaluationReport
from workbench.ml.checkpoint import read_meta
from workbench.progress import CancelToken
from workbench.project import Project, Split
from workbench.workflows import (config_from_settings, delete_model, evaluate_project, model_summaries,
                                 predict_project, promotion_policy, set_model_note, set_promotion_policy,
                                 train_project, use_model)
from workbench.workflows import evaluation as evaluation_flow

from workflow_helpers import FAST_SETTINGS, settings_with, tiny_project


def _train(folder: Path, **kw):
    with Project.open(folder) as project:
        config, fine_tune = config_from_settings(project, FAST_SETTINGS)
        return train_project(project, config, fine_tune=kw.pop("fine_tune", fine_tune), **kw)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    """A project trained twice (v1 from scratch, v2 fine-tuned from it); 2 unlabelled images."""
    folder = tiny_project(tmp_path_factory.mktemp("trained"), n_unlabelled=2)
    outcomes = [_train(folder), _train(folder)]
    return folder, outcomes


def _copy(trained_folder: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "images"
    shutil.copytree(trained_folder, dest)
    return dest


def test_train_twice_registers_fine_tunes_and_compares(trained):
    folder, (first, second) = trained
    assert (first.version, first.promoted, first.previous_version, first.cancelled) == (1, True, None, False)
    assert first.val_miou is not None and first.previous_val_miou is None
    assert first.message == f"v1 scored {first.val_miou:.2f} on val: v1 is now current (the first model)"
    assert (second.version, second.previous_version, second.parent) == (2, 1, 1)
    assert second.previous_val_miou is not None and second.val_miou is not None
    # "better": current only when at least as good as v1 on the same val images, in this run
    assert second.promoted == (second.val_miou >= second.previous_val_miou)
    with Project.open(folder) as project:
        assert project.current_model().version == (2 if second.promoted else 1)
        m = project.model(2).metrics
        assert m["val_miou"] == second.val_miou and m["previous_val_miou"] == second.previous_val_miou
        assert {"val_pixel_accuracy", "per_class_iou", "epochs", "steps", "stopped_by", "trained_on"} <= set(m)
        assert (m["trained_on"], m["epochs"], m["stopped_by"], m["val_images"]) == (6, 1, "epochs", 2)
        assert "best_val_miou" not in m  # one metric key for the app and the CLI
        # the file carries the registry's metrics too (a lost database is rebuilt from files)
        assert read_meta(project.model(2).path).metrics["registered"] == m
        # The new model's per-image val scores are stored under its own version.
        val_ids = {r.id for r in project.images(split=Split.VAL)}
        assert set(project.image_scores(2)) == val_ids
        assert not (project.state_dir / "training-snapshot").exists()


def test_weights_are_stored_in_float16_and_summaries_show_size_and_curves(trained):
    folder, _ = trained
    with Project.open(folder) as project:
        summaries = model_summaries(project)
        meta = read_meta(project.model(1).path)
        float32_size = project.model(1).metrics["size_bytes_float32"]
    assert [s.version for s in summaries] == [1, 2]
    s1 = summaries[0]
    assert meta.train["storage_dtype"] == "float16" and s1.storage_dtype == "float16"
    assert meta.metrics["registered"]["float16_agreement"] >= 0.995
    assert s1.size_bytes == s1.path.stat().st_size
    assert s1.size_bytes < 0.6 * float32_size
    assert len(s1.history) == 1 and s1.history[0]["epoch"] == 1 and "val_miou" in s1.history[0]
    assert s1.trained_on == 6 and s1.class_names == ["background", "square"]
    assert sum(s.current for s in summaries) == 1
    assert summaries[1].parent == 1


def test_weights_stay_float32_when_float16_would_change_predictions(tmp_path, monkeypatch):
    from workbench.workflows import training as training_flow

    folder = tiny_project(tmp_path, n_train=4, n_val=1)
    monkeypatch.setattr(training_flow, "HALF_MIN_AGREEMENT", 1.01)   # no agreement is enough
    out = _train(folder)
    with Project.open(folder) as project:
        meta = read_meta(project.model(1).path)
        assert out.version == 1 and out.record.metrics["storage_dtype"] == "float32"
        assert "storage_dtype" not in meta.train and meta.metrics["registered"]["storage_dtype"] == "float32"
        assert project.model(1).path.stat().st_size >= out.record.metrics["size_bytes_float32"]
        assert not list((project.state_dir / "models").glob("*.tmp"))


def _fake_scores(monkeypatch, values: dict[str, float]):
    """Make the promotion check see ``values`` by checkpoint file name (forces a worse run)."""
    real = evaluation_flow.score_checkpoint

    def scored(path, pairs, schema, **kw):
        report, per_id = real(path, pairs, schema, **kw)
        cm = ConfusionMatrix(schema.num_classes)
        scores = dataclasses.replace(report.scores, miou=values[Path(path).name])
        return EvaluationReport(scores, report.images, [], report.per_image, [], report.class_names,
                                cm.matrix), per_id

    monkeypatch.setattr(evaluation_flow, "score_checkpoint", scored)


def test_policy_better_keeps_the_current_model_when_the_new_one_is_worse(trained, tmp_path, monkeypatch):
    folder = _copy(trained[0], tmp_path)
    with Project.open(folder) as project:
        use_model(project, 1)
        delete_model(project, 2)
    _fake_scores(monkeypatch, {"v0001.safetensors": 0.55, "v0003.safetensors": 0.52})
    out = _train(folder)
    assert (out.version, out.promoted, out.previous_version) == (3, False, 1)
    assert (out.val_miou, out.previous_val_miou) == (0.52, 0.55)
    assert out.message == (f"v3 scored 0.52 on val, below v1's 0.55: v1 stays current "
                           f"(use it with: workbench models {folder.resolve()} --use 3)")
    with Project.open(folder) as project:
        assert project.current_model().version == 1
        assert [m.version for m in project.models()] == [1, 3]  # kept as a candidate
        assert project.model(3).metrics["promoted"] is False
        assert use_model(project, 3).version == 3 and project.current_model().version == 3


def test_policy_always_promotes_a_worse_model(trained, tmp_path, monkeypatch):
    folder = _copy(trained[0], tmp_path)
    with Project.open(folder) as project:
        use_model(project, 1)
        set_promotion_policy(project, "always")
        assert promotion_policy(project) == "always"
    _fake_scores(monkeypatch, {"v0001.safetensors": 0.55, "v0003.safetensors": 0.52})
    out = _train(folder)
    assert out.promoted and out.message == "v3 scored 0.52 on val (v1: 0.55): v3 is now current"
    with Project.open(folder) as project:
        assert project.current_model().version == 3


def test_explicit_policy_overrides_the_project_setting_and_bad_policies_are_named(trained, tmp_path,
                                                                                    monkeypatch):
    folder = _copy(trained[0], tmp_path)
    with Project.open(folder) as project:
        use_model(project, 1)
        with pytest.raises(WorkbenchError, match="unknown promotion policy 'sometimes'"):
            set_promotion_policy(project, "sometimes")
        settings = project.settings()
        settings["promotion"] = 3
        project.save_settings(settings)
        with pytest.raises(WorkbenchError, match="unknown promotion policy 3"):
            promotion_policy(project)
    _fake_scores(monkeypatch, {"v0001.safetensors": 0.55, "v0003.safetensors": 0.52})
    assert _train(folder, policy="better").promoted is False


def test_no_val_split_is_registered_current_and_says_promotion_cannot_be_judged(tmp_path):
    folder = tiny_project(tmp_path, n_train=4, n_val=0)
    stale = folder / ".workbench" / "training-snapshot" / "v0007" / "train"   # left by a killed run
    stale.mkdir(parents=True)
    (stale / "0.png").write_bytes(b"old")
    out = _train(folder)
    assert not stale.parent.exists()
    assert out.promoted and out.version == 1
    assert out.message == ("no val split: promotion cannot be judged; v1 is current (the project has no "
                           "val images: holding out 1 of 4 training images for validation)")
    again = _train(folder)
    assert again.promoted and again.message.startswith("no val split: promotion cannot be judged; v2 is current")
    with Project.open(folder) as project:
        assert project.current_model().version == 2
        assert project.model(2).metrics["val_source"] == "held-out training images"


def test_a_previous_model_for_other_classes_cannot_be_compared_and_the_run_becomes_current(tmp_path):
    import torch

    from workbench.classes import ClassSchema
    from workbench.ml.checkpoint import CheckpointMeta, save_checkpoint
    from workbench.ml.models import ModelConfig, build_model

    folder = tiny_project(tmp_path)
    other = ClassSchema.default(["background", "square", "circle"])
    torch.manual_seed(0)
    ckpt = tmp_path / "three.safetensors"
    save_checkpoint(ckpt, build_model(ModelConfig("unet", FAST_SETTINGS["encoder"]), 3),
                    CheckpointMeta("unet", FAST_SETTINGS["encoder"], 3, other.to_dict()))
    with Project.open(folder) as project:
        project.register_model(ckpt)
    out = _train(folder, fine_tune=False)
    assert out.promoted and out.version == 2 and out.previous_val_miou is None and out.parent is None
    assert out.message == f"v2 scored {out.val_miou:.2f} on val (v1 predicts other classes): v2 is now current"


def test_cancelled_run_is_never_registered_and_leaves_no_file(tmp_path):
    folder = tiny_project(tmp_path)
    token = CancelToken()

    def on_progress(p):
        if p.info.get("phase") == "train":
            token.cancel()

    out = _train(folder, on_progress=on_progress, cancel=token)
    assert out.cancelled and out.version is None and out.record is None
    assert out.message == "training cancelled: no model version registered"
    with Project.open(folder) as project:
        assert project.models() == []
        assert list((project.state_dir / "models").glob("*.safetensors")) == []
        assert not (project.state_dir / "training-snapshot").exists()


def test_training_refuses_read_only_and_unlabelled_projects(tmp_path):
    folder = tiny_project(tmp_path, n_train=0, n_val=0, n_unlabelled=2)
    with Project.open(folder) as project:
        with pytest.raises(WorkbenchError, match="nothing to train on"):
            train_project(project, config_from_settings(project, FAST_SETTINGS)[0])
        with Project.open(folder) as second:
            assert second.read_only
            with pytest.raises(WorkbenchError, match="open for writing in another process"):
                train_project(second, None)


def test_stored_settings_are_checked_and_used(tmp_path):
    folder = tiny_project(tmp_path, n_train=2, n_val=0)
    settings_with(folder, {**FAST_SETTINGS, "fine_tune": False})
    with Project.open(folder) as project:
        config, fine_tune = config_from_settings(project)
        assert (config.encoder, config.crop, config.epochs, fine_tune) == ("tu-mobilenetv3_small_050", 64, 1,
                                                                             False)
        assert config.minutes is None  # unset settings stay the device's recipe
    settings_with(folder, {"epochs": "ten"})
    with Project.open(folder) as project:
        with pytest.raises(WorkbenchError, match='"epochs" must be a whole number'):
            train_project(project, None)


def test_evaluate_stores_scores_per_version_and_leaves_the_list_alone(trained, tmp_path):
    folder = _copy(trained[0], tmp_path)
    with Project.open(folder) as project:
        use_model(project, 2)
        val_ids = [r.id for r in project.images(split=Split.VAL)]
        ev2 = evaluate_project(project, device="cpu")
        shown = {i: project.get(i).miou for i in val_ids}
        assert shown == ev2.per_image and ev2.version == 2 and ev2.pairs == 2
        ev1 = evaluate_project(project, version=1, device="cpu")
        assert {i: project.get(i).miou for i in val_ids} == shown   # still v2's numbers
        assert {i: m for i, (m, _) in project.image_scores(1).items()} == ev1.per_image
        assert ev1.report.images == 2 and ev1.to_json()["version"] == 1
        history = project.metrics_history()
        assert [(h["version"], h["split"]) for h in history][-2:] == [(2, "val"), (1, "val")]
        use_model(project, 1)
        assert {i: project.get(i).miou for i in val_ids} == ev1.per_image   # the list follows the current
        with pytest.raises(WorkbenchError, match="no model version 7"):
            evaluate_project(project, version=7)
        with pytest.raises(WorkbenchError, match="unknown split"):
            evaluate_project(project, split="holdout")


def test_predict_project_fills_the_cache_and_reuses_it(trained, tmp_path):
    folder = _copy(trained[0], tmp_path)
    with Project.open(folder) as project:
        version = project.current_model().version
        unlabelled = [r.id for r in project.images(status="unlabelled")]
        assert len(unlabelled) == 4   # 2 without anything, 2 val images with ground truth only
        out = predict_project(project, device="cpu")
        assert (out.version, sorted(out.predicted), out.skipped, out.problems) == (version, unlabelled, 0, [])
        for i in unlabelled:
            assert project.read_prediction(i, version) is not None
            assert project.get(i).status == "predicted" and project.get(i).uncertainty is not None
        again = predict_project(project, device="cpu")
        assert again.predicted == [] and again.skipped == 4
        every = predict_project(project, only="all", device="cpu", use_cache=False, version=1)
        assert len(every.predicted) == len(project.images()) and every.version == 1
        with pytest.raises(WorkbenchError, match="unknown --only"):
            predict_project(project, only="some")


def test_predict_project_lists_unreadable_images_and_stops_on_cancel(trained, tmp_path):
    folder = _copy(trained[0], tmp_path)
    with Project.open(folder) as project:
        ids = [r.id for r in project.images(status="unlabelled")]
        project.image_path(ids[0]).write_bytes(b"not a png")
        out = predict_project(project, device="cpu")
        assert [name for name, _ in out.problems] == [project.get(ids[0]).name]
        assert "not a readable image" in out.problems[0][1] and out.predicted == ids[1:]
        token = CancelToken()
        token.cancel()
        stopped = predict_project(project, only="all", use_cache=False, cancel=token)
        assert stopped.cancelled and stopped.predicted == []


def test_use_delete_and_note(trained, tmp_path):
    folder = _copy(trained[0], tmp_path)
    with Project.open(folder) as project:
        use_model(project, 2)
        predict_project(project, version=1, only="all", device="cpu")
        assert project.prediction_dir(1).is_dir() and project.image_scores(1)
        with pytest.raises(WorkbenchError, match="v2 is the current model and cannot be deleted"):
            delete_model(project, 2)
        set_model_note(project, 1, "before the road fixes")
        assert [s.note for s in model_summaries(project)] == ["before the road fixes", ""]
        notes_file = project.state_dir / "models" / "notes.json"   # a person's words are in a file too
        assert json.loads(notes_file.read_text()) == {"1": "before the road fixes"}
        path = project.model(1).path
        delete_model(project, 1)
        assert [m.version for m in project.models()] == [2]
        assert not path.exists() and not project.prediction_dir(1).exists()
        assert project.image_scores(1) == {}
        assert json.loads(notes_file.read_text()) == {}
        with pytest.raises(WorkbenchError, match=r"no model version 1 \(registered: 2\)"):
            use_model(project, 1)
        with pytest.raises(WorkbenchError, match="no model version 5"):
            set_model_note(project, 5, "x")
    with Project.open(folder) as project:   # a new run never reuses a deleted number
        assert project.next_model_path().name == "v0003.safetensors"


def test_version_1_database_migrates_scores_to_the_current_model(tmp_path):
    from workbench.project import store

    folder = tmp_path / "images"
    tiny_project(tmp_path, n_train=2, n_val=0)
    state = folder / ".workbench"
    with Project.open(folder) as project:
        ids = [r.id for r in project.images()]
    db = state / "project.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    conn = sqlite3.connect(db)
    conn.executescript(store._SCHEMA_V1)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO schema_version VALUES (1)")
    conn.execute("INSERT INTO kv VALUES ('initialised', '1'), ('image_folder', ?)", (str(folder),))
    conn.execute("INSERT INTO images(id, name, stem, status, miou, uncertainty) VALUES "
                 "(?, '0.png', '0', 'verified', 0.75, 0.25), (?, '1.png', '1', 'verified', NULL, NULL)", ids)
    conn.execute("INSERT INTO models(version, path, created) VALUES (1, 'v0001.safetensors', 0), "
                 "(2, 'v0002.safetensors', 0)")
    conn.execute("INSERT INTO kv VALUES ('current_model', '1')")
    conn.commit()
    conn.close()
    with Project.open(folder) as project:
        assert (project.get(ids[0]).miou, project.get(ids[0]).uncertainty) == (0.75, 0.25)
        assert project.image_scores(1) == {ids[0]: (0.75, 0.25)} and project.image_scores(2) == {}
        project.set_current_model(2)
        assert project.get(ids[0]).miou is None
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT version FROM schema_version").fetchone() == (store.SCHEMA_VERSION,)
    conn.close()


def test_a_version_keeps_the_curves_of_its_whole_run_not_only_up_to_its_best_epoch(tmp_path, monkeypatch):
    """The trainer saves the file at its best epoch; the registered version still carries
    every epoch's record (a 3-epoch run whose best was epoch 1 showed a single point)."""
    from workbench.ml import training as trainer

    folder = tiny_project(tmp_path)
    settings_with(folder, {**FAST_SETTINGS, "epochs": 2})
    real_save = trainer._Trainer._save
    saves = []

    def first_only(self, net, metrics):   # as when epoch 1 stays the best
        if not saves:
            saves.append(1)
            real_save(self, net, metrics)
    monkeypatch.setattr(trainer._Trainer, "_save", first_only)
    with Project.open(folder) as project:
        outcome = train_project(project)
        assert outcome.result.epochs_done == 2
        (summary,) = model_summaries(project)
    assert [h["epoch"] for h in summary.history] == [1, 2]
    assert [h["epoch"] for h in read_meta(summary.path).history] == [1, 2]


def test_the_app_wording_names_no_command_the_cli_wording_does():
    from workbench.workflows import decide_promotion

    facts = dict(new_version=3, new_miou=0.52, previous_version=1, previous_miou=0.55, has_val=True)
    assert decide_promotion("better", project_hint=None, **facts) == (
        False, "v3 scored 0.52 on val, below v1's 0.55: v1 stays current. Use v3 anyway?")
    assert "workbench models P --use 3" in decide_promotion("better", project_hint="P", **facts)[1]
    no_val = decide_promotion("better", project_hint=None, **{**facts, "has_val": False})[1]
    assert "workbench" not in no_val and "Models panel" in no_val

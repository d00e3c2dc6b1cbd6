"""Training settings dialog: the encoder weights file and the step budget (issue 14)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from workbench.gui.settings_dialog import SettingsDialog


def test_weights_file_and_steps_are_edited_and_stored(qtbot, tmp_path) -> None:
    dialog = SettingsDialog({}, "CPU (1 thread)")
    qtbot.addWidget(dialog)
    values = dialog.values()
    assert values["encoder_weights"] is None and values["steps"] is None  # defaults: random init, no step cap
    path = str(tmp_path / "resnet18-imagenet.safetensors")
    dialog.encoder_weights.setFocus()
    QTest.keyClicks(dialog.encoder_weights, path)
    dialog.steps.setFocus()
    dialog.steps.selectAll()
    QTest.keyClicks(dialog.steps, "120")
    QTest.keyClick(dialog.steps, Qt.Key.Key_Tab)
    values = dialog.values()
    assert values["encoder_weights"] == path and values["steps"] == 120
    # What was stored shows again; Restore defaults clears both.
    again = SettingsDialog(values, "CPU (1 thread)")
    qtbot.addWidget(again)
    assert again.encoder_weights.text() == path and again.steps.value() == 120
    again.restore_defaults()
    assert again.values()["encoder_weights"] is None and again.values()["steps"] is None


def test_stored_values_go_into_the_trainer(tmp_path) -> None:
    from workbench.project import Project
    from workbench.workflows.training import config_from_settings

    folder = tmp_path / "p"
    folder.mkdir()
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"")  # only its existence is checked when the config is made
    with Project.open(folder) as project:
        config, _ = config_from_settings(project, {"steps": 40, "encoder_weights": str(weights), "loss": "ce"})
    assert config.steps == 40 and config.encoder_weights == str(weights) and config.loss == "ce"


def test_batch_crop_and_decoder_stay_automatic_unless_set(qtbot) -> None:
    """Saving the dialog untouched must not pin the recipe's crop (it would turn off the small-project crop)."""
    dialog = SettingsDialog({}, "CPU (1 thread)")
    qtbot.addWidget(dialog)
    values = dialog.values()
    assert values["crop"] is None and values["batch_size"] is None and values["decoder"] is None
    assert values["loss"] is None and dialog.loss.currentText().startswith("(automatic: ")
    assert values["epochs"] is None   # 30, or 20 for a small project: the trainer decides
    assert dialog.crop.text().startswith("(automatic: ")
    dialog.crop.setValue(320)
    dialog.decoder.setCurrentIndex(dialog.decoder.findData("slim"))
    dialog.loss.setCurrentIndex(dialog.loss.findData("ce"))
    values = dialog.values()
    assert values["crop"] == 320 and values["decoder"] == "slim" and values["loss"] == "ce"
    again = SettingsDialog(values, "CPU (1 thread)")
    qtbot.addWidget(again)
    assert again.crop.value() == 320 and again.decoder.currentData() == "slim" and again.loss.currentData() == "ce"
    again.restore_defaults()
    assert again.values()["crop"] is None and again.values()["decoder"] is None and again.values()["loss"] is None

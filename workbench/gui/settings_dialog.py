"""Training settings: architecture, encoder (and a local weights file), length, learning rate, batch, crop, device.

Defaults come from ``workbench.ml.training.TrainConfig`` and the detected device; the
values are stored per project under ``settings()["training"]``.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFileDialog,
                               QFormLayout, QHBoxLayout, QLabel, QLineEdit, QPushButton, QSpinBox, QWidget)

from workbench.workflows import training_defaults


class SettingsDialog(QDialog):
    """A form over the training settings dict; ``values()`` returns the edited dict."""

    def __init__(self, settings: dict[str, Any], device_text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Training settings")
        from workbench.ml.device import available_devices
        from workbench.ml.models import ARCHITECTURES, CPU_DEFAULT_ENCODER, GPU_DEFAULT_ENCODER, encoder_names

        self._defaults = training_defaults()
        form = QFormLayout(self)
        form.addRow(QLabel(f"Compute device detected: <b>{device_text}</b>"))
        self.arch = QComboBox()
        self.arch.addItems(list(ARCHITECTURES))
        self.encoder = QComboBox()
        self.encoder.setEditable(True)
        self.encoder.addItem("(default for the device)", None)
        for name in encoder_names():
            self.encoder.addItem(name, name)
        self.encoder.setToolTip(f"Default: {CPU_DEFAULT_ENCODER} on a CPU, {GPU_DEFAULT_ENCODER} on a GPU. "
                                "Weights start random (no download), or from the current model when fine-tuning.")
        # Pretrained encoder weights from a local file, for machines that cannot download.
        self.encoder_weights = QLineEdit()
        self.encoder_weights.setPlaceholderText("(none: random initialisation)")
        self.encoder_weights.setToolTip("A .safetensors file with the encoder's weights (its state_dict), "
                                        "the same as --encoder-weights PATH; used when training from scratch.")
        self.browse_weights = QPushButton("Browse…")
        self.browse_weights.clicked.connect(self._browse_weights)
        weights_row = QWidget()
        row = QHBoxLayout(weights_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.encoder_weights, 1)
        row.addWidget(self.browse_weights)
        from workbench.ml.training import DEFAULT_EPOCHS, SMALL_SET_CROP, SMALL_SET_EPOCHS, SMALL_SET_IMAGES

        self.epochs = QSpinBox(minimum=0, maximum=10000,
                               specialValueText=f"(automatic: {DEFAULT_EPOCHS}; {SMALL_SET_EPOCHS} for up to "
                                                f"{SMALL_SET_IMAGES} images; none with steps or minutes)")
        self.steps = QSpinBox(minimum=0, maximum=10_000_000, specialValueText="(no limit)")
        self.steps.setToolTip("Optimizer-step budget (one step = one batch); the first of epochs, steps "
                              "and minutes reached stops the run.")
        self.minutes = QDoubleSpinBox(minimum=0.0, maximum=10000.0, decimals=1, specialValueText="(no limit)")
        self.lr = QDoubleSpinBox(minimum=1e-6, maximum=1.0, decimals=6, singleStep=1e-4)
        # Batch, crop and decoder default to "automatic" (None): the trainer's recipe for the
        # device, which also shrinks the crop for small projects. Storing the recipe's
        # numbers instead would turn that off for good the first time the dialog is saved.
        d = self._defaults
        self.batch_size = QSpinBox(minimum=0, maximum=1024, specialValueText=f"(automatic: {d.get('batch_size')})")
        self.crop = QSpinBox(minimum=0, maximum=4096, singleStep=32,
                             specialValueText=f"(automatic: {d.get('crop')}; {SMALL_SET_CROP} on a CPU for "
                                              f"up to {SMALL_SET_IMAGES} images)")
        self.decoder = QComboBox()
        self.decoder.addItem(f"(automatic: {d.get('decoder') or 'full'} on this device)", None)
        self.decoder.addItem("full (smp's widths 256..16)", "full")
        self.decoder.addItem("slim (half the widths: faster on a CPU)", "slim")
        self.decoder.setToolTip("U-Net decoder widths (the same as --decoder); a fine-tune keeps its parent's.")
        self.loss = QComboBox()
        loss_names = {"ce": "cross-entropy", "lovasz": "cross-entropy + Lovasz"}
        self.loss.addItem(f"(automatic: {loss_names.get(d.get('loss') or 'ce', 'cross-entropy')} on this device)",
                          None)
        self.loss.addItem("cross-entropy", "ce")
        self.loss.addItem("cross-entropy + Lovasz-softmax (better thin and rare classes)", "lovasz")
        self.loss.setToolTip("The training loss (the same as --loss); both are class-weighted on a CPU.")
        self.device = QComboBox()
        self.device.addItems(["auto", *available_devices()])
        self.fine_tune = QCheckBox("Fine-tune the current model (off: train from scratch)")
        form.addRow("Architecture", self.arch)
        form.addRow("Encoder", self.encoder)
        form.addRow("Encoder weights file", weights_row)
        form.addRow("Epochs", self.epochs)
        form.addRow("Or steps", self.steps)
        form.addRow("Or minutes", self.minutes)
        form.addRow("Learning rate", self.lr)
        form.addRow("Batch size", self.batch_size)
        form.addRow("Crop (pixels)", self.crop)
        form.addRow("U-Net decoder", self.decoder)
        form.addRow("Loss", self.loss)
        form.addRow("Device", self.device)
        form.addRow(self.fine_tune)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
                                   | QDialogButtonBox.StandardButton.RestoreDefaults)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults).clicked.connect(self.restore_defaults)
        form.addRow(buttons)
        self.load(settings)

    def load(self, s: dict[str, Any]) -> None:
        """Show the values of ``s``; missing keys and values of the wrong type show the defaults."""
        d = self._defaults

        def pick(key: str, kinds: tuple[type, ...], fallback: Any) -> Any:
            for source in (s, d):
                v = source.get(key)
                if isinstance(v, kinds) and not isinstance(v, bool):
                    return v
            return fallback

        self.arch.setCurrentText(pick("arch", (str,), "unet"))
        enc = pick("encoder", (str,), None)
        i = self.encoder.findData(enc)
        if i >= 0:
            self.encoder.setCurrentIndex(i)
        else:
            self.encoder.setEditText(str(enc))
        self.encoder_weights.setText(pick("encoder_weights", (str,), "") or "")
        epochs = s.get("epochs")
        self.epochs.setValue(epochs if isinstance(epochs, int) and not isinstance(epochs, bool) else 0)
        self.steps.setValue(int(pick("steps", (int,), 0)))
        self.minutes.setValue(float(pick("minutes", (int, float), 0.0)))
        self.lr.setValue(float(pick("lr", (int, float), 1e-3)))
        # automatic (0 / None) unless the stored settings set a number
        self.batch_size.setValue(s["batch_size"] if isinstance(s.get("batch_size"), int)
                                 and not isinstance(s.get("batch_size"), bool) else 0)
        self.crop.setValue(s["crop"] if isinstance(s.get("crop"), int) and not isinstance(s.get("crop"), bool) else 0)
        self.decoder.setCurrentIndex(max(0, self.decoder.findData(s.get("decoder"))))
        self.loss.setCurrentIndex(max(0, self.loss.findData(s.get("loss"))))
        self.device.setCurrentText(pick("device", (str,), "auto"))
        fine = s.get("fine_tune", d.get("fine_tune", True))
        self.fine_tune.setChecked(fine if isinstance(fine, bool) else True)

    def _browse_weights(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Encoder weights", self.encoder_weights.text(),
                                              "safetensors (*.safetensors);;All files (*)")
        if path:
            self.encoder_weights.setText(path)

    def restore_defaults(self) -> None:
        """Back to TrainConfig's defaults (batch, crop and decoder automatic)."""
        self.load({})

    def values(self) -> dict[str, Any]:
        """The settings as plain JSON data (what the project stores)."""
        enc = self.encoder.currentData()
        text = self.encoder.currentText().strip()
        if enc is None and text and not text.startswith("("):
            enc = text
        return {
            "arch": self.arch.currentText(),
            "encoder": enc,
            "encoder_weights": self.encoder_weights.text().strip() or None,
            "epochs": self.epochs.value() or None,
            "steps": self.steps.value() or None,
            "minutes": self.minutes.value() or None,
            "lr": self.lr.value(),
            "batch_size": self.batch_size.value() or None,
            "crop": self.crop.value() or None,
            "decoder": self.decoder.currentData(),
            "loss": self.loss.currentData(),
            "device": self.device.currentText(),
            "fine_tune": self.fine_tune.isChecked(),
        }

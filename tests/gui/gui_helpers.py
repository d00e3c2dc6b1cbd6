"""Helpers for the desktop-app tests: tiny checkpoints and real mouse drags on the canvas."""

from __future__ import annotations

from pathlib import Path

import numpy as np

def tiny_checkpoint(path: Path, schema) -> Path:
    """A randomly initialised tiny U-Net checkpoint for ``schema`` (no training, no download)."""
    import torch

    from workbench.ml.checkpoint import CheckpointMeta, save_checkpoint
    from workbench.ml.models import ModelConfig, build_model

    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="unet", encoder="resnet18"), schema.num_classes)
    meta = CheckpointMeta(arch="unet", encoder="resnet18", num_classes=schema.num_classes,
                          schema=schema.to_dict())
    save_checkpoint(path, model, meta)
    return path


def canvas_point(canvas, x: float, y: float):
    """Widget position of image pixel (x, y)'s centre."""
    from PySide6.QtCore import QPointF

    return canvas.image_to_widget(QPointF(x + 0.5, y + 0.5))


def drag(canvas, points: list[tuple[float, float]], button=None) -> None:
    """A real press / move (button held) / release sequence in image pixel coordinates."""
    from PySide6.QtCore import QPointF, Qt
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    button = button or Qt.MouseButton.LeftButton
    pts = [canvas_point(canvas, x, y) for x, y in points]

    def send(kind, pos: QPointF, buttons) -> None:
        glob = canvas.mapToGlobal(pos)
        ev = QMouseEvent(kind, pos, QPointF(glob), button if kind != QMouseEvent.Type.MouseMove else Qt.MouseButton.NoButton,
                         buttons, Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(canvas, ev)

    send(QMouseEvent.Type.MouseButtonPress, pts[0], button)
    for p in pts[1:]:
        send(QMouseEvent.Type.MouseMove, p, button)
    send(QMouseEvent.Type.MouseButtonRelease, pts[-1], Qt.MouseButton.NoButton)


def labelled(mask: np.ndarray) -> int:
    """Number of labelled pixels."""
    return int((mask != 255).sum())

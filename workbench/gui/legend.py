"""The status bar's legend for the canvas overlays: solid labels, hatched prediction, error view."""

from __future__ import annotations

from PySide6.QtGui import QBrush, QColor, QPainter, QPixmap
from PySide6.QtWidgets import QHBoxLayout, QLabel, QWidget

from workbench.gui.overlay import ERROR_RGBA, hatch_tile

SWATCH = 14
SWATCH_COLOUR = QColor(70, 110, 200)


def swatch(kind: str) -> QPixmap:
    """A small square drawn the way the canvas draws ``kind``: "solid", "hatched" or "error"."""
    pix = QPixmap(SWATCH, SWATCH)
    pix.fill(QColor("white"))
    p = QPainter(pix)
    if kind == "solid":
        p.fillRect(pix.rect(), SWATCH_COLOUR)
    elif kind == "hatched":
        stripes = hatch_tile()          # opaque stripes on transparent: colour the stripes
        q = QPainter(stripes)
        q.setCompositionMode(QPainter.CompositionMode.CompositionMode_SourceIn)
        q.fillRect(stripes.rect(), SWATCH_COLOUR)
        q.end()
        p.fillRect(pix.rect(), QBrush(stripes))
    else:
        p.fillRect(pix.rect(), QColor(*ERROR_RGBA))
    p.setPen(QColor(90, 90, 90))
    p.drawRect(0, 0, SWATCH - 1, SWATCH - 1)
    p.end()
    return pix


LEGENDS = {
    "labels": (("solid", "your labels"), ("hatched", "prediction")),
    "ground_truth": (("solid", "ground truth (view only)"), ("hatched", "prediction")),
    "errors": (("error", "model wrong"),),
}


class OverlayLegend(QWidget):
    """Swatches and words for what the canvas shows now (issue 12.8)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 6, 0)
        layout.setSpacing(4)
        self.swatches = [QLabel(), QLabel()]
        self.words = [QLabel(), QLabel()]
        for s, w in zip(self.swatches, self.words):
            layout.addWidget(s)
            layout.addWidget(w)
        self._pixmaps = {k: swatch(k) for k in ("solid", "hatched", "error")}
        self.mode = ""
        self.show_mode("labels")

    def show_mode(self, mode: str, detail: str = "") -> None:
        """Describe view ``mode`` ("labels", "ground_truth", "errors"); ``detail`` follows the last entry."""
        self.mode = mode
        entries = LEGENDS[mode]
        for i, (s, w) in enumerate(zip(self.swatches, self.words)):
            if i < len(entries):
                kind, text = entries[i]
                s.setPixmap(self._pixmaps[kind])
                w.setText(text + (f": {detail}" if detail and i == len(entries) - 1 else ""))
            s.setVisible(i < len(entries))
            w.setVisible(i < len(entries))

    def text(self) -> str:
        """The legend's words (for tests and bug reports)."""
        return " | ".join(w.text() for w in self.words if not w.isHidden())

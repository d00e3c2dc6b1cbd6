"""The confusion matrix of an evaluation: labelled axes, fits its panel, colour by row share (issue 12.15).

Rows are the ground-truth class, columns the predicted class; each cell is the share of
the row's pixels, so the colour reads the same for a rare class and a frequent one. The
column headers are short (the first letters of the class name, full name in the tooltip)
and the columns stretch, so an 11 x 11 CamVid matrix fits the dock without scrolling.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtGui import QBrush, QColor, QPainter
from PySide6.QtWidgets import (QAbstractItemView, QGridLayout, QHeaderView, QLabel, QSizePolicy, QTableWidget,
                               QTableWidgetItem, QWidget)

SHORT = 3   # letters of a class name in a column header


def short_name(name: str, taken: set[str]) -> str:
    """A few letters of ``name`` for a column header, made unique among ``taken``."""
    base = name[:SHORT] if len(name) > SHORT + 1 else name
    short, n = base, 2
    while short in taken:
        short, n = f"{base}{n}", n + 1
    taken.add(short)
    return short


def row_shares(matrix: np.ndarray) -> np.ndarray:
    """Each row divided by its sum (rows without pixels stay 0)."""
    m = np.asarray(matrix, np.float64)
    rows = m.sum(axis=1, keepdims=True)
    return np.divide(m, rows, out=np.zeros(m.shape, np.float64), where=rows > 0)


def cell_colour(share: float) -> QColor:
    """White to deep blue by the row share."""
    shade = int(round(255 - 200 * min(1.0, max(0.0, share))))
    return QColor(shade, shade, 255)


class VerticalLabel(QLabel):
    """A label drawn rotated 90° (the rows' axis title)."""

    def paintEvent(self, _event) -> None:  # noqa: N802 (Qt override)
        """Draw the text bottom to top."""
        p = QPainter(self)
        p.translate(0, self.height())
        p.rotate(-90)
        p.drawText(QRect(0, 0, self.height(), self.width()), Qt.AlignmentFlag.AlignCenter, self.text())
        p.end()

    def sizeHint(self) -> QSize:  # noqa: N802
        """Transposed."""
        s = super().sizeHint()
        return QSize(s.height(), s.width())

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        """One line wide, no minimum height: the title may clip but never makes the dock taller."""
        return QSize(super().minimumSizeHint().height(), 0)


class ConfusionView(QWidget):
    """Axis titles around a stretching table of row shares."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.table = QTableWidget(0, 0)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().setMinimumSectionSize(18)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Expanding)
        font = self.table.font()
        font.setPointSizeF(max(7.0, font.pointSizeF() * 0.85))
        self.table.setFont(font)
        self.table.horizontalHeader().setFont(font)
        self.table.verticalHeader().setFont(font)
        self.table.setToolTip("Rows: ground-truth class; columns: predicted class. "
                              "Cells are % of the row's pixels; colour by that share.")
        self.predicted = QLabel("predicted (columns) →")
        self.predicted.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.truth = VerticalLabel("ground truth (rows)")
        self.truth.setFixedWidth(self.truth.fontMetrics().height() + 4)
        self.table.setTextElideMode(Qt.TextElideMode.ElideNone)
        self.table.setStyleSheet("QTableWidget::item { padding: 0px; }")
        self.table.horizontalHeader().setStyleSheet("QHeaderView::section { padding: 0px; }")
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(2)
        grid.addWidget(self.predicted, 0, 1)
        grid.addWidget(self.truth, 1, 0)
        grid.addWidget(self.table, 1, 1)
        grid.setColumnStretch(1, 1)
        grid.setRowStretch(1, 1)

    def show_matrix(self, names: list[str], matrix: np.ndarray) -> None:
        """Fill from a (K, K) or (K, K+1) pixel count matrix (the extra column: predicted nothing)."""
        matrix = np.asarray(matrix)
        k = len(names)
        cols = names + (["(none)"] if matrix.ndim == 2 and matrix.shape[1] > k else [])
        taken: set[str] = set()
        headers = [short_name(c, taken) for c in names] + (["∅"] if len(cols) > k else [])
        t = self.table
        t.clear()
        t.setRowCount(k)
        t.setColumnCount(len(cols))
        t.setHorizontalHeaderLabels(headers)
        t.setVerticalHeaderLabels(names)
        for c, name in enumerate(cols):
            t.horizontalHeaderItem(c).setToolTip(f"predicted: {name}")
        if k == 0:
            return
        frac = row_shares(matrix)
        for r in range(k):
            for c in range(len(cols)):
                f = float(frac[r, c])
                item = QTableWidgetItem(f"{100 * f:.0f}")
                item.setToolTip(f"ground truth {names[r]} → predicted {cols[c]}: {int(matrix[r, c])} pixels "
                                f"({100 * f:.1f}% of the row)")
                item.setBackground(QBrush(cell_colour(f)))
                item.setForeground(QBrush(QColor("white" if f > 0.6 else "black")))
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                t.setItem(r, c, item)

    def clear(self) -> None:
        """No matrix."""
        self.table.clear()
        self.table.setRowCount(0)
        self.table.setColumnCount(0)

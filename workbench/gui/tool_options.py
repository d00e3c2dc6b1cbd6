"""The tool options bar: brush size (a diameter), wand tolerance and contiguity, superpixel
size and the Accept confident threshold, showing only what the active tool uses.

The values live on the canvas (``Canvas.options``, a ``tool_table.ToolOptions``); this
widget is a view over them: it follows ``optionsChanged`` and ``toolChanged`` and asks
the canvas to change. Ctrl+wheel on the canvas changes the same values.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QSlider, QSpinBox, QWidget

from workbench.editing import tool_table
from workbench.editing.tool_table import OPTION_SPECS, ToolOptions

SLIDER_SCALE = 100   # the threshold slider works in hundredths


class ToolOptionsBar(QWidget):
    """Option controls for the active tool, bound to a canvas."""

    def __init__(self, canvas, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("tool_options")
        self.canvas = canvas
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 0)
        layout.setSpacing(4)
        self._parts: dict[str, list[QWidget]] = {}
        self.size = self._spin("brush_size", layout)
        self.tolerance = self._spin("tolerance", layout)
        self.contiguous = QCheckBox("Contiguous")
        self.contiguous.setToolTip("Magic wand: only pixels connected to the clicked one (off: the whole image)")
        self.contiguous.toggled.connect(lambda on: self.canvas.set_option("contiguous", on))
        layout.addWidget(self.contiguous)
        self._parts["contiguous"] = [self.contiguous]
        self.superpixel = self._spin("superpixel_size", layout)
        spec = OPTION_SPECS["threshold"]
        label = QLabel(spec.label)
        self.threshold = QSlider(Qt.Orientation.Horizontal)
        self.threshold.setRange(round(spec.minimum * SLIDER_SCALE), round(spec.maximum * SLIDER_SCALE))
        self.threshold.setFixedWidth(140)
        self.threshold.setToolTip(spec.tooltip)
        self.threshold_value = QLabel()
        self.threshold_value.setMinimumWidth(36)
        self.threshold.valueChanged.connect(lambda v: self.canvas.set_option("threshold", v / SLIDER_SCALE))
        for w in (label, self.threshold, self.threshold_value):
            layout.addWidget(w)
        self._parts["threshold"] = [label, self.threshold, self.threshold_value]
        canvas.optionsChanged.connect(self.show_options)
        canvas.toolChanged.connect(self.show_tool)
        self.show_options(canvas.options)
        self.show_tool(str(canvas.tool))

    def _spin(self, name: str, layout: QHBoxLayout) -> QSpinBox:
        spec = OPTION_SPECS[name]
        label = QLabel(spec.label)
        spin = QSpinBox(minimum=int(spec.minimum), maximum=int(spec.maximum), singleStep=int(spec.step))
        spin.setSuffix(spec.suffix)
        spin.setToolTip(spec.tooltip)
        spin.setKeyboardTracking(False)
        spin.valueChanged.connect(lambda v, n=name: self.canvas.set_option(n, v))
        layout.addWidget(label)
        layout.addWidget(spin)
        self._parts[name] = [label, spin]
        return spin

    def show_options(self, options: ToolOptions) -> None:
        """Show the canvas's option values (without echoing them back)."""
        for widget, value in ((self.size, options.brush_size), (self.tolerance, options.tolerance),
                              (self.superpixel, options.superpixel_size),
                              (self.threshold, options.threshold * SLIDER_SCALE)):
            widget.blockSignals(True)
            widget.setValue(round(value))
            widget.blockSignals(False)
        self.contiguous.blockSignals(True)
        self.contiguous.setChecked(options.contiguous)
        self.contiguous.blockSignals(False)
        self.threshold_value.setText(f"{options.threshold:.2f}")

    def show_tool(self, tool_id: str) -> None:
        """Show only the options the tool uses (none: a short hint)."""
        used = set(tool_table.tool(tool_id).options)
        for name, widgets in self._parts.items():
            for w in widgets:
                w.setVisible(name in used)

    def visible_options(self) -> list[str]:
        """Names of the options shown now (for tests)."""
        return [n for n, ws in self._parts.items() if not ws[0].isHidden()]

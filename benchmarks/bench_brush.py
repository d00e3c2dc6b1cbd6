"""Brush-dab latency on a 4096 x 4096 image with the real Canvas (offscreen Qt).

Latency of one dab = from sending a mouse-move event with the left button held to the
end of the repaint of its dirty rectangle (the event is handled, the label overlay is
recoloured in the dab's box, and processEvents() runs the resulting paint). Measured at
zoom 1 and at fit-to-window, plus the pure ``LabelEditor.stroke_to`` time and, for
comparison, one full-widget repaint.

    .venv/bin/python benchmarks/bench_brush.py [--dabs 300] [--size 4096] [--radius 10]

Without a display it runs offscreen; with DISPLAY set it shows the canvas on that
screen (e.g. Xvfb), which adds the X11 flush of each repainted rectangle.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time

if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # no screen: measure offscreen

import numpy as np  # noqa: E402
from PySide6.QtCore import QEvent, QPointF, Qt  # noqa: E402
from PySide6.QtGui import QMouseEvent  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from workbench.classes import ClassSchema  # noqa: E402
from workbench.editing import LabelEditor  # noqa: E402
from workbench.gui.canvas import Canvas  # noqa: E402

L = Qt.MouseButton.LeftButton


class CountingCanvas(Canvas):
    """Counts paint events, to prove that every dab repainted."""

    def __init__(self) -> None:
        super().__init__()
        self.paints = [0]

    def paintEvent(self, event) -> None:  # noqa: N802
        self.paints[0] += 1
        super().paintEvent(event)


def _stats(ms: list[float]) -> str:
    a = np.asarray(ms)
    return f"median {np.median(a):6.2f} ms   p99 {np.percentile(a, 99):6.2f} ms   max {a.max():6.2f} ms"


def _path(n: int, centre: QPointF, radius: float) -> list[QPointF]:
    """A spiral in widget coordinates with ~4 logical pixels between events."""
    pts, angle, r = [], 0.0, radius * 0.3
    for _ in range(n):
        pts.append(QPointF(centre.x() + r * math.cos(angle), centre.y() + r * math.sin(angle)))
        angle += 4.0 / max(r, 1.0)
        r = min(radius, r + 0.15)
    return pts


def _send(canvas: Canvas, kind: QEvent.Type, pos: QPointF, button, buttons) -> None:
    QApplication.sendEvent(canvas, QMouseEvent(kind, pos, canvas.mapToGlobal(pos), button, buttons,
                                               Qt.KeyboardModifier.NoModifier))


def canvas_latency(app: QApplication, canvas: Canvas, dabs: int, paints: list[int]) -> list[float]:
    """Milliseconds per dab: move event (button held) through the end of its repaint."""
    centre = QPointF(canvas.width() / 2, canvas.height() / 2)
    path = _path(dabs + 1, centre, min(canvas.width(), canvas.height()) * 0.4)
    _send(canvas, QEvent.Type.MouseButtonPress, path[0], L, L)
    app.processEvents()
    out = []
    for p in path[1:]:
        before = paints[0]
        t0 = time.perf_counter()
        _send(canvas, QEvent.Type.MouseMove, p, Qt.MouseButton.NoButton, L)
        app.processEvents()
        out.append((time.perf_counter() - t0) * 1000)
        if paints[0] == before:
            raise RuntimeError("a dab did not repaint: the measurement would be meaningless")
    _send(canvas, QEvent.Type.MouseButtonRelease, path[-1], L, Qt.MouseButton.NoButton)
    app.processEvents()
    return out


def pan_latency(app: QApplication, canvas: Canvas, moves: int) -> list[float]:
    """Milliseconds per middle-drag move of 6 logical pixels (Qt scrolls, repaints the strip)."""
    M = Qt.MouseButton.MiddleButton
    pos = QPointF(canvas.width() / 2, canvas.height() / 2)
    _send(canvas, QEvent.Type.MouseButtonPress, pos, M, M)
    out = []
    for i in range(moves):
        pos = QPointF(pos.x() + (6 if (i // 50) % 2 == 0 else -6), pos.y())
        t0 = time.perf_counter()
        _send(canvas, QEvent.Type.MouseMove, pos, Qt.MouseButton.NoButton, M)
        app.processEvents()
        out.append((time.perf_counter() - t0) * 1000)
    _send(canvas, QEvent.Type.MouseButtonRelease, pos, M, Qt.MouseButton.NoButton)
    return out


def editor_latency(size: int, dabs: int, radius: int) -> list[float]:
    """Milliseconds per ``stroke_to`` on a bare editor, same spacing as the canvas path."""
    ed = LabelEditor(np.full((size, size), 255, np.uint8))
    path = _path(dabs + 1, QPointF(size / 2, size / 2), size * 0.4)
    ed.begin_stroke(1)
    out = []
    for p in path:
        t0 = time.perf_counter()
        ed.stroke_to(p.y(), p.x(), radius)
        out.append((time.perf_counter() - t0) * 1000)
    ed.end_stroke()
    return out[1:]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--dabs", type=int, default=300)
    ap.add_argument("--radius", type=int, default=10, help="brush radius in image pixels")
    ap.add_argument("--widget", default="1280x960", help="canvas size in logical pixels")
    args = ap.parse_args()
    vw, vh = (int(v) for v in args.widget.split("x"))

    app = QApplication.instance() or QApplication([])
    rng = np.random.default_rng(0)
    # A smooth photograph-like image and a partly labelled mask with a few classes.
    small = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    import cv2
    image = cv2.resize(small, (args.size, args.size), interpolation=cv2.INTER_CUBIC)
    mask = np.full((args.size, args.size), 255, np.uint8)
    mask[: args.size // 2, : args.size // 2] = 2
    mask[args.size // 2:, args.size // 3:] = 5
    schema = ClassSchema.default(8)

    canvas = CountingCanvas()
    canvas.resize(vw, vh)
    canvas.set_schema(schema)
    t0 = time.perf_counter()
    canvas.set_image(image)
    canvas.set_editor(LabelEditor(mask))
    t_load = (time.perf_counter() - t0) * 1000
    canvas.set_current_class(1)
    canvas.set_brush_radius(args.radius)
    canvas.show()
    app.processEvents()

    paints = canvas.paints

    print(f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"Qt platform {app.platformName()}")
    print(f"image {args.size} x {args.size}, canvas {vw} x {vh}, brush radius {args.radius} px, "
          f"{args.dabs} dabs per run; set_image + set_editor: {t_load:.0f} ms")

    results = {}
    canvas.set_zoom(1.0)
    canvas_latency(app, canvas, 20, paints)  # warm-up
    results["canvas, zoom 1"] = canvas_latency(app, canvas, args.dabs, paints)
    canvas.fit_to_window()
    app.processEvents()
    results[f"canvas, fit to window (zoom {canvas.zoom:.3f})"] = canvas_latency(app, canvas, args.dabs, paints)
    canvas.set_outline_mode(True)
    app.processEvents()
    results["canvas, fit to window, outline mode"] = canvas_latency(app, canvas, args.dabs, paints)
    canvas.set_outline_mode(False)
    results["LabelEditor.stroke_to alone"] = editor_latency(args.size, args.dabs, args.radius)

    full = []
    for _ in range(10):
        t0 = time.perf_counter()
        canvas.repaint()
        full.append((time.perf_counter() - t0) * 1000)
    results["full-widget repaint at fit (for comparison)"] = full
    canvas.set_zoom(1.0)
    app.processEvents()
    results["pan (middle-drag move), zoom 1"] = pan_latency(app, canvas, 100)

    for name, ms in results.items():
        print(f"{name:45s} {_stats(ms)}")


if __name__ == "__main__":
    main()

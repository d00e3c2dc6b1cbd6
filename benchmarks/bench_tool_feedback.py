"""How the canvas's tools feel on a large image: event handling + repaint per tool, and the
canvas's responsiveness while Smart region (GrabCut) runs in its worker.

An offscreen Canvas shows a synthetic SIZE x SIZE image (blobs on a textured background)
with a prediction and confidence. For each tool, real QMouseEvents are sent and the
canvas is repainted synchronously (``repaint()``), so a figure is what a person waits
between moving the mouse and seeing the result. Reported: median and max over N events.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_tool_feedback.py [--size 4096] [--events 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
from PySide6.QtCore import QEvent, QPointF, Qt  # noqa: E402
from PySide6.QtGui import QMouseEvent  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from workbench.classes import UNLABELLED, ClassSchema  # noqa: E402
from workbench.editing import LabelEditor  # noqa: E402
from workbench.gui.canvas import Canvas  # noqa: E402

L, NB = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton


def synthetic(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Image with discs on noise; a prediction of the discs; confidence lower near their edges."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    pred = np.zeros((size, size), np.uint8)
    for _ in range(40):
        cy, cx, r = rng.integers(0, size, 2).tolist() + [int(rng.integers(size // 40, size // 12))]
        pred[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = int(rng.integers(1, 4))
    del yy, xx
    image = np.stack([pred * 60 + 40] * 3, axis=-1).astype(np.int16)
    image += rng.integers(-12, 13, image.shape, dtype=np.int16)
    image = np.clip(image, 0, 255).astype(np.uint8)
    conf = np.full((size, size), 0.95, np.float32)
    edge = np.abs(np.diff(pred.astype(np.int16), axis=0, prepend=0)) > 0
    conf[edge] = 0.3
    return image, pred, conf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--events", type=int, default=20)
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
    image, pred, conf = synthetic(args.size)
    canvas = Canvas()
    canvas.resize(1200, 900)
    canvas.set_schema(ClassSchema.default(4))
    canvas.set_image(image)
    editor = LabelEditor(np.full((args.size, args.size), UNLABELLED, np.uint8))
    canvas.set_editor(editor)
    canvas.set_prediction(pred, conf)
    canvas.show()
    canvas.fit_to_window()
    app.processEvents()
    z, ox, oy = canvas.zoom, canvas.offset.x(), canvas.offset.y()

    def wpos(x: float, y: float) -> QPointF:
        return QPointF(ox + x * z, oy + y * z)

    def send(kind, x, y, button=L, buttons=None):
        p = wpos(x, y)
        if buttons is None:
            buttons = NB if kind == QEvent.Type.MouseButtonRelease else button
        QApplication.sendEvent(canvas, QMouseEvent(kind, p, canvas.mapToGlobal(p), button, buttons,
                                                   Qt.KeyboardModifier.NoModifier))

    def timed(fn) -> float:
        t = time.perf_counter()
        fn()
        canvas.repaint()
        return time.perf_counter() - t

    rng = np.random.default_rng(1)
    pts = [tuple(rng.integers(args.size // 8, args.size * 7 // 8, 2)) for _ in range(args.events)]
    rows = []

    def report(name: str, times: list[float]) -> None:
        rows.append((name, statistics.median(times) * 1000, max(times) * 1000, len(times)))

    canvas.set_tool("brush")
    report("brush: hover (outline)", [timed(lambda p=p: send(QEvent.Type.MouseMove, *p, NB, NB)) for p in pts])
    send(QEvent.Type.MouseButtonPress, *pts[0])
    report("brush: drag step (dab + repaint)", [timed(lambda p=p: send(QEvent.Type.MouseMove, *p, NB, L)) for p in pts])
    send(QEvent.Type.MouseButtonRelease, *pts[-1])
    canvas.set_tool("wand")
    times = []
    for p in pts:
        times.append(timed(lambda p=p: send(QEvent.Type.MouseButtonPress, *p)))
        send(QEvent.Type.MouseButtonRelease, *p)
    report("wand: press (select + preview)", times)
    canvas.set_tool("confident")
    report("accept confident: threshold change (preview)",
           [timed(lambda t=t: canvas.set_option("threshold", t)) for t in np.linspace(0.5, 0.95, args.events)])
    canvas.set_tool("superpixel")
    t0 = time.perf_counter()
    while canvas._superpixels_now() is None:
        app.processEvents()
        time.sleep(0.01)
    sp_time = time.perf_counter() - t0
    report("superpixel: hover (cell preview)", [timed(lambda p=p: send(QEvent.Type.MouseMove, *p, NB, NB)) for p in pts])
    # Smart region: a box, then mouse moves and pans while GrabCut runs in the worker.
    canvas.set_tool("smart")
    steps_before = len(editor.history)
    x, y = args.size // 4, args.size // 4
    send(QEvent.Type.MouseButtonPress, x, y)
    send(QEvent.Type.MouseMove, x + args.size // 2, y + args.size // 2, NB, L)
    t0 = time.perf_counter()
    send(QEvent.Type.MouseButtonRelease, x + args.size // 2, y + args.size // 2)
    during = []
    while canvas.busy:
        during.append(timed(lambda: (send(QEvent.Type.MouseMove, *pts[len(during) % len(pts)], NB, NB),
                                     canvas.pan_by(1, 0))))
        app.processEvents()
    grabcut = time.perf_counter() - t0
    if during:
        report("smart region: move + pan while GrabCut runs", during)
    print(f"Image {args.size} x {args.size}, canvas 1200 x 900 (fit, zoom {z:.3f}), offscreen")
    print(f"{'event':48s} {'median ms':>10s} {'max ms':>8s} {'n':>4s}")
    for name, med, mx, n in rows:
        print(f"{name:48s} {med:10.1f} {mx:8.1f} {n:4d}")
    print(f"superpixels of the image in the background: {sp_time:.1f} s")
    print(f"smart region (GrabCut, box {args.size // 2} x {args.size // 2}) release -> landed: {grabcut:.1f} s, "
          f"undo steps it added: {len(editor.history) - steps_before}")


if __name__ == "__main__":
    main()

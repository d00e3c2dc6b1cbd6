"""Show the Canvas alone on a CamVid image: labels with a hole, a drawn stroke, the brush outline.

    .venv/bin/python benchmarks/demo_canvas.py [--outline] [--prediction] [IMAGE MASK CLASSES_JSON]

Without arguments it uses ../shared/camvid (first train image). The right half of the
labels is erased (255, "not labelled") and a stroke is painted with real mouse events,
so a screenshot shows labelled, unlabelled and freshly painted areas side by side.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PySide6.QtCore import QEvent, QPointF, Qt, QTimer
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from workbench.classes import ClassSchema
from workbench.editing import LabelEditor
from workbench.gui.canvas import Canvas
from workbench.imageio import read_image
from workbench.masks import read_mask

CAMVID = Path(__file__).resolve().parent.parent.parent / "shared" / "camvid"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("paths", nargs="*")
    ap.add_argument("--outline", action="store_true")
    ap.add_argument("--prediction", action="store_true", help="show the ground truth as a 'prediction'")
    args = ap.parse_args()
    if args.paths:
        image_path, mask_path, classes_path = map(Path, args.paths)
    else:
        image_path = sorted((CAMVID / "train").glob("*.png"))[0]
        mask_path = CAMVID / "trainannot" / image_path.name
        classes_path = CAMVID / "classes.json"
    app = QApplication(sys.argv)
    schema = ClassSchema.load(classes_path)
    image = read_image(image_path)
    truth = read_mask(mask_path, schema, image.shape[:2])
    labels = truth.copy()
    labels[:, labels.shape[1] // 2:] = 255
    canvas = Canvas()
    canvas.setWindowTitle(f"Canvas demo - {image_path.name}")
    canvas.resize(1000, 760)
    canvas.set_schema(schema)
    canvas.set_image(image)
    canvas.set_editor(LabelEditor(labels))
    canvas.set_label_opacity(0.6)
    canvas.set_outline_mode(args.outline)
    if args.prediction:
        canvas.set_prediction(truth)
        canvas.set_prediction_visible(True)
        canvas.set_prediction_opacity(0.35)
    canvas.show()

    def paint_demo_stroke() -> None:
        canvas.set_current_class(8)  # Car in CamVid
        canvas.set_brush_radius(10)
        pts = [canvas.image_to_widget(QPointF(300 + 8 * i, 250 + 3 * (i % 7))) for i in range(20)]
        L, NB = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
        mods = Qt.KeyboardModifier.NoModifier
        QApplication.sendEvent(canvas, QMouseEvent(QEvent.Type.MouseButtonPress, pts[0], pts[0], L, L, mods))
        for p in pts[1:]:
            QApplication.sendEvent(canvas, QMouseEvent(QEvent.Type.MouseMove, p, p, NB, L, mods))
        QApplication.sendEvent(canvas, QMouseEvent(QEvent.Type.MouseButtonRelease, pts[-1], pts[-1], L, NB, mods))
        end = canvas.image_to_widget(QPointF(420, 150))
        QApplication.sendEvent(canvas, QMouseEvent(QEvent.Type.MouseMove, end, end, NB, NB, mods))

    QTimer.singleShot(300, paint_demo_stroke)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())

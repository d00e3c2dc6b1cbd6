"""The Classes menu names the project's classes (issue 12.13), not "Class 1 … Class 9"."""

from __future__ import annotations

from PySide6.QtGui import QAction

from workbench.classes import ClassSchema

MAX_CLASS_KEYS = 9   # number keys 1..9 select the first nine trainable classes


def label_class_actions(actions: dict[str, QAction], schema: ClassSchema | None) -> None:
    """Name actions ``class_1`` … ``class_9`` after ``schema``'s trainable classes; hide the rest."""
    names = schema.names if schema is not None else []
    for n in range(1, MAX_CLASS_KEYS + 1):
        action = actions.get(f"class_{n}")
        if action is None:
            continue
        if n <= len(names):
            action.setText(f"&{n}  {names[n - 1].replace('&', '&&')}")
            action.setVisible(True)
        else:
            action.setText(f"Class {n}")
            action.setVisible(False)   # a hidden action's key does nothing: there is no such class

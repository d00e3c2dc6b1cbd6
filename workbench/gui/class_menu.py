"""The Classes menu names the project's classes (issue 12.13), not "Class 1 … Class 9".

The first nine classes keep their number keys (actions ``class_1`` … ``class_9`` from the
shortcut table); classes beyond the ninth get menu entries without a key, so an 11-class
CamVid project lists all eleven.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu

from workbench.classes import ClassSchema

MAX_CLASS_KEYS = 9   # number keys 1..9 select the first nine trainable classes


def _menu_text(n: int, name: str) -> str:
    return f"&{n}  {name.replace('&', '&&')}" if n <= MAX_CLASS_KEYS else f"{n}  {name.replace('&', '&&')}"


class ClassMenu:
    """Keeps the Classes menu's entries in step with the schema."""

    def __init__(self, menu: QMenu, actions: dict[str, QAction], select_nth: Callable[[int], None]) -> None:
        self.menu, self.actions, self.select_nth = menu, actions, select_nth
        self.extra: list[QAction] = []

    def show_schema(self, schema: ClassSchema | None) -> None:
        """Name ``class_1`` … ``class_9`` after the trainable classes, hide the rest, add entries past nine."""
        names = schema.names if schema is not None else []
        for n in range(1, MAX_CLASS_KEYS + 1):
            action = self.actions.get(f"class_{n}")
            if action is None:
                continue
            if n <= len(names):
                action.setText(_menu_text(n, names[n - 1]))
                action.setVisible(True)
            else:
                action.setText(f"Class {n}")
                action.setVisible(False)   # a hidden action's key does nothing: there is no such class
        for action in self.extra:
            self.menu.removeAction(action)
            action.deleteLater()
        self.extra = []
        for n in range(MAX_CLASS_KEYS + 1, len(names) + 1):
            action = QAction(_menu_text(n, names[n - 1]), self.menu)
            action.triggered.connect(partial(self.select_nth, n))
            self.menu.addAction(action)
            self.extra.append(action)

"""Label editing outside Qt: a mask, its edit operations and a bounded undo history."""

from workbench.editing.geometry import BBox
from workbench.editing.history import EditAtom, UndoHistory
from workbench.editing.label_editor import LabelEditor

__all__ = ["BBox", "EditAtom", "LabelEditor", "UndoHistory"]

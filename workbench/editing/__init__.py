"""Label editing outside Qt: a mask, its edit operations and a bounded undo history.

The assisted tools' operations (wand, smart region, superpixels, confidence) are in
their own modules and imported from there (``workbench.editing.wand`` ...), so that
importing the editor does not load scikit-image.
"""

from workbench.editing.geometry import BBox
from workbench.editing.history import EditAtom, UndoHistory
from workbench.editing.label_editor import LabelEditor

__all__ = ["BBox", "EditAtom", "LabelEditor", "UndoHistory"]

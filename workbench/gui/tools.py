"""The canvas's editing tools (names shared by the toolbar, shortcuts and the canvas)."""

from __future__ import annotations

from enum import StrEnum


class Tool(StrEnum):
    """What a left click or drag on the canvas does."""

    BRUSH = "brush"        # paint the current class; one drag = one undo step
    ERASER = "eraser"      # paint 255, "not labelled"
    FILL = "fill"          # flood-fill the 4-connected region of equal label under the click
    POLYGON = "polygon"    # click vertices; double-click or Enter fills, Esc cancels
    PICK = "pick"          # eyedropper: the current class becomes the label under the click
    ACCEPT = "accept"      # copy the prediction's connected region under the click
    PAN = "pan"            # left-drag pans (middle-drag and space+drag pan with any tool)

    @property
    def paints(self) -> bool:
        """True for the drag tools that paint along the cursor path."""
        return self in (Tool.BRUSH, Tool.ERASER)

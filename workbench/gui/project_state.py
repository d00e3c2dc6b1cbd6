"""Per-project UI state (last image, list filter and sort), kept in ``project.settings()["ui"]``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from workbench.errors import WorkbenchError
from workbench.project import Project

if TYPE_CHECKING:
    from workbench.gui.image_list import ImageListPanel
    from workbench.gui.workspace import Workspace

UI_KEY = "ui"
MAX_OPEN_ATTEMPTS = 5


def save_ui_state(project: Project, panel: "ImageListPanel", workspace: "Workspace") -> None:
    """Remember the open image and the list's filter/sort (skipped when read-only)."""
    if project.read_only:
        return
    state = dict(panel.ui_state())
    if workspace.image_id is not None:
        try:
            state["last_image"] = project.get(workspace.image_id).name
        except WorkbenchError:
            pass
    try:
        data = project.settings()
        data[UI_KEY] = state
        project.save_settings(data)
    except WorkbenchError:
        pass  # losing the view state must never block closing


def restore_ui_state(project: Project, panel: "ImageListPanel", workspace: "Workspace") -> None:
    """Reapply the saved filter/sort and open the last image (else the first in the list)."""
    try:
        state = project.settings().get(UI_KEY, {})
    except WorkbenchError:
        state = {}
    if not isinstance(state, dict):
        state = {}
    panel.restore_ui_state(state)
    rec = project.find(str(state.get("last_image", ""))) if state.get("last_image") else None
    if rec is not None and panel.select(rec.id) and workspace.image_id == rec.id:
        return
    if rec is not None and workspace.open_image(rec.id):
        return
    # Else the first image that can be read (unreadable ones were reported, a few at most).
    for image_id in panel.visible_ids()[:MAX_OPEN_ATTEMPTS]:
        if workspace.open_image(image_id):
            return

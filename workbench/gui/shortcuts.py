"""The one table of keyboard shortcuts: menus, actions and the Help dialog all read it.

Tools follow napari's Labels layer (P paint, E unlabel, F fill, L pick a class; [ and ]
brush size) and come from ``workbench.editing.tool_table`` (the one list of tools); navigation follows labelme (A / D previous / next). Fit to window is on
Home and Ctrl+0 so that F stays the fill tool. "Verify and next" is Ctrl+Return (V too).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QWidget

from workbench.editing.tool_table import ACTIONS as TOOL_ACTIONS
from workbench.editing.tool_table import TOOLS


def tool_action_id(tool_id: str) -> str:
    """The shortcut / QAction id of a tool: ``tool_<id>``."""
    return f"tool_{tool_id}"


@dataclass(frozen=True)
class Shortcut:
    """One command: stable id, menu text, keys (first is shown in menus), group for Help."""

    id: str
    text: str
    keys: tuple[str, ...]
    group: str
    checkable: bool = False


SHORTCUTS: tuple[Shortcut, ...] = (
    # File
    Shortcut("open_folder", "&Open Folder…", ("Ctrl+O",), "File"),
    Shortcut("import_labels", "&Import labels…", ("Ctrl+I",), "File"),
    Shortcut("export_labels", "&Export labels…", ("Ctrl+Shift+E",), "File"),
    Shortcut("save", "&Save label", ("Ctrl+S",), "File"),
    Shortcut("quit", "&Quit", ("Ctrl+Q",), "File"),
    # Navigation (labelme)
    Shortcut("next_image", "&Next image", ("D", "PgDown"), "Navigate"),
    Shortcut("prev_image", "&Previous image", ("A", "PgUp"), "Navigate"),
    Shortcut("verify_next", "Mark &verified and next", ("Ctrl+Return", "V"), "Navigate"),
    Shortcut("focus_filter", "Find image…", ("Ctrl+F",), "Navigate"),
    # Tools (napari keys where napari has the tool): generated from the tool table
    *(Shortcut(tool_action_id(t.id), t.label, (t.key,), "Tools", True) for t in TOOLS),
    *(Shortcut(a.id, a.label, (a.key,), "Tools") for a in TOOL_ACTIONS),
    Shortcut("brush_smaller", "Smaller brush", ("[",), "Tools"),
    Shortcut("brush_larger", "Larger brush", ("]",), "Tools"),
    *(Shortcut(f"class_{i}", f"Class {i}", (str(i),), "Classes") for i in range(1, 10)),
    Shortcut("class_picker", "&Choose class by name… (classes past 9)", ("K",), "Classes"),
    # Edit
    Shortcut("undo", "&Undo", ("Ctrl+Z",), "Edit"),
    Shortcut("redo", "&Redo", ("Ctrl+Shift+Z", "Ctrl+Y"), "Edit"),
    Shortcut("accept_all", "&Accept prediction (whole image)", ("Ctrl+Shift+A",), "Edit"),
    Shortcut("clear", "&Clear label", ("Ctrl+Shift+Backspace",), "Edit"),
    Shortcut("label_history", "Label &history…", ("Ctrl+H",), "Edit"),
    Shortcut("split_train", "Set split: &train", ("Alt+1",), "Edit"),
    Shortcut("split_val", "Set split: &val", ("Alt+2",), "Edit"),
    Shortcut("split_test", "Set split: t&est", ("Alt+3",), "Edit"),
    # View
    Shortcut("fit", "&Fit to window", ("Home", "Ctrl+0"), "View"),
    Shortcut("toggle_labels", "Show &labels", ("Ctrl+L",), "View", True),
    Shortcut("toggle_prediction", "Show &prediction", ("Ctrl+P",), "View", True),
    Shortcut("toggle_uncertainty", "Show &uncertainty heat map", ("Ctrl+U",), "View", True),
    Shortcut("toggle_outline", "&Outline mode", ("O",), "View", True),
    Shortcut("view_ground_truth", "Show &ground truth instead of labels (val images)", ("Ctrl+G",), "View", True),
    Shortcut("view_errors", "Show model &errors (prediction vs ground truth or label)", ("Ctrl+Shift+G",),
             "View", True),
    # Model
    Shortcut("predict_all", "Predict &all", ("Ctrl+Shift+P",), "Model"),
    Shortcut("retrain", "&Retrain", ("Ctrl+R",), "Model"),
    Shortcut("cancel_jobs", "&Cancel running jobs", ("Ctrl+.",), "Model"),
    Shortcut("evaluate", "&Evaluate on val split", ("Ctrl+E",), "Model"),
    Shortcut("settings", "Training &settings…", ("Ctrl+,",), "Model"),
    Shortcut("show_models", "Model &versions…", ("Ctrl+M",), "Model"),
    # Assist (issue 13; wired by gui/assist_menu.py)
    Shortcut("train_quick", "Train &quick model", ("Ctrl+Shift+Q",), "Assist"),
    Shortcut("live_quick", "&Live quick model while painting", ("Ctrl+Shift+L",), "Assist", True),
    Shortcut("propagate_previous", "&Propagate from previous frame", ("Ctrl+Shift+F",), "Assist"),
    Shortcut("suggest_next", "&Suggest next images", ("Ctrl+Shift+N",), "Assist"),
    # Help
    Shortcut("help_shortcuts", "&Keyboard shortcuts", ("F1",), "Help"),
)

BY_ID: dict[str, Shortcut] = {s.id: s for s in SHORTCUTS}


def check_unique() -> None:
    """Raise ValueError if two commands share a key (run by the tests)."""
    seen: dict[str, str] = {}
    for s in SHORTCUTS:
        for key in s.keys:
            norm = QKeySequence(key).toString(QKeySequence.SequenceFormat.PortableText)
            if norm in seen:
                raise ValueError(f"key {key} is bound to both {seen[norm]} and {s.id}")
            seen[norm] = s.id


def make_actions(parent: QWidget, slots: dict[str, Callable[..., object]]) -> dict[str, QAction]:
    """A QAction per table entry, added to ``parent`` (window-wide keys), triggered -> slot.

    ``slots`` maps ids to bound methods of GUI-thread objects; entries without a slot
    are created disabled so the menu still shows (and the Help dialog still lists) them.
    """
    actions: dict[str, QAction] = {}
    for s in SHORTCUTS:
        action = QAction(s.text, parent)
        action.setObjectName(s.id)
        action.setShortcuts([QKeySequence(k) for k in s.keys])
        action.setCheckable(s.checkable)
        slot = slots.get(s.id)
        if slot is None:
            action.setEnabled(False)
        elif s.checkable:
            action.toggled.connect(slot)
        else:
            action.triggered.connect(slot)
        parent.addAction(action)
        actions[s.id] = action
    return actions


def rows_for_help() -> list[tuple[str, str, str]]:
    """(group, command, keys) for every shortcut, in table order."""
    rows = []
    for s in SHORTCUTS:
        keys = ", ".join(QKeySequence(k).toString(QKeySequence.SequenceFormat.NativeText) for k in s.keys)
        rows.append((s.group, s.text.replace("&", "").rstrip("…"), keys))
    return rows

"""The Assist menu (issue 13): quick model, live quick model, frame propagation, suggestions.

Built by the main window in one call; holds the controllers so the window stays wiring.
The controllers follow the workspace's project (the window opens and closes projects).
"""

from __future__ import annotations

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMainWindow

from workbench.gui.propagation_actions import PropagationActions
from workbench.gui.quick_model_controller import QuickModelController

# id -> tooltip; texts and keys are in the shortcut table (gui/shortcuts.py), which builds
# the Assist menu and its actions and lists them in Help.
TOOLTIPS = {
    "train_quick": "A random forest on filter features of the labelled pixels (scribbles too): ready in "
                   "seconds; it is the suggestion until a U-Net scores better on val",
    "live_quick": "Retrain the quick model a moment after each stroke",
    "propagate_previous": "Carry the previous frame's label onto this one by optical flow (only where nothing "
                          "is labelled yet)",
    "suggest_next": "The unlabelled images the model is least sure about, at most one per stretch of similar "
                    "frames",
}


class AssistMenu:
    """The menu, its actions and the two controllers behind them."""

    def __init__(self, window: QMainWindow) -> None:
        self.window = window
        ws = window.workspace
        self.quick = QuickModelController(window.events, window.session, window)
        self.propagation = PropagationActions(ws, window.session, window.canvas, window.events, window.notifier,
                                              window)
        self.actions: dict[str, QAction] = {}
        for ident, tip in TOOLTIPS.items():
            action = window.actions_by_id[ident]   # made (disabled, unconnected) from the shortcut table
            action.setToolTip(tip)
            action.setStatusTip(tip)
            action.setEnabled(True)
            self.actions[ident] = action
        self.actions["train_quick"].triggered.connect(self.train_quick)
        self.actions["live_quick"].toggled.connect(self.set_live)
        self.actions["propagate_previous"].triggered.connect(self.propagation.propagate_from_previous)
        self.actions["suggest_next"].triggered.connect(self.propagation.suggest_next)
        window.canvas.strokeFinished.connect(self._on_stroke)
        window.canvas.labelsEdited.connect(self._on_stroke)
        self.quick.finished.connect(self._on_quick_finished)
        self.quick.failed.connect(window.notifier.error)
        self.quick.started.connect(self._on_quick_started)

    def _follow_project(self) -> None:
        self.quick.set_project(self.window.workspace.project)

    def _on_stroke(self, *_args: object) -> None:
        self._follow_project()
        self.quick.stroke_finished()

    def train_quick(self) -> None:
        """Assist > Train quick model."""
        self._follow_project()
        self.window.session.save_quietly()
        if not self.quick.train():
            self.window.notifier.info("Open a project first.", 4000)

    def set_live(self, on: bool) -> None:
        """Assist > Live quick model while painting."""
        self._follow_project()
        self.quick.set_live(on and self.quick.project is not None)

    def _on_quick_started(self) -> None:
        self.window.statusBar().showMessage("Training the quick model…", 5000)

    def _on_quick_finished(self, outcome) -> None:
        m = outcome.record.metrics if outcome.record is not None else {}
        message = getattr(outcome, "app_message", "") or outcome.message
        self.window.notifier.info(f"Quick model v{outcome.version}: {m.get('samples', 0):,} labelled pixels of "
                                  f"{m.get('trained_on', 0)} image(s), fitted in {m.get('fit_seconds', 0):.1f} s. "
                                  f"{message}", 10000)

    def shutdown(self, msecs: int) -> bool:
        """Stop the workers (closing a project): True when none is left running."""
        self.quick.live = False
        self.actions["live_quick"].setChecked(False)
        ok = self.quick.shutdown(msecs)
        return self.propagation.shutdown(msecs) and ok

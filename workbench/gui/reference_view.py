"""View > Show ground truth / Show model errors: the canvas's reference views (issue 12.8).

The ground-truth view draws the image's imported ground truth where the labels were
(the prediction stays hatched over it); the error view shows in magenta where the
current model's prediction disagrees with the ground truth, or with the person's label
when the image has no ground truth. Both are views, never editors: a brush stroke
returns to the labels view, so nobody paints into a layer they cannot see.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject
from PySide6.QtGui import QAction

from workbench.classes import UNLABELLED
from workbench.errors import WorkbenchError
from workbench.gui.legend import OverlayLegend
from workbench.gui.notifier import Notifier
from workbench.gui.workspace import Workspace


class ReferenceView(QObject):
    """Keeps the canvas's reference mask and view mode in step with the image on screen."""

    def __init__(self, workspace: Workspace, canvas, legend: OverlayLegend, notifier: Notifier,
                 gt_action: QAction, errors_action: QAction, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.workspace, self.canvas, self.legend, self.notifier = workspace, canvas, legend, notifier
        self.gt_action, self.errors_action = gt_action, errors_action
        self.mode = "labels"
        self.against = ""          # "ground truth" or "your label": what the error view compares with
        workspace.imageShown.connect(self._on_image_shown)
        workspace.predictions.ready.connect(self._on_prediction)
        canvas.labelsEdited.connect(self._on_edited)

    # ----- slots for the View menu --------------------------------------------------------
    def set_ground_truth(self, on: bool) -> None:
        """Show the image's ground truth instead of the labels (or go back)."""
        self._set_mode("ground_truth" if on else ("labels" if self.mode == "ground_truth" else self.mode))

    def set_errors(self, on: bool) -> None:
        """Show where the model is wrong (or go back)."""
        self._set_mode("errors" if on else ("labels" if self.mode == "errors" else self.mode))

    def set_project(self, _project: object = None) -> None:
        """Another project: back to the labels view."""
        self._set_mode("labels", quiet=True)

    # ----- internals -----------------------------------------------------------------------
    def _set_mode(self, mode: str, quiet: bool = False) -> None:
        if mode != "labels":
            problem = self._load_reference(mode)
            if problem:
                if not quiet:
                    self.notifier.info(problem, 8000)
                mode = "labels"
        self.mode = mode
        for action, name in ((self.gt_action, "ground_truth"), (self.errors_action, "errors")):
            if action.isChecked() != (mode == name):
                action.blockSignals(True)
                action.setChecked(mode == name)
                action.blockSignals(False)
        if mode == "labels":
            self.canvas.set_reference(None)
        self.canvas.set_view_mode(mode)
        self._show_legend()

    def _load_reference(self, mode: str) -> str:
        """Give the canvas the reference for ``mode``; a sentence why not, or ''."""
        ws = self.workspace
        project, image_id = ws.project, ws.image_id
        if project is None or image_id is None:
            return "Open an image first."
        name = project.get(image_id).name
        try:
            gt = project.read_ground_truth(image_id)
        except WorkbenchError as exc:
            return f"Cannot read the ground truth of {name}: {exc}"
        if mode == "ground_truth":
            if gt is None:
                return (f"{name} has no ground truth: import it with Metrics > Import ground truth… "
                        "(usually for the val images).")
            self.canvas.set_reference(gt)
            return ""
        if ws.prediction is None:
            return f"No prediction for {name} yet: the error view compares the model's prediction."
        reference, self.against = gt, "ground truth"
        editor = ws.session.editor
        if reference is None and editor is not None and (editor.mask != UNLABELLED).any():
            reference, self.against = np.array(editor.mask), "your label"
        if reference is None:
            return f"{name} has neither ground truth nor a label to compare the prediction with."
        self.canvas.set_reference(reference)
        return ""

    def _show_legend(self) -> None:
        detail = ""
        counts = self.canvas.error_counts
        if self.mode == "errors" and counts is not None:
            wrong, compared = counts
            share = 100.0 * wrong / compared if compared else 0.0
            detail = f"{share:.1f} % of {compared:,} pixels (vs {self.against})"
        self.legend.show_mode(self.mode, detail)

    def _on_image_shown(self, _image_id: int) -> None:
        if self.mode == "errors" and self.workspace.prediction is None and self.workspace.predictions.has_model:
            self.canvas.set_reference(None)      # the prediction is on its way: wait for it
            self.legend.show_mode("errors", "waiting for the prediction…")
        elif self.mode != "labels":
            self._set_mode(self.mode)     # the new image's reference, or back to labels with the reason

    def _on_prediction(self, _res: object = None) -> None:
        if self.mode == "errors":
            if self.canvas.error_counts is None and self.workspace.prediction is not None:
                self._set_mode("errors")  # the awaited prediction of the image on screen arrived
            else:
                self._show_legend()       # the canvas recomputed the errors with the new prediction

    def _on_edited(self, _box: object = None) -> None:
        if self.mode != "labels":
            self._set_mode("labels", quiet=True)
            self.notifier.info("Back to your labels: the brush edits the labels, not the reference view.", 6000)

"""'Propagate from previous frame' and 'Suggest next images' in the app (issue 13).

Propagation runs ``workflows.propagation.propagate_to`` in a worker: the previous frame's
saved label is carried onto the open image by optical flow and fused with the current
model's prediction. The result lands in the editor as ONE undo step and only where the
open image has no label yet: what the person painted is never overwritten, and Ctrl+Z
takes the whole propagation back. Suggestions run ``workflows.suggestions.suggest_images``
in a worker and are listed in a small window; a double-click opens the image.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QDialog, QLabel, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from workbench.classes import UNLABELLED
from workbench.gui.notifier import Notifier
from workbench.gui.project_events import ProjectEvents
from workbench.gui.workers import Job, JobError, JobRunner
from workbench.workflows.propagation import neighbours, propagate_to
from workbench.workflows.suggestions import suggest_images


def _propagate_job(project, source_id: int, target_id: int, *, on_progress=None, cancel=None):
    return propagate_to(project, source_id, target_id, cancel=cancel)


def _suggest_job(project, count: int, *, on_progress=None, cancel=None):
    return suggest_images(project, count=count, on_progress=on_progress, cancel=cancel)


class SuggestionsDialog(QDialog):
    """The suggested images, most useful first, with their uncertain regions; double-click opens one."""

    imageRequested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Suggested next images")
        self.setObjectName("suggestions_dialog")
        self.heading = QLabel()
        self.heading.setWordWrap(True)
        self.list = QListWidget()
        self.list.itemActivated.connect(self._open)
        self.list.itemDoubleClicked.connect(self._open)
        layout = QVBoxLayout(self)
        layout.addWidget(self.heading)
        layout.addWidget(self.list)
        self.resize(460, 320)

    def show_outcome(self, outcome) -> None:
        """List a ``workflows.suggestions.SuggestOutcome``."""
        self.heading.setText(f"Model v{outcome.version} is least sure about these {len(outcome.suggestions)} of "
                             f"{outcome.candidates} unlabelled train images, at most one per stretch of similar "
                             "frames. Double-click to open; the boxes are where it is least sure.")
        self.list.clear()
        for n, s in enumerate(outcome.suggestions, 1):
            where = "; ".join(f"x {r.box[1]}-{r.box[3]}, y {r.box[0]}-{r.box[2]}" for r in s.regions[:2])
            item = QListWidgetItem(f"{n}. {s.name}   uncertainty {s.uncertainty:.3f}"
                                   + (f"\n    start at {where}" if where else ""))
            item.setData(Qt.ItemDataRole.UserRole, s.image_id)
            self.list.addItem(item)
        if self.list.count():
            self.list.setCurrentRow(0)

    def _open(self, item: QListWidgetItem) -> None:
        self.imageRequested.emit(int(item.data(Qt.ItemDataRole.UserRole)))


class PropagationActions(QObject):
    """Slots of the Assist menu's propagation and suggestion actions."""

    def __init__(self, workspace, session, canvas, events: ProjectEvents, notifier: Notifier,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.workspace, self.session, self.canvas = workspace, session, canvas
        self.events, self.notifier = events, notifier
        self._runner = JobRunner("assist", 1, self)
        self.count = 4                     # images per suggestion (a round of the simulated annotator)
        self.dialog = SuggestionsDialog(parent)
        self.dialog.imageRequested.connect(workspace.open_image)

    @property
    def project(self):
        """The open project (None when none is)."""
        return self.workspace.project

    # ----- propagation ---------------------------------------------------------------------
    def propagate_from_previous(self) -> bool:
        """Carry the previous frame's label onto the open image (in a worker); False when it cannot."""
        project, target = self.project, self.session.image_id
        if project is None or target is None:
            return False
        previous, _next = neighbours(project, target)
        if previous is None:
            self.notifier.info(f"{project.get(target).name} has no previous frame: frames of a sequence share a "
                               "name prefix and end in a frame number (clip_0001.png, clip_0002.png).", 8000)
            return False
        if not project.get(previous).has_label:
            self.notifier.info(f"The previous frame, {project.get(previous).name}, has no label to carry.", 6000)
            return False
        job = Job(_propagate_job, project, previous, target)
        job.signals.returned.connect(self._on_propagated)
        job.signals.errored.connect(self._on_error)
        self._runner.start(job)
        self.notifier.info(f"Carrying the label of {project.get(previous).name} onto this frame…", 4000)
        return True

    def _on_propagated(self, res) -> None:
        editor = self.session.editor
        if editor is None or self.session.image_id != res.target_id or editor.shape != res.mask.shape:
            return   # the person moved on: a late result is dropped
        merged = np.where(editor.mask == UNLABELLED, res.mask, editor.mask).astype(np.uint8)
        bbox = editor.accept_prediction(merged)     # one undo step, only the changed pixels
        if bbox is None:
            self.notifier.info("Nothing to carry: every pixel the flow is sure of is labelled already.", 5000)
            return
        self.canvas.refresh_labels(bbox)
        self.session.edited()
        share = float(np.mean(res.mask != UNLABELLED))
        prior = f", with model v{res.model_version} as the prior" if res.model_version is not None else ""
        self.notifier.info(f"Label carried from {self.project.get(res.source_id).name}{prior}: {share:.0%} of "
                           "the pixels; unsure ones stay unlabelled. Ctrl+Z takes it back.", 8000)

    # ----- suggestions ---------------------------------------------------------------------
    def suggest_next(self) -> bool:
        """Rank the next ``self.count`` images to label (in a worker) and show them."""
        if self.project is None:
            return False
        self.session.save_quietly()
        job = Job(_suggest_job, self.project, self.count)
        job.signals.returned.connect(self._on_suggested)
        job.signals.errored.connect(self._on_error)
        self._runner.start(job)
        self.notifier.info("Ranking the unlabelled train images by the model's uncertainty…", 4000)
        return True

    def _on_suggested(self, outcome) -> None:
        self.events.images(None)           # predictions and scores were cached for the candidates
        self.dialog.show_outcome(outcome)
        self.dialog.show()
        self.dialog.raise_()

    def _on_error(self, error: JobError) -> None:
        if not error.cancelled:
            self.notifier.error(error.message)

    def shutdown(self, msecs: int) -> bool:
        """Cancel and wait up to ``msecs``."""
        self._runner.cancel_all()
        return self._runner.wait(msecs)

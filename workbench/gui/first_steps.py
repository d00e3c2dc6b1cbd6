"""The "first steps" strip above the canvas: what to do in a project that has no model yet.

A folder without labels used to open on an empty canvas with one hint line in the
Training panel (issue 12.14). This strip stays in the window until the first model
exists: label a few train images (or import masks), then Retrain; while that first
run trains it says so instead of "No model yet" (issue 12.3).
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import QSizePolicy, QWidget

from workbench.errors import WorkbenchError
from workbench.gui.notifier import Strip
from workbench.project import Project, Split

STEPS = ("<b>First steps.</b> 1. Paint a few images of the <i>train</i> split (P brush, the number keys "
         "choose a class; Alt+1 puts an image in train) &mdash; or import existing masks "
         "(<tt>workbench import FOLDER --masks DIR</tt>). 2. Press <b>Retrain</b> (Ctrl+R). "
         "The model then predicts every image you open (hatched); correct it, Verify + next, Retrain again.")
TRAINING = ("<b>Training the first model&hellip;</b> progress is in the Training panel and the status bar. "
            "Keep labelling: labels saved from now on go into the next run.")


def first_steps_text(labelled_train: int, training: bool) -> str:
    """The strip's text for a project without a model (rich text)."""
    if training:
        return TRAINING
    count = ("No image of the train split is labelled yet." if labelled_train == 0 else
             f"{labelled_train} image{'s' if labelled_train != 1 else ''} of the train split "
             f"{'are' if labelled_train != 1 else 'is'} labelled: press Retrain when you have a few.")
    return f"{STEPS}<br>{count}"


class FirstSteps(Strip):
    """Shown while the open project has no current model; a Retrain button once a label exists."""

    retrainRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("first_steps", "#e8f1fb", "#3b82c4", "#0b3760", "Retrain", parent)
        self.retrain_button = self.action_button
        self.retrain_button.clicked.connect(self.retrainRequested)
        self.text.setTextFormat(Qt.TextFormat.RichText)
        self.project: Project | None = None
        self.training = False
        self.dismissed = False
        self.close_button.clicked.connect(self._dismiss)
        # Never widen the window: the text wraps, the buttons may crowd on a very narrow one.
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

    def set_project(self, project: Project | None) -> None:
        """Another project is open: show the strip again if it has no model."""
        self.project = project
        self.training = False
        self.dismissed = False
        self.refresh()

    def set_training(self, running: bool) -> None:
        """A Retrain started (True) or ended (False)."""
        self.training = bool(running)
        self.refresh()

    def refresh(self, *_args: object) -> None:
        """Re-read the project: hidden once a current model exists (or the person dismissed it)."""
        project = self.project
        if project is None or self.dismissed:
            self.hide()
            return
        try:   # the count is only read while there is no model (a few ms on a large project)
            has_model = project.current_model() is not None
            labelled = 0 if has_model else sum(1 for r in project.images(split=Split.TRAIN) if r.has_label)
        except WorkbenchError:
            has_model, labelled = True, 0     # a closing or broken project: no advice
        if has_model:
            self.hide()
            return
        self.text.setText(first_steps_text(labelled, self.training))
        self.retrain_button.setVisible(labelled > 0 and not self.training and not project.read_only)
        self.show()

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt override)
        """Never make the window taller or wider than it was: on a small window the strip clips."""
        return QSize(0, 0)

    def _dismiss(self) -> None:
        # Dismiss keeps it hidden for this project (it comes back when another project opens).
        self.dismissed = True

"""A progress bar with a Cancel button that runs one workflow function in a worker.

Used by the Import labels and Export dialogs (``JobDialog`` below, their shared base):
the function gets ``on_progress`` and ``cancel`` (the CLI's contract, ``workbench.progress``)
and runs on this widget's own one-thread pool; its outcome comes back as ``returned`` or ``errored`` on the GUI thread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QDialog, QHBoxLayout, QLabel, QPlainTextEdit, QProgressBar, QPushButton,
                               QVBoxLayout, QWidget)

from workbench.gui.workers import Job, JobError, JobRunner
from workbench.progress import Progress


class JobProgress(QWidget):
    """Runs one job at a time; shows its progress; Cancel asks it to stop."""

    returned = Signal(object)      # the function's result
    errored = Signal(object)       # JobError (cancelled ones included)
    busyChanged = Signal(bool)

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner = JobRunner(name, parent=self)
        self.job: Job | None = None
        self.bar = QProgressBar()
        self.bar.setTextVisible(True)
        self.label = QLabel()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop after the current file; what was done stays")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.bar, 1)
        layout.addWidget(self.label)
        layout.addWidget(self.cancel_button)
        self.cancel_button.clicked.connect(self.cancel)
        self._idle()

    @property
    def busy(self) -> bool:
        """True while the job runs."""
        return self.job is not None and not self.job.done

    def start(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Job:
        """Run ``fn(*args, on_progress=..., cancel=..., **kwargs)`` in the worker."""
        job = Job(fn, *args, **kwargs)
        self.job = job
        job.signals.progress.connect(self._on_progress)
        job.signals.returned.connect(self._on_returned)
        job.signals.errored.connect(self._on_errored)
        job.signals.finished.connect(self._on_finished)
        self.bar.setRange(0, 0)                  # busy until the first report says how much
        self.bar.setFormat("%p%")
        self.label.setText("starting…")
        self.cancel_button.setEnabled(True)
        self.setVisible(True)
        self.busyChanged.emit(True)
        self.runner.start(job)
        return job

    def cancel(self) -> None:
        """Ask the running job to stop at its next check."""
        if self.job is not None:
            self.job.cancel()
            self.label.setText("cancelling…")

    def wait(self, msecs: int) -> bool:
        """Wait up to ``msecs`` for the job (closing the dialog)."""
        return self.runner.wait(msecs)

    def _on_progress(self, p: Progress) -> None:
        if p.total:
            self.bar.setRange(0, int(p.total))
            self.bar.setValue(int(p.done))
        else:
            self.bar.setRange(0, 0)
        self.label.setText(f"{p.message}: {p.done}" + (f" of {p.total}" if p.total else ""))

    def _on_returned(self, result: object) -> None:
        self.returned.emit(result)

    def _on_errored(self, err: JobError) -> None:
        self.errored.emit(err)

    def _on_finished(self) -> None:
        self._idle()
        self.busyChanged.emit(False)

    def _idle(self) -> None:
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self.bar.setFormat("")                   # no "0%" when nothing runs
        self.label.setText("")
        self.cancel_button.setEnabled(False)


class JobDialog(QDialog):
    """A dialog that runs workflow functions in a ``JobProgress`` (Import labels, Export).

    Holds what both share: the summary box that stays until the dialog closes, the
    progress row, the action and Close buttons, the busy state of the inputs, and a close
    that cancels a running job and waits for it. Subclasses define ``_on_returned``,
    ``_on_errored`` and ``_on_busy`` (which calls ``_enable_inputs``).
    """

    def _build_job_parts(self, name: str, action: str, placeholder: str) -> QPushButton:
        """Make ``summary``, ``progress`` and ``close_button``; returns the action button."""
        self.summary = QPlainTextEdit(readOnly=True)
        self.summary.setAccessibleName("summary")
        self.summary.setPlaceholderText(placeholder)
        self.progress = JobProgress(name, self)
        button = QPushButton(action)
        button.setDefault(True)
        self.close_button = QPushButton("Close")
        self._action_button = button
        return button

    def _add_job_rows(self, layout: QVBoxLayout) -> None:
        """The summary, the progress row and the buttons, at the foot of ``layout``."""
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self._action_button)
        buttons.addWidget(self.close_button)
        layout.addWidget(QLabel("Summary:"))
        layout.addWidget(self.summary, 1)
        layout.addWidget(self.progress)
        layout.addLayout(buttons)

    def _connect_job(self) -> None:
        """Close closes; the job's outcome and busy state go to the subclass's handlers."""
        self.close_button.clicked.connect(self.close)
        self.progress.returned.connect(self._on_returned)
        self.progress.errored.connect(self._on_errored)
        self.progress.busyChanged.connect(self._on_busy)
        self._on_busy(False)

    def _enable_inputs(self, busy: bool, widgets: Iterable[QWidget]) -> None:
        """Inputs off while a job runs; Cancel on only then."""
        for w in widgets:
            w.setEnabled(not busy)
        self.progress.cancel_button.setEnabled(busy)

    @staticmethod
    def stopped_text(what: str, err: JobError) -> str:
        """The summary of a job that failed: its message, then its details."""
        return f"{what} stopped: {err.message}" + (f"\n\n{err.details}" if err.details else "")

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        """Closing cancels a running job and waits for it (what was done stays)."""
        if self.progress.busy:
            self.progress.cancel()
            self.progress.wait(30_000)
        super().closeEvent(event)

"""File > Export…: the project's labels in any registered format, as ``workbench export`` writes them.

The dialog gathers format, status, split, images (copy / link / none) and the output
folder; ``workflows.interchange.export_labels`` does the work in a worker with progress
and Cancel. Its summary (written, skipped with reasons) stays until the dialog closes.
"""

from __future__ import annotations

from PySide6.QtWidgets import (QComboBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QPushButton,
                               QVBoxLayout, QWidget)

from workbench.formats import registry
from workbench.gui.job_progress import JobDialog
from workbench.gui.workers import JobError
from workbench.project import Project
from workbench.workflows import interchange

STATUS_TEXT = {"verified": "Verified labels only", "labelled": "Every image with a label",
               "all": "Every image (not-labelled masks for those without)"}
IMAGES_TEXT = {"copy": "Copy the images beside the labels", "link": "Link the images (no copy)",
               "none": "Labels only, no images"}


class ExportDialog(JobDialog):
    """Format, status, split, images and output folder; Export runs the workflow."""

    def __init__(self, project: Project, parent: QWidget | None = None,
                 before_export=lambda: True) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export labels")
        self.project = project
        self.before_export = before_export      # the window saves the open image's edits here
        self.report: interchange.ExportReport | None = None
        self.format = QComboBox()
        self.format.setAccessibleName("format")
        for spec in registry.all_formats():
            lossy = "" if spec.lossless else " - polygons, see the README"
            self.format.addItem(f"{spec.title} ({spec.name}){lossy}", spec.name)
        self.status = QComboBox()
        for value in interchange.STATUS_CHOICES:
            self.status.addItem(STATUS_TEXT.get(value, value), value)
        self.split = QComboBox()
        for value in interchange.SPLIT_CHOICES:
            self.split.addItem("All splits" if value == "all" else value, value)
        self.split.setCurrentIndex(self.split.findData("all"))
        self.images = QComboBox()
        for value in ("copy", "link", "none"):
            self.images.addItem(IMAGES_TEXT[value], value)
        self.out = QLineEdit(placeholderText="an empty or new folder (or an earlier export of the same format)")
        self.out.setAccessibleName("output folder")
        self.out_button = QPushButton("Browse…")
        self.count_label = QLabel()
        self.export_button = self._build_job_parts(
            "export", "Export", "What the export wrote is shown here and stays until you close the dialog.")

        out_row = QHBoxLayout()
        out_row.addWidget(self.out, 1)
        out_row.addWidget(self.out_button)
        form = QFormLayout()
        form.addRow("Format:", self.format)
        form.addRow("Images to export:", self.status)
        form.addRow("Split:", self.split)
        form.addRow("", self.count_label)
        form.addRow("Image files:", self.images)
        form.addRow("Output folder:", out_row)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        self._add_job_rows(layout)

        self.out_button.clicked.connect(self._choose_out)
        self.export_button.clicked.connect(self.start_export)
        self.status.currentIndexChanged.connect(self._count)
        self.split.currentIndexChanged.connect(self._count)
        self._connect_job()
        self._count()
        self.resize(640, 480)

    def _choose_out(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export into (an empty or new folder)")
        if folder:
            self.out.setText(folder)

    def _count(self, *_args: object) -> None:
        n = len(interchange.select_images(self.project, self.status.currentData(), self.split.currentData()))
        self.count_label.setText(f"{n} image(s) match")

    def start_export(self) -> None:
        """Export with the chosen options, in the worker."""
        out = self.out.text().strip()
        if not out:
            self.summary.setPlainText("Choose an output folder first.")
            return
        if self.progress.busy:
            return
        if not self.before_export():
            self.summary.setPlainText("The open image has edits that could not be saved: save or undo them first "
                                      "(nothing was exported).")
            return
        self.summary.setPlainText("Exporting…")
        self.progress.start(interchange.export_labels, self.project, out, format=self.format.currentData(),
                            status=self.status.currentData(), split=self.split.currentData(),
                            images=self.images.currentData())

    def _on_returned(self, report: interchange.ExportReport) -> None:
        self.report = report
        self.summary.setPlainText("\n".join(report.summary_lines()))

    def _on_errored(self, err: JobError) -> None:
        if err.cancelled:
            self.summary.setPlainText("The export was cancelled: the folder holds part of it.")
            return
        self.summary.setPlainText(self.stopped_text("The export", err))

    def _on_busy(self, busy: bool) -> None:
        self._enable_inputs(busy, (self.export_button, self.format, self.status, self.split, self.images,
                                   self.out, self.out_button))

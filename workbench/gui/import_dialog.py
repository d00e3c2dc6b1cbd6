"""File > Import labels…: a dataset's masks in any registered format, as labels or ground truth.

The dialog only gathers choices and shows results: the work is
``workflows.interchange`` (``detect_source`` when a source is chosen, ``import_labels``
on Import), run in a worker with progress and Cancel, as ``workbench import`` runs it.
The summary (imported, kept, skipped with reasons, files named) stays in the dialog
until the person closes it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit,
                               QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from workbench.classes import ClassSchema
from workbench.errors import WorkbenchError
from workbench.formats import registry
from workbench.formats.base import DatasetClass
from workbench.formats.class_files import read_class_file, schema_from_classes
from workbench.gui.job_progress import JobDialog
from workbench.gui.workers import JobError
from workbench.project import Project
from workbench.workflows import interchange

AUTO = "auto"
AS_CHOICES = (("labels", "Labels (verified, to train on)"), ("ground-truth", "Ground truth (to score models)"))


def class_mapping(classes: list[DatasetClass] | None, schema: ClassSchema, blank: bool) -> list[tuple[str, str, str]]:
    """(dataset class, its value, what it becomes in the project) for the dialog's table.

    The same rule as ``interchange.import_labels``: a project without labels of its own
    takes the dataset's classes; otherwise classes are matched by name and a class the
    project lacks is left not labelled.
    """
    if classes is None:
        return [("(none named)", "values", "kept as class indices: " + ", ".join(
            f"{c.index} {c.name}" for c in schema.classes))]
    if blank:
        adopted = schema_from_classes(classes, name=schema.name)
        return [(c.name, str(c.value), f"new class {adopted.by_name(c.name).index}"
                 + (" (void)" if c.void else "")) for c in classes]
    rows = []
    for c in classes:
        target = schema.by_name(c.name)
        if target is not None and not target.retired:
            rows.append((c.name, str(c.value), f"{target.index}: {target.name}" + (" (void)" if target.void else "")))
        elif c.void:
            rows.append((c.name, str(c.value), "void: not labelled"))
        else:
            rows.append((c.name, str(c.value), "NOT IN THE PROJECT: left not labelled (add the class first)"))
    return rows


class ImportDialog(JobDialog):
    """Source, detected format (override possible), classes, labels or ground truth, overwrite."""

    imported = Signal(object)      # interchange.InterchangeReport, after every import that ran
    classesAdded = Signal(list)    # names of classes added to the project from the source

    def __init__(self, project: Project, parent: QWidget | None = None, *, as_: str = "labels",
                 before_import: Callable[[], bool] = lambda: True) -> None:
        super().__init__(parent)
        self.setWindowTitle("Import labels")
        self.project = project
        # Called before importing; False stops it (the window saves the open image's edits here).
        self.before_import = before_import
        self._running = ""                         # "detect" or "import" while the worker runs
        self._detected_key: tuple = ()             # (source, format, classes file) last read
        self.detected: interchange.DetectedSource | None = None
        self.report: interchange.InterchangeReport | None = None

        self.source = QLineEdit(placeholderText="a folder, or a file (COCO JSON, CVAT XML)")
        self.source.setAccessibleName("source")
        self.folder_button = QPushButton("Folder…")
        self.file_button = QPushButton("File…")
        self.format = QComboBox()
        self.format.setAccessibleName("format")
        self.format.addItem("Detect automatically", AUTO)
        for spec in registry.all_formats():
            self.format.addItem(f"{spec.title} ({spec.name})", spec.name)
        self.detected_label = QLabel("Choose a folder or a file.")
        self.detected_label.setWordWrap(True)
        self.classes_file = QLineEdit(placeholderText="optional: classes.json or names .txt naming the values")
        self.classes_button = QPushButton("Browse…")
        self.as_combo = QComboBox()
        for value, text in AS_CHOICES:
            self.as_combo.addItem(text, value)
        self.as_combo.setCurrentIndex(max(0, self.as_combo.findData(as_)))
        self.overwrite = QCheckBox("Replace labels a person made (the replaced ones stay in the label history)")
        self.mapping = QTableWidget(0, 3)
        self.mapping.setHorizontalHeaderLabels(["Dataset class", "Value", "In this project"])
        self.mapping.verticalHeader().hide()
        self.mapping.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)   # compact rows
        self.mapping.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.mapping.horizontalHeader().setStretchLastSection(True)
        self.add_missing_button = QPushButton("Add the missing classes to the project")
        self.add_missing_button.setToolTip("Add every class of the source that the project lacks (not void "
                                           "ones), so that their pixels are imported instead of left not labelled")
        self.add_missing_button.hide()
        self.import_button = self._build_job_parts(
            "import", "Import", "What the import did is shown here and stays until you close the dialog.")

        source_row = QHBoxLayout()
        source_row.addWidget(self.source, 1)
        source_row.addWidget(self.folder_button)
        source_row.addWidget(self.file_button)
        classes_row = QHBoxLayout()
        classes_row.addWidget(self.classes_file, 1)
        classes_row.addWidget(self.classes_button)
        form = QFormLayout()
        form.addRow("Source:", source_row)
        form.addRow("Format:", self.format)
        form.addRow("", self.detected_label)
        form.addRow("Classes file:", classes_row)
        form.addRow("Import as:", self.as_combo)
        form.addRow("", self.overwrite)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(QLabel("Classes the source carries and what they become:"))
        layout.addWidget(self.mapping, 1)
        layout.addWidget(self.add_missing_button)
        self._add_job_rows(layout)

        self.folder_button.clicked.connect(self._choose_folder)
        self.file_button.clicked.connect(self._choose_file)
        self.classes_button.clicked.connect(self._choose_classes)
        self.source.editingFinished.connect(lambda: self.detect())
        self.format.currentIndexChanged.connect(lambda _i: self.detect())
        self.classes_file.editingFinished.connect(lambda: self.detect())
        self.import_button.clicked.connect(self.start_import)
        self.add_missing_button.clicked.connect(self.add_missing_classes)
        self._connect_job()
        self.resize(720, 640)

    # ----- choices --------------------------------------------------------------------------
    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Folder of labels (index PNGs, VOC, Cityscapes, labelme, YOLO…)")
        if folder:
            self.set_source(folder)

    def _choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Label file (COCO JSON, CVAT XML…)", "",
                                              "Label files (*.json *.xml);;All files (*)")
        if path:
            self.set_source(path)

    def _choose_classes(self) -> None:
        from workbench.gui.class_setup import CLASS_FILE_FILTER

        path, _ = QFileDialog.getOpenFileName(self, "Classes of the source", "", CLASS_FILE_FILTER)
        if path:
            self.classes_file.setText(path)
            self.detect()

    def set_source(self, path: str | Path) -> None:
        """Use ``path`` as the source and detect what it holds."""
        self.source.setText(str(path))
        self.detect(force=True)

    # ----- detect ---------------------------------------------------------------------------
    def detect(self, force: bool = False) -> None:
        """Read the source in the worker: its format, classes and how many masks name project images."""
        text = self.source.text().strip()
        if not text or self.progress.busy:
            return
        key = (text, self.format.currentData(), self.classes_file.text().strip())
        if not force and self.detected is not None and key == self._detected_key:
            return                     # editingFinished also fires on focus loss: do not read it again
        self._detected_key = key
        self.detected = None
        self.detected_label.setText("Reading the source…")
        self._running = "detect"
        self.progress.start(interchange.detect_source, text, self.project, format=self.format.currentData())

    def _show_detected(self, found: interchange.DetectedSource) -> None:
        self.detected = found
        chosen = self.format.currentData()
        how = "detected" if chosen == AUTO else "chosen"
        self.detected_label.setText(
            f"<b>{found.title} ({found.format})</b>, {how}: {found.masks} mask(s); "
            f"{found.matched} name images of this project, {len(found.unmatched)} do not"
            + (f"; {len(found.problems)} problem(s)" if found.problems else ""))
        self._fill_mapping()
        self.summary.setPlainText("\n".join(found.summary_lines()))

    def source_classes(self) -> list[DatasetClass] | None:
        """The classes the import will use: the classes file's, else the source's own."""
        path = self.classes_file.text().strip()
        if path:
            try:
                return read_class_file(path)
            except WorkbenchError as exc:    # the import reports it again, naming the file
                self.detected_label.setText(self.detected_label.text() + f"<br>Classes file: {exc}")
        return None if self.detected is None else self.detected.classes

    def missing_classes(self) -> list[DatasetClass]:
        """Source classes (not void) the project has no class of that name for."""
        classes = self.source_classes()
        if classes is None or interchange.is_blank(self.project):
            return []                  # a blank project takes the source's classes on import
        return [c for c in classes if not c.void and self.project.schema.by_name(c.name) is None]

    def add_missing_classes(self) -> list[str]:
        """Add the source's classes the project lacks (with the source's colours); returns their names."""
        added = []
        for c in self.missing_classes():
            try:
                self.project.add_class(c.name, c.color)
            except WorkbenchError as exc:
                self.summary.setPlainText(f"Could not add the class {c.name!r}: {exc}")
                break
            added.append(c.name)
        if added:
            self.summary.setPlainText(f"Added {len(added)} class(es) to the project: {', '.join(added)}. "
                                      "Their pixels are imported now.")
            self.classesAdded.emit(added)
        self._fill_mapping()
        return added

    def _fill_mapping(self) -> None:
        missing = self.missing_classes()
        self.add_missing_button.setVisible(bool(missing))
        self.add_missing_button.setText(f"Add the {len(missing)} missing class(es) to the project")
        rows = class_mapping(self.source_classes(), self.project.schema, interchange.is_blank(self.project))
        self.mapping.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, text in enumerate(row):
                item = QTableWidgetItem(text)
                if c == 2 and text.startswith("NOT IN"):
                    item.setForeground(Qt.GlobalColor.darkRed)
                self.mapping.setItem(r, c, item)
        self.mapping.resizeColumnToContents(0)
        self.mapping.resizeColumnToContents(1)

    # ----- import ---------------------------------------------------------------------------
    def start_import(self) -> None:
        """Import with the chosen options, in the worker."""
        text = self.source.text().strip()
        if not text:
            self.summary.setPlainText("Choose a source folder or file first.")
            return
        if self.progress.busy:
            return
        if self.project.read_only:
            self.summary.setPlainText(f"The project is read-only: {self.project.read_only_reason}")
            return
        if not self.before_import():
            self.summary.setPlainText("The open image has edits that could not be saved: save or undo them "
                                      "first (nothing was imported).")
            return
        classes = self.classes_file.text().strip() or None
        self.summary.setPlainText("Importing…")
        self._running = "import"
        self.progress.start(interchange.import_labels, self.project, text, format=self.format.currentData(),
                            classes=classes, as_=self.as_combo.currentData(), overwrite=self.overwrite.isChecked())

    def _on_returned(self, result: object) -> None:
        if isinstance(result, interchange.DetectedSource):
            self._show_detected(result)
            return
        self.report = result
        self.summary.setPlainText("\n".join(result.summary_lines()))
        self.imported.emit(result)
        self._fill_mapping()                          # read against the classes the project has now

    def _on_errored(self, err: JobError) -> None:
        what = "Reading the source" if self._running == "detect" else "The import"
        if err.cancelled:
            self.summary.setPlainText(f"{what} was cancelled.")
            self.detected_label.setText("Cancelled.")
            return
        self.detected_label.setText(f"Cannot read it: {err.message}")
        self.summary.setPlainText(self.stopped_text(what, err))

    def _on_busy(self, busy: bool) -> None:
        self._enable_inputs(busy, (self.import_button, self.folder_button, self.file_button, self.format,
                                   self.source, self.classes_file, self.classes_button, self.as_combo,
                                   self.overwrite, self.add_missing_button))

"""The main window: builds the panels and controllers and wires them together (wiring only)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from PySide6.QtCore import QByteArray, Qt
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QApplication, QDockWidget, QFileDialog, QMainWindow, QMenu, QMessageBox, QVBoxLayout, QWidget

from workbench.errors import WorkbenchError
from workbench.gui.canvas import Canvas
from workbench.gui.export_dialog import ExportDialog
from workbench.gui.class_menu import ClassMenu
from workbench.gui.first_steps import FirstSteps
from workbench.gui.help_dialog import ShortcutsDialog
from workbench.gui.import_dialog import ImportDialog
from workbench.gui.image_list import ImageListModel, ImageListPanel
from workbench.gui.label_history_dialog import show_label_history
from workbench.gui.metrics_controller import MetricsController
from workbench.gui.metrics_panel import MetricsPanel
from workbench.gui.model_actions import ModelActions
from workbench.gui.models_panel import CandidateBanner, ModelsPanel
from workbench.gui.notifier import MessageBanner, Notifier
from workbench.gui.palette_panel import PalettePanel
from workbench.gui.prediction_service import PredictionService
from workbench.gui.preferences import add_recent_project, app_settings, recent_projects
from workbench.gui.project_events import ProjectEvents
from workbench.gui.project_state import restore_ui_state, save_ui_state
from workbench.gui.reference_view import ReferenceView
from workbench.gui.session import EditSession
from workbench.editing.tool_table import TOOLS
from workbench.gui.shortcuts import SHORTCUTS, make_actions, tool_action_id
from workbench.gui.status_bar import StatusFields
from workbench.gui.toolbars import ToolBars
from workbench.gui.training_controller import TrainingController, preload_trainer
from workbench.gui.training_dock import TrainingPanel
from workbench.gui.workspace import Workspace
from workbench.project import Project, Split

CLOSE_WAIT_MS = 5000  # how long closing waits for workers after cancelling them
# A training step on a CPU can take seconds and the run removes its partial model file
# once it stops: closing waits this long for it (issue 8.8), saying so in the status bar.
TRAINING_CLOSE_WAIT_MS = 120_000


class MainWindow(QMainWindow):
    """Image list | canvas | classes, training and metrics docks; menus from the shortcut table."""

    def __init__(self, device: str = "auto") -> None:
        super().__init__()
        self.setWindowTitle("Segmentation Workbench")
        self.project: Project | None = None
        self.events = ProjectEvents(self)
        self.canvas = Canvas()
        self.banner = MessageBanner()
        self.candidate = CandidateBanner()
        self.first_steps = FirstSteps()
        centre = QWidget()
        column = QVBoxLayout(centre)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self.banner)
        column.addWidget(self.candidate)
        column.addWidget(self.first_steps)
        column.addWidget(self.canvas, 1)
        self.setCentralWidget(centre)
        self.session = EditSession(self)
        self.predictions = PredictionService(device, self)
        preload_trainer()
        self.training = TrainingController(self.events, self)
        self.metrics = MetricsController(self.events, device, self)
        self.list_model = ImageListModel(self)
        self.list_panel = ImageListPanel(self.list_model)
        self.palette = PalettePanel()
        self.training_panel = TrainingPanel()
        self.metrics_panel = MetricsPanel()
        self.models_panel = ModelsPanel()
        self.status_fields = StatusFields(self.statusBar(), self)
        self.notifier = Notifier(self.banner, self.statusBar(), self)
        self.workspace = Workspace(self.session, self.canvas, self.predictions, self.list_model, self.list_panel,
                                   self.status_fields, self.notifier, self.events, self)
        self.model_actions = ModelActions(self, self.events, self.workspace, self.session, self.predictions,
                                          self.training, self.metrics, self.training_panel, self.metrics_panel,
                                          self.models_panel, self.candidate, self.palette, self.list_panel,
                                          self.status_fields, self.notifier)
        self.docks = {name: self._dock(title, widget, area) for name, title, widget, area in (
            ("images", "Images", self.list_panel, Qt.DockWidgetArea.LeftDockWidgetArea),
            ("classes", "Classes", self.palette, Qt.DockWidgetArea.RightDockWidgetArea),
            ("training", "Training", self.training_panel, Qt.DockWidgetArea.RightDockWidgetArea),
            ("metrics", "Metrics", self.metrics_panel, Qt.DockWidgetArea.RightDockWidgetArea),
            ("models", "Models", self.models_panel, Qt.DockWidgetArea.RightDockWidgetArea))}
        self.tabifyDockWidget(self.docks["training"], self.docks["metrics"])
        self.tabifyDockWidget(self.docks["metrics"], self.docks["models"])
        self.docks["training"].raise_()
        self.actions_by_id = make_actions(self, self._slots())
        self.toolbars = ToolBars(self, self.actions_by_id, self.canvas)
        self.reference_view = ReferenceView(self.workspace, self.canvas, self.status_fields.legend, self.notifier,
                                            self.actions_by_id["view_ground_truth"],
                                            self.actions_by_id["view_errors"], self)
        self._build_menus()
        self._connect()
        self._build_assist()   # issue 13
        self._initial_view_state()
        self.resize(1400, 900)
        self.resizeDocks([self.docks["images"], self.docks["classes"]], [400, 400], Qt.Orientation.Horizontal)
        self.resizeDocks([self.docks["classes"], self.docks["training"]], [260, 420], Qt.Orientation.Vertical)
        self.restoreGeometry(QByteArray(app_settings().value("geometry", QByteArray())))
        self.restoreState(QByteArray(app_settings().value("window_state", QByteArray())))

    # ----- construction ---------------------------------------------------------------------
    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{title.lower()}")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _slots(self) -> dict:
        ws, ma, c = self.workspace, self.model_actions, self.canvas
        slots = {
            "open_folder": self.choose_folder, "save": ws.save, "quit": self.close,
            "import_labels": self.import_labels, "export_labels": self.export_labels,
            "next_image": ws.next_image, "prev_image": ws.prev_image, "verify_next": ws.verify_next,
            "focus_filter": self.list_panel.search.setFocus,
            "brush_smaller": self._brush_smaller, "brush_larger": self._brush_larger,
            "undo": ws.undo, "redo": ws.redo, "accept_all": ws.accept_all, "clear": ws.clear,
            "split_train": partial(ws.set_split, Split.TRAIN), "split_val": partial(ws.set_split, Split.VAL),
            "split_test": partial(ws.set_split, Split.TEST),
            "fit": c.fit_to_window, "toggle_labels": c.set_labels_visible,
            "toggle_prediction": c.set_prediction_visible, "toggle_uncertainty": c.set_uncertainty_visible,
            "toggle_outline": c.set_outline_mode,
            "view_ground_truth": self._view_ground_truth, "view_errors": self._view_errors,
            "predict_all": ma.predict_all, "retrain": self._retrain, "cancel_jobs": ma.cancel_all,
            "evaluate": self._evaluate, "settings": ma.edit_settings, "show_models": self.show_models,
            "help_shortcuts": self.show_shortcuts, "label_history": partial(show_label_history, ws, self),
        }
        for t in TOOLS:  # the tool table: one checkable action per tool
            slots[tool_action_id(t.id)] = partial(self._tool_toggled, t.id)
        slots["next_error"] = c.next_error_region
        for n in range(1, 10):
            slots[f"class_{n}"] = partial(self.palette.select_nth, n)
        slots["class_picker"] = self.palette.pick_class
        return slots

    def _retrain(self) -> None:
        # Ctrl+R with another tab in front gave no feedback (issue 12.11): show the run.
        self.docks["training"].show()
        self.docks["training"].raise_()
        self.model_actions.retrain()

    def _view_ground_truth(self, on: bool) -> None:
        self.reference_view.set_ground_truth(on)

    def _view_errors(self, on: bool) -> None:
        self.reference_view.set_errors(on)

    def _label_class_actions(self, *_args: object) -> None:
        self.class_menu.show_schema(self.project.schema if self.project is not None else None)

    def _evaluate(self) -> None:
        # The person asked for numbers: bring the Metrics tab to the front to show them.
        self.docks["metrics"].raise_()
        self.model_actions.evaluate()

    def show_models(self) -> None:
        """Model > Model versions: bring the Models panel forward."""
        self.docks["models"].show()
        self.docks["models"].raise_()

    def _build_menus(self) -> None:
        menus: dict[str, QMenu] = {}
        for s in SHORTCUTS:
            if s.group not in menus:
                menus[s.group] = self.menuBar().addMenu(s.group)
            if s.id == "quit":
                self.recent_menu = menus["File"].addMenu("Open &Recent")
                self.recent_menu.aboutToShow.connect(self._fill_recent)
                menus["File"].addSeparator()
            menus[s.group].addAction(self.actions_by_id[s.id])
        self.class_menu = ClassMenu(menus["Classes"], self.actions_by_id, self.palette.select_nth)
        view = menus["View"]
        view.addSeparator()
        for dock in self.docks.values():
            view.addAction(dock.toggleViewAction())

    def _connect(self) -> None:
        # One reset path (issue 12.3): opening (or closing) a project resets every per-project
        # view, in this order, from the project-opened event.
        for part in (self.workspace, self.training, self.metrics, self.palette, self.metrics_panel,
                     self.training_panel, self.notifier, self.first_steps, self.status_fields,
                     self.reference_view):
            self.events.projectOpened.connect(part.set_project)
        self.events.projectOpened.connect(self.candidate.hide)
        self.events.projectOpened.connect(self.model_actions.show_models)
        self.events.projectOpened.connect(self._label_class_actions)
        self.events.schemaChanged.connect(self._label_class_actions)
        self.palette.classSelected.connect(self.canvas.set_current_class)
        self.palette.schemaChanged.connect(self.events.schema)
        self.events.schemaChanged.connect(self.list_model.refresh)
        self.events.imagesChanged.connect(self.list_model.refresh)
        self.events.currentModelChanged.connect(self.metrics_panel.show_current)
        self.events.metricsRecorded.connect(self.metrics_panel.show_evaluation)
        self.palette.failed.connect(self.notifier.error)
        self.palette.before_remap = self._before_class_remap
        self.palette.masksRemapped.connect(self._after_class_remap)
        self.canvas.classPicked.connect(self.palette.select_class)
        self.canvas.toolChanged.connect(self._on_tool_changed)
        self.canvas.message.connect(self._on_tool_message)
        self.canvas.busyChanged.connect(self._on_tool_busy)
        self.toolbars.opacity.valueChanged.connect(self._on_opacity)
        self.training.started.connect(self._on_jobs_changed)
        self.training.finished.connect(self._on_jobs_changed)
        # Image list: bulk split / status edits; rows hold still while Predict all runs (issue 12.9).
        self.list_panel.imagesEdited.connect(self.events.images)
        self.list_panel.failed.connect(self.notifier.error)
        self.list_panel.message.connect(self.notifier.info)
        self.predictions.batchProgress.connect(self.list_panel.hold_order)
        self.predictions.batchFinished.connect(self.list_panel.release_order)
        # File > Import labels… / Export…; the Metrics panel's "Import ground truth…" opens the same dialog.
        self.metrics_panel.importRequested.connect(partial(self.import_labels, "ground-truth"))
        self.events.schemaChanged.connect(self.palette.reload)
        self.training.started.connect(partial(self.first_steps.set_training, True))
        self.training.finished.connect(self._on_training_finished)
        self.first_steps.retrainRequested.connect(self._retrain)
        self.events.currentModelChanged.connect(self.first_steps.refresh)
        self.events.imagesChanged.connect(self.first_steps.refresh)
        self.predictions.batchFinished.connect(self._focus_canvas)

    def _initial_view_state(self) -> None:
        a = self.actions_by_id
        a["toggle_labels"].setChecked(True)
        a["toggle_prediction"].setChecked(True)
        a["toggle_uncertainty"].setChecked(False)
        a["toggle_outline"].setChecked(False)
        self.canvas.set_uncertainty_visible(False)
        self._on_opacity(self.toolbars.opacity.value())
        self._on_tool_changed(str(self.canvas.tool))

    # ----- issue 13: quick model, frame propagation, suggestions --------------------------------
    def _build_assist(self) -> None:
        from workbench.gui.assist_menu import AssistMenu

        self.assist = AssistMenu(self)

    # ----- projects ---------------------------------------------------------------------------
    def open_project(self, folder: str | Path, state_dir: str | Path | None = None) -> bool:
        """Save and close the current project, then open ``folder``; False (with a message) on failure."""
        if self.project is not None and Path(folder).resolve() in (self.project.folder, self.project.state_dir):
            return True  # already open (a second open would find our own lock and go read-only)
        try:
            project = Project.open(folder, state_dir=state_dir)
        except WorkbenchError as exc:
            self.notifier.error(f"Cannot open {folder}: {exc}")
            return False
        if not self.close_project(ask=True):
            project.close()
            return False
        self.project = project
        self.events.project_opened(project)   # every per-project view resets from this one signal
        self.setWindowTitle(f"{project.folder.name} - Segmentation Workbench" + (" [read-only]" if project.read_only else ""))
        add_recent_project(project.folder)
        restore_ui_state(project, self.list_panel, self.workspace)
        self.canvas.setFocus()  # letter shortcuts must not land in the list's filter box
        problems = ([project.read_only_reason] if project.read_only else []) + list(project.problems)
        if problems:
            self.notifier.error("; ".join(problems))
        return True

    def close_project(self, ask: bool = True) -> bool:
        """Stop jobs (asking first if ``ask``), save, close; False if the person chose to stay."""
        if self.project is None:
            return True
        if ask and (self.training.running or self.predictions.busy or self.metrics.busy):
            answer = QMessageBox.question(self, "Jobs are running",
                                          "Training or prediction is still running. Stop it and close?")
            if answer != QMessageBox.StandardButton.Yes:
                return False
        self.session.save_quietly()
        for image_id in self.session.unsaved_ids() if ask else []:   # failed saves: edits only in memory
            self.workspace.open_image(image_id)
            answer = QMessageBox.question(
                self, "Edits not saved", f"The label of {self.project.get(image_id).name} could not be saved "
                "(see the message above the image). Close anyway and lose these edits?")
            if answer != QMessageBox.StandardButton.Yes:
                return False
        if self.training.running:
            self.statusBar().showMessage("Stopping the training run…")
            self.statusBar().repaint()
        stopped = all([self.training.shutdown(TRAINING_CLOSE_WAIT_MS), self.predictions.shutdown(CLOSE_WAIT_MS),
                       self.metrics.shutdown(CLOSE_WAIT_MS), self.assist.shutdown(CLOSE_WAIT_MS)])
        if self.list_model.thumbnails is not None:
            self.list_model.thumbnails.shutdown(CLOSE_WAIT_MS)
        save_ui_state(self.project, self.list_panel, self.workspace)
        # Detach every part first: results still queued from workers are then dropped.
        self.events.project_opened(None)
        if stopped:  # a worker still running keeps using the database: leave it open
            self.project.close()
        self.project = None
        return True

    def choose_folder(self) -> None:
        """File > Open Folder."""
        folder = QFileDialog.getExistingDirectory(self, "Open an image folder or project")
        if folder:
            self.open_project(folder)

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for path in recent_projects():
            self.recent_menu.addAction(path, partial(self.open_project, path))
        if self.recent_menu.isEmpty():
            self.recent_menu.addAction("(none)").setEnabled(False)

    # ----- small view slots -----------------------------------------------------------------
    def _tool_toggled(self, tool: str, checked: bool) -> None:
        if checked:
            self.canvas.set_tool(tool)

    def _on_tool_changed(self, name: str) -> None:
        self.actions_by_id[tool_action_id(name)].setChecked(True)

    def _on_tool_message(self, text: str) -> None:
        self.notifier.info(text, 4000)

    def _on_tool_busy(self, busy: bool) -> None:
        if busy:  # the canvas also shows a "working…" badge until the result lands
            self.notifier.info("Working… the image is locked until the tool's result lands.", 0)
        elif self.statusBar().currentMessage().startswith("Working…"):
            self.statusBar().clearMessage()

    def _brush_smaller(self) -> None:
        self.canvas.set_brush_radius(max(0, round(self.canvas.brush_radius / 1.25)))

    def _brush_larger(self) -> None:
        self.canvas.set_brush_radius(max(self.canvas.brush_radius + 1, round(self.canvas.brush_radius * 1.25)))

    def _on_opacity(self, value: int) -> None:
        self.canvas.set_label_opacity(value / 100.0)

    def _before_class_remap(self) -> bool:
        # A class delete / move rewrites stored labels: the open image's edits go to disk first.
        self.session.save_quietly()
        return not self.session.dirty and not self.session.unsaved_ids()

    def _after_class_remap(self) -> None:
        # Reopen the image from its remapped file (a fresh undo history: old steps hold old indices).
        image_id = self.session.image_id
        self.session.set_project(self.project)
        if image_id is not None:
            self.workspace.open_image(image_id)

    def _on_training_finished(self, *_args: object) -> None:
        self.first_steps.set_training(False)

    def _focus_canvas(self, *_args: object) -> None:
        # A job ended (its Cancel button hid): the keys go back to the canvas, never to a text box.
        focus = QApplication.focusWidget()
        if focus is None or not focus.isVisible() or focus is self.status_fields.cancel:
            self.canvas.setFocus()

    def _on_jobs_changed(self, *_args: object) -> None:
        self.actions_by_id["retrain"].setEnabled(not self.training.running)

    def import_labels(self, as_: str = "labels") -> None:
        """File > Import labels… (preset to ground truth from the Metrics panel)."""
        if self.project is None:
            self.notifier.info("Open an image folder first.", 4000)
            return
        self.import_dialog = ImportDialog(self.project, self, as_=as_ if isinstance(as_, str) else "labels",
                                          before_import=self._before_class_remap)
        self.import_dialog.imported.connect(self._after_import)
        self.import_dialog.classesAdded.connect(self.events.schema)
        self.import_dialog.setModal(True)
        self.import_dialog.show()

    def export_labels(self) -> None:
        """File > Export labels…."""
        if self.project is None:
            self.notifier.info("Open an image folder first.", 4000)
            return
        self.export_dialog = ExportDialog(self.project, self, before_export=self._before_class_remap)
        self.export_dialog.setModal(True)
        self.export_dialog.show()

    def _after_import(self, report) -> None:
        # Announce what the import changed; the open image is re-read if it got a new label.
        if report.adopted_classes:
            self.events.schema()
        self.events.images(None)
        name = self.project.get(self.session.image_id).name if self.session.image_id is not None else None
        if name in report.imported_names and report.kind == "labels":
            self._after_class_remap()
        if report.kind == "ground-truth" and report.imported and self.predictions.has_model:
            self.model_actions.evaluate()

    def show_shortcuts(self) -> None:
        """Help > Keyboard shortcuts."""
        ShortcutsDialog(self).show()

    # ----- closing ----------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt override)
        """Ask about running jobs, stop them, save, remember the layout."""
        if not self.close_project(ask=True):
            event.ignore()
            return
        settings = app_settings()
        settings.setValue("geometry", self.saveGeometry())
        settings.setValue("window_state", self.saveState())
        settings.sync()
        event.accept()

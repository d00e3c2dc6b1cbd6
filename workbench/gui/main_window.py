"""The main window: builds the panels and controllers and wires them together (wiring only)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from PySide6.QtCore import QByteArray, Qt
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QDockWidget, QFileDialog, QMainWindow, QMenu, QMessageBox, QVBoxLayout, QWidget

from workbench.errors import WorkbenchError
from workbench.gui.canvas import Canvas
from workbench.gui.help_dialog import ShortcutsDialog
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
from workbench.gui.session import EditSession
from workbench.gui.shortcuts import SHORTCUTS, make_actions
from workbench.gui.status_bar import StatusFields
from workbench.gui.tools import Tool
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
        centre = QWidget()
        column = QVBoxLayout(centre)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self.banner)
        column.addWidget(self.candidate)
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
        self.toolbars = ToolBars(self, self.actions_by_id)
        self._build_menus()
        self._connect()
        self._build_assist()   # issue 13
        self._initial_view_state()
        self.resize(1400, 900)
        self.resizeDocks([self.docks["images"], self.docks["classes"]], [400, 400], Qt.Orientation.Horizontal)
        self.resizeDocks([self.docks["classes"], self.docks["training"]], [180, 500], Qt.Orientation.Vertical)
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
            "next_image": ws.next_image, "prev_image": ws.prev_image, "verify_next": ws.verify_next,
            "focus_filter": self.list_panel.search.setFocus,
            "brush_smaller": self._brush_smaller, "brush_larger": self._brush_larger,
            "undo": ws.undo, "redo": ws.redo, "accept_all": ws.accept_all, "clear": ws.clear,
            "split_train": partial(ws.set_split, Split.TRAIN), "split_val": partial(ws.set_split, Split.VAL),
            "split_test": partial(ws.set_split, Split.TEST),
            "fit": c.fit_to_window, "toggle_labels": c.set_labels_visible,
            "toggle_prediction": c.set_prediction_visible, "toggle_uncertainty": c.set_uncertainty_visible,
            "toggle_outline": c.set_outline_mode,
            "predict_all": ma.predict_all, "retrain": ma.retrain, "cancel_jobs": ma.cancel_all,
            "evaluate": self._evaluate, "settings": ma.edit_settings, "show_models": self.show_models,
            "help_shortcuts": self.show_shortcuts, "label_history": partial(show_label_history, ws, self),
        }
        for name, tool in (("paint", Tool.BRUSH), ("erase", Tool.ERASER), ("fill", Tool.FILL),
                           ("pick", Tool.PICK), ("accept", Tool.ACCEPT), ("polygon", Tool.POLYGON),
                           ("pan", Tool.PAN)):
            slots[f"tool_{name}"] = partial(self._tool_toggled, tool)
        for n in range(1, 10):
            slots[f"class_{n}"] = partial(self.palette.select_nth, n)
        return slots

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
        view = menus["View"]
        view.addSeparator()
        for dock in self.docks.values():
            view.addAction(dock.toggleViewAction())

    def _connect(self) -> None:
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
        self.canvas.brushRadiusChanged.connect(self.toolbars.brush.setValue)
        self.toolbars.brush.valueChanged.connect(self.canvas.set_brush_radius)
        self.toolbars.opacity.valueChanged.connect(self._on_opacity)
        self.training.started.connect(self._on_jobs_changed)
        self.training.finished.connect(self._on_jobs_changed)

    def _initial_view_state(self) -> None:
        a = self.actions_by_id
        a["toggle_labels"].setChecked(True)
        a["toggle_prediction"].setChecked(True)
        a["toggle_uncertainty"].setChecked(False)
        a["toggle_outline"].setChecked(False)
        self.canvas.set_uncertainty_visible(False)
        self.toolbars.brush.setMinimum(0)
        self.toolbars.brush.setValue(self.canvas.brush_radius)
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
        for part in (self.workspace, self.training, self.metrics, self.palette, self.metrics_panel,
                     self.training_panel):
            part.set_project(project)
        self.candidate.hide()
        self.model_actions.show_models()
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
        for part in (self.workspace, self.training, self.metrics, self.palette, self.metrics_panel,
                     self.training_panel):
            part.set_project(None)
        self.candidate.hide()
        self.model_actions.show_models()
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
    def _tool_toggled(self, tool: Tool, checked: bool) -> None:
        if checked:
            self.canvas.set_tool(tool)

    def _on_tool_changed(self, name: str) -> None:
        ids = {Tool.BRUSH: "tool_paint", Tool.ERASER: "tool_erase", Tool.FILL: "tool_fill", Tool.PICK: "tool_pick",
               Tool.ACCEPT: "tool_accept", Tool.POLYGON: "tool_polygon", Tool.PAN: "tool_pan"}
        self.actions_by_id[ids[Tool(name)]].setChecked(True)

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

    def _on_jobs_changed(self, *_args: object) -> None:
        self.actions_by_id["retrain"].setEnabled(not self.training.running)

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

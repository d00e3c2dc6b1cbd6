"""The image on screen: opening, navigating, editing commands, predictions and the status bar.

Connects the edit session, the canvas, the prediction service and the image list;
every command catches ``WorkbenchError`` and shows it in the window.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from workbench.errors import WorkbenchError
from workbench.gui.image_list import ImageListModel, ImageListPanel
from workbench.gui.notifier import Notifier
from workbench.gui.prediction_service import PredictionResult, PredictionService
from workbench.gui.project_events import ProjectEvents
from workbench.gui.session import EditSession
from workbench.gui.status_bar import StatusFields
from workbench.project import Project, Split

PREFETCH = 2  # images predicted ahead of the one on screen


class Workspace(QObject):
    """Commands on the current image; slots for the canvas, list and prediction signals."""

    imageShown = Signal(int)

    def __init__(self, session: EditSession, canvas, predictions: PredictionService, model: ImageListModel,
                 panel: ImageListPanel, status: StatusFields, notifier: Notifier, events: ProjectEvents,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session, self.canvas, self.predictions, self.events = session, canvas, predictions, events
        self.model, self.panel, self.status, self.notifier = model, panel, status, notifier
        self.project: Project | None = None
        self.prediction: PredictionResult | None = None
        self._save_failed: set[int] = set()
        session.saved.connect(self._on_saved)
        session.saveFailed.connect(self._on_save_failed)
        session.dirtyChanged.connect(self._on_dirty)
        predictions.ready.connect(self._on_prediction)
        predictions.failed.connect(self._on_prediction_failed)
        predictions.imagesChanged.connect(events.images)
        # The prediction service follows the current model first (it subscribed before us).
        events.currentModelChanged.connect(self._on_current_model)
        events.schemaChanged.connect(self._on_schema)
        panel.imageActivated.connect(self.open_image)
        canvas.labelsEdited.connect(self._on_edited)
        canvas.cursorMoved.connect(self._on_cursor)

    @property
    def image_id(self) -> int | None:
        """The image on screen."""
        return self.session.image_id

    def set_project(self, project: Project | None) -> None:
        """Show ``project`` (the caller saved and closed the previous one)."""
        self.project = project
        self.prediction = None
        self._save_failed.clear()
        self.session.set_project(project)
        self.predictions.set_project(project)
        self.canvas.set_editor(None)
        self.canvas.set_image(None)
        self.canvas.set_prediction(None)
        self.canvas.set_uncertainty(None)
        self.canvas.set_schema(project.schema if project is not None else None)
        self.model.set_project(project)
        self.show_model_status()

    # ----- opening and navigating ----------------------------------------------------------
    def open_image(self, image_id: int) -> bool:
        """Show ``image_id`` (saving the previous one); False with a message if it cannot be read."""
        if self.project is None or image_id == self.session.image_id:
            return image_id == self.session.image_id
        previous = self.session.image_id
        try:
            self.session.open(image_id)
        except WorkbenchError as exc:
            self.notifier.error(f"Cannot open {self._name(image_id)}: {exc}")
            if previous is not None:
                self.panel.select(previous)
            return False
        self.panel.select(image_id)
        self.canvas.set_editor(None)
        self.canvas.set_image(self.session.image)
        self.canvas.set_editor(self.session.editor)
        self._show_prediction(None)
        res = self.predictions.request(image_id)
        if res is not None:
            self._on_prediction(res)
        # Without a model, the first-steps strip above the canvas says what to do (issue 12.14);
        # a status-bar line here said "No model yet" even while the first run trained (12.3).
        ahead = [i for step in range(1, PREFETCH + 1) if (i := self.panel.neighbour(image_id, step)) is not None]
        self.predictions.prefetch(ahead)
        self._on_dirty(self.session.dirty)
        self.imageShown.emit(image_id)
        return True

    def step(self, delta: int) -> None:
        """Open the image ``delta`` rows away in the list's visible order."""
        target = self.panel.neighbour(self.session.image_id, delta)
        if target is None:
            self.notifier.info("No more images in this direction (check the list's filter).", 3000)
            return
        self.open_image(target)

    def next_image(self) -> None:
        """Open the next image in the list."""
        self.step(+1)

    def prev_image(self) -> None:
        """Open the previous image in the list."""
        self.step(-1)

    # ----- commands on the current image --------------------------------------------------
    def save(self) -> None:
        """Save now (Ctrl+S)."""
        try:
            self.session.save()
            self.notifier.info("Saved.", 2000)
        except WorkbenchError:
            pass  # saveFailed already showed it

    def verify_next(self) -> None:
        """Save the current label as verified and open the next image of the same split.

        It stays within the current image's split and the list's filter (issue 12.10:
        it used to walk from train into val images) and says so in the status bar.
        """
        if self.session.editor is None:
            return
        image_id = self.session.image_id
        try:
            self.session.verify()
        except WorkbenchError as exc:
            if image_id not in self._save_failed:
                self.notifier.error(str(exc))
            return
        self.events.images([image_id])
        split = self.project.get(image_id).split.value
        scope = f"{split} images" + (f", list filter: {f}" if (f := self.panel.describe_filter()) else "")
        target = self.panel.next_in_split(image_id)
        if target is None:
            self.notifier.info(f"Verified {self._name(image_id)}. No more {scope} after it in the list.", 8000)
            return
        self.open_image(target)
        self.notifier.info(f"Verified {self._name(image_id)}; next: {self._name(target)} ({scope}).", 8000)

    def undo(self) -> None:
        """Undo the last edit on this image."""
        self._apply_edit(self.canvas.undo)

    def redo(self) -> None:
        """Redo the last undone edit."""
        self._apply_edit(self.canvas.redo)

    def clear(self) -> None:
        """Set every pixel to 'not labelled' (one undo step)."""
        self._apply_edit(self.canvas.clear_labels)

    def accept_all(self) -> None:
        """Copy the whole prediction into the labels (one undo step)."""
        if self.prediction is None:
            self.notifier.info("No prediction for this image yet.", 4000)
            return
        self._apply_edit(self.canvas.accept_prediction)

    def set_split(self, split: Split) -> None:
        """Move the current image to ``split``."""
        if self.project is None or self.session.image_id is None:
            return
        try:
            self.project.set_split([self.session.image_id], split)
        except WorkbenchError as exc:
            self.notifier.error(str(exc))
            return
        self.events.images([self.session.image_id])
        self.notifier.info(f"{self._name(self.session.image_id)} is now in the {split.value} split.", 3000)

    def _apply_edit(self, edit) -> None:
        # The canvas applies the edit, repaints its box and emits labelsEdited (-> autosave).
        if self.session.editor is None:
            return
        try:
            edit()
        except WorkbenchError as exc:
            self.notifier.error(str(exc))

    # ----- predictions -----------------------------------------------------------------------
    def show_model_status(self) -> None:
        """Device and model version in the status bar."""
        from workbench.ml.device import describe_device, resolve_device

        try:
            device = describe_device(resolve_device(self.predictions.device))
        except WorkbenchError as exc:
            device = f"device problem: {exc}"
        self.status.show_model(self.predictions.version, device)

    def _on_current_model(self, _version: object = None) -> None:
        self.model_changed()

    def _on_schema(self) -> None:
        self.canvas.set_schema(self.project.schema if self.project is not None else None)

    def model_changed(self) -> None:
        """The project's current model changed: re-predict the image on screen."""
        self.predictions.reload_model()
        self.show_model_status()
        self._show_prediction(None)
        if self.session.image_id is not None:
            res = self.predictions.request(self.session.image_id)
            if res is not None:
                self._on_prediction(res)

    def _on_prediction(self, res: PredictionResult) -> None:
        if res.image_id != self.session.image_id or res.version != self.predictions.version:
            return
        self._show_prediction(res)

    def _show_prediction(self, res: PredictionResult | None) -> None:
        self.prediction = res
        if res is None:
            self.canvas.set_prediction(None)
            self.canvas.set_uncertainty(None)
            return
        self.canvas.set_prediction(res.mask, res.confidence)
        self.canvas.set_uncertainty(None if res.confidence is None else 1.0 - res.confidence)

    def _on_prediction_failed(self, image_id: int, message: str) -> None:
        self.notifier.error(f"Prediction failed for {self._name(image_id)}: {message}",
                            banner=image_id == self.session.image_id)

    # ----- edits and saving --------------------------------------------------------------
    def _on_edited(self, _box: object = None) -> None:
        self.session.edited()

    def _on_dirty(self, dirty: bool) -> None:
        self.status.show_saved(dirty, len(self._save_failed))

    def _on_saved(self, image_id: int) -> None:
        self._save_failed.discard(image_id)
        self.model.set_unsaved(image_id, False)
        self.events.images([image_id])
        self.status.show_saved(self.session.dirty, len(self._save_failed))

    def _on_save_failed(self, image_id: int, message: str) -> None:
        self._save_failed.add(image_id)
        self.model.set_unsaved(image_id, True)
        self.status.show_saved(True, len(self._save_failed))
        self.notifier.error(f"Could not save the label of {self._name(image_id)}; the edits are kept in "
                            f"memory and saving is retried: {message}")

    # ----- status bar ----------------------------------------------------------------------
    def _on_cursor(self, pos: object) -> None:
        editor = self.session.editor
        if pos is None or editor is None or self.project is None:
            self.status.show_cursor(None, None, "", None)
            return
        x, y = pos
        value = editor.value_at(y, x)
        if value is None:
            self.status.show_cursor(None, None, "", None)
            return
        schema = self.project.schema
        pred = None
        if self.prediction is not None and self.prediction.mask.shape == editor.shape:
            pred = schema.class_name(int(self.prediction.mask[y, x]))
        self.status.show_cursor(x, y, schema.class_name(value), pred)

    def _name(self, image_id: int) -> str:
        if image_id < 0:
            return "an image"
        try:
            return self.project.get(image_id).name
        except Exception:  # the record vanished: say which id
            return f"image #{image_id}"

    def unsaved_failed(self) -> list[int]:
        """Images whose last save failed."""
        return sorted(self._save_failed)

    # ----- label history (Edit > Label history…) -------------------------------------------
    def restore_label_version(self, version: int) -> bool:
        """Put kept version ``version`` of the image on screen into the editor as one undo step, and save.

        What is on screen is saved and kept in the history first; Ctrl+Z brings it back.
        """
        editor, image_id = self.session.editor, self.session.image_id
        if self.project is None or editor is None or image_id is None:
            return False
        try:
            self.session.save()                                    # the screen's edits reach the disk ...
            self.project.keep_label_version(image_id, reason="restore")  # ... and the history
            mask = self.project.read_label_version(image_id, version)
        except WorkbenchError as exc:
            self.notifier.error(f"Cannot restore version {version} of {self._name(image_id)}: {exc}")
            return False
        if mask.shape != editor.shape:
            self.notifier.error(f"Cannot restore version {version} of {self._name(image_id)}: it is "
                                f"{mask.shape[1]}x{mask.shape[0]} pixels, the image {editor.shape[1]}x{editor.shape[0]}")
            return False
        box = editor.accept_prediction(mask)                       # the whole mask, one undo step
        if box is None:
            self.notifier.info(f"Version {version} is the label on screen already.", 4000)
            return True
        self.canvas.refresh_labels(box)
        self._on_edited(box)
        try:
            self.session.save()
        except WorkbenchError:
            return False                                           # saveFailed showed it; edits kept
        self.notifier.info(f"Restored version {version} of {self._name(image_id)}; Ctrl+Z brings back "
                           f"the label it replaced.", 6000)
        return True

"""Image-list thumbnails: decoded in a background worker, cached in memory (bounded LRU)."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import cv2
import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QImage, QPixmap

from workbench import imageio
from workbench.gui.workers import Job, JobRunner

THUMB_SIZE = 36


def make_thumbnails(items: list[tuple[int, Path]], size: int = THUMB_SIZE) -> list[tuple[int, np.ndarray | None]]:
    """(image id, small RGB array or None when unreadable) for each (id, path); no Qt."""
    out: list[tuple[int, np.ndarray | None]] = []
    for image_id, path in items:
        try:
            img = imageio.read_image(path)
        except Exception:  # an unreadable image gets no thumbnail; opening it shows why
            out.append((image_id, None))
            continue
        h, w = img.shape[:2]
        scale = size / max(h, w)
        thumb = cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))),
                           interpolation=cv2.INTER_AREA)
        out.append((image_id, np.ascontiguousarray(thumb)))
    return out


class ThumbnailCache(QObject):
    """Pixmaps by image id; misses are batched into one background job at a time."""

    ready = Signal(list)  # image ids whose thumbnails just arrived

    def __init__(self, path_of, capacity: int = 2000, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._path_of = path_of           # image id -> Path (Project.image_path)
        self._capacity = capacity
        self._cache: OrderedDict[int, QPixmap | None] = OrderedDict()
        self._wanted: list[int] = []
        self._pending: set[int] = set()
        self._runner = JobRunner("thumbnails", 1, self)
        self._job: Job | None = None
        self._timer = QTimer(self)        # coalesce the many requests of one repaint
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._dispatch)

    def get(self, image_id: int) -> QPixmap | None:
        """The thumbnail if made; otherwise queue it and return None."""
        if image_id in self._cache:
            self._cache.move_to_end(image_id)
            return self._cache[image_id]
        if image_id not in self._pending:
            self._pending.add(image_id)
            self._wanted.append(image_id)
            self._timer.start()
        return None

    def forget(self) -> None:
        """Drop everything (another project was opened)."""
        self._cache.clear()
        self._wanted.clear()
        self._pending.clear()
        self._runner.cancel_all()

    def shutdown(self, msecs: int = 2000) -> None:
        """Stop the worker (window closing)."""
        self._wanted.clear()
        self._runner.cancel_all()
        self._runner.wait(msecs)

    def _dispatch(self) -> None:
        if self._job is not None and not self._job.done:
            return
        batch, self._wanted = self._wanted[:16], self._wanted[16:]
        if not batch:
            return
        items = []
        for i in batch:
            try:
                items.append((i, self._path_of(i)))
            except Exception:  # the image was removed from the project meanwhile
                self._pending.discard(i)
        self._job = Job(make_thumbnails, items, progress=False)
        self._job.signals.returned.connect(self._on_returned)
        self._job.signals.finished.connect(self._dispatch)
        self._runner.start(self._job)

    def _on_returned(self, results: list) -> None:
        ids = []
        for image_id, arr in results:
            self._pending.discard(image_id)
            if arr is None:
                pix = None
            else:
                h, w = arr.shape[:2]
                pix = QPixmap.fromImage(QImage(arr.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy())
            self._cache[image_id] = pix
            ids.append(image_id)
        while len(self._cache) > self._capacity:
            self._cache.popitem(last=False)
        self.ready.emit(ids)

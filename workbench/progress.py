"""Progress reports and cooperative cancellation for long work.

Long work (import, evaluation, inference, training) is a plain function that takes
``on_progress`` and ``cancel`` keyword arguments. The CLI passes a tqdm bar, the GUI a
callback that emits a Qt signal from its worker thread: one code path for both.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from workbench.errors import CancelledError


@dataclass(frozen=True)
class Progress:
    """One progress report: ``done`` of ``total`` units, plus free-form figures.

    ``info`` carries plain data only (numbers, strings, lists) such as loss, epoch,
    validation mIoU or ETA seconds, so it can cross threads safely.
    """

    done: int
    total: int | None
    message: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def fraction(self) -> float | None:
        """Fraction complete in [0, 1], or None when the total is unknown."""
        if not self.total:
            return None
        return min(1.0, self.done / self.total)


ProgressCallback = Callable[[Progress], None]


class CancelToken:
    """A thread-safe flag that long work checks between steps (batches, tiles, epochs)."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        """Ask the work to stop at its next check."""
        self._event.set()

    @property
    def cancelled(self) -> bool:
        """True once ``cancel`` has been called."""
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        """Raise ``CancelledError`` if cancellation was requested."""
        if self._event.is_set():
            raise CancelledError()


def report(on_progress: ProgressCallback | None, done: int, total: int | None,
           message: str = "", **info: Any) -> None:
    """Call ``on_progress`` if given; lets long work report without None checks."""
    if on_progress is not None:
        on_progress(Progress(done, total, message, info))


def check(cancel: CancelToken | None) -> None:
    """Raise ``CancelledError`` if ``cancel`` was triggered; no-op for None."""
    if cancel is not None:
        cancel.raise_if_cancelled()

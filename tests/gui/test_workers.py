"""Background jobs: results, progress, cancellation and errors arrive as plain-data signals."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import QObject

from workbench.errors import InputError
from workbench.gui.workers import Job, JobError, JobRunner
from workbench.progress import check, report


class Sink(QObject):
    """A GUI-thread receiver (slots are its methods, as in the app)."""

    def __init__(self) -> None:
        super().__init__()
        self.progress, self.returned, self.errors, self.threads = [], [], [], []

    def on_progress(self, p) -> None:
        self.progress.append(p.done)
        self.threads.append(threading.get_ident())

    def on_returned(self, value) -> None:
        self.returned.append(value)
        self.threads.append(threading.get_ident())

    def on_errored(self, err) -> None:
        self.errors.append(err)


def run(qtbot, fn, *args, cancel_first: bool = False, **kwargs) -> Sink:
    runner = JobRunner("test", 1)
    sink = Sink()
    job = Job(fn, *args, **kwargs)
    job.signals.progress.connect(sink.on_progress)
    job.signals.returned.connect(sink.on_returned)
    job.signals.errored.connect(sink.on_errored)
    if cancel_first:
        job.cancel()
    with qtbot.waitSignal(job.signals.finished, timeout=30000):
        runner.start(job)
    assert runner.wait(30000) and not runner.busy
    return sink


def counting(n: int, *, on_progress=None, cancel=None) -> int:
    for i in range(n):
        check(cancel)
        report(on_progress, i + 1, n)
    return n * 10


def test_result_and_progress_reach_the_gui_thread(qtbot) -> None:
    sink = run(qtbot, counting, 3)
    assert sink.returned == [30] and sink.progress == [1, 2, 3]
    assert set(sink.threads) == {threading.get_ident()}     # slots ran on the GUI thread


def test_cancellation_is_reported_as_cancelled(qtbot) -> None:
    sink = run(qtbot, counting, 3, cancel_first=True)
    assert sink.returned == [] and len(sink.errors) == 1
    assert sink.errors[0].cancelled and sink.errors[0].user_error


def failing(kind: str, *, on_progress=None, cancel=None) -> None:
    if kind == "user":
        raise InputError("not a readable image", "/data/x.png")
    if kind == "oom":
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
    raise ValueError("boom")


@pytest.mark.parametrize("kind", ["user", "oom", "bug"])
def test_errors_are_never_swallowed(qtbot, kind: str) -> None:
    sink = run(qtbot, failing, kind)
    (err,) = sink.errors
    assert isinstance(err, JobError) and not err.cancelled
    if kind == "user":
        assert err.user_error and err.message == "/data/x.png: not a readable image" and not err.details
    elif kind == "oom":
        assert err.user_error and "out of memory" in err.message and "batch size" in err.message
    else:
        assert not err.user_error and "ValueError: boom" in err.message and "Traceback" in err.details

"""tqdm progress bars for the CLI, fed by the same ``Progress`` reports the GUI shows."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from tqdm import tqdm

from workbench.progress import Progress, ProgressCallback


@contextlib.contextmanager
def progress_bar(desc: str, unit: str = "it", disable: bool = False) -> Iterator[ProgressCallback]:
    """Yield an ``on_progress`` callback that drives one tqdm bar on stderr (none if ``disable``)."""
    bar = tqdm(desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True,
               disable=True if disable else None)  # None: no bar when stderr is not a terminal

    def on_progress(p: Progress) -> None:
        if p.total is not None and bar.total != p.total:
            bar.total = p.total
        bar.n = p.done
        if p.info:
            bar.set_postfix({k: (f"{v:.4g}" if isinstance(v, float) else v)
                             for k, v in p.info.items() if isinstance(v, (int, float, str))},
                            refresh=False)
        if p.message:
            bar.set_description(f"{desc}: {p.message}", refresh=False)
        bar.refresh()

    try:
        yield on_progress
    finally:
        bar.close()

"""Tile geometry for large images: overlapping windows and the part each one owns.

Along an axis of length ``L`` as few windows of size ``T`` as keep neighbours
overlapping by at least ``overlap`` are spread evenly, the first flush with the start
and the last with the end. Each window *owns* the span between the
midpoints of its overlaps with its neighbours, so every pixel is written exactly once,
by the window in which it lies farthest from an edge (centre-crop stitching). Nothing
larger than one batch of tiles' logits ever exists: outputs are written per tile.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    """One window along an axis: it reads ``[start, stop)`` and writes ``[own_start, own_stop)``."""

    start: int
    stop: int
    own_start: int
    own_stop: int


def axis_spans(length: int, tile: int, overlap: int) -> list[Span]:
    """Windows covering ``[0, length)``; one window (the whole axis) when it fits in ``tile``."""
    if length <= 0:
        raise ValueError(f"axis length must be positive, got {length}")
    if tile <= 0 or not 0 <= overlap < tile:
        raise ValueError(f"need tile > overlap >= 0, got tile={tile}, overlap={overlap}")
    if length <= tile:
        return [Span(0, length, 0, length)]
    count = -(-(length - overlap) // (tile - overlap))  # ceil
    starts = [round(i * (length - tile) / (count - 1)) for i in range(count)]
    spans = []
    for i, start in enumerate(starts):
        stop = start + tile
        own_start = 0 if i == 0 else (starts[i - 1] + tile + start) // 2
        own_stop = length if i == len(starts) - 1 else (stop + starts[i + 1]) // 2
        spans.append(Span(start, stop, own_start, own_stop))
    return spans


@dataclass(frozen=True)
class Tile:
    """A 2-D window: rows and columns it reads, and the rows and columns it owns."""

    rows: Span
    cols: Span


def tiles(height: int, width: int, tile: int, overlap: int) -> list[Tile]:
    """Row-major list of tiles covering an image; all of them have the same size."""
    return [Tile(r, c) for r in axis_spans(height, tile, overlap)
            for c in axis_spans(width, tile, overlap)]

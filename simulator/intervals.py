"""Time covered by a set of intervals, shared by the collect phase's modules
(:mod:`simulator.results` and :mod:`simulator.attribution`), so neither has to import
the other for it."""

from __future__ import annotations

from collections.abc import Sequence


def covered_time(intervals: Sequence[tuple[float, float]], lo: float, hi: float) -> float:
    """Length of the union of ``intervals`` inside ``[lo, hi]``."""
    total, reach = 0.0, lo
    for start, end in sorted(intervals):
        start, end = max(start, reach), min(end, hi)
        if end > start:
            total += end - start
            reach = end
    return total

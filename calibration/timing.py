"""Timing done properly: warm-up, device synchronization, repeats.

On CUDA a region is timed with CUDA events recorded on the current stream and read
after ``torch.cuda.synchronize()``; on the CPU with ``time.perf_counter`` (CPU kernels
run synchronously in the calling thread pool). Every measurement runs ``warmup``
untimed repeats first (allocator, kernel selection, caches) and keeps every timed
repeat; the profile stores them all and fits their median.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch


class Clock:
    """Times regions on one device."""

    def __init__(self, device: torch.device):
        self.device = device
        self.cuda = device.type == "cuda"

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)

    def region(self, fn: Callable[[], object]) -> tuple[float, object]:
        """Run ``fn`` once and return (seconds, its result)."""
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            result = fn()
            end.record()
            torch.cuda.synchronize(self.device)
            return start.elapsed_time(end) / 1e3, result
        t0 = time.perf_counter()
        result = fn()
        return time.perf_counter() - t0, result

    def repeat(self, fn: Callable[[], object], *, warmup: int, repeats: int) -> list[float]:
        """Warm up, then time ``repeats`` runs of ``fn``."""
        self.sync()
        for _ in range(warmup):
            fn()
        self.sync()
        return [self.region(fn)[0] for _ in range(repeats)]

"""The run phase of a calibrated scenario: the allreduce that takes its measured times,
and compute and collectives slowing each other on one device (:class:`Overlap`).
:mod:`simulator.calibrated` decides at build time whether they run.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable
from typing import Any

import numpy as np
import simpy

from .interference import DeviceSharing
from .profile import CollectiveFit
from .sync import SyncContext, Synchronizer

#: Defaults for a CPU profile without an ``interference`` measurement: compute beside a
#: gloo allreduce, and the allreduce beside compute, against each alone. Measured by the
#: probe's ``interference`` section (2 processes x 1 thread, alexnet forward + backward
#: at batch 1 beside back-to-back 8 MiB gloo allreduces) on this project's 2-vCPU AMD
#: EPYC VM, torch 2.13 CPU, 2026-11-26, twice, while other sessions loaded the machine
#: (load average 1-3): compute x1.56 and x1.61, allreduce x1.99 and x1.84. Rounded down
#: (contention from the other sessions inflates both); to be re-measured on a quiet
#: machine. A gloo allreduce of CPU tensors runs on gloo's own thread and spends CPU
#: time (loopback TCP, the reduction) taken from the cores compute runs on.
CPU_COMPUTE_INTERFERENCE = 1.5
CPU_COMM_INTERFERENCE = 1.8


class CalibratedAllreduce(Synchronizer):
    """Allreduce whose time per bucket comes from the profile's measurements. As on
    NCCL's single stream, buckets run one at a time in order, and a bucket starts once
    every rank has it ready. Inside the measured sizes a bucket takes the measured
    median, interpolated linearly between the two nearest measured sizes (exact at
    measured sizes, noise and protocol steps included, and exact between them where
    time is affine in size, as alpha + bytes / beta is); outside them, the fitted
    alpha-beta line ``fit.time_s(bytes)``. With ``shared`` (and no ``overlap``) the
    ranks' compute is slowed while a bucket runs as ``ctx.sharing`` slows it beside the
    modelled collectives."""

    def __init__(self, ctx: SyncContext, fit: CollectiveFit, measured: dict[int, float] | None = None,
                 overlap: Overlap | None = None, shared: bool = False):
        super().__init__(ctx)
        self.fit = fit
        self.overlap = overlap
        self._sharing = ctx.sharing if shared and overlap is None else None
        points = sorted((measured or {}).items())
        self._sizes = np.array([b for b, _ in points], dtype=float)
        self._times = np.array([t for _, t in points], dtype=float)
        self._arrived: dict[tuple[int, int], int] = {}
        self._queue: simpy.Store = simpy.Store(self.env)
        self.env.process(self._stream())

    def ready(self, rank: int, key: tuple[int, int], nbytes: float) -> simpy.Event:
        expected = self.n if self.ctx.detailed else 1
        self._arrived[key] = self._arrived.get(key, 0) + 1
        if self._arrived[key] == expected:
            self._queue.put((key, nbytes))
        return self._event("done", key)

    def _stream(self) -> Generator[simpy.Event, Any, None]:
        while True:
            key, nbytes = yield self._queue.get()
            start = self.env.now
            ranks = range(self.n if self.ctx.detailed else 1)
            if self.n > 1 and nbytes > 0:
                if self.overlap is not None:  # slower while the ranks compute beside it
                    yield from self.overlap.communicate(ranks, self.time_s(nbytes))
                elif self._sharing is not None:  # the ranks' compute slower beside it
                    self._sharing.begin(ranks)
                    yield self.env.timeout(self.time_s(nbytes))
                    self._sharing.end(ranks)
                else:
                    yield self.env.timeout(self.time_s(nbytes))
            for rank in ranks:
                self.ctx.comm_intervals[rank].append((start, self.env.now))
            self._event("done", key).succeed()


    def time_s(self, nbytes: float) -> float:
        return measured_time_s(self._sizes, self._times, self.fit, nbytes)


def measured_time_s(sizes: np.ndarray, times: np.ndarray, fit: CollectiveFit, nbytes: float) -> float:
    """A collective's time from measurements (sizes ascending): interpolated linearly
    between the two nearest measured sizes, the fitted alpha-beta line outside them."""
    if len(sizes) >= 2 and sizes[0] <= nbytes <= sizes[-1]:
        return float(np.interp(nbytes, sizes, times))
    return fit.time_s(nbytes)


class Overlap(DeviceSharing):
    """Compute and a calibrated collective sharing each rank's device
    (:class:`~simulator.interference.DeviceSharing`), and the collective slowed too: a
    collective of ``seconds`` (alone) advances at rate 1, or ``1 / comm_factor`` while
    any of its ranks computes."""

    def __init__(self, env: simpy.Environment, ranks: int, compute_factor: float, comm_factor: float):
        super().__init__(env, ranks, compute_factor)
        self.comm_factor = comm_factor

    def communicate(self, ranks: Iterable[int], seconds: float) -> Generator[simpy.Event, object, None]:
        """Process: a collective of ``seconds`` (alone) on the devices of ``ranks``."""
        ranks = list(ranks)
        self.begin(ranks)
        try:
            yield from self._progress(
                seconds, lambda: 1.0 / self.comm_factor if any(self.computing[r] for r in ranks) else 1.0,
                lambda: self._compute_changed)
        finally:
            self.end(ranks)

"""Compute and collectives sharing a rank's device.

A collective's kernels run on the same device as the rank's compute: NCCL launches one
block per channel, which holds a streaming multiprocessor for the whole call and reads
and writes device memory, so a kernel that overlaps it gets fewer SMs (and pays an
extra wave where its blocks no longer fit in one) and less memory bandwidth. CPU
collectives (gloo) likewise take cores from the rank's compute.

:class:`DeviceSharing` follows each rank's device: a rank's compute of ``seconds``
(its time alone) advances at rate 1, or ``1 / compute_factor`` while a collective is in
flight on its device. Rates change only when a collective starts or ends on it, so a
layer that a collective covers from start to end takes ``compute_factor`` times its
time, and one covered for part of its run proportionally less.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable

import simpy


class DeviceSharing:
    """Compute slowed by ``compute_factor`` on the ranks whose device runs a collective."""

    def __init__(self, env: simpy.Environment, ranks: int, compute_factor: float):
        self.env = env
        self.compute_factor = compute_factor
        self.comm_in_flight = [0] * ranks
        self.computing = [0] * ranks
        self._comm_changed = [env.event() for _ in range(ranks)]
        self._compute_changed = env.event()

    def _fire_comm(self, rank: int) -> None:
        event, self._comm_changed[rank] = self._comm_changed[rank], self.env.event()
        event.succeed()

    def _fire_compute(self) -> None:
        event, self._compute_changed = self._compute_changed, self.env.event()
        event.succeed()

    def _progress(self, seconds: float, rate: Callable[[], float],
                  changed: Callable[[], simpy.Event]) -> Generator[simpy.Event, object, None]:
        """Advance ``seconds`` of work at ``rate()``, re-reading the rate whenever the
        event ``changed()`` returns fires."""
        left = seconds
        while True:
            rate_now = rate()
            timer = self.env.timeout(left / rate_now)
            start = self.env.now
            yield timer | changed()
            if timer.processed:  # (a timeout is "triggered" from the start; processed once it fires)
                return
            left = max(left - (self.env.now - start) * rate_now, 0.0)

    def compute(self, rank: int, seconds: float) -> Generator[simpy.Event, object, None]:
        """Process: ``rank`` computes ``seconds`` (its time alone)."""
        if seconds <= 0:
            yield self.env.timeout(seconds if seconds == 0 else 0.0)
            return
        self.computing[rank] += 1
        if any(self.comm_in_flight):
            self._fire_compute()
        try:
            yield from self._progress(
                seconds, lambda: 1.0 / self.compute_factor if self.comm_in_flight[rank] else 1.0,
                lambda: self._comm_changed[rank])
        finally:
            self.computing[rank] -= 1
            if any(self.comm_in_flight):
                self._fire_compute()

    def begin(self, ranks: Iterable[int]) -> None:
        """A collective starts on the devices of ``ranks``."""
        for r in ranks:
            self.comm_in_flight[r] += 1
            self._fire_comm(r)

    def end(self, ranks: Iterable[int]) -> None:
        """A collective ends on the devices of ``ranks``."""
        for r in ranks:
            self.comm_in_flight[r] -= 1
            self._fire_comm(r)

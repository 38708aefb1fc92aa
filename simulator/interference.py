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
from simpy.events import PENDING


class DeviceSharing:
    """Compute slowed by ``compute_factor`` on the ranks whose device runs a collective."""

    def __init__(self, env: simpy.Environment, ranks: int, compute_factor: float):
        self.env = env
        self.compute_factor = compute_factor
        self.comm_in_flight = [0] * ranks
        self._ranks_in_comm = 0  # how many entries of comm_in_flight are above 0 (any() without a scan)
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
            yield _FirstOf(self.env, timer, changed())
            if timer.callbacks is None:  # processed (a timeout is "triggered" from the start)
                return
            left = max(left - (self.env.now - start) * rate_now, 0.0)

    def compute(self, rank: int, seconds: float) -> Generator[simpy.Event, object, None]:
        """Process: ``rank`` computes ``seconds`` (its time alone): :meth:`_progress` at
        rate 1, or ``1 / compute_factor`` while a collective is in flight on its device
        (written out here: it runs for every compute segment of every rank)."""
        env = self.env
        if seconds <= 0:
            yield env.timeout(seconds if seconds == 0 else 0.0)
            return
        self.computing[rank] += 1
        if self._ranks_in_comm:
            self._fire_compute()
        try:
            left = seconds
            while True:
                rate_now = 1.0 / self.compute_factor if self.comm_in_flight[rank] else 1.0
                timer = env.timeout(left / rate_now)
                start = env.now
                yield _FirstOf(env, timer, self._comm_changed[rank])
                if timer.callbacks is None:
                    return
                left = max(left - (env.now - start) * rate_now, 0.0)
        finally:
            self.computing[rank] -= 1
            if self._ranks_in_comm:
                self._fire_compute()

    def begin(self, ranks: Iterable[int]) -> None:
        """A collective starts on the devices of ``ranks``."""
        for r in ranks:
            self.comm_in_flight[r] += 1
            self._ranks_in_comm += self.comm_in_flight[r] == 1
            self._fire_comm(r)

    def end(self, ranks: Iterable[int]) -> None:
        """A collective ends on the devices of ``ranks``."""
        for r in ranks:
            self.comm_in_flight[r] -= 1
            self._ranks_in_comm -= self.comm_in_flight[r] == 0
            self._fire_comm(r)


class _FirstOf(simpy.Event):
    """``timer | changed`` (SimPy's AnyOf condition) for exactly two events, without a
    condition's bookkeeping (its value, nested conditions): succeeds (is scheduled)
    when the first of the two is processed, as the condition does, so the run's
    events and their order are the same."""

    def __init__(self, env: simpy.Environment, timer: simpy.Event, changed: simpy.Event):
        super().__init__(env)
        self._timer, self._changed = timer, changed
        for event in (timer, changed):
            if event.callbacks is None:  # already processed: done at once, as a condition is
                self._first(event)
            else:
                event.callbacks.append(self._first)

    def _first(self, event: simpy.Event) -> None:
        if self._value is not PENDING:
            return
        self._ok, self._value = True, None
        self.env.schedule(self)
        other = self._changed if event is self._timer else self._timer
        if other.callbacks is not None and self._first in other.callbacks:  # its call would find this done
            other.callbacks.remove(self._first)

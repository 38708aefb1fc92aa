"""The event loop every run goes through: :class:`CountingEnvironment`, SimPy's
environment with its step written out in :meth:`~CountingEnvironment.run`, counting the
events it processes and checking the work budget (:mod:`simulator.run_budget`).

Its own module (re-exported by :mod:`simulator.built`) so that it can be compiled with the
rest of the engine core (:mod:`simulator.compiled`).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable

import numpy as np
import simpy
from simpy.core import StopSimulation
from simpy.events import EventPriority

_simpy_step = simpy.Environment.step
_float64 = np.float64


class CountingEnvironment(simpy.Environment):
    """A SimPy environment that counts the events it processes (for benchmarks).

    :meth:`run` (to the end of the schedule) is SimPy's loop of :meth:`step` with the step
    written out in it: the same events, popped and processed in the same order with the
    same callbacks, and the work budget (:mod:`simulator.run_budget`) checked before each,
    without two Python calls per event."""

    def __init__(self) -> None:
        super().__init__()
        self.events_processed = 0
        # Set by run_budget.install: the most events a run may process (None: no limit), the
        # latest time an event may lie at, and what to raise past either (given the next time).
        self.event_limit: int | None = None
        self.horizon = math.inf
        self.over_limit: Callable[[float, bool], Exception] | None = None

    # SimPy's step, uncounted: the run budget's step counts itself and calls it (one call less an
    # event; a subclass that overrides step sets this to None).
    uncounted_step = _simpy_step

    def step(self) -> None:
        self.events_processed += 1
        _simpy_step(self)  # (not through super(): one lookup less for every event)

    def run(self, until: float | simpy.Event | None = None) -> object:
        if until is not None or "step" in self.__dict__ or type(self).step is not CountingEnvironment.step:
            return super().run(until)
        queue, pop = self._queue, heapq.heappop
        horizon, over_limit, inf = self.horizon, self.over_limit, math.inf
        limit: float = inf if self.event_limit is None else self.event_limit
        if over_limit is None:
            horizon = limit = inf
        # The count kept in a local and stored whenever the loop is left (no callback reads it).
        count = self.events_processed
        try:
            while True:  # (simpy.Environment.step, the count and the budget's checks inlined)
                if not queue:
                    count += 1
                    return None  # (SimPy's EmptySchedule, counted as its step counts it)
                if count >= limit and queue[0][0] != inf:  # more to do, none left to do it with
                    assert over_limit is not None  # (the limits are infinite without it)
                    raise over_limit(queue[0][0], queue[0][0] > horizon)
                item = pop(queue)
                now, _, _, event = item
                # (A numpy delay makes a numpy time: the same double as a float, made one again,
                # or every sum and comparison with the clock after it goes through numpy.)
                if type(now) is _float64:
                    now = float(now)
                if now > horizon and now != inf:  # (put back: the run stops before it, as ever)
                    heapq.heappush(queue, item)
                    assert over_limit is not None
                    raise over_limit(now, True)
                count += 1
                self._now = now
                callbacks, event.callbacks = event.callbacks, None  # type: ignore[assignment]  # (as SimPy's step)
                try:
                    for callback in callbacks:
                        callback(event)
                except StopSimulation:  # as SimPy's step: the rest of the callbacks run when resumed
                    event.callbacks = callbacks[callbacks.index(callback) + 1:]
                    self.schedule(event, EventPriority(-1))
                    raise
                if not event._ok and not hasattr(event, "_defused"):
                    exc = type(event._value)(*event._value.args)
                    exc.__cause__ = event._value
                    raise exc
        finally:
            self.events_processed = count

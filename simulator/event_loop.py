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
from typing import Any

import numpy as np
import simpy
from simpy.core import StopSimulation
from simpy.events import NORMAL, EventPriority

_simpy_step = simpy.Environment.step
_float64 = np.float64


class CountingEnvironment(simpy.Environment):
    """A SimPy environment that counts the events it processes (for benchmarks).

    :meth:`run` (to the end of the schedule) is SimPy's loop of :meth:`step` with the step
    written out in it: the same events, popped and processed in the same order with the
    same callbacks, and the work budget (:mod:`simulator.run_budget`) checked before each,
    without two Python calls per event.

    While that loop runs, the events the engine core triggers for the current instant
    (:func:`trigger_now`: a finished flow, a ring member telling its successor; most of a
    detailed run's events) wait in a list in the order they were triggered instead of on
    SimPy's heap. They are all due at the current time with normal priority, so that list is
    already in the heap's order (time, priority, event id), and taking the smaller of its
    head and the heap's top processes every event in exactly the order one heap would,
    without sifting a heap of a hundred entries for each. Whatever is left in the list when
    the loop stops (a budget exceeded, an exception) goes onto the heap, as it would have been."""

    def __init__(self) -> None:
        super().__init__()
        self.events_processed = 0
        # Set by run_budget.install: the most events a run may process (None: no limit), the
        # latest time an event may lie at, and what to raise past either (given the next time).
        self.event_limit: int | None = None
        self.horizon = math.inf
        self.over_limit: Callable[[float, bool], Exception] | None = None
        # (event id, event) triggered for this instant while run()'s loop is on (see above).
        self.instant: list[tuple[int, Any]] = []
        self.looping = False

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
        instant, head = self.instant, 0  # (the list of this instant's events, and its next)
        self.looping = True
        try:
            while True:  # (simpy.Environment.step, the count and the budget's checks inlined)
                event: Any = None
                if head < len(instant):
                    entry: Any = instant[head]
                    if queue:  # (on the heap, due now or later; the list's, now at normal priority)
                        top = queue[0]
                        if top[0] == self._now and (top[1] < NORMAL or (top[1] == NORMAL and top[2] < entry[0])):
                            entry = None  # the heap's top first
                    if entry is not None:
                        if count >= limit and self._now != inf:  # (as below, the next time being now)
                            assert over_limit is not None
                            raise over_limit(self._now, self._now > horizon)
                        event = entry[1]
                        head += 1
                        if head == len(instant):
                            instant.clear()
                            head = 0
                if event is None:
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
                    self._now = now
                count += 1
                if isinstance(event, Signal):  # (typed: no attribute looked up by name)
                    callbacks: Any = event.callbacks
                    event.callbacks = None
                else:
                    callbacks, event.callbacks = event.callbacks, None  # (as SimPy's step)
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
            self.looping = False
            for eid, left in instant[head:]:  # (onto the heap, as trigger_now would have put them)
                heapq.heappush(queue, (self._now, NORMAL, eid, left))
            instant.clear()

    def peek(self) -> float:
        """The time of the next event (this instant's waiting in :attr:`instant` included)."""
        if self.instant:
            return self._now
        return super().peek()


class Signal:
    """An event of the engine core's own, for its own callbacks (a detailed ring's flow
    finishing, a ring member's step arriving): what SimPy's loops read of an event
    (``callbacks``, ``_ok``, ``_value``) and nothing more, without a ``simpy.Event``'s
    Python ``__init__`` and instance dictionary (compiled, a native object). SimPy's processes
    and conditions wait on real events; these are never yielded. Triggered by
    :func:`trigger_now` only, so ok with value None once triggered."""

    def __init__(self) -> None:
        self.callbacks: list[Callable[[Any], None]] | None = []
        self._ok = False
        self._value: object = None


def trigger_now(env: simpy.Environment, event: Any) -> None:
    """``event.succeed()`` (value None, normal priority) without its checks and calls, for
    the engine core's own events: into :class:`CountingEnvironment`'s list of this instant's
    events while its loop runs, else onto SimPy's heap as ``schedule()`` puts it."""
    if isinstance(event, Signal):
        event._ok = True  # (its value None already)
    else:
        event._ok, event._value = True, None
    if isinstance(env, CountingEnvironment) and env.looping:
        env.instant.append((next(env._eid), event))
    else:
        heapq.heappush(env._queue, (env._now + 0, NORMAL, next(env._eid), event))

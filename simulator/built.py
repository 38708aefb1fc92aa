"""What the build phase hands to the run and collect phases: :class:`BuiltSimulation`.

Its own module, importing only the types it holds (the scenario's resolved view among
them, :class:`~simulator.resolved.Resolved`), so the collect phase
(``results``, ``attribution``, ``timeline``) can name it without importing the phases
that make and run it.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import simpy
from simpy.core import StopSimulation
from simpy.events import EventPriority

from topologies import ClusterGraph

from . import zoo
from .compute import ComputeCosts
from .network import Network
from .resolved import Resolved
from .rng import RandomStreams
from .scenario import Scenario
from .sync import SyncContext, Synchronizer

if TYPE_CHECKING:  # the calibration machinery (and its profile schema) loads only with a profile
    from .calibrated import Calibration

MIB = 1024 * 1024


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
                if now > horizon and now != inf:  # (put back: the run stops before it, as ever)
                    heapq.heappush(queue, item)
                    assert over_limit is not None
                    raise over_limit(now, True)
                count += 1
                # (A numpy delay makes a numpy time: the same double as a float, made one again,
                # or every sum and comparison with the clock after it goes through numpy.)
                self._now = now if type(now) is not _float64 else float(now)
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


@dataclass
class RankTimeline:
    """What one rank did, iteration by iteration."""

    iteration_start: list[float] = field(default_factory=list)
    forward_end: list[float] = field(default_factory=list)
    backward_end: list[float] = field(default_factory=list)
    sync_end: list[float] = field(default_factory=list)
    iteration_end: list[float] = field(default_factory=list)
    compute_s: list[float] = field(default_factory=list)  # GPU busy time per iteration
    input_wait_s: list[float] = field(default_factory=list)  # waiting for the input pipeline (data: real)
    # compute slowed by a collective on the same device, per iteration (only when it can be)
    interference_s: list[float] = field(default_factory=list)
    waiting_for: str = "not started"


@dataclass
class BuiltSimulation:
    """Everything the run phase needs, wired together. What is derived from the
    scenario (GPUs, batch, iterations, the GPU and model entries, converted units) is
    read from ``resolved``, made once by the build phase."""

    resolved: Resolved
    env: CountingEnvironment
    cluster: ClusterGraph
    network: Network
    costs: ComputeCosts
    buckets: list[tuple[float, float]]  # (launch offset from backward start in s, bytes), in order
    sync: Synchronizer
    context: SyncContext
    detailed: bool
    timelines: list[RankTimeline]
    streams: RandomStreams
    edge_bytes_at_window_start: np.ndarray | None = None
    # Ranks that have finished each iteration, and an event per iteration that fires
    # when all have (the staleness bound of SSP waits on it).
    finished: dict[int, int] = field(default_factory=dict)
    all_finished: dict[int, simpy.Event] = field(default_factory=dict)
    calibration: Calibration | None = None  # the profile in use, and what it calibrates
    # Framework CPU time to launch each bucket (launch overhead + per-tensor negotiation),
    # paid one bucket after another after backward when overlap is off.
    launch_after_backward: list[float] = field(default_factory=list)
    # Where the fast path was asked for (simulation.mode auto or fast) but cannot give
    # the detailed path's answer: why, and what ran instead (None: nothing to say).
    fast_path_note: str | None = None
    # fusion: horovod (synchronous background loop): every gradient as (ready offset from
    # backward start in s, bytes), in readiness order; the run phase fuses them cycle by
    # cycle (``buckets`` then only stands for the static grouping). None: static buckets.
    fusion_tensors: list[tuple[float, float]] | None = None
    # What the loop launched: per iteration, (cycle start, bytes, tensors) per buffer.
    fusion_buffers: dict[int, list[tuple[float, float, int]]] = field(default_factory=dict)

    @property
    def scenario(self) -> Scenario:
        return self.resolved.scenario

    @property
    def model(self) -> zoo.Model:
        return self.resolved.model

    @property
    def strategy_name(self) -> str:
        """The strategy that runs ("none" on one GPU, except under parameter servers)."""
        return self.resolved.strategy_name

    def iteration_finished(self, it: int) -> simpy.Event:
        if it not in self.all_finished:
            self.all_finished[it] = self.env.event()
        return self.all_finished[it]

    def staleness_bound(self) -> int | None:
        """How far a rank may run ahead of the slowest; None when unbounded or when
        synchronization itself keeps ranks in step."""
        ps = self.scenario.training.parameter_servers
        if self.strategy_name == "parameter_server" and ps.sync == "ssp" and self.detailed:
            return ps.staleness
        return None

    @property
    def sample_unit(self) -> str:
        return self.model.sample_unit

"""Flow-level network: bytes move along routes and share links max-min fairly.

This is the SimGrid model of a network, not a packet simulator. A *flow* moves a number
of bytes over a set of directed edges; while flows are active, every edge's capacity is
shared among the flows crossing it by weighted max-min fairness (:mod:`simulator.maxmin`).
Rates change only when a flow starts or ends; changes at the same simulated instant are
coalesced into one recomputation, and one timer wakes the network at the next completion
(found without asking every group afresh: :mod:`simulator.finishing`).

Recomputation is incremental and exact (:mod:`simulator.network_sharing`): flows over
the same edges share one rate (a group, :mod:`simulator.flows`); groups joined by shared
edges form components, and only the components whose flows changed are recomputed,
unless two components fix levels within the tolerance of each other, where every group
is recomputed together as progressive filling over the whole network would: the rates
are those of the whole computation to the last bit (``tests/test_maxmin.py``). Routes,
bundles and solved sets of groups are the graph's, shared by every network over it
(:mod:`simulator.graph_links`).

A flow pays its route's latency once, before it starts moving bytes, so one flow over
one link takes ``latency + bytes / bandwidth``.

A flow may cross an edge with a *multiplicity* m > 1: it then stands for m identical
flows moving in lockstep and uses m times its rate on that edge. This is how the fast
path models a whole collective phase (every rank sending the same bytes at the same
time) as one event: a ring allreduce over N ranks is one flow over the N ring edges,
whose rate is set by the slowest of them, just as a pipelined ring is.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import networkx as nx
import numpy as np
import simpy
from simpy.events import Event, EventPriority, Timeout

from . import flows
from .event_loop import Signal, trigger_now
from .finishing import RECKONED_ADVANCES, soonest_finish
from .flows import ActiveComponents, Component, Flow, FlowGroup, Node, Route, admission
from .graph_links import BandwidthScale, GraphLinks
from .maxmin import EdgeUsage, Usage, max_min_rates, max_min_rates_numpy, max_min_rates_of, max_min_rates_python
from .network_sharing import ComponentSharing, EdgeCounters

# Re-exported: the max-min core and the flow types lived here before they had modules.
__all__ = ["EdgeUsage", "Flow", "Network", "Route", "Usage", "max_min_rates", "max_min_rates_numpy",
           "max_min_rates_of", "max_min_rates_python"]

# Advances of the network a group keeps before bringing all its members up to date,
# looked at every _FLUSH_EVERY advances.
_STEPS_KEPT, _FLUSH_EVERY = 64, 16
_AFTER_NORMAL = EventPriority(2)  # (SimPy's priorities: URGENT 0, NORMAL 1)
_ADMISSION = operator.attrgetter("seq")  # (flows.admission without a Python call per flow)
# Usage, bytes (a float), latency, label and completion event of a flow that starts.
FlowObserver = Callable[[EdgeUsage, float, float, str, Any], None]  # (done: an event or a Signal)


class Network(ComponentSharing):
    """The links of a topology graph, shared by flows.

    ``graph``: a networkx DiGraph whose edges carry ``bandwidth`` (bytes/s; times ``bandwidth_scale``
    by link kind where given) and ``latency`` (s). Use :meth:`transfer` for one point-to-point
    flow and :meth:`transfer_bundle` for a set of identical flows moving in lockstep.
    """

    def __init__(self, env: simpy.Environment, graph: nx.DiGraph[Node], bandwidth_scale: BandwidthScale | None = None):
        self.env = env
        self.structure = graph  # bandwidths not scaled (links.scale; the graph at the capacities: .graph)
        links = GraphLinks.of(graph, bandwidth_scale)
        self.edges = links.edges
        self.edge_index = links.edge_index
        self.capacity, self.latency = links.capacity, links.latency
        self.link_of = links.link_of  # each edge's link kind (its "link" attribute)
        # Among equally saturated edges, name the network before PCIe before NVLink.
        self._tie_break, self._max_tie_break = links.tie_break, links.max_tie_break
        self._positive_capacity = links.positive_capacity
        # Routes and bundles are the graph's, shared with every network over it.
        self.router = links.router
        self.links = links
        # Active flows by usage object (groups share a rate), and the flows admitted
        # since the last recomputation (rate 0 until it runs).
        self._groups: dict[int, FlowGroup] = {}
        self._known: dict[int, FlowGroup] = {}  # every group made, active or not, by usage
        self._pending: list[Flow] = []
        self._changed = False  # a flow finished since the last recomputation
        # Max-min by components: every active component, the groups crossing each edge,
        # the groups whose flows changed and the components that lost a group since the
        # last recomputation, and whether the rates in force came from one computation
        # over every group (components within the tolerance of each other).
        self._components = ActiveComponents()
        self._edge_groups = flows.GroupsByEdge()
        self._edge_user: dict[int, FlowGroup | None] = {}  # see ComponentSharing._alone_of
        self._alone: dict[FlowGroup, bool] = {}
        self._unindexed: list[FlowGroup] = []
        self._joined = flows.JoinedArrays()
        self._touched: dict[FlowGroup, None] = {}
        self._stale: set[Component] = set()
        self._whole = False
        self._admitted = 0
        self._loaded = self._components.edges_loaded(len(self.edges))  # (by the last recomputation; None: all)
        self._recompute_pending = False
        self._timer: simpy.Event | None = None  # the one set by the last recomputation
        self._advances = 0  # advances that moved time (the clock groups reckon their finish by)
        self._recompute_callback, self._timer_callback = self._recompute, self._on_timer  # (made once)
        self._counters = EdgeCounters(np.zeros(len(self.edges)), np.zeros(len(self.edges)))
        self.flows_started = 0
        # Told of every flow started (its usage, bytes, latency, label and completion event),
        # as it starts: how a timeline or trace records flows (simulator.timeline).
        self.flow_observer: FlowObserver | None = None
        # (time, most loaded edge or -1 when idle), appended when it changes: which
        # resource was limiting communication when (see results.attribution).
        self.bottleneck_log: list[tuple[float, int]] = []

    # -- routes and starting flows ---------------------------------------------------

    @property
    def graph(self) -> nx.DiGraph[Node]:  # at the capacities (scaled: a copy made on first use, shared)
        return self.links.graph

    def route(self, src: Node, dst: Node) -> Route:
        """The route from ``src`` to ``dst`` (see :mod:`simulator.routing`); cached.
        Raises TopologyError if none exists."""
        return self.links.route(src, dst)

    def transfer(self, src: Node, dst: Node, nbytes: float, label: str = "") -> simpy.Event:
        """Move ``nbytes`` from ``src`` to ``dst``; the event fires when they arrive."""
        route = self.route(src, dst)
        return self.start_flow(route.usage, nbytes, route.latency_s, label)

    def transfer_bundle(self, pairs: Iterable[tuple[Node, Node]], nbytes: float, *, latency_s: float | None = None,
                        label: str = "") -> simpy.Event:
        """Move ``nbytes`` over every (src, dst) pair at one common rate: that of the most
        contended member, as the members of a synchronized collective phase advance.
        ``latency_s`` defaults to the largest route latency among the pairs."""
        usage, worst_latency = self.bundle(tuple(pairs))
        return self.start_flow(usage, nbytes, worst_latency if latency_s is None else latency_s, label)

    def bundle(self, pairs: tuple[tuple[Node, Node], ...]) -> tuple[EdgeUsage, float]:
        """Edge usage and worst route latency of a set of pairs; cached."""
        return self.links.bundle(pairs)

    def bundle_product(self, sources: Sequence[Node], destinations: Sequence[Node]) -> tuple[EdgeUsage, float]:
        """:meth:`bundle` of every (source, destination) pair (each listed pair once per
        time its ends are listed), e.g. every worker pushing to every parameter server;
        counted end by end where routes are compositions (:mod:`simulator.route_product`)."""
        return self.links.bundle_product(sources, destinations)

    def start_flow(self, usage: EdgeUsage | Usage, nbytes: float, latency_s: float, label: str = "") -> simpy.Event:
        """Start a flow with an explicit edge usage; returns its completion event."""
        done: simpy.Event = Event(self.env)
        self._start(usage, nbytes, latency_s, label, done)
        return done

    def start_signalled_flow(self, usage: EdgeUsage, nbytes: float, latency_s: float, label: str) -> Signal:
        """:meth:`start_flow` with a :class:`~simulator.event_loop.Signal` for its completion,
        for the engine core's own callbacks (a detailed ring's members): the same flow, and
        its completion processed at the same place in the schedule."""
        done = Signal()
        self._start(usage, nbytes, latency_s, label, done)
        return done

    def _start(self, usage: EdgeUsage | Usage, nbytes: float, latency_s: float, label: str, done: Any) -> None:
        if nbytes < 0 or latency_s < 0:
            raise ValueError(f"flow {label!r}: bytes and latency must be >= 0")
        if not isinstance(usage, EdgeUsage):
            usage = EdgeUsage(usage)
        self.flows_started += 1
        nbytes = float(nbytes)
        flow = Flow(usage, nbytes, nbytes, done, label)
        if latency_s > 0:
            Timeout(self.env, latency_s).callbacks.append(lambda _ev: self._admit(flow))
        else:
            self._admit(flow)
        if self.flow_observer is not None:
            self.flow_observer(usage, nbytes, latency_s, label, done)

    # -- observation ----------------------------------------------------------------

    @property
    def active_flows(self) -> list[Flow]:
        """The flows moving or about to, in the order they were admitted."""
        flows = [flow for group in self._groups.values() for flow in group.flows] + self._pending
        return sorted(flows, key=admission)

    def edge_bytes(self) -> np.ndarray:
        """Bytes that have crossed each edge so far (index as ``self.edges``)."""
        self._advance()
        return self._counters.edge_bytes.copy()

    # -- internals ------------------------------------------------------------------

    def _admit(self, flow: Flow) -> None:
        if flow.total_bytes == 0 or not flow.usage.mapping:
            trigger_now(self.env, flow.done)  # (as succeed(): at this instant, normal priority)
            return
        now: float = self.env._now  # (the clock itself, not its property: read per flow; float: see _advance)
        if now > self._counters.last_time:
            self._advance()
        flow.seq = self._admitted
        self._admitted += 1
        self._pending.append(flow)
        if not self._recompute_pending:  # (one recomputation an instant, after its admissions)
            self._recompute_pending = True
            Timeout(self.env, 0).callbacks.append(self._recompute_callback)

    def _advance(self) -> None:
        """Bring every flow's remaining bytes and the edge counters up to now."""
        counters = self._counters
        # (Declared a float: SimPy's own loop, where a caller runs it, may keep a numpy clock,
        # which a compiled core would not compare or subtract as a float.)
        now: float = self.env._now
        dt = now - counters.last_time
        if dt <= 0:
            return
        self._advances += 1
        if self._advances % RECKONED_ADVANCES == 0:  # (see simulator.finishing)
            for group in self._groups.values():
                group.forget_finish()
        groups = self._groups.values()
        for group in groups:
            group.steps.append(group.rate * dt)
        if self._advances % _FLUSH_EVERY == 0:  # (looked at in batches: the same subtractions, in order)
            for group in groups:
                steps = group.steps
                if len(steps) >= _STEPS_KEPT:  # bring every member up to date and start afresh
                    for flow in group.flows:
                        left = flow.left
                        for step in steps[flow.applied:]:
                            left -= step
                        flow.left = left
                        flow.applied = 0
                    steps.clear()
        # (Pending flows move at rate 0; edges without load gain nothing.)
        loaded = self._loaded
        if loaded is None:
            counters.edge_bytes += counters.edge_load * dt
        elif len(loaded):
            counters.edge_bytes[loaded] += counters.edge_load[loaded] * dt
        counters.last_time = now

    def _recompute(self, _event: simpy.Event | None = None, timer_later: bool = False) -> None:
        self._recompute_pending = False
        now: float = self.env._now  # (float: see _advance)
        if now > self._counters.last_time:
            self._advance()
        if self._pending or self._changed:
            groups, touched, edge_groups = self._groups, self._touched, self._edge_groups
            known = self._known
            for flow in self._pending:
                key = id(flow.usage)
                group = groups.get(key)
                if group is None:
                    group = known.get(key)  # (it holds its usage: the id is not reused)
                    if group is None:
                        group = known[key] = FlowGroup(flow.usage)
                        edge_groups.add(group)
                        self._unindexed.append(group)
                    groups[key] = group
                group.join(flow)
                touched[group] = None
            self._pending = []
            self._changed = False
            self._share()
        self._timer = None  # (a timer set before is stale: rates may have changed)
        if not timer_later:
            self._set_timer()

    def _set_timer(self, _event: simpy.Event | None = None) -> None:
        """Wake the network when the next flow finishes, unless a recomputation since
        has (or is due at this instant and will). Rates depend only on which flows are
        active: unchanged, they are kept. In a group the lead finishes first."""
        if self._recompute_pending or self._timer is not None:
            return
        next_finish = soonest_finish(self._groups.values(), self.env._now)
        if next_finish < float("inf"):
            self._timer = Timeout(self.env, max(next_finish, 0.0))
            self._timer.callbacks.append(self._timer_callback)

    def _on_timer(self, timer: simpy.Event) -> None:
        if timer is not self._timer:
            return  # rates changed since this timer was set
        self._advance()
        finished: list[Flow] = []
        now: float = self.env._now  # (float: see _advance)
        groups = self._groups
        # (A group whose reckoned finish is still ahead has no member done: not asked.)
        for group in [group for group in groups.values() if group.done_by <= now]:
            done = group.take_finished(now)
            if not done:
                continue
            finished += done
            if not group.flows:  # its last member left
                del groups[id(group.usage)]  # (its key)
                if group.component is not None:
                    self._stale.add(group.component)
                    group.component = None
            else:
                self._touched[group] = None
        if self._pending:  # not moving yet (rate 0)
            waiting = [f for f in self._pending if f.remaining_bytes > f.tolerance]
            if len(waiting) != len(self._pending):
                finished += [f for f in self._pending if f.remaining_bytes <= f.tolerance]
                self._pending = waiting
        if finished:
            self._changed = True
            if len(finished) > 1:
                finished.sort(key=_ADMISSION)
        # Rates must be recomputed before anyone reacts to the completions; the timer is set
        # once they have (most start flows at once: the recomputation for those sets it),
        # by the instant's last event if nothing else has.
        self._recompute(timer_later=bool(finished))
        env = self.env
        for flow in finished:
            flow.group = None
            flow.left = 0.0  # (its remaining bytes, out of any group)
            trigger_now(env, flow.done)  # (triggered here alone: succeed()'s checks and calls left out)
        if finished:  # (after every event of this instant: the last of the instant)
            last = Event(self.env)
            last._ok, last._value, last.callbacks = True, None, [self._set_timer]
            self.env.schedule(last, _AFTER_NORMAL)

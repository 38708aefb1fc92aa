"""Flow-level network: bytes move along routes and share links max-min fairly.

This is the SimGrid model of a network, not a packet simulator. A *flow* moves a number
of bytes over a set of directed edges. While flows are active, every edge's capacity is
shared among the flows crossing it by weighted max-min fairness (progressive filling):
the most contended edge fixes the rate of its flows, their use is taken off every edge
they cross, and so on. Rates change only when a flow starts or ends; changes that
happen at the same simulated instant are coalesced into one recomputation, and one
timer wakes the network at the next completion.

A flow pays its route's latency once, before it starts moving bytes, so one flow over
one link takes ``latency + bytes / bandwidth``.

A flow may cross an edge with a *multiplicity* m > 1: it then stands for m identical
flows moving in lockstep and uses m times its rate on that edge. This is how the fast
path models a whole collective phase (every rank sending the same bytes at the same
time) as one event: a ring allreduce over N ranks is one flow over the N ring edges,
whose rate is set by the slowest of them, just as a pipelined ring is.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import networkx as nx
import numpy as np
import simpy

from .errors import TopologyError

Node = Hashable
Usage = Mapping[int, int]  # edge index -> multiplicity

# A flow is finished when fewer than this fraction of its bytes remain (float round-off).
_RELATIVE_TOLERANCE = 1e-9


@dataclass(eq=False)
class Flow:
    """One active flow (or a bundle of identical flows moving in lockstep)."""

    usage: dict[int, int]
    total_bytes: float
    remaining_bytes: float
    done: simpy.Event
    label: str
    rate: float = 0.0  # bytes/s of one member of the bundle


@dataclass(frozen=True)
class Route:
    """The directed edges a flow crosses from ``src`` to ``dst``."""

    src: Node
    dst: Node
    edges: tuple[int, ...]
    latency_s: float


def max_min_rates(usages: Sequence[Usage], capacity: Sequence[float]) -> list[float]:
    """Weighted max-min fair rates by progressive filling.

    ``usages[f]`` maps the edges flow ``f`` crosses to its multiplicity there. Returns
    each flow's rate (per member) such that no edge carries more than its capacity and
    no flow can go faster without slowing a flow that is no faster. A flow that crosses
    no edge is unconstrained and gets ``inf``.
    """
    rates = [float("inf")] * len(usages)
    edge_flows: dict[int, list[int]] = {}
    weight: dict[int, int] = {}
    for f, usage in enumerate(usages):
        for e, m in usage.items():
            edge_flows.setdefault(e, []).append(f)
            weight[e] = weight.get(e, 0) + m
    spare = {e: float(capacity[e]) for e in weight}
    frozen = [False] * len(usages)
    while weight:
        bottleneck = min(weight, key=lambda e: spare[e] / weight[e])
        share = max(spare[bottleneck], 0.0) / weight[bottleneck]
        for f in edge_flows[bottleneck]:
            if frozen[f]:
                continue
            frozen[f] = True
            rates[f] = share
            for e, m in usages[f].items():
                spare[e] -= m * share
                weight[e] -= m
                if weight[e] == 0:
                    del weight[e]
    return rates


@dataclass
class _Counters:
    """Per-edge bytes moved, integrated as flows progress."""

    edge_bytes: np.ndarray
    edge_load: np.ndarray  # bytes/s currently crossing each edge
    last_time: float = 0.0


class Network:
    """The links of a topology graph, shared by flows.

    ``graph`` is a networkx DiGraph whose edges carry ``bandwidth`` (bytes/s) and
    ``latency`` (s). Use :meth:`transfer` for one point-to-point flow and
    :meth:`transfer_bundle` for a set of identical flows moving in lockstep.
    """

    def __init__(self, env: simpy.Environment, graph: nx.DiGraph):
        self.env = env
        self.graph = graph
        self.edges: list[tuple[Node, Node]] = list(graph.edges)
        self.edge_index = {edge: i for i, edge in enumerate(self.edges)}
        self.capacity = np.array([graph.edges[e]["bandwidth"] for e in self.edges], dtype=float)
        self.latency = np.array([graph.edges[e]["latency"] for e in self.edges], dtype=float)
        self._flows: list[Flow] = []
        self._routes: dict[tuple[Node, Node], Route] = {}
        self._recompute_pending = False
        self._timer_generation = 0
        self._counters = _Counters(np.zeros(len(self.edges)), np.zeros(len(self.edges)))
        self.flows_started = 0

    # -- routes ---------------------------------------------------------------------

    def route(self, src: Node, dst: Node) -> Route:
        """Shortest route by hop count; cached. Raises TopologyError if none exists."""
        key = (src, dst)
        cached = self._routes.get(key)
        if cached is not None:
            return cached
        if src == dst:
            route = Route(src, dst, (), 0.0)
        else:
            try:
                path = nx.bidirectional_shortest_path(self.graph, src, dst)
            except (nx.NetworkXNoPath, nx.NodeNotFound) as exc:
                raise TopologyError(f"no route from {src!r} to {dst!r} in the cluster graph") from exc
            edges = tuple(self.edge_index[(u, v)] for u, v in zip(path, path[1:]))
            route = Route(src, dst, edges, float(self.latency[list(edges)].sum()))
        self._routes[key] = route
        return route

    # -- starting flows -------------------------------------------------------------

    def transfer(self, src: Node, dst: Node, nbytes: float, label: str = "") -> simpy.Event:
        """Move ``nbytes`` from ``src`` to ``dst``; the event fires when they arrive."""
        route = self.route(src, dst)
        usage = {e: 1 for e in route.edges}
        return self.start_flow(usage, nbytes, route.latency_s, label)

    def transfer_bundle(
        self,
        pairs: Iterable[tuple[Node, Node]],
        nbytes: float,
        *,
        latency_s: float | None = None,
        label: str = "",
    ) -> simpy.Event:
        """Move ``nbytes`` over every (src, dst) pair at one common rate.

        The bundle advances at the rate of its most contended member, as the members of
        a synchronized collective phase do. ``latency_s`` defaults to the largest
        route latency among the pairs.
        """
        usage: dict[int, int] = {}
        worst_latency = 0.0
        for src, dst in pairs:
            route = self.route(src, dst)
            worst_latency = max(worst_latency, route.latency_s)
            for e in route.edges:
                usage[e] = usage.get(e, 0) + 1
        return self.start_flow(usage, nbytes, worst_latency if latency_s is None else latency_s, label)

    def start_flow(self, usage: Usage, nbytes: float, latency_s: float, label: str = "") -> simpy.Event:
        """Start a flow with an explicit edge usage; returns its completion event."""
        if nbytes < 0 or latency_s < 0:
            raise ValueError(f"flow {label!r}: bytes and latency must be >= 0")
        self.flows_started += 1
        flow = Flow(dict(usage), float(nbytes), float(nbytes), self.env.event(), label)
        if latency_s > 0:
            self.env.timeout(latency_s).callbacks.append(lambda _ev: self._admit(flow))
        else:
            self._admit(flow)
        return flow.done

    # -- observation ----------------------------------------------------------------

    @property
    def active_flows(self) -> list[Flow]:
        return list(self._flows)

    def edge_bytes(self) -> np.ndarray:
        """Bytes that have crossed each edge so far (index as ``self.edges``)."""
        self._advance()
        return self._counters.edge_bytes.copy()

    # -- internals ------------------------------------------------------------------

    def _admit(self, flow: Flow) -> None:
        if flow.total_bytes == 0 or not flow.usage:
            flow.done.succeed()
            return
        self._advance()
        self._flows.append(flow)
        self._schedule_recompute()

    def _advance(self) -> None:
        """Bring every flow's remaining bytes and the edge counters up to now."""
        now = self.env.now
        dt = now - self._counters.last_time
        if dt <= 0:
            return
        for flow in self._flows:
            flow.remaining_bytes -= flow.rate * dt
        self._counters.edge_bytes += self._counters.edge_load * dt
        self._counters.last_time = now

    def _schedule_recompute(self) -> None:
        if self._recompute_pending:
            return
        self._recompute_pending = True
        self.env.timeout(0).callbacks.append(self._recompute)

    def _recompute(self, _event: simpy.Event | None = None) -> None:
        self._recompute_pending = False
        self._advance()
        flows = self._flows
        rates = max_min_rates([f.usage for f in flows], self.capacity)
        load = self._counters.edge_load
        load[:] = 0.0
        next_finish = float("inf")
        for flow, rate in zip(flows, rates):
            flow.rate = rate
            for e, m in flow.usage.items():
                load[e] += m * rate
            if rate > 0:
                next_finish = min(next_finish, flow.remaining_bytes / rate)
        self._timer_generation += 1
        if next_finish < float("inf"):
            generation = self._timer_generation
            timer = self.env.timeout(max(next_finish, 0.0))
            timer.callbacks.append(lambda _ev: self._on_timer(generation))

    def _on_timer(self, generation: int) -> None:
        if generation != self._timer_generation:
            return  # rates changed since this timer was set
        self._advance()
        still_active: list[Flow] = []
        finished: list[Flow] = []
        for flow in self._flows:
            tolerance = _RELATIVE_TOLERANCE * max(flow.total_bytes, 1.0)
            if flow.remaining_bytes <= tolerance:
                finished.append(flow)
            else:
                still_active.append(flow)
        self._flows = still_active
        # Rates must be recomputed before anyone reacts to the completions.
        self._recompute()
        for flow in finished:
            flow.remaining_bytes = 0.0
            flow.done.succeed()

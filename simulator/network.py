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
from dataclasses import dataclass
from functools import cached_property

import networkx as nx
import numpy as np
import simpy

from .routing import Router

Node = Hashable
Usage = Mapping[int, int]  # edge index -> multiplicity

# A flow is finished when fewer than this fraction of its bytes remain (float round-off).
_RELATIVE_TOLERANCE = 1e-9


class EdgeUsage:
    """The edges a flow crosses, each with a multiplicity; shared by identical flows.

    Usages are cached per route and per bundle, so flows over the same path share one
    object; max-min sharing then treats them as one group (flows with the same edges
    always get the same rate), which keeps recomputation cheap when a strategy keeps
    many identical flows in flight.
    """

    __slots__ = ("mapping", "index", "multiplicity")

    def __init__(self, mapping: Mapping[int, int]):
        self.mapping = dict(mapping)
        self.index = np.fromiter(self.mapping.keys(), dtype=np.int64, count=len(self.mapping))
        self.multiplicity = np.fromiter(self.mapping.values(), dtype=float, count=len(self.mapping))


@dataclass(eq=False)
class Flow:
    """One active flow (or a bundle of identical flows moving in lockstep)."""

    usage: EdgeUsage
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

    @cached_property
    def usage(self) -> EdgeUsage:
        return EdgeUsage({e: 1 for e in self.edges})


def max_min_rates(
    usages: Sequence[Usage], capacity: Sequence[float], counts: Sequence[int] | None = None
) -> list[float]:
    """Weighted max-min fair rates by progressive filling.

    ``usages[f]`` maps the edges flow ``f`` crosses to its multiplicity there;
    ``counts[f]`` (default 1) says how many identical flows ``f`` stands for. Returns
    each flow's rate (per member) such that no edge carries more than its capacity and
    no flow can go faster without slowing a flow that is no faster. A flow that crosses
    no edge is unconstrained and gets ``inf``.

    Each round finds the edges with the smallest fair share, fixes the rate of every
    flow crossing them and takes that flow's use off all its edges. Vectorized over
    (flow, edge) entries, since a bundled collective can cross thousands of edges.
    """
    if counts is None:
        counts = [1] * len(usages)
    return max_min_rates_of([EdgeUsage(u) for u in usages], capacity, counts).tolist()


def max_min_rates_of(usages: Sequence[EdgeUsage], capacity: Sequence[float], counts: Sequence[int]) -> np.ndarray:
    """:func:`max_min_rates` on prepared :class:`EdgeUsage` objects (the hot path)."""
    n = len(usages)
    rates = np.full(n, np.inf)
    sizes = [len(u.index) for u in usages]
    if sum(sizes) == 0:
        return rates
    flow_of = np.repeat(np.arange(n), sizes)
    edge_of = np.concatenate([u.index for u in usages])
    weight_of = np.concatenate([u.multiplicity for u in usages]) * np.asarray(counts, dtype=float)[flow_of]
    # Renumber the edges in use 0..k-1 so per-round work is O(entries), not O(all edges).
    used_edges, local_edge = np.unique(edge_of, return_inverse=True)
    spare = np.asarray(capacity, dtype=float)[used_edges].copy()
    weight = np.bincount(local_edge, weight_of, minlength=len(used_edges))
    active = np.ones(len(flow_of), dtype=bool)
    while active.any():
        loaded = weight > 1e-12
        share = np.full(len(used_edges), np.inf)
        share[loaded] = np.maximum(spare[loaded], 0.0) / weight[loaded]
        level = share.min()
        bottlenecks = share <= level * (1 + 1e-12)
        newly = np.unique(flow_of[active & bottlenecks[local_edge]])
        rates[newly] = level
        entries = active & np.isin(flow_of, newly)
        spare -= np.bincount(local_edge[entries], weight_of[entries] * level, minlength=len(used_edges))
        weight -= np.bincount(local_edge[entries], weight_of[entries], minlength=len(used_edges))
        active &= ~entries
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
        self._edge_id: dict[Node, dict[Node, int]] = {}
        for i, (u, v) in enumerate(self.edges):
            self._edge_id.setdefault(u, {})[v] = i
        self.capacity = np.array([graph.edges[e]["bandwidth"] for e in self.edges], dtype=float)
        self.latency = np.array([graph.edges[e]["latency"] for e in self.edges], dtype=float)
        self._latency_list = self.latency.tolist()
        self._flows: list[Flow] = []
        self.router = Router(graph)
        self._routes: dict[tuple[Node, Node], Route] = {}
        self._bundles: dict[tuple[tuple[Node, Node], ...], tuple[EdgeUsage, float]] = {}
        self._recompute_pending = False
        self._timer_generation = 0
        self._counters = _Counters(np.zeros(len(self.edges)), np.zeros(len(self.edges)))
        self.flows_started = 0
        # (time, most loaded edge or -1 when idle), appended when it changes: which
        # resource was limiting communication when (see results.attribution).
        self.bottleneck_log: list[tuple[float, int]] = []
        # Among equally saturated edges, name the network before PCIe before NVLink.
        priority = {"network": 3, "pcie": 2, "qpi": 2, "nvlink": 1}
        self._tie_break = np.array([priority.get(graph.edges[e].get("link"), 0) for e in self.edges]) * 1e-9

    # -- routes ---------------------------------------------------------------------

    def route(self, src: Node, dst: Node) -> Route:
        """The route from ``src`` to ``dst`` (see :mod:`simulator.routing`); cached.
        Raises TopologyError if none exists."""
        key = (src, dst)
        cached = self._routes.get(key)
        if cached is None:
            path = self.router.path(src, dst)
            eid = self._edge_id
            edges = tuple([eid[u][v] for u, v in zip(path, path[1:])])
            latency = sum([self._latency_list[e] for e in edges])
            cached = self._routes[key] = Route(src, dst, edges, latency)
        return cached

    # -- starting flows -------------------------------------------------------------

    def transfer(self, src: Node, dst: Node, nbytes: float, label: str = "") -> simpy.Event:
        """Move ``nbytes`` from ``src`` to ``dst``; the event fires when they arrive."""
        route = self.route(src, dst)
        return self.start_flow(route.usage, nbytes, route.latency_s, label)

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
        usage, worst_latency = self.bundle(tuple(pairs))
        return self.start_flow(usage, nbytes, worst_latency if latency_s is None else latency_s, label)

    def bundle(self, pairs: tuple[tuple[Node, Node], ...]) -> tuple[EdgeUsage, float]:
        """Edge usage and worst route latency of a set of pairs; cached."""
        cached = self._bundles.get(pairs)
        if cached is None:
            self.router.prefetch(pairs)
            mapping: dict[int, int] = {}
            worst_latency = 0.0
            for src, dst in pairs:
                route = self.route(src, dst)
                worst_latency = max(worst_latency, route.latency_s)
                for e in route.edges:
                    mapping[e] = mapping.get(e, 0) + 1
            cached = self._bundles[pairs] = (EdgeUsage(mapping), worst_latency)
        return cached

    def start_flow(
        self, usage: EdgeUsage | Usage, nbytes: float, latency_s: float, label: str = ""
    ) -> simpy.Event:
        """Start a flow with an explicit edge usage; returns its completion event."""
        if nbytes < 0 or latency_s < 0:
            raise ValueError(f"flow {label!r}: bytes and latency must be >= 0")
        if not isinstance(usage, EdgeUsage):
            usage = EdgeUsage(usage)
        self.flows_started += 1
        flow = Flow(usage, float(nbytes), float(nbytes), self.env.event(), label)
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
        if flow.total_bytes == 0 or not flow.usage.mapping:
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
        # Flows sharing one usage object always get the same rate: share as groups.
        groups: dict[int, list[Flow]] = {}
        for flow in self._flows:
            groups.setdefault(id(flow.usage), []).append(flow)
        members = list(groups.values())
        rates = max_min_rates_of([g[0].usage for g in members], self.capacity, [len(g) for g in members])
        load = self._counters.edge_load
        load[:] = 0.0
        next_finish = float("inf")
        for group, rate in zip(members, rates):
            usage = group[0].usage
            load[usage.index] += usage.multiplicity * (rate * len(group))
            if rate > 0:
                for flow in group:
                    flow.rate = rate
                    next_finish = min(next_finish, flow.remaining_bytes / rate)
            else:
                for flow in group:
                    flow.rate = rate
        self._note_bottleneck(load)
        self._timer_generation += 1
        if next_finish < float("inf"):
            generation = self._timer_generation
            timer = self.env.timeout(max(next_finish, 0.0))
            timer.callbacks.append(lambda _ev: self._on_timer(generation))

    def _note_bottleneck(self, load: np.ndarray) -> None:
        edge = -1
        if self._flows:
            edge = int(np.argmax(load / self.capacity + self._tie_break))
        if not self.bottleneck_log or self.bottleneck_log[-1][1] != edge:
            self.bottleneck_log.append((self.env.now, edge))

    def _on_timer(self, generation: int) -> None:
        if generation != self._timer_generation:
            return  # rates changed since this timer was set
        self._advance()
        still_active: list[Flow] = []
        finished: list[Flow] = []
        now = self.env.now
        for flow in self._flows:
            tolerance = _RELATIVE_TOLERANCE * max(flow.total_bytes, 1.0)
            # Also done when what is left takes less time than the clock can resolve
            # at this instant: waiting for it would not advance time at all.
            too_short = flow.rate > 0 and now + flow.remaining_bytes / flow.rate <= now
            if flow.remaining_bytes <= tolerance or too_short:
                finished.append(flow)
            else:
                still_active.append(flow)
        self._flows = still_active
        # Rates must be recomputed before anyone reacts to the completions.
        self._recompute()
        for flow in finished:
            flow.remaining_bytes = 0.0
            flow.done.succeed()

"""Flow-level network: bytes move along routes and share links max-min fairly.

This is the SimGrid model of a network, not a packet simulator. A *flow* moves a number
of bytes over a set of directed edges. While flows are active, every edge's capacity is
shared among the flows crossing it by weighted max-min fairness (progressive filling):
the most contended edge fixes the rate of its flows, their use is taken off every edge
they cross, and so on. Rates change only when a flow starts or ends; changes that
happen at the same simulated instant are coalesced into one recomputation, and one
timer wakes the network at the next completion.

Recomputation is incremental and exact: flows over the same edges share one rate (a
group); groups joined by shared edges form components, and only the components whose
flows changed are recomputed, unless two components fix levels within the tolerance of
each other, where every group is recomputed together as progressive filling over the
whole network would. Small sets run in pure Python, large ones in numpy, with the same
arithmetic in the same order: the rates are those of the whole computation to the last
bit (``tests/test_maxmin.py``).

A flow pays its route's latency once, before it starts moving bytes, so one flow over
one link takes ``latency + bytes / bandwidth``.

A flow may cross an edge with a *multiplicity* m > 1: it then stands for m identical
flows moving in lockstep and uses m times its rate on that edge. This is how the fast
path models a whole collective phase (every rank sending the same bytes at the same
time) as one event: a ring allreduce over N ranks is one flow over the N ring edges,
whose rate is set by the slowest of them, just as a pipelined ring is.
"""

from __future__ import annotations

import weakref
import zlib
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
# Advances of the network a group keeps before bringing all its members up to date.
_STEPS_KEPT = 64


class EdgeUsage:
    """The edges a flow crosses, each with a multiplicity; shared by identical flows.

    Usages are cached per route and per bundle, so flows over the same path share one
    object; max-min sharing then treats them as one group (flows with the same edges
    always get the same rate), which keeps recomputation cheap when a strategy keeps
    many identical flows in flight.
    """

    __slots__ = ("mapping", "index", "multiplicity", "edges", "weights", "_edge_set")

    def __init__(self, mapping: Mapping[int, int]):
        self.mapping = dict(mapping)
        self.index = np.fromiter(self.mapping.keys(), dtype=np.int64, count=len(self.mapping))
        self.multiplicity = np.fromiter(self.mapping.values(), dtype=float, count=len(self.mapping))
        # The same as Python numbers, for the pure-Python path of small active sets.
        self.edges: list[int] = self.index.tolist()
        self.weights: list[float] = self.multiplicity.tolist()
        self._edge_set: frozenset[int] | None = None

    def shares_edge_with(self, other: EdgeUsage) -> bool:
        if self._edge_set is None:
            self._edge_set = frozenset(self.edges)
        if other._edge_set is None:
            other._edge_set = frozenset(other.edges)
        return not self._edge_set.isdisjoint(other._edge_set)


class Flow:
    """One active flow (or a bundle of identical flows moving in lockstep).

    Active flows over the same :class:`EdgeUsage` form a :class:`_Group` and share its
    rate; a flow admitted since the last recomputation belongs to no group yet and
    does not move (rate 0).
    """

    __slots__ = ("usage", "total_bytes", "left", "applied", "done", "label", "seq", "group", "tolerance")

    def __init__(self, usage: EdgeUsage, total_bytes: float, remaining_bytes: float, done: simpy.Event, label: str):
        self.usage = usage
        self.total_bytes = total_bytes
        self.left = remaining_bytes  # before the group's steps from ``applied`` on
        self.applied = 0
        self.done = done
        self.label = label
        self.seq = -1  # admission order
        self.group: _Group | None = None
        # Bytes left below which it counts as finished (float round-off).
        self.tolerance = _RELATIVE_TOLERANCE * max(total_bytes, 1.0)

    @property
    def remaining_bytes(self) -> float:
        """Bytes still to move, up to the network's last advance."""
        group = self.group
        if group is not None and self.applied < len(group.steps):
            left = self.left
            for step in group.steps[self.applied:]:
                left -= step
            self.left = left
            self.applied = len(group.steps)
        return self.left

    @remaining_bytes.setter
    def remaining_bytes(self, value: float) -> None:
        self.left = value
        if self.group is not None:
            self.applied = len(self.group.steps)

    @property
    def rate(self) -> float:
        """Bytes/s of one member of the bundle."""
        return 0.0 if self.group is None else self.group.rate


class _Group:
    """Active flows over one usage object, in admission order; they share a rate.

    A network keeps a group (and its place in the edge index) when its last flow
    leaves, and reuses it when a flow over the same usage comes again: a bundle over
    thousands of edges is indexed once, not at every start."""

    __slots__ = ("usage", "flows", "rate", "component", "by_left", "tolerance", "steps")

    def __init__(self, usage: EdgeUsage):
        self.usage = usage
        self.flows: list[Flow] = []
        self.rate = 0.0
        self.component: _Component | None = None
        # Members lose the same bytes at every step, and subtracting the same number
        # never reverses the order of two floats: sorted by bytes left once, they stay
        # sorted, and the first (the lead) finishes first. And the largest of the
        # members' finishing tolerances (an upper bound once members leave).
        self.by_left: list[Flow] = []
        self.tolerance = 0.0
        # Bytes every member has lost at each advance of the network, applied to a
        # member when it is looked at (the same subtractions in the same order).
        self.steps: list[float] = []

    @property
    def lead(self) -> Flow:
        return self.by_left[0]

    def join(self, flow: Flow) -> None:
        self.flows.append(flow)
        flow.group = self
        flow.applied = len(self.steps)
        by_left, left = self.by_left, flow.left
        lo, hi = 0, len(by_left)
        while lo < hi:  # after the members with as many bytes left
            mid = (lo + hi) // 2
            if left < by_left[mid].remaining_bytes:
                hi = mid
            else:
                lo = mid + 1
        by_left.insert(lo, flow)
        if flow.tolerance > self.tolerance:
            self.tolerance = flow.tolerance

    def reset(self) -> None:
        """Empty again (its last member left): as a new group over the same usage."""
        self.rate = 0.0
        self.tolerance = 0.0
        self.steps = []


class _Component:
    """Groups joined by the edges they share, with their max-min rates computed alone.

    No flow outside a component crosses its edges, so its rates (and its edges' load)
    are those of the whole network whenever no level it fixes lies within the 1e-12
    tolerance of a different level of another component (progressive filling would
    then fix both in one round); see :meth:`Network._share`.
    """

    __slots__ = ("groups", "rates", "levels", "edges", "loads", "best")

    def __init__(self, groups: list[_Group], rates: list[float], edges: np.ndarray, loads: np.ndarray,
                 best: tuple[float, int]):
        self.groups = groups
        self.rates = rates
        self.levels = set(rates)
        self.edges = edges  # the edges it loads, and their load in bytes/s
        self.loads = loads
        self.best = best  # (load / capacity + tie break, edge) of its most loaded edge


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


# Up to this many (flow, edge) entries max-min runs in pure Python, above it vectorized
# with numpy (whose per-call overhead dominates on small sets). Both give identical rates.
SMALL_ENTRIES = 256
# One group alone is one round of progressive filling (a minimum over its edges):
# pure Python at any size, as fast as numpy's set-up alone.
SINGLE_GROUP_PYTHON = True
# Solved sets of groups kept per graph, counted in (group, edge) entries: the same
# groups with the same member counts get the same rates, and a strategy (a fast-path
# parameter server, a sweep's runs of one cluster) meets the same sets again and again.
SOLVED_ENTRIES_KEPT = 1_000_000
# Up to this many active groups, components are found by testing pairs of groups for a
# shared edge (cached per pair of usages) instead of walking every edge of every group.
PAIRWISE_GROUPS = 12


def max_min_rates(
    usages: Sequence[Usage], capacity: Sequence[float], counts: Sequence[int] | None = None
) -> list[float]:
    """Weighted max-min fair rates by progressive filling.

    ``usages[f]`` maps the edges flow ``f`` crosses to its multiplicity there;
    ``counts[f]`` (default 1) says how many identical flows ``f`` stands for. Returns
    each flow's rate (per member) such that no edge carries more than its capacity and
    no flow can go faster without slowing a flow that is no faster. A flow that crosses
    no edge is unconstrained and gets ``inf``.

    Each round finds the edges with the smallest fair share (within a relative 1e-12
    of it), fixes the rate of every flow crossing them and takes that flow's use off
    all its edges.
    """
    if counts is None:
        counts = [1] * len(usages)
    return max_min_rates_of([EdgeUsage(u) for u in usages], capacity, counts)


def max_min_rates_of(usages: Sequence[EdgeUsage], capacity: Sequence[float], counts: Sequence[int]) -> list[float]:
    """:func:`max_min_rates` on prepared :class:`EdgeUsage` objects: pure Python for
    small sets, numpy for large ones (the same arithmetic in the same order, so the
    same rates to the last bit)."""
    if sum(len(u.edges) for u in usages) <= SMALL_ENTRIES:
        return max_min_rates_python(usages, capacity, counts)
    return max_min_rates_numpy(usages, capacity, counts).tolist()


def max_min_rates_numpy(usages: Sequence[EdgeUsage], capacity: Sequence[float], counts: Sequence[int]) -> np.ndarray:
    """Progressive filling vectorized over (flow, edge) entries, since a bundled
    collective can cross thousands of edges."""
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


def max_min_rates_python(usages: Sequence[EdgeUsage], capacity: Sequence[float], counts: Sequence[int]) -> list[float]:
    """Progressive filling in plain Python, operation for operation as
    :func:`max_min_rates_numpy` (per-edge sums accumulate from 0.0 in (flow, edge)
    order, as ``np.bincount`` does), without its per-call overhead."""
    inf = float("inf")
    n = len(usages)
    if n == 1:  # one round: the smallest share of its edges (each summed from 0.0)
        count = float(counts[0])
        level = inf
        for e, m in zip(usages[0].edges, usages[0].weights):
            w = 0.0 + m * count
            if w > 1e-12:
                s = float(capacity[e])
                share = (s if not s <= 0.0 else 0.0) / w
                if share < level:
                    level = share
        return [level]
    rates = [inf] * n
    slot: dict[int, int] = {}  # edge -> local index
    spare: list[float] = []
    weight: list[float] = []
    crossing: list[list[int]] = []  # local edge -> flows crossing it, in order
    entries: list[list[tuple[int, float]]] = []  # flow -> (local edge, weight), in order
    active = 0
    for f, usage in enumerate(usages):
        count = float(counts[f])
        mine = []
        for e, m in zip(usage.edges, usage.weights):
            j = slot.get(e)
            if j is None:
                j = slot[e] = len(spare)
                spare.append(float(capacity[e]))
                weight.append(0.0)
                crossing.append([])
            w = m * count
            weight[j] += w
            crossing[j].append(f)
            mine.append((j, w))
        entries.append(mine)
        if mine:
            active += 1
    if not active:
        return rates
    share = [inf] * len(spare)
    for j, w in enumerate(weight):
        if w > 1e-12:
            s = spare[j]
            share[j] = (s if not s <= 0.0 else 0.0) / w
    fixed = [not mine for mine in entries]
    while active:
        level = min(share)
        threshold = level * (1 + 1e-12)
        newly = set()
        for j, s in enumerate(share):
            if s <= threshold:
                newly.update(crossing[j])
        newly = sorted(f for f in newly if not fixed[f])
        taken: dict[int, float] = {}
        lightened: dict[int, float] = {}
        for f in newly:
            rates[f] = level
            fixed[f] = True
            for j, w in entries[f]:
                taken[j] = taken.get(j, 0.0) + w * level
                lightened[j] = lightened.get(j, 0.0) + w
        active -= len(newly)
        for j, amount in taken.items():
            s = spare[j] = spare[j] - amount
            w = weight[j] = weight[j] - lightened[j]
            share[j] = (s if not s <= 0.0 else 0.0) / w if w > 1e-12 else inf
    return rates


@dataclass
class _Counters:
    """Per-edge bytes moved, integrated as flows progress."""

    edge_bytes: np.ndarray
    edge_load: np.ndarray  # bytes/s currently crossing each edge
    last_time: float = 0.0


class _Links:
    """What a :class:`Network` reads from its graph: edges, capacities, latencies, and
    the routes and bundles found on it. Made once per graph object and shared by every
    network over it (the candidates ``strategy: auto`` simulates, replications and
    sweep runs of one cluster, see ``simulator.build``): a graph is not changed once a
    network runs on it (one whose node or edge count changed gets a fresh copy)."""

    _by_graph: weakref.WeakKeyDictionary[nx.DiGraph, _Links] = weakref.WeakKeyDictionary()

    def __init__(self, graph: nx.DiGraph):
        self.size = (graph.number_of_nodes(), graph.number_of_edges())
        # graph.edges in its order, read from the adjacency (its views cost ~1 us a lookup).
        self.edges: list[tuple[Node, Node]] = []
        self.edge_id: dict[Node, dict[Node, int]] = {}
        attributes = []
        for u, nbrs in graph._adj.items():
            ids = self.edge_id[u] = {}
            for v, data in nbrs.items():
                ids[v] = len(self.edges)
                self.edges.append((u, v))
                attributes.append(data)
        self.edge_index = dict(zip(self.edges, range(len(self.edges))))
        self.capacity = np.array([data["bandwidth"] for data in attributes], dtype=float)
        self.latency = np.array([data["latency"] for data in attributes], dtype=float)
        self.latency_list = self.latency.tolist()
        self.capacity_list = self.capacity.tolist()
        priority = {"network": 3, "pcie": 2, "qpi": 2, "nvlink": 1}
        self.tie_break = np.array([priority.get(data.get("link"), 0) for data in attributes]) * 1e-9
        self.tie_break_list = self.tie_break.tolist()
        self.max_tie_break = max(self.tie_break_list, default=0.0)
        self.positive_capacity = all(c > 0 for c in self.capacity_list)
        self.router = Router(graph)
        self.routes: dict[tuple[Node, Node], Route] = {}
        self.bundles: dict[tuple[tuple[Node, Node], ...], tuple[EdgeUsage, float]] = {}
        # Max-min solutions by ((usage, members), ...) in order, and their size in
        # entries; whether two usages share an edge, by the pair.
        self.solved: dict[tuple, tuple] = {}
        self.solved_entries = 0
        self.overlaps: dict[tuple[EdgeUsage, EdgeUsage], bool] = {}

    @classmethod
    def of(cls, graph: nx.DiGraph) -> _Links:
        links = cls._by_graph.get(graph)
        if links is None or links.size != (graph.number_of_nodes(), graph.number_of_edges()):
            links = cls._by_graph[graph] = cls(graph)
        return links


class Network:
    """The links of a topology graph, shared by flows.

    ``graph`` is a networkx DiGraph whose edges carry ``bandwidth`` (bytes/s) and
    ``latency`` (s). Use :meth:`transfer` for one point-to-point flow and
    :meth:`transfer_bundle` for a set of identical flows moving in lockstep.
    """

    def __init__(self, env: simpy.Environment, graph: nx.DiGraph):
        self.env = env
        self.graph = graph
        links = _Links.of(graph)
        self.edges = links.edges
        self.edge_index = links.edge_index
        self._edge_id = links.edge_id
        self.capacity, self.latency = links.capacity, links.latency
        self._latency_list, self._capacity_list = links.latency_list, links.capacity_list
        # Among equally saturated edges, name the network before PCIe before NVLink.
        self._tie_break, self._tie_break_list = links.tie_break, links.tie_break_list
        self._max_tie_break = links.max_tie_break
        self._positive_capacity = links.positive_capacity
        # Routes and bundles are the graph's, shared with every network over it.
        self.router, self._routes, self._bundles = links.router, links.routes, links.bundles
        self._links = links
        # Active flows by usage object (groups share a rate), and the flows admitted
        # since the last recomputation (rate 0 until it runs).
        self._groups: dict[int, _Group] = {}
        self._known: dict[int, _Group] = {}  # every group made, active or not, by usage
        self._pending: list[Flow] = []
        self._changed = False  # a flow finished since the last recomputation
        # Max-min by components: every active component, the groups crossing each edge,
        # the groups whose flows changed and the components that lost a group since the
        # last recomputation, and whether the rates in force came from one computation
        # over every group (components within the tolerance of each other).
        self._components: set[_Component] = set()
        self._edge_groups: dict[int, dict[_Group, None]] = {}
        self._touched: dict[_Group, None] = {}
        self._stale: set[_Component] = set()
        self._whole = False
        self._admitted = 0
        self._loaded = np.zeros(0, dtype=np.int64)  # the edges the last recomputation loaded
        self._recompute_pending = False
        self._timer_generation = 0
        self._counters = _Counters(np.zeros(len(self.edges)), np.zeros(len(self.edges)))
        self.flows_started = 0
        # (time, most loaded edge or -1 when idle), appended when it changes: which
        # resource was limiting communication when (see results.attribution).
        self.bottleneck_log: list[tuple[float, int]] = []

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

    def bundle_product(self, sources: Sequence[Node], destinations: Sequence[Node]) -> tuple[EdgeUsage, float]:
        """:meth:`bundle` of every (source, destination) pair (each listed pair once per
        time its ends are listed), e.g. every worker pushing to every parameter server.
        Where routes are compositions (``router.templates``) it is counted end by end:
        each source's way to its switch once per destination it reaches, and so on,
        at a cost that grows with the ends, not with their product. The same usage and
        worst latency as :meth:`bundle` (edges may be listed in another order, which
        nothing reads)."""
        key = ("product", tuple(sources), tuple(destinations))
        cached = self._bundles.get(key)
        if cached is None:
            composed = _compose_product(self, sources, destinations)
            if composed is None:
                cached = self.bundle(tuple((s, d) for d in destinations for s in sources))
            else:
                mapping, worst = composed
                cached = (EdgeUsage(mapping), worst)
            self._bundles[key] = cached
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
        """The flows moving or about to, in the order they were admitted."""
        flows = [flow for group in self._groups.values() for flow in group.flows] + self._pending
        return sorted(flows, key=_admission)

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
        flow.seq = self._admitted
        self._admitted += 1
        self._pending.append(flow)
        self._schedule_recompute()

    def _advance(self) -> None:
        """Bring every flow's remaining bytes and the edge counters up to now."""
        counters = self._counters
        now = self.env.now
        dt = now - counters.last_time
        if dt <= 0:
            return
        for group in self._groups.values():
            steps = group.steps
            steps.append(group.rate * dt)
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
        if len(loaded):
            counters.edge_bytes[loaded] += counters.edge_load[loaded] * dt
        counters.last_time = now

    def _schedule_recompute(self) -> None:
        if self._recompute_pending:
            return
        self._recompute_pending = True
        self.env.timeout(0).callbacks.append(self._recompute)

    def _recompute(self, _event: simpy.Event | None = None) -> None:
        self._recompute_pending = False
        self._advance()
        if self._pending or self._changed:
            groups, touched, edge_groups = self._groups, self._touched, self._edge_groups
            known = self._known
            for flow in self._pending:
                group = groups.get(id(flow.usage))
                if group is None:
                    group = known.get(id(flow.usage))  # (it holds its usage: the id is not reused)
                    if group is None:
                        group = known[id(flow.usage)] = _Group(flow.usage)
                        for e in flow.usage.edges:
                            edge_groups.setdefault(e, {})[group] = None
                    groups[id(flow.usage)] = group
                group.join(flow)
                touched[group] = None
            self._pending = []
            self._changed = False
            self._share()
        # Rates depend only on which flows are active: unchanged, they are kept. In a
        # group the lead finishes first.
        next_finish = float("inf")
        for group in self._groups.values():
            rate = group.rate
            if rate > 0:
                finish = group.by_left[0].remaining_bytes / rate
                if finish < next_finish:
                    next_finish = finish
        self._timer_generation += 1
        if next_finish < float("inf"):
            generation = self._timer_generation
            timer = self.env.timeout(max(next_finish, 0.0))
            timer.callbacks.append(lambda _ev: self._on_timer(generation))

    def _share(self) -> None:
        """Max-min rates of the active groups, the load they put on each edge, and the
        bottleneck.

        Progressive filling over every group (ordered by their oldest flow's admission,
        as per-edge sums depend on the order) gives the same rates as running it on
        each component alone as long as no two components fix levels within the 1e-12
        tolerance of each other: each round then involves one level, and on every edge
        only the groups of one component, in the same order. So only the components
        whose groups changed are recomputed; where that condition fails, every group is
        recomputed together, as the definition says.
        """
        self._update_components()
        if self._levels_apart():
            if self._whole:  # the rates in force came from one whole computation
                self._counters.edge_load[:] = 0.0
                for component in self._components:
                    self._apply(component)
                self._whole = False
            # The edges the components load (an edge of theirs at load 0 gains 0.0 bytes
            # per advance, as an edge outside them does).
            components = self._components
            if not components:
                self._loaded = np.zeros(0, dtype=np.int64)
            elif len(components) == 1:
                self._loaded = next(iter(components)).edges
            else:
                self._loaded = np.concatenate([component.edges for component in components])
            best, edge = -float("inf"), -1
            for component in self._components:
                value, e = component.best
                if value > best or (value == best and e < edge):
                    best, edge = value, e
            if not (self._groups and self._positive_capacity and best > self._max_tie_break):
                edge = self._most_loaded(None)
            self._note_bottleneck(edge)
            return
        self._whole = True
        members = sorted(self._groups.values(), key=_oldest)
        rates, edges, loads, _ = self._solve(members)
        edge_load = self._counters.edge_load
        edge_load[:] = 0.0
        edge_load[edges] = loads
        for group, rate in zip(members, rates):
            group.rate = rate
        self._loaded = np.flatnonzero(edge_load)
        self._note_bottleneck(self._most_loaded(None))

    def _update_components(self) -> None:
        """Recompute the components the groups that changed belong to (or now join)."""
        stale, touched, groups = self._stale, self._touched, self._groups
        self._stale, self._touched = set(), {}
        seeds: list[_Group] = [group for group in touched if groups.get(id(group.usage)) is group]
        for group in seeds:
            if group.component is not None:
                stale.add(group.component)
        for component in stale:
            seeds += [group for group in component.groups if group.component is component]
        neighbours = self._pairwise_neighbours if len(groups) <= PAIRWISE_GROUPS else self._edge_neighbours()
        seen: set[_Group] = set()
        fresh: list[list[_Group]] = []
        for seed in seeds:
            if seed in seen:
                continue
            seen.add(seed)
            members, stack = [], [seed]
            while stack:
                group = stack.pop()
                members.append(group)
                if group.component is not None:
                    stale.add(group.component)
                for other in neighbours(group):
                    if other not in seen:
                        seen.add(other)
                        stack.append(other)
            fresh.append(members)
        edge_load = self._counters.edge_load
        for component in stale:
            self._components.discard(component)
            if not self._whole:
                edge_load[component.edges] = 0.0
        for members in fresh:
            members.sort(key=_oldest)
            rates, edges, loads, best = self._solve(members)
            component = _Component(members, rates, edges, loads, best)
            for group in members:
                group.component = component
            self._components.add(component)
            if not self._whole:
                self._apply(component)

    def _edge_neighbours(self):
        """Groups sharing an edge with a group, found edge by edge (each edge walked
        once per recomputation): the way for many small groups."""
        edge_groups = self._edge_groups
        crossed: set[int] = set()

        def neighbours(group: _Group) -> Iterable[_Group]:
            for e in group.usage.edges:
                if e not in crossed:
                    crossed.add(e)
                    for other in edge_groups[e]:
                        if other.flows:  # (groups without flows stay indexed)
                            yield other

        return neighbours

    def _pairwise_neighbours(self, group: _Group) -> list[_Group]:
        """Groups sharing an edge with ``group``, tested pair by pair against every
        active group (the answer cached per pair of usages): the way for a few groups
        over many edges, as bundled collectives and parameter-server phases are."""
        overlaps, usage = self._links.overlaps, group.usage
        found = []
        for other in self._groups.values():
            if other is group:
                continue
            key = (usage, other.usage)
            shared = overlaps.get(key)
            if shared is None:
                if len(overlaps) > 100_000:  # usages made afresh per flow: keep it bounded
                    overlaps.clear()
                shared = overlaps[key] = usage.shares_edge_with(other.usage)
            if shared:
                found.append(other)
        return found

    def _apply(self, component: _Component) -> None:
        """Put a component's rates and load in force."""
        for group, rate in zip(component.groups, component.rates):
            group.rate = rate
        self._counters.edge_load[component.edges] = component.loads

    def _levels_apart(self) -> bool:
        """Whether no level of one component lies above a level of another within the
        1e-12 tolerance of progressive filling (equal levels are fine)."""
        components = self._components
        if len(components) < 2:
            return True
        owners: dict[float, set[int]] = {}
        for component in components:
            for level in component.levels:
                owners.setdefault(level, set()).add(id(component))
        levels = sorted(owners)
        for i in range(1, len(levels)):
            level = levels[i]
            j = i - 1
            while j >= 0 and level <= levels[j] * (1 + 1e-12):
                mine, theirs = owners[level], owners[levels[j]]
                if len(mine) > 1 or mine != theirs:
                    return False
                j -= 1
        return True

    def _solve(self, members: list[_Group]) -> tuple[list[float], np.ndarray, np.ndarray, tuple[float, int]]:
        """Max-min rates of ``members`` (in order), the edges they load with the load on
        each (summed in that order), and the most loaded of those edges with its score."""
        if SOLVED_ENTRIES_KEPT <= 0:
            return self._solve_afresh([group.usage for group in members], [len(group.flows) for group in members])
        key = tuple([(group.usage, len(group.flows)) for group in members])
        links = self._links
        solved = links.solved.get(key)
        if solved is None:
            solved = self._solve_afresh([group.usage for group in members], [len(group.flows) for group in members])
            solved[1].flags.writeable = solved[2].flags.writeable = False  # shared from now on
            entries = sum(len(group.usage.edges) for group in members)
            if links.solved_entries + entries > SOLVED_ENTRIES_KEPT:
                links.solved.clear()
                links.solved_entries = 0
            if entries <= SOLVED_ENTRIES_KEPT:
                links.solved[key] = solved
                links.solved_entries += entries
        return solved

    def _solve_afresh(self, usages: list[EdgeUsage], counts: list[int]
                      ) -> tuple[list[float], np.ndarray, np.ndarray, tuple[float, int]]:
        if (not usages or sum(len(usage.edges) for usage in usages) <= SMALL_ENTRIES
                or (len(usages) == 1 and SINGLE_GROUP_PYTHON)):
            rates = max_min_rates_python(usages, self._capacity_list, counts)
            load: dict[int, float] = {}
            for usage, rate, count in zip(usages, rates, counts):
                amount = rate * count
                for e, m in zip(usage.edges, usage.weights):
                    load[e] = load.get(e, 0.0) + m * amount
            edges = np.fromiter(load.keys(), dtype=np.int64, count=len(load))
            loads = np.fromiter(load.values(), dtype=float, count=len(load))
        else:
            rates = max_min_rates_numpy(usages, self.capacity, counts).tolist()
            # Each edge's load summed group after group from 0.0, as np.bincount does.
            amount = np.repeat(np.array(rates) * np.array(counts, dtype=float), [len(u.edges) for u in usages])
            edges, local = np.unique(np.concatenate([usage.index for usage in usages]), return_inverse=True)
            loads = np.bincount(local, np.concatenate([usage.multiplicity for usage in usages]) * amount,
                                minlength=len(edges))
            if self._positive_capacity:
                scores = loads / self.capacity[edges] + self._tie_break[edges]
                top = int(np.argmax(scores))  # the first of equals: the lowest edge
                return rates, edges, loads, (float(scores[top]), int(edges[top]))
            return rates, edges, loads, (-float("inf"), -1)
        best, edge = -float("inf"), -1
        if self._positive_capacity:
            capacity, tie_break = self._capacity_list, self._tie_break_list
            for e, amount in sorted(load.items()):
                value = amount / capacity[e] + tie_break[e]
                if value > best:
                    best, edge = value, e
        return rates, edges, loads, (best, edge)

    def _most_loaded(self, load: dict[int, float] | None) -> int:
        """The edge whose load is the largest fraction of its capacity (first of equals,
        ties broken by link kind), or -1 when idle."""
        if not self._groups:
            return -1
        return int(np.argmax(self._counters.edge_load / self.capacity + self._tie_break))

    def _note_bottleneck(self, edge: int) -> None:
        if not self.bottleneck_log or self.bottleneck_log[-1][1] != edge:
            self.bottleneck_log.append((self.env.now, edge))

    def _on_timer(self, generation: int) -> None:
        if generation != self._timer_generation:
            return  # rates changed since this timer was set
        self._advance()
        finished: list[Flow] = []
        now = self.env.now
        groups = self._groups
        for key, group in list(groups.items()):
            rate = group.rate
            by_left = group.by_left
            done: list[Flow] = []
            scanned = 0
            for flow in by_left:  # fewest bytes left first
                left = flow.remaining_bytes
                # Also done when what is left takes less time than the clock can
                # resolve at this instant: waiting for it would not advance time at all.
                if left <= flow.tolerance or (rate > 0 and now + left / rate <= now):
                    done.append(flow)
                elif left > group.tolerance:
                    break  # every later member has as much left and is not done either
                scanned += 1
            if not done:
                continue
            finished += done
            if len(done) == len(group.flows):
                group.flows, group.by_left = [], []
                group.reset()
                del groups[key]
                if group.component is not None:
                    self._stale.add(group.component)
                    group.component = None
            else:
                gone = set(done)
                group.flows = [flow for flow in group.flows if flow not in gone]
                group.by_left = [flow for flow in by_left[:scanned] if flow not in gone] + by_left[scanned:]
                self._touched[group] = None
        if self._pending:  # not moving yet (rate 0)
            waiting = [f for f in self._pending if f.remaining_bytes > f.tolerance]
            if len(waiting) != len(self._pending):
                finished += [f for f in self._pending if f.remaining_bytes <= f.tolerance]
                self._pending = waiting
        if finished:
            self._changed = True
            finished.sort(key=_admission)
        # Rates must be recomputed before anyone reacts to the completions.
        self._recompute()
        for flow in finished:
            flow.group = None
            flow.remaining_bytes = 0.0
            flow.done.succeed()


def _compose_product(net: Network, sources: Sequence[Node], destinations: Sequence[Node]
                     ) -> tuple[dict[int, int], float] | None:
    """Usage and worst route latency of every (source, destination) pair, from each
    end's head (to its switch) or tail (from it), the switch paths between switches
    and the routes of pairs inside one server; None where routes are not such
    compositions. Latency: a route's is summed edge after edge from its source, and
    adding the same numbers to a larger start never gives less, so the worst pair
    through a given switch path and tail starts from the slowest head."""
    templates = net.router.templates
    if templates is None:
        return None
    eid, lat = net._edge_id, net._latency_list

    def edges_of(path: list[Node]) -> list[int]:
        return [eid[u][v] for u, v in zip(path, path[1:])]

    def fold(start: float, edges: Iterable[int]) -> float:
        for e in edges:
            start += lat[e]
        return start

    ends = []
    for nodes, part in ((sources, templates.head), (destinations, templates.tail)):
        counts: dict[Node, int] = {}
        for node in nodes:
            counts[node] = counts.get(node, 0) + 1
        info = {}
        for node in counts:
            path = part(node)
            if path is None:
                return None
            server = templates.server_of(node)
            info[node] = (server, templates.switch_of(server), edges_of(path))
        ends.append((counts, info))
    (s_count, s_info), (d_count, d_info) = ends
    s_at: dict[object, int] = {}  # sources per server, and per switch
    d_at: dict[object, int] = {}
    s_at_switch: dict[Node, int] = {}
    d_at_switch: dict[Node, int] = {}
    for count, info, per_server, per_switch in ((s_count, s_info, s_at, s_at_switch),
                                                (d_count, d_info, d_at, d_at_switch)):
        for node, (server, switch, _) in info.items():
            per_server[server] = per_server.get(server, 0) + count[node]
            per_switch[switch] = per_switch.get(switch, 0) + count[node]

    mapping: dict[int, int] = {}
    worst = 0.0

    def add(edges: Iterable[int], times: int) -> None:
        if times:
            for e in edges:
                mapping[e] = mapping.get(e, 0) + times

    for s, (server, _, edges) in s_info.items():  # a head, once per destination in another server
        add(edges, s_count[s] * (len(destinations) - d_at.get(server, 0)))
    for d, (server, _, edges) in d_info.items():  # a tail, once per source in another server
        add(edges, d_count[d] * (len(sources) - s_at.get(server, 0)))
    s_in: dict[object, list[Node]] = {}
    for s, (server, _, _) in s_info.items():
        s_in.setdefault(server, []).append(s)
    for d, (server, _, _) in d_info.items():  # pairs inside one server: their own routes
        for s in s_in.get(server, ()):
            route = net.route(s, d)
            add(route.edges, s_count[s] * d_count[d])
            worst = max(worst, route.latency_s)
    # Between switches: one switch path per pair of switches, or equal-cost ones that
    # each pair's hash picks among.
    paths: dict[tuple[Node, Node], list[list[int]]] = {}
    for d_switch in d_at_switch:
        for s_switch in s_at_switch:
            found = templates.switch_paths(s_switch, d_switch)
            if not found or (len(found) > 1 and not net.router.ecmp):
                return None  # a search would break the tie
            paths[(s_switch, d_switch)] = [edges_of(p) for p in found]
            if len({tuple(lat[e] for e in edges) for edges in paths[(s_switch, d_switch)]}) > 1:
                return None  # equal-cost paths of unequal latency: the worst needs every pair
    for key, times in _pairs_per_switch_path(paths, s_count, s_info, d_count, d_info, s_at_switch, d_at_switch):
        add(key, times)
    # Worst latency: per destination (switch, server), the slowest head from another
    # server plus the switch path (each of equal latency), then the destination's tail.
    heads = {s: fold(0, edges) for s, (_, _, edges) in s_info.items()}
    slowest_at: dict[Node, list[tuple[float, object]]] = {}  # switch -> (head, server), slowest first
    for s, (server, switch, _) in s_info.items():
        slowest_at.setdefault(switch, []).append((heads[s], server))
    for members in slowest_at.values():
        members.sort(key=lambda hs: -hs[0])
    worst_into: dict[tuple[Node, object], float] = {}
    for d_server, d_switch, tail in d_info.values():
        into = worst_into.get((d_switch, d_server))
        if into is None:
            into = -1.0
            for s_switch, members in slowest_at.items():
                head = next((h for h, server in members if server != d_server), None)
                if head is not None:
                    into = max(into, fold(head, paths[(s_switch, d_switch)][0]))
            worst_into[(d_switch, d_server)] = into
        if into >= 0:
            worst = max(worst, fold(into, tail))
    return mapping, worst


def _pairs_per_switch_path(paths: dict[tuple[Node, Node], list[list[int]]], s_count: dict[Node, int],
                           s_info: dict, d_count: dict[Node, int], d_info: dict, s_at_switch: dict[Node, int],
                           d_at_switch: dict[Node, int]) -> Iterable[tuple[list[int], int]]:
    """(switch path edges, pairs that take it) over every pair between two switches.
    Where there are several, the pair's hash picks (crc32 of "src->dst", as
    :meth:`Router._ecmp_choice`): computed for every source at once per destination,
    continuing each source's crc of "src->" over the destination's name."""
    hashed = {key for key, choices in paths.items() if len(choices) > 1}
    for key, choices in paths.items():
        if key not in hashed and key[0] != key[1]:
            yield choices[0], s_at_switch[key[0]] * d_at_switch[key[1]]
    if not hashed:
        return
    order = list(s_info)
    row_of = {switch: row for row, switch in enumerate(s_at_switch)}
    where = np.array([row_of[s_info[s][1]] for s in order], dtype=np.int64)
    weights = np.array([s_count[s] for s in order], dtype=float)
    starts = np.array([zlib.crc32(f"{s}->".encode()) for s in order], dtype=np.uint32)
    widths: dict[Node, set[int]] = {}  # destination switch -> numbers of choices into it
    for s_switch, d_switch in hashed:
        widths.setdefault(d_switch, set()).add(len(paths[(s_switch, d_switch)]))
    taken: dict[tuple[Node, int], np.ndarray] = {}  # (destination switch, n) -> pairs per (switch, choice)
    for d, (_, d_switch, _) in d_info.items():
        if d_switch not in widths:
            continue
        crc = _crc32_continued(str(d).encode(), starts)
        for n in widths[d_switch]:
            counted = np.bincount(where * n + (crc % n).astype(np.int64), weights=weights,
                                  minlength=len(row_of) * n) * d_count[d]
            key = (d_switch, n)
            taken[key] = counted if key not in taken else taken[key] + counted
    for s_switch, d_switch in hashed:
        choices = paths[(s_switch, d_switch)]
        n, row = len(choices), row_of[s_switch]
        for middle, times in zip(choices, taken[(d_switch, n)][row * n:(row + 1) * n]):
            yield middle, int(times)


def _crc32_table() -> np.ndarray:
    """The byte table of CRC-32 (reflected polynomial 0xEDB88320, zlib's)."""
    table = []
    for byte in range(256):
        c = byte
        for _ in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
        table.append(c)
    return np.array(table, dtype=np.uint32)


_CRC32 = _crc32_table()


def _crc32_continued(data: bytes, starts: np.ndarray) -> np.ndarray:
    """``zlib.crc32(data, start)`` for every start (uint32), vectorized over starts."""
    c = starts ^ np.uint32(0xFFFFFFFF)
    for byte in data:
        c = _CRC32[(c ^ np.uint32(byte)) & np.uint32(0xFF)] ^ (c >> np.uint32(8))
    return c ^ np.uint32(0xFFFFFFFF)


def _admission(flow: Flow) -> int:
    return flow.seq


def _oldest(group: _Group) -> int:
    return group.flows[0].seq

"""What a :class:`simulator.network.Network` reads from its graph, made once per
graph and shared by every network over it: edges, capacities and latencies, routes
and bundles of routes, and the max-min solutions of sets of flow groups."""

from __future__ import annotations

import functools
from collections.abc import Hashable, Iterator, Mapping, Sequence
from itertools import repeat
from operator import eq, itemgetter, mul

import networkx as nx
import numpy as np

from topologies.arrays import EdgeNumbers, GraphArrays
from topologies.graph import copy_graph

from . import maxmin
from .flows import FlowGroup, Node, Route, Solution
from .gc_policy import gc_paused
from .maxmin import EdgeUsage
from .route_product import COMPOSE_PAIRS, ComposedRoutes, compose_pairs, compose_product
from .routing import Router
from .server_shapes import graph_dicts

# Solved sets of groups kept per graph, counted in (group, edge) entries: the same
# groups with the same member counts get the same rates, and a strategy (a fast-path
# parameter server, a sweep's runs of one cluster) meets the same sets again and again.
SOLVED_ENTRIES_KEPT = 1_000_000


def shared_floats(values: np.ndarray) -> list[float]:
    """``values.tolist()`` with one float object per distinct value: a graph's edges take
    a handful of bandwidths and latencies, and a float object each costs 24 bytes per
    edge and list (about 50 MB at 40,000 GPUs). Equal values only: -0.0 is kept apart
    from 0.0 (a list holding one is returned as ``tolist`` gives it)."""
    if values.size and bool(np.any((values == 0) & np.signbit(values))):
        return values.tolist()  # type: ignore[no-any-return]
    distinct, inverse = np.unique(values, return_inverse=True)
    return list(map(distinct.tolist().__getitem__, inverse.tolist()))


def _size(graph: nx.DiGraph[Node]) -> tuple[int, int]:
    """(nodes, edges) of ``graph``, the edges counted from its adjacency (its
    ``number_of_edges`` sums a degree view: a tenth of a second at 65,536 GPUs)."""
    dicts = graph_dicts(graph)
    return len(dicts._node), sum(map(len, dicts._adj.values()))


class EdgeIndex(Mapping[tuple[Node, Node], int]):
    """Edge id by (u, v), read from the per-node dicts (``edge_id[u][v]``) instead of a
    dict of its own keyed by pairs (about 40 MB at 40,000 GPUs)."""

    def __init__(self, edge_id: Mapping[Node, dict[Node, int]], edges: Sequence[tuple[Node, Node]]):
        self._edge_id, self._edges = edge_id, edges

    def __getitem__(self, edge: tuple[Node, Node]) -> int:
        try:
            u, v = edge
            return self._edge_id[u][v]
        except (KeyError, TypeError, ValueError):
            raise KeyError(edge) from None

    def __iter__(self) -> Iterator[tuple[Node, Node]]:
        return iter(self._edges)

    def __len__(self) -> int:
        return len(self._edges)


class BandwidthScale:
    """Each edge's bandwidth times the fraction of its link kind (edges without a
    ``link`` as they are): what a collective library achieves on a cluster's links,
    read off the cluster's own graph rather than off a scaled copy of it (copying a
    65,536-GPU graph cost a third of a second). ``fractions``: link kind -> fraction;
    ``key`` names them (networks over one graph with equal keys share their links)."""

    def __init__(self, key: Hashable, fractions: Mapping[str, float]):
        self.key = key
        self.fractions = fractions

    def capacities(self, arrays: GraphArrays) -> np.ndarray:
        """Each edge's scaled bandwidth, the product the scaled copy holds (``*`` of the
        same two numbers; an edge without a link kind times 1.0, the same float)."""
        factors = map(_Factors(self.fractions).__getitem__, arrays.edge_values("link"))
        products = map(mul, map(itemgetter("bandwidth"), arrays.edge_data), factors)
        return np.fromiter(products, dtype=float, count=len(arrays.edge_data))

    def graph(self, graph: nx.DiGraph[Node]) -> nx.DiGraph[Node]:
        """A copy of ``graph`` at the scaled bandwidths."""
        return copy_graph(graph, self.fractions)


class _Factors(dict[str | None, float]):
    """Link kind -> its fraction, looked up on first use; 1.0 for edges without one."""

    def __init__(self, fractions: Mapping[str, float]):
        super().__init__({None: 1.0})
        self._fractions = fractions

    def __missing__(self, link: str | None) -> float:
        assert link is not None
        factor = self[link] = self._fractions[link]
        return factor


class GraphLinks:
    """What a :class:`~simulator.network.Network` reads from its graph: edges,
    capacities, latencies, the routes and bundles found on it, and max-min solutions.
    Made once per graph object and shared by every network over it (the candidates
    ``strategy: auto`` simulates, replications and sweep runs of one cluster, see
    ``simulator.build``): a graph is not changed once a network runs on it (one whose
    node or edge count changed gets a fresh copy). With a :class:`BandwidthScale`,
    the capacities are the graph's bandwidths scaled (one object per graph and key)."""

    #: Where a graph keeps its GraphLinks: an attribute of the graph object itself, so they
    #: die with it (a weak-keyed table would keep every graph alive: the links hold the
    #: graph they were made from). Not in ``graph.graph``, which copies and exports carry.
    #: Graph and links then form a cycle, freed by the cyclic collector with the finished
    #: run that held them (simulator.gc_policy).
    _ATTRIBUTE = "_clustersim_graph_links"

    def __init__(self, graph: nx.DiGraph[Node], scale: BandwidthScale | None = None):
        self.size = _size(graph)
        self.structure, self.scale = graph, scale
        # graph.edges in its order, read from the adjacency (its views cost ~1 us a lookup).
        arrays = GraphArrays(graph)
        self.edges: Sequence[tuple[Node, Node]] = arrays.edges
        self.edge_id: EdgeNumbers = arrays.edge_id
        self.edge_index = EdgeIndex(self.edge_id, self.edges)
        self.capacity = arrays.edge_column("bandwidth") if scale is None else scale.capacities(arrays)
        self.latency = arrays.edge_column("latency")
        self.latency_list = shared_floats(self.latency)
        self.capacity_list = shared_floats(self.capacity)
        self.link_of: list[str | None] = arrays.edge_values("link")  # each edge's link kind
        priority: dict[str | None, int] = {"network": 3, "pcie": 2, "qpi": 2, "nvlink": 1}
        ranks = np.fromiter(map(priority.get, self.link_of, repeat(0)), dtype=np.int64, count=len(self.link_of))
        self.tie_break = ranks * 1e-9
        self.tie_break_list = shared_floats(self.tie_break)
        self.max_tie_break = max(self.tie_break_list, default=0.0)
        self.positive_capacity = bool(np.all(self.capacity > 0))
        self.router = Router(graph, arrays)
        self._targets = arrays.targets  # each edge's end, by its number in the graph's node order
        self.routes: dict[tuple[Node, Node], Route] = {}
        # By the pairs, or by ("product", sources, destinations) for bundle_product.
        self.bundles: dict[tuple[tuple[Node, Node], ...] | tuple[str, tuple[Node, ...], tuple[Node, ...]],
                           tuple[EdgeUsage, float]] = {}
        # Max-min solutions by ((usage, members), ...) in order, and their size in
        # entries; whether two usages share an edge, by the pair.
        self.solved: dict[tuple[tuple[EdgeUsage, int], ...], Solution] = {}
        self.solved_entries = 0
        self.overlaps: dict[tuple[EdgeUsage, EdgeUsage], bool] = {}
        # The last pairs composed and their routes: a library reads a bundle's routes
        # right after counting it.
        self._composed: tuple[tuple[tuple[Node, Node], ...], ComposedRoutes | None] | None = None
        self._link_masks: dict[str, np.ndarray] = {}

    @functools.cached_property
    def into_cpu(self) -> list[bool]:
        """Whether each edge ends at a CPU: a GPU-to-GPU route is staged through host
        memory where an edge other than its last does: no peer-to-peer (GeForce cards,
        ``p2p: false``), or a path through a root complex (GPUs under different PCIe
        switches or sockets), where NCCL's default P2P level copies through host
        memory, its SHM transport. Read per edge, not per node through the graph's views."""
        return self.into_cpu_mask.tolist()  # type: ignore[no-any-return]

    @functools.cached_property
    def into_cpu_mask(self) -> np.ndarray:
        """:attr:`into_cpu` as an array (each node's kind compared once, then looked up
        by the edges' ends)."""
        cpu = np.fromiter(map(eq, self.router.kinds.values(), repeat("cpu")), dtype=bool,
                          count=len(self.router.kinds))
        mask: np.ndarray = cpu[self._targets]
        return mask

    def link_mask(self, kind: str) -> np.ndarray:
        """Whether each edge is a link of ``kind`` (its ``link`` attribute), as an array; cached."""
        mask = self._link_masks.get(kind)
        if mask is None:
            mask = self._link_masks[kind] = np.fromiter(map(eq, self.link_of, repeat(kind)), dtype=bool,
                                                        count=len(self.link_of))
        return mask

    @functools.cached_property
    def graph(self) -> nx.DiGraph[Node]:
        """The graph at these capacities: the graph itself, or a scaled copy (made on
        first use: the simulator reads the structure, only callers that want the
        bandwidths as attributes pay for it)."""
        return self.structure if self.scale is None else self.scale.graph(self.structure)

    @classmethod
    def of(cls, graph: nx.DiGraph[Node], scale: BandwidthScale | None = None) -> GraphLinks:
        made: dict[Hashable, GraphLinks] = graph.__dict__.setdefault(cls._ATTRIBUTE, {})
        key = None if scale is None else (scale.key,)
        links = made.get(key)
        if links is None or links.size != _size(graph):
            links = made[key] = cls(graph, scale)
        return links

    # -- routes and bundles (the graph's, cached) ----------------------------------

    def route(self, src: Node, dst: Node) -> Route:
        """The route from ``src`` to ``dst`` (see :mod:`simulator.routing`); cached.
        Raises TopologyError if none exists."""
        key = (src, dst)
        cached = self.routes.get(key)
        if cached is None:
            path = self.router.path(src, dst)
            eid = self.edge_id
            edges = tuple([eid[u][v] for u, v in zip(path, path[1:])])
            latency = sum([self.latency_list[e] for e in edges])
            cached = self.routes[key] = Route(src, dst, edges, latency)
        return cached

    def bundle(self, pairs: tuple[tuple[Node, Node], ...]) -> tuple[EdgeUsage, float]:
        """Edge usage and worst route latency of a set of pairs; cached."""
        cached = self.bundles.get(pairs)
        if cached is None:
            with gc_paused():
                cached = self.bundles[pairs] = self._bundle(pairs)
        return cached

    def composed(self, pairs: tuple[tuple[Node, Node], ...]) -> ComposedRoutes | None:
        """The routes of ``pairs`` composed shape by shape (:func:`compose_pairs`); None
        where routes are not compositions, or too few pairs to gain. The last kept."""
        if len(pairs) < COMPOSE_PAIRS:
            return None
        last = self._composed
        if last is None or last[0] != pairs:
            with gc_paused():
                last = self._composed = (pairs, compose_pairs(self.router, self.edge_id, self.route, pairs))
        return last[1]

    def _bundle(self, pairs: tuple[tuple[Node, Node], ...]) -> tuple[EdgeUsage, float]:
        """:meth:`bundle`, uncached: each pair's route, its edges counted (composed
        shape by shape where they are compositions: the same counts, in the same order)."""
        composed = self.composed(pairs)
        if composed is not None:
            return EdgeUsage(composed.usage()), composed.worst_latency(self.latency)
        self.router.prefetch(pairs)
        mapping: dict[int, int] = {}
        worst_latency = 0.0
        for src, dst in pairs:
            route = self.route(src, dst)
            worst_latency = max(worst_latency, route.latency_s)
            for e in route.edges:
                mapping[e] = mapping.get(e, 0) + 1
        return EdgeUsage(mapping), worst_latency

    def bundle_product(self, sources: Sequence[Node], destinations: Sequence[Node]) -> tuple[EdgeUsage, float]:
        """:meth:`bundle` of every (source, destination) pair (each listed pair once per
        time its ends are listed), e.g. every worker pushing to every parameter server.
        Where routes are compositions (``router.templates``) it is counted end by end:
        each source's way to its switch once per destination it reaches, and so on,
        at a cost that grows with the ends, not with their product. The same usage and
        worst latency as :meth:`bundle` (edges may be listed in another order, which
        nothing reads)."""
        key = ("product", tuple(sources), tuple(destinations))
        cached = self.bundles.get(key)
        if cached is None:
            composed = compose_product(self.router, self.edge_id, self.latency_list, self.route, sources, destinations)
            if composed is None:
                cached = self.bundle(tuple((s, d) for d in destinations for s in sources))
            else:
                mapping, worst = composed
                cached = (EdgeUsage(mapping), worst)
            self.bundles[key] = cached
        return cached

    # -- max-min solutions, cached per set of groups --------------------------------

    def solve(self, members: list[FlowGroup]) -> Solution:
        """Max-min rates of ``members`` (in order), the edges they load with the load on
        each (summed in that order), and the most loaded of those edges with its score."""
        if SOLVED_ENTRIES_KEPT <= 0:
            return self.solve_afresh([group.usage for group in members], [len(group.flows) for group in members])
        key = tuple([(group.usage, len(group.flows)) for group in members])
        solved = self.solved.get(key)
        if solved is None:
            solved = self.solve_afresh([group.usage for group in members], [len(group.flows) for group in members])
            solved[1].flags.writeable = solved[2].flags.writeable = False  # shared from now on
            entries = sum(len(group.usage.edges) for group in members)
            if self.solved_entries + entries > SOLVED_ENTRIES_KEPT:
                self.solved.clear()
                self.solved_entries = 0
            if entries <= SOLVED_ENTRIES_KEPT:
                self.solved[key] = solved
                self.solved_entries += entries
        return solved

    def _solve_one(self, usage: EdgeUsage, rates: list[float], count: int) -> Solution | None:
        """:meth:`solve_afresh` of one group with many edges, its loads and scores in numpy:
        the same products and quotients as the loop over a dict (each edge's load 0.0 +
        weight x rate x count), the first strict maximum in edge order by argmax. None
        where a score is NaN (the loop skips those)."""
        loads = usage.multiplicity * (rates[0] * count) + 0.0
        edges = usage.index.copy()
        if not self.positive_capacity:
            return rates, edges, loads, (-float("inf"), -1)
        order = np.argsort(edges, kind="stable")
        scores = (loads / self.capacity[edges] + self.tie_break[edges])[order]
        if np.isnan(scores).any():
            return None
        top = int(np.argmax(scores))
        if not scores[top] > -float("inf"):
            return rates, edges, loads, (-float("inf"), -1)
        return rates, edges, loads, (float(scores[top]), int(edges[order[top]]))

    def solve_afresh(self, usages: list[EdgeUsage], counts: list[int]) -> Solution:
        """:meth:`solve` without the cache: pure Python for small sets, numpy for large."""
        if (not usages or sum(len(usage.edges) for usage in usages) <= maxmin.SMALL_ENTRIES
                or (len(usages) == 1 and maxmin.SINGLE_GROUP_PYTHON)):
            if len(usages) == 1 and len(usages[0].edges) > maxmin.SMALL_ENTRIES:
                rates = [maxmin.single_group_rate(usages[0], self.capacity, counts[0])]
                solved = self._solve_one(usages[0], rates, counts[0])
                if solved is not None:
                    return solved
            else:
                rates = maxmin.max_min_rates_python(usages, self.capacity_list, counts)
            load: dict[int, float] = {}
            for usage, rate, count in zip(usages, rates, counts):
                amount = rate * count
                for e, m in zip(usage.edges, usage.weights):
                    load[e] = load.get(e, 0.0) + m * amount
            edges = np.fromiter(load.keys(), dtype=np.int64, count=len(load))
            loads = np.fromiter(load.values(), dtype=float, count=len(load))
        else:
            rates = maxmin.max_min_rates_numpy(usages, self.capacity, counts).tolist()
            # Each edge's load summed group after group from 0.0, as np.bincount does.
            amounts = np.repeat(np.array(rates) * np.array(counts, dtype=float), [len(u.edges) for u in usages])
            edges, local = np.unique(np.concatenate([usage.index for usage in usages]), return_inverse=True)
            loads = np.bincount(local, np.concatenate([usage.multiplicity for usage in usages]) * amounts,
                                minlength=len(edges))
            if self.positive_capacity:
                scores = loads / self.capacity[edges] + self.tie_break[edges]
                top = int(np.argmax(scores))  # the first of equals: the lowest edge
                return rates, edges, loads, (float(scores[top]), int(edges[top]))
            return rates, edges, loads, (-float("inf"), -1)
        best, edge = -float("inf"), -1
        if self.positive_capacity:
            capacity, tie_break = self.capacity_list, self.tie_break_list
            for e, amount in sorted(load.items()):
                value = amount / capacity[e] + tie_break[e]
                if value > best:
                    best, edge = value, e
        return rates, edges, loads, (best, edge)

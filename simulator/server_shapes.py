"""Server shapes, for routes composed from per-server templates (see
:mod:`simulator.server_templates`).

A server's *shape* is what a search inside it sees: its members' edges (to its fabric
switches too) with their route weights, in the graph's adjacency order, in local names
(a member ``n3.gpu0`` of server ``n3`` is ``gpu0``; its switches ``@switch0``,
``@switch1``, ... by first appearance). Identical servers share one shape and one
:class:`ShapeTemplate`, whose searches (every shortest path between two of its nodes,
the ways out to and in from its switches, and one direction of networkx's
bidirectional Dijkstra) run once per shape and are translated per server.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from heapq import heappop, heappush
from itertools import repeat
from typing import Any, Protocol, cast

import networkx as nx
import numpy as np

from topologies.arrays import GraphArrays

Node = Hashable
Adjacency = dict[Node, dict[Node, dict[str, Any]]]  # node -> neighbour -> edge attributes

# The edge attribute routes are weighed by (set by the Router on its graph).
ROUTE_WEIGHT = "route_weight"


class GraphDicts(Protocol):
    """The dicts a networkx DiGraph keeps its nodes and edges in, read directly where
    its views (``graph.nodes``, ``graph.adj``: ~1 us a lookup) would cost more than the
    work. They are networkx internals, which its type stubs do not declare."""

    _node: dict[Node, dict[str, Any]]  # node -> its attributes
    _adj: Adjacency  # successors
    _pred: Adjacency  # predecessors


def graph_dicts(graph: nx.DiGraph[Node]) -> GraphDicts:
    """``graph`` seen as its :class:`GraphDicts` (the same object)."""
    return cast(GraphDicts, graph)


def candidate_key(item: tuple[tuple[str, ...], list[Node], list[Node], list[Node]]) -> tuple[str, ...]:
    """The sort key of a composed path (names, head, switch path, tail): its names."""
    return item[0]


def ecmp_choice(src: Node, dst: Node, paths: list[list[Node]]) -> list[Node]:
    """The equal-cost path a pair's stable hash picks among ``paths`` (any order), as
    switches hash flows onto uplinks."""
    paths = sorted(paths, key=lambda p: [str(n) for n in p])
    return paths[zlib.crc32(f"{src}->{dst}".encode()) % len(paths)]


SWITCH = "@switch"  # a server's fabric switches in its template: "@switch0", "@switch1", ...
INFINITY = float("inf")
# A server's neighbours as its template sees them: (local name, route weight) each.
Neighbours = tuple[tuple[str, int], ...]
# What a search inside a server sees: per member, in the graph's order, its local name,
# successors and predecessors, each in the graph's order (its switches as SWITCH + i,
# numbered by first appearance).
Shape = tuple[tuple[str, Neighbours, Neighbours], ...]
# Per pop, the searches below count: (pop number, position in the popped node's
# neighbours) of the relaxation that gave a node its final distance.
Event = tuple[int, int]


class ShapeSearch:
    """One direction of networkx's bidirectional Dijkstra inside a template, from one
    end, with its switches as dead ends: the same pops (stale ones counted), the same
    heap order (distance, then push order) and the same tie rule (only a strictly
    shorter distance replaces a predecessor), as long as no switch has been popped."""

    __slots__ = ("dist", "pred", "event", "pops")

    def __init__(self, adjacency: dict[str, Neighbours], start: str):
        self.dist: dict[str, int] = {}  # popped nodes
        self.pred: dict[str, str | None] = {start: None}
        self.event: dict[str, Event] = {start: (0, -1)}
        self.pops: dict[str, int] = {}  # switch -> its pop number
        seen = {start: 0}
        fringe = [(0, 0, start)]
        tick = 1
        k = 0
        dist, pred, event = self.dist, self.pred, self.event
        while fringe:
            d, _, v = heappop(fringe)
            k += 1
            if v in dist:
                continue
            dist[v] = d
            nbrs = adjacency.get(v)
            if nbrs is None:  # a switch
                self.pops[v] = k
                continue
            for j, (w, cost) in enumerate(nbrs):
                vw = d + cost
                if w in dist:
                    continue
                if w not in seen or vw < seen[w]:
                    seen[w] = vw
                    heappush(fringe, (vw, tick, w))
                    tick += 1
                    pred[w] = v
                    event[w] = (k, j)

    def forward_path(self, node: str) -> list[str]:
        """The search's path from its start to ``node``."""
        path = self.backward_path(node)
        path.reverse()
        return path

    def backward_path(self, node: str) -> list[str]:
        """The (backward) search's path from ``node`` to its start: predecessors followed."""
        path: list[str] = []
        at: str | None = node
        while at is not None:
            path.append(at)
            at = self.pred[at]
        return path


class ShapeTemplate:
    """The searches of one server shape, in local names, cached."""

    def __init__(self, shape: Shape):
        self.succ: dict[str, Neighbours] = {name: succ for name, succ, _ in shape}
        self.pred: dict[str, Neighbours] = {name: pred for name, _, pred in shape}
        exits: list[str] = []
        for _, succ, pred in shape:
            for v, _w in succ + pred:
                if v.startswith(SWITCH) and v not in exits:
                    exits.append(v)
        self.exits = sorted(exits, key=lambda v: int(v[len(SWITCH):]))
        self.number = {v: int(v[len(SWITCH):]) for v in exits}  # switch -> its number
        # switch -> (NIC, weight) of each edge from a NIC into it, and out of it to a NIC
        self.into: dict[str, list[tuple[str, int]]] = {v: [] for v in exits}
        self.out_of: dict[str, list[tuple[str, int]]] = {v: [] for v in exits}
        for name, succ, pred in shape:
            for v, w in succ:
                if v in self.into:
                    self.into[v].append((name, w))
            for u, w in pred:
                if u in self.out_of:
                    self.out_of[u].append((name, w))
        # Whole template (switches linked to their NICs both ways), and its two halves:
        # ways out (no edge leaves a switch) and ways in (no edge enters one).
        self.graph: nx.DiGraph[str] = nx.DiGraph()
        self.outward: nx.DiGraph[str] = nx.DiGraph()
        self.inward: nx.DiGraph[str] = nx.DiGraph()
        for name, succ, pred in shape:
            for v, w in succ:
                self.graph.add_edge(name, v, **{ROUTE_WEIGHT: w})
                self.outward.add_edge(name, v, **{ROUTE_WEIGHT: w})
                if not v.startswith(SWITCH):
                    self.inward.add_edge(name, v, **{ROUTE_WEIGHT: w})
            for u, w in pred:
                self.graph.add_edge(u, name, **{ROUTE_WEIGHT: w})
                self.inward.add_edge(u, name, **{ROUTE_WEIGHT: w})
        self._inside: dict[tuple[str, str], list[list[str]]] = {}
        self._heads: dict[tuple[str, str], list[list[str]]] = {}
        self._tails: dict[tuple[str, str], list[list[str]]] = {}
        self._out: dict[str, list[tuple[int, str]]] = {}
        self._in: dict[str, list[tuple[int, str]]] = {}
        self._forward: dict[str, ShapeSearch] = {}
        self._backward: dict[str, ShapeSearch] = {}

    @staticmethod
    def _all(graph: nx.DiGraph[str], a: str, b: str) -> list[list[str]]:
        try:
            return sorted(nx.all_shortest_paths(graph, a, b, weight=ROUTE_WEIGHT))
        except (nx.NetworkXNoPath, nx.NodeNotFound):
            return []

    def inside(self, a: str, b: str) -> list[list[str]]:
        """Every shortest path from ``a`` to ``b`` in the template, sorted."""
        paths = self._inside.get((a, b))
        if paths is None:
            paths = self._inside[(a, b)] = self._all(self.graph, a, b)
        return paths

    def heads(self, a: str, exit: str) -> list[list[str]]:
        """Every shortest path from ``a`` out to switch ``exit`` through no other switch."""
        paths = self._heads.get((a, exit))
        if paths is None:
            paths = self._heads[(a, exit)] = self._all(self.outward, a, exit)
        return paths

    def tails(self, exit: str, b: str) -> list[list[str]]:
        """Every shortest path from switch ``exit`` in to ``b`` through no other switch."""
        paths = self._tails.get((exit, b))
        if paths is None:
            paths = self._tails[(exit, b)] = self._all(self.inward, exit, b)
        return paths

    def way_out(self, a: str) -> list[tuple[int, str]]:
        """(distance, switch) from ``a`` out to each switch it reaches, nearest first."""
        found = self._out.get(a)
        if found is None:
            try:
                lengths = nx.single_source_dijkstra_path_length(self.outward, a, weight=ROUTE_WEIGHT)
            except nx.NodeNotFound:
                lengths = {}
            found = self._out[a] = sorted((int(d), v) for v, d in lengths.items() if v in self.exits)
        return found

    def way_in(self, b: str) -> list[tuple[int, str]]:
        """(distance, switch) from each switch that reaches ``b`` in to it, nearest first."""
        found = self._in.get(b)
        if found is None:
            try:
                lengths = nx.single_source_dijkstra_path_length(self.inward.reverse(copy=False), b,
                                                                weight=ROUTE_WEIGHT)
            except nx.NodeNotFound:
                lengths = {}
            found = self._in[b] = sorted((int(d), v) for v, d in lengths.items() if v in self.exits)
        return found

    def forward(self, a: str) -> ShapeSearch:
        found = self._forward.get(a)
        if found is None:
            found = self._forward[a] = ShapeSearch(self.succ, a)
        return found

    def backward(self, b: str) -> ShapeSearch:
        found = self._backward.get(b)
        if found is None:
            found = self._backward[b] = ShapeSearch(self.pred, b)
        return found


class LocalNames(dict[Node, str]):
    """A server's nodes -> their local names; a switch met for the first time is named
    SWITCH + the number of switches met before it (and listed in ``switches``)."""

    def __init__(self, members: dict[Node, str]):
        super().__init__(members)
        self.switches: list[Node] = []

    def __missing__(self, switch: Node) -> str:
        name = self[switch] = f"{SWITCH}{len(self.switches)}"
        self.switches.append(switch)
        return name


def meeting(forward: ShapeSearch, backward: ShapeSearch, source: ShapeTemplate, target: ShapeTemplate,
            into: Callable[[str], int], out_of: Callable[[str], int]) -> tuple[str, str] | None:
    """Where networkx's bidirectional Dijkstra meets between the start of ``forward`` (a
    node of a server of shape ``source``) and the start of ``backward`` (of ``target``),
    both servers hanging off one switch X only: ("X", X's local name), ("S", a NIC of the
    source's server) or ("T", a NIC of the target's), in local names; None where this
    replay cannot tell. ``into(nic)`` is a source NIC's place among X's predecessors,
    ``out_of(nic)`` a target NIC's among X's successors.

    The search alternates a pop of its forward heap (pops 1, 3, 5, ...) and of its
    backward one (2, 4, ...), stale pops included, and returns the forward path to, and
    the backward path from, the first node whose distances from both ends it has found
    to add up to the shortest distance (at the first such relaxation). Each direction's
    order of pops is its own, whatever the other does; up to X's pop it stays inside its
    server and is the template's (:class:`ShapeSearch`). The candidate meeting nodes
    with a known time: X; a NIC of the source's server on a shortest way to X (forward:
    the template's; backward: relaxed by X's backward pop, at the NIC's place among X's
    predecessors); a NIC of the target's from X, likewise. Every other candidate is met
    after X's pop in the direction that reaches it last: the earliest known time must
    come before those bounds."""
    xs, xt = source.exits[0], target.exits[0]
    if xs not in forward.pops or xt not in backward.pops:
        return None
    i_f, i_b = forward.pops[xs], backward.pops[xt]
    h_s, h_t = forward.dist[xs], backward.dist[xt]

    def at_forward(event: Event) -> Event:
        return 2 * event[0] - 1, event[1]

    def at_backward(event: Event) -> Event:
        return 2 * event[0], event[1]

    best = max(at_forward(forward.event[xs]), at_backward(backward.event[xt]))
    meet: tuple[str, str] = ("X", xs)
    for nic, w in source.into[xs]:
        if nic in forward.dist and forward.dist[nic] + w == h_s:
            time = max(at_forward(forward.event[nic]), (2 * i_b, into(nic)))
            if time < best:
                best, meet = time, ("S", nic)
    for nic, w in target.out_of[xt]:
        if nic in backward.dist and w + backward.dist[nic] == h_t:
            time = max((2 * i_f - 1, out_of(nic)), at_backward(backward.event[nic]))
            if time < best:
                best, meet = time, ("T", nic)
    if not best < min((2 * i_b + 2, -1), (2 * i_f + 1, -1)):
        return None
    return meet


def nic_to_nic(graph: nx.DiGraph[Node], owner: dict[Node, object], nics: set[Node]) -> float:
    """The least a path inside a server from one of its ``nics`` to another costs
    (``owner``: each node's server, None for a switch)."""
    dicts = graph_dicts(graph)
    direct = out = into = INFINITY
    for nic in nics:
        for v, data in dicts._adj[nic].items():
            if owner[v] is not None:
                out = min(out, data[ROUTE_WEIGHT])
                if v in nics:
                    direct = min(direct, data[ROUTE_WEIGHT])
        for u, data in dicts._pred[nic].items():
            if owner[u] is not None:
                into = min(into, data[ROUTE_WEIGHT])
    return min(direct, out + into)



def server_members(arrays: GraphArrays, owner: np.ndarray, kind: dict[Node, str | None]
                   ) -> dict[object, list[str]] | None:
    """Each server's nodes in the graph's order (``owner``: each node's server as a
    number, -1 for none); None unless every node is a switch or a member of a server
    named "{server}.{local}" (no SWITCH in it). A server numbered in one run is sliced
    and checked name by name in C-level calls (a loop per node costs at 100,000 nodes)."""
    nodes, servers = arrays.nodes, arrays.node_values("server")
    starts = np.flatnonzero(np.diff(owner, prepend=owner[:1] - 1)).tolist()
    runs: list[tuple[object, list[Node]]] = [(servers[a], nodes[a:b])
                                             for a, b in zip(starts, starts[1:] + [len(nodes)])]
    if len({srv for srv, _ in runs if srv is not None}) != sum(srv is not None for srv, _ in runs):
        grouped: dict[object, list[Node]] = {}
        for node, srv in zip(nodes, servers):  # a server in several runs: node by node
            grouped.setdefault(srv, []).append(node)
        runs = list(grouped.items())
    members: dict[object, list[str]] = {}
    for srv, group in runs:
        if srv is None:
            if any(kind[node] != "switch" for node in group):
                return None
            continue
        if not all(map(isinstance, group, repeat(str))):
            return None
        names = cast(list[str], group)
        if not all(map(str.startswith, names, repeat(f"{srv}."))) or any(map(str.__contains__, names, repeat(SWITCH))):
            return None
        members[srv] = names
    return members


@dataclass
class FabricEnds:
    """Where the servers meet the fabric, read from the edges out of a server or out of
    a switch (:meth:`scan`)."""

    exits: dict[object, set[Node]]  # server -> the switches its NICs hang off
    succ: dict[Node, set[Node]]  # switch -> switches it links to
    nics: set[Node]  # server nodes linked to a switch
    hop: int  # the weight of every switch-to-switch edge (0: none)
    out_of_switch: float  # the lightest edge out of a switch
    nic_up: float  # the lightest NIC -> switch edge
    nic_down: float  # the lightest switch -> NIC edge

    @classmethod
    def scan(cls, arrays: GraphArrays, owner: np.ndarray, weights: np.ndarray, server: dict[Node, object],
             kind: dict[Node, str | None]) -> FabricEnds | None:
        """None where servers touch the rest of the graph other than through NIC <-> switch
        edges, or switch-to-switch edges weigh differently. Only the edges out of a switch
        or out of a server are read (each server's own are most), in the graph's order."""
        nodes, sources, targets = arrays.nodes, arrays.sources, arrays.targets
        outer = np.flatnonzero((owner[sources] != owner[targets]) | (owner[sources] < 0))
        found = cls({}, {}, set(), 0, INFINITY, INFINITY, INFINITY)
        hop: set[int] = set()
        for i, j, w in zip(sources[outer].tolist(), targets[outer].tolist(), weights[outer].tolist()):
            u, v = nodes[i], nodes[j]
            su, sv = server[u], server[v]
            if su is not None:  # an edge out of a server
                if sv is not None or kind[u] != "nic":
                    return None  # two servers joined directly, or a server reaching the fabric by a non-NIC
                found.exits.setdefault(su, set()).add(v)
                found.nics.add(u)
                found.nic_up = min(found.nic_up, w)
                continue
            found.out_of_switch = min(found.out_of_switch, w)
            if sv is None:
                found.succ.setdefault(u, set()).add(v)
                hop.add(w)
                continue
            if kind[v] != "nic":
                return None  # a server reached from the fabric through something else
            found.exits.setdefault(sv, set()).add(u)
            found.nics.add(v)
            found.nic_down = min(found.nic_down, w)
        if len(hop) > 1:
            return None
        found.hop = next(iter(hop), 0)
        return found

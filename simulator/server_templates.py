"""Routes composed from per-server templates, for speed (see :mod:`simulator.routing`).

Clusters are many identical servers hung off a fabric of switches. Where the graph
has that shape, the shortest paths inside a server (and out to its switch) are searched
once per server *shape* and translated per server, and the switches between two
servers' switches are read from the switch graph; :class:`simulator.routing.Router`
uses them instead of searching the whole graph.
"""

from __future__ import annotations

import zlib
from collections.abc import Hashable
from typing import Any, Protocol, cast

import networkx as nx

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


def ecmp_choice(src: Node, dst: Node, paths: list[list[Node]]) -> list[Node]:
    """The equal-cost path a pair's stable hash picks among ``paths`` (any order), as
    switches hash flows onto uplinks."""
    paths = sorted(paths, key=lambda p: [str(n) for n in p])
    return paths[zlib.crc32(f"{src}->{dst}".encode()) % len(paths)]

SWITCH = "@switch"  # the fabric switch of a server, in its template
# What a search inside a server sees: its (local name, local name, weight) edges, sorted.
Shape = tuple[tuple[str, str, int], ...]


class ServerTemplates:
    """Shortest paths composed from per-server templates (see the module doc).

    Applies (``usable``) when every node is either a switch or belongs to a server
    (``server`` attribute, named ``{server}.{local}``), servers touch the rest of the
    graph only through NIC <-> switch edges, all of one server's NICs hang off one
    switch, and every switch-to-switch edge weighs the same. Then no shortest path
    crosses a third server (it would have to leave through the switch it came from),
    so every shortest path between two servers is (a path from the source to its
    server's switch) + (a shortest switch path) + (a path from the destination's
    switch into it), and the three parts are independent.
    """

    def __init__(self, graph: nx.DiGraph[Node], kind: dict[Node, str | None], server: dict[Node, object]):
        self.graph = graph
        self.usable = False
        self._server = server
        self._switch_of: dict[object, Node] = {}  # server -> the switch its NICs hang off
        self._succ: dict[Node, set[Node]] = {}  # switch -> switches it links to
        self._nics: set[Node] = set()  # server nodes linked to a switch
        hop: set[int] = set()
        self._members: dict[object, list[str]] = {}  # server -> its nodes (named "{server}.{local}")
        for node, srv in server.items():
            if srv is None and kind[node] != "switch":
                return
            if srv is not None:
                if not (isinstance(node, str) and node.startswith(f"{srv}.")):
                    return
                self._members.setdefault(srv, []).append(node)
        for u, nbrs in graph_dicts(graph)._adj.items():
            su = server[u]
            for v, data in nbrs.items():
                sv = server[v]
                if su == sv:
                    if su is None:
                        self._succ.setdefault(u, set()).add(v)
                        hop.add(data[ROUTE_WEIGHT])
                    continue
                if su is not None and sv is not None:
                    return  # two servers joined directly
                srv, nic, switch = (su, u, v) if su is not None else (sv, v, u)
                if kind[nic] != "nic" or self._switch_of.setdefault(srv, switch) != switch:
                    return  # a server reaching the fabric through something else, or two switches (rails)
                self._nics.add(nic)
        if len(hop) > 1:
            return
        self._shapes: dict[object, Shape] = {}  # server -> its shape
        self._names: dict[object, dict[str, Node]] = {}  # server -> local name -> node
        self._templates: dict[Shape, nx.DiGraph[str]] = {}  # shape -> template graph (local names)
        self._inside: dict[tuple[Shape, str, str], list[list[str]]] = {}  # (shape, a, b) -> every shortest path
        self._fabric: dict[tuple[Node, Node], list[list[Node]]] = {}  # sorted shortest switch paths
        self.usable = True

    def shortest(self, src: Node, dst: Node, ecmp: bool) -> list[Node] | None:
        """The shortest path a search would return (with ``ecmp``: the one the pair's
        hash picks), or None where only a search can tell (an end outside every server,
        or a tie a search breaks by its own visiting order)."""
        s, t = self._server.get(src), self._server.get(dst)
        if s is None or t is None:
            return None
        if s == t:
            paths = [self._real(s, p) for p in self._local_paths(s, self._local(s, src), self._local(t, dst))]
            if ecmp and paths:
                return ecmp_choice(src, dst, paths)
            return paths[0] if len(paths) == 1 else None
        if s not in self._switch_of or t not in self._switch_of:
            return None
        heads = self._local_paths(s, self._local(s, src), SWITCH)
        tails = self._local_paths(t, SWITCH, self._local(t, dst))
        middles = self._switch_paths(self._switch_of[s], self._switch_of[t])
        if not heads or not tails or not middles:
            return None
        if len(heads) == len(tails) == 1:
            if len(middles) > 1 and not ecmp:
                return None
            # Every candidate shares the head and the tail, so sorting them (as the hash's
            # choice does) sorts the switch paths, which are sorted already.
            middle = middles[zlib.crc32(f"{src}->{dst}".encode()) % len(middles)] if ecmp else middles[0]
            return self._real(s, heads[0])[:-1] + middle + self._real(t, tails[0])[1:]
        if not ecmp:
            return None
        paths = [self._real(s, h)[:-1] + m + self._real(t, tl)[1:] for h in heads for m in middles for tl in tails]
        return ecmp_choice(src, dst, paths)

    # -- parts, for bundles composed end by end ------------------------------------------

    def server_of(self, node: Node) -> object | None:
        return self._server.get(node)

    def switch_of(self, server: object) -> Node | None:
        return self._switch_of.get(server)

    def head(self, node: Node) -> list[Node] | None:
        """The one shortest path from ``node`` to its server's switch (None: not one)."""
        server = self._server.get(node)
        if server is None or server not in self._switch_of:
            return None
        heads = self._local_paths(server, self._local(server, node), SWITCH)
        return self._real(server, heads[0]) if len(heads) == 1 else None

    def tail(self, node: Node) -> list[Node] | None:
        """The one shortest path from its server's switch to ``node`` (None: not one)."""
        server = self._server.get(node)
        if server is None or server not in self._switch_of:
            return None
        tails = self._local_paths(server, SWITCH, self._local(server, node))
        return self._real(server, tails[0]) if len(tails) == 1 else None

    def switch_paths(self, a: Node, b: Node) -> list[list[Node]]:
        """Every shortest path from switch ``a`` to switch ``b``, in the hash's order."""
        return self._switch_paths(a, b)

    # -- templates ---------------------------------------------------------------------

    @staticmethod
    def _local(server: object, node: Node) -> str:
        name = cast(str, node)  # a member of ``server``: a string (checked in __init__)
        return name[len(str(server)) + 1:]

    def _real(self, server: object, path: list[str]) -> list[Node]:
        names = self._names.get(server)
        if names is None:  # local name -> node, made once per server
            cut = len(str(server)) + 1
            names = self._names[server] = {n[cut:]: n for n in self._members[server]}
            names[SWITCH] = self._switch_of.get(server)
        return [names[n] for n in path]

    def _shape(self, server: object) -> Shape:
        """What a search inside ``server`` sees, in local names: its edges (to its
        switch too) with their weights. (The rules after the search read the real
        nodes' attributes.)"""
        shape = self._shapes.get(server)
        if shape is None:
            dicts = graph_dicts(self.graph)
            adj, pred, owner = dicts._adj, dicts._pred, self._server
            cut = len(str(server)) + 1
            edges: list[tuple[str, str, int]] = []
            for n in self._members[server]:
                name = n[cut:]
                for v, data in adj[n].items():
                    # v is the server's switch or one of its members (a string)
                    edges.append((name, SWITCH if owner[v] is None else cast(str, v)[cut:], data[ROUTE_WEIGHT]))
                if owner[n] is not None and n in self._nics:
                    edges.extend((SWITCH, name, data[ROUTE_WEIGHT]) for u, data in pred[n].items() if owner[u] is None)
            edges.sort()
            shape = self._shapes[server] = tuple(edges)
            if shape not in self._templates:
                template: nx.DiGraph[str] = nx.DiGraph()
                for u, v, w in shape:
                    template.add_edge(u, v, **{ROUTE_WEIGHT: w})
                self._templates[shape] = template
        return shape

    def _local_paths(self, server: object, a: str, b: str) -> list[list[str]]:
        """Every shortest path from ``a`` to ``b`` in the server's template, sorted."""
        shape = self._shape(server)
        key = (shape, a, b)
        paths = self._inside.get(key)
        if paths is None:
            template = self._templates[shape]
            try:
                paths = sorted(nx.all_shortest_paths(template, a, b, weight=ROUTE_WEIGHT))
            except (nx.NetworkXNoPath, nx.NodeNotFound):
                paths = []
            self._inside[key] = paths
        return paths

    def _switch_paths(self, a: Node, b: Node) -> list[list[Node]]:
        """Every shortest path from switch ``a`` to switch ``b``, sorted as the hash's
        choice sorts them: one hop where they are linked, else two through each common
        neighbour (every switch link weighs the same); a search otherwise."""
        key = (a, b)
        paths = self._fabric.get(key)
        if paths is None:
            succ = self._succ
            if a == b:
                paths = [[a]]
            elif b in succ.get(a, ()):
                paths = [[a, b]]
            else:
                paths = [[a, m, b] for m in succ.get(a, ()) if b in succ.get(m, ())]
                if not paths:
                    switches = self.graph.subgraph([n for n, srv in self._server.items() if srv is None])
                    try:
                        paths = list(nx.all_shortest_paths(switches, a, b, weight=ROUTE_WEIGHT))
                    except (nx.NetworkXNoPath, nx.NodeNotFound):
                        paths = []
            paths = self._fabric[key] = sorted(paths, key=lambda p: [str(n) for n in p])
        return paths

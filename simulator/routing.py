"""Routing: which directed edges a transfer between two endpoints crosses.

Rules, in the order they apply:

* **Shortest path by weight.** An NVLink edge weighs 1 and every other edge 2, so
  among routes of equal hop count the NVLink one wins (NCCL prefers NVLink and
  NVSwitch over PCIe). An edge *into* a GPU weighs :data:`GPU_ENTRY_PENALTY` more, so
  a route enters a GPU only as its destination: GPUs do not forward traffic (NCCL
  never routes through a third GPU), unless no other path exists at all.
* **Equal-cost multipath.** When the graph says ``ecmp`` (a leaf-spine fabric), a pair
  takes one of its equal-cost shortest paths chosen by a stable hash of the pair, as
  switches hash flows onto uplinks; different pairs spread over the spines.
* **Staging through host memory.** A GPU whose ``p2p`` attribute is False cannot copy
  to another GPU of its node over PCIe, and one whose ``gdr`` attribute is False
  cannot exchange data with a NIC directly (no GPUDirect RDMA). Such a route is split
  at the GPU's ``host`` (CPU and its memory): GPU -> host, then host -> destination,
  and symmetrically at the receiving end. NVLink traffic is never staged.
* **Rails.** In a server with several NICs, GPU k of the server leaves and enters it
  through NIC k x NICs / GPUs (its own NIC on a DGX A100/H100, the NIC of its PCIe
  switch on a DGX-1), as NCCL maps GPUs to NICs, rather than through whichever NIC the
  shortest path happens to reach first.

**Structure, for speed.** Clusters are many identical servers hung off a fabric of
switches. Where the graph has that shape (:class:`simulator.server_templates.ServerTemplates`
checks it), a route is found without searching the whole graph: the shortest paths
inside a server (and out to its switches) are searched once per server *shape* and
translated per server, and the switches between two servers' switches are read from
the switch graph (one hop, or two through a common neighbour: the spine choice of a
leaf-spine), also where a server's NICs hang off several switches (rails). Every
shortest path of the whole graph is such a composition, so the equal-cost set, and
hence the ECMP hash's choice, is the same as a search's; where shortest paths tie
without ECMP (several NICs of a server on one switch) the templates replay where the
bidirectional search would meet. Where neither settles a pair (a tie inside a server
that a path through the fabric joins, a meeting the replay cannot place, or another
shape of graph) the router searches as before.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from heapq import heappop, heappush
from itertools import count, repeat
from operator import eq

import networkx as nx
import numpy as np

from topologies.arrays import GraphArrays

from .errors import TopologyError
from .server_shapes import ROUTE_WEIGHT, ecmp_choice, graph_dicts
from .server_templates import ServerTemplates

Node = Hashable

# Large enough that any path entering a GPU twice is longer than any sane path.
GPU_ENTRY_PENALTY = 1000
# Pairs sharing one end at least this often are routed by one search from that end.
PREFETCH_FANIN = 8


class Router:
    """Computes and caches node paths on a cluster graph."""

    def __init__(self, graph: nx.DiGraph[Node], arrays: GraphArrays | None = None):
        """``arrays``: the graph's (:class:`topologies.arrays.GraphArrays`), where the
        caller has read them already."""
        self.graph = graph
        self.ecmp = bool(graph.graph.get("ecmp", False))
        arrays = GraphArrays(graph) if arrays is None else arrays
        kinds, servers = arrays.node_values("kind"), arrays.node_values("server")
        self._kind: dict[Node, str | None] = dict(zip(arrays.nodes, kinds))
        self._server: dict[Node, object] = dict(zip(arrays.nodes, servers))
        gpus: dict[object, list[Node]] = {}  # server -> its GPUs, and its NICs
        nics: dict[object, list[Node]] = {}
        # GPUs whose traffic may be staged through host memory (p2p or gdr off).
        self._stagers: set[Node] = set()
        for node, what, server, data in zip(arrays.nodes, kinds, servers, arrays.node_data):
            if what == "gpu":
                gpus.setdefault(server, []).append(node)
                if not (data.get("p2p", True) and data.get("gdr", True)):
                    self._stagers.add(node)
            elif what == "nic":
                nics.setdefault(server, []).append(node)
        self.weights = _route_weights(arrays, kinds)
        for data, weight in zip(arrays.edge_data, self.weights.tolist()):
            data[ROUTE_WEIGHT] = weight
        self._paths: dict[tuple[Node, Node], list[Node]] = {}
        self._rail_nic = self._rail_nics(gpus, nics)
        self._adjacency: dict[bool, dict[Node, list[tuple[Node, int]]]] = {}
        templates = ServerTemplates(graph, self._kind, self._server, arrays, self.weights)
        self._templates = templates if templates.usable else None
        # Where every route between two servers is (a head to the source's switch) +
        # (a switch path) + (a tail into the destination): no rail or staging rule
        # changes the composed path afterwards.
        self.templates = self._templates if not self._rail_nic and not self._stagers else None

    @property
    def kinds(self) -> dict[Node, str | None]:
        """Node -> its ``kind`` attribute."""
        return self._kind

    @property
    def rail_nics(self) -> dict[Node, Node]:
        """GPU -> the NIC its traffic leaves and enters its server by (in servers with
        more than one NIC; empty otherwise)."""
        return self._rail_nic

    def _rail_nics(self, gpus: dict[object, list[Node]], nics: dict[object, list[Node]]) -> dict[Node, Node]:
        """GPU -> its NIC, in servers with more than one NIC (``gpus`` and ``nics``: each
        server's, in the graph's order)."""
        attributes = graph_dicts(self.graph)._node
        rails = {}
        for server, members in gpus.items():
            own = nics.get(server, [])
            if len(own) <= 1:
                continue
            own = sorted(own, key=lambda n: (attributes[n].get("rail", 0), str(n)))
            for k, gpu in enumerate(members):
                rails[gpu] = own[k * len(own) // len(members)]
        return rails

    def path(self, src: Node, dst: Node) -> list[Node]:
        """Node path from ``src`` to ``dst`` after all rules; cached."""
        key = (src, dst)
        cached = self._paths.get(key)
        if cached is None:
            cached = self._paths[key] = self._staged(src, dst, self._rails(src, dst, self._shortest(src, dst)))
        return cached

    def prefetch(self, pairs: Sequence[tuple[Node, Node]]) -> None:
        """Route many pairs that share an end with one search from that end (incast to,
        or broadcast from, a server) instead of one search per pair; the search starts
        from whichever side has fewer distinct nodes. With ECMP the search keeps every
        shortest path (a predecessor map), so each pair still takes the one its hash
        picks among all of them, exactly as :meth:`path` would."""
        if self._templates is not None:
            return  # composing routes from templates is cheaper than any search
        missing = [p for p in pairs if p not in self._paths and p[0] != p[1]]
        if len(missing) < PREFETCH_FANIN:
            return
        from_targets = len({d for _, d in missing}) <= len({s for s, _ in missing})
        graph = self.graph.reverse(copy=False) if from_targets else self.graph
        groups: dict[Node, list[Node]] = {}
        for src, dst in missing:
            root, leaf = (dst, src) if from_targets else (src, dst)
            groups.setdefault(root, []).append(leaf)
        for root, leaves in groups.items():
            if len(leaves) < PREFETCH_FANIN:
                continue
            if self.ecmp:
                try:
                    pred, _dist = nx.dijkstra_predecessor_and_distance(graph, root, weight=ROUTE_WEIGHT)
                except nx.NodeNotFound:
                    continue  # routed (and refused) pair by pair
                for leaf in leaves:
                    if leaf not in pred:
                        continue
                    src, dst = (leaf, root) if from_targets else (root, leaf)
                    found = _all_paths_to(pred, root, leaf)
                    if from_targets:  # searched from the destination: paths run dst -> src
                        found = [p[::-1] for p in found]
                    path = ecmp_choice(src, dst, found)
                    self._paths[(src, dst)] = self._staged(src, dst, self._rails(src, dst, path))
                continue
            if root not in self.graph:
                continue
            parent = self._search_tree(root, reverse=from_targets)
            for leaf in leaves:
                if leaf in parent:
                    src, dst = (leaf, root) if from_targets else (root, leaf)
                    path = [leaf]  # leaf back to root, along the search tree
                    while path[-1] != root:
                        path.append(parent[path[-1]])
                    if not from_targets:
                        path.reverse()
                    self._paths[(src, dst)] = self._staged(src, dst, self._rails(src, dst, path))

    def _search_tree(self, root: Node, reverse: bool) -> dict[Node, Node | None]:
        """Shortest-path tree from ``root`` (on the reversed graph if ``reverse``): each
        reached node's parent. The same search as networkx's single-source Dijkstra
        (same heap order, same tie rule), so every path is the one it returns, on
        integer weights read once instead of through a weight function per edge."""
        adjacency = self._adjacency.get(reverse)
        if adjacency is None:
            dicts = graph_dicts(self.graph)
            view = dicts._pred if reverse else dicts._adj
            adjacency = self._adjacency[reverse] = {
                v: [(u, data[ROUTE_WEIGHT]) for u, data in nbrs.items()] for v, nbrs in view.items()
            }
        parent: dict[Node, Node | None] = {root: None}
        dist: dict[Node, int] = {}
        seen = {root: 0}
        tick = count()
        fringe = [(0, next(tick), root)]
        while fringe:
            d, _, v = heappop(fringe)
            if v in dist:
                continue
            dist[v] = d
            for u, w in adjacency[v]:
                vu = d + w
                if u in dist:
                    continue
                if u not in seen or vu < seen[u]:
                    seen[u] = vu
                    heappush(fringe, (vu, next(tick), u))
                    parent[u] = v
        return parent

    # -- rules ----------------------------------------------------------------------

    def _shortest(self, src: Node, dst: Node) -> list[Node]:
        if src == dst:
            return [src]
        if self._templates is not None:
            path = self._templates.shortest(src, dst, self.ecmp)
            if path is not None:
                return path
        try:
            if not self.ecmp:
                return nx.bidirectional_dijkstra(self.graph, src, dst, weight=ROUTE_WEIGHT)[1]
            paths = list(nx.all_shortest_paths(self.graph, src, dst, weight=ROUTE_WEIGHT))
        except (nx.NetworkXNoPath, nx.NodeNotFound) as exc:
            raise TopologyError(f"no route from {src!r} to {dst!r} in the cluster graph") from exc
        return ecmp_choice(src, dst, paths)

    def _rails(self, src: Node, dst: Node, path: list[Node]) -> list[Node]:
        """Send a GPU's traffic out of (and into) its server through its own NIC."""
        rails = self._rail_nic
        if not rails:
            return path
        kind, server_of = self._kind, self._server
        waypoints = [src]
        for end in (src, dst):
            rail = rails.get(end)
            if rail is None:
                continue
            server = server_of[end]
            leaves = any(kind[v] == "nic" and server_of[v] == server for v in path)
            if leaves and rail not in path:
                waypoints.append(rail)
        if len(waypoints) == 1:
            return path
        waypoints.append(dst)
        via = [src]
        for a, b in zip(waypoints, waypoints[1:]):
            via += self._shortest(a, b)[1:]
        return via if len(set(via)) == len(via) else path

    def _staged(self, src: Node, dst: Node, path: list[Node]) -> list[Node]:
        """Split ``path`` at the host of an end that may not use it directly."""
        if path[0] not in self._stagers and path[-1] not in self._stagers:
            return path
        host = self._staging_host(path)
        if host is not None:
            return self.path(src, host) + self.path(host, dst)[1:]
        host = self._staging_host(path[::-1])
        if host is not None:
            return self.path(src, host) + self.path(host, dst)[1:]
        return path

    def _staging_host(self, path: Sequence[Node]) -> Node | None:
        """The host the GPU at ``path[0]`` must stage through, or None."""
        if self._kind[path[0]] != "gpu":
            return None
        nodes = self.graph.nodes
        end = nodes[path[0]]
        if end.get("p2p", True) and end.get("gdr", True):
            return None
        host: Node | None = end.get("host")
        if host is None or len(path) < 2:
            return None
        if self.graph.edges[path[0], path[1]].get("link") == "nvlink" or self.graph.edges[path[1], path[0]].get(
            "link"
        ) == "nvlink":
            return None
        for node in path[1:]:
            if node == host:
                return None
            kind = self._kind[node]
            if kind == "gpu" and not end.get("p2p", True):
                return host
            if kind == "nic":  # the data leaves the node here
                return None if end.get("gdr", True) else host
        return None


def _route_weights(arrays: GraphArrays, kinds: list[str | None]) -> np.ndarray:
    """Each edge's route weight (see the module doc): 1 for NVLink, else 2, plus
    GPU_ENTRY_PENALTY into a GPU; one array operation per rule, not a loop per edge."""
    nvlink = np.fromiter(map(eq, arrays.edge_values("link"), repeat("nvlink")), dtype=bool,
                         count=len(arrays.edge_data))
    into_gpu = np.fromiter(map(eq, kinds, repeat("gpu")), dtype=bool, count=len(kinds))[arrays.targets]
    return np.where(nvlink, 1, 2) + np.where(into_gpu, GPU_ENTRY_PENALTY, 0)


def _all_paths_to(pred: dict[Node, list[Node]], root: Node, leaf: Node) -> list[list[Node]]:
    """Every path root -> leaf in a shortest-path predecessor map (each a node list)."""
    out: list[list[Node]] = []
    stack: list[tuple[Node, list[Node]]] = [(leaf, [leaf])]
    while stack:
        node, tail = stack.pop()
        if node == root:
            out.append(tail[::-1])
            continue
        for prev in pred[node]:
            if prev not in tail:
                stack.append((prev, tail + [prev]))
    return out

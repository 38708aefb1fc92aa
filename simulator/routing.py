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
"""

from __future__ import annotations

import zlib
from collections.abc import Hashable, Sequence

import networkx as nx

from .errors import TopologyError

Node = Hashable

# Large enough that any path entering a GPU twice is longer than any sane path.
GPU_ENTRY_PENALTY = 1000
# Pairs sharing one end at least this often are routed by one search from that end.
PREFETCH_FANIN = 8
_WEIGHT = "route_weight"


class Router:
    """Computes and caches node paths on a cluster graph."""

    def __init__(self, graph: nx.DiGraph):
        self.graph = graph
        self.ecmp = bool(graph.graph.get("ecmp", False))
        for _u, v, data in graph.edges(data=True):
            base = 1 if data.get("link") == "nvlink" else 2
            data[_WEIGHT] = base + (GPU_ENTRY_PENALTY if graph.nodes[v].get("kind") == "gpu" else 0)
        self._paths: dict[tuple[Node, Node], list[Node]] = {}
        self._rail_nic = self._rail_nics()

    def _rail_nics(self) -> dict[Node, Node]:
        """GPU -> its NIC, in servers with more than one NIC."""
        gpus: dict[object, list[Node]] = {}
        nics: dict[object, list[Node]] = {}
        for node, data in self.graph.nodes(data=True):
            if data.get("kind") == "gpu":
                gpus.setdefault(data.get("server"), []).append(node)
            elif data.get("kind") == "nic":
                nics.setdefault(data.get("server"), []).append(node)
        rails = {}
        for server, members in gpus.items():
            own = sorted(nics.get(server, []), key=lambda n: (self.graph.nodes[n].get("rail", 0), str(n)))
            if len(own) > 1:
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
        from whichever side has fewer distinct nodes. Not used with ECMP, where each
        pair needs its own set of equal-cost paths."""
        missing = [p for p in pairs if p not in self._paths and p[0] != p[1]]
        if self.ecmp or len(missing) < PREFETCH_FANIN:
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
            paths = nx.single_source_dijkstra_path(graph, root, weight=_WEIGHT)
            for leaf in leaves:
                if leaf in paths:
                    src, dst = (leaf, root) if from_targets else (root, leaf)
                    path = paths[leaf][::-1] if from_targets else paths[leaf]
                    self._paths[(src, dst)] = self._staged(src, dst, self._rails(src, dst, path))

    # -- rules ----------------------------------------------------------------------

    def _shortest(self, src: Node, dst: Node) -> list[Node]:
        if src == dst:
            return [src]
        try:
            if not self.ecmp:
                return nx.bidirectional_dijkstra(self.graph, src, dst, weight=_WEIGHT)[1]
            paths = sorted(nx.all_shortest_paths(self.graph, src, dst, weight=_WEIGHT), key=lambda p: [str(n) for n in p])
        except (nx.NetworkXNoPath, nx.NodeNotFound) as exc:
            raise TopologyError(f"no route from {src!r} to {dst!r} in the cluster graph") from exc
        return paths[zlib.crc32(f"{src}->{dst}".encode()) % len(paths)]

    def _rails(self, src: Node, dst: Node, path: list[Node]) -> list[Node]:
        """Send a GPU's traffic out of (and into) its server through its own NIC."""
        nodes = self.graph.nodes
        waypoints = [src]
        for end in (src, dst):
            rail = self._rail_nic.get(end)
            server = nodes[end].get("server")
            leaves = any(nodes[v].get("kind") == "nic" and nodes[v].get("server") == server for v in path)
            if rail is not None and leaves and rail not in path:
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
        host = self._staging_host(path)
        if host is not None:
            return self.path(src, host) + self.path(host, dst)[1:]
        host = self._staging_host(path[::-1])
        if host is not None:
            return self.path(src, host) + self.path(host, dst)[1:]
        return path

    def _staging_host(self, path: Sequence[Node]) -> Node | None:
        """The host the GPU at ``path[0]`` must stage through, or None."""
        nodes = self.graph.nodes
        end = nodes[path[0]]
        if end.get("kind") != "gpu" or (end.get("p2p", True) and end.get("gdr", True)):
            return None
        host = end.get("host")
        if host is None or len(path) < 2:
            return None
        if self.graph.edges[path[0], path[1]].get("link") == "nvlink" or self.graph.edges[path[1], path[0]].get(
            "link"
        ) == "nvlink":
            return None
        for node in path[1:]:
            if node == host:
                return None
            kind = nodes[node].get("kind")
            if kind == "gpu" and not end.get("p2p", True):
                return host
            if kind == "nic":  # the data leaves the node here
                return None if end.get("gdr", True) else host
        return None

"""The server graph as a collective library sees it: achievable bandwidths and channel rings.

Before a library moves a byte it looks at the topology: it reaches only a fraction of
each link class's bandwidth (NCCL gets 20 of an NVLink's 25 GB/s), it copies through
host memory where there is no peer-to-peer path (across CPU sockets, GeForce cards),
and it runs several rings in parallel, one per channel, found by searching the server
graph for rings over NVLink only (what NCCL's topology search does on a DGX-1) and
rotated across nodes so that every NIC carries its own channels. This module holds
those graph-side answers (:func:`achievable_scale`, :func:`link_class`,
:func:`nvlink_rings`, :func:`channel_rings`; whether a route is staged through host
memory is read per edge, :attr:`simulator.graph_links.GraphLinks.into_cpu`); the figures come
from :mod:`simulator.collectives.backend` and the costs built on them are in
:mod:`simulator.collectives.cost`.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import networkx as nx

from ..graph_links import BandwidthScale
from ..server_shapes import graph_dicts
from .backend import Backend

Node = Hashable


def achievable_scale(backend: Backend, architecture: str) -> BandwidthScale:
    """The graph's bandwidths as the library achieves them: each link class scaled by its
    achievable fraction, keyed by the backend's content and the architecture. A network
    reads it off the graph itself (no copy); ``.graph(graph)`` gives the scaled copy."""
    return BandwidthScale((backend.model_dump_json(), architecture), _Fractions(backend, architecture))


class _Fractions(dict[str, float]):
    """Link class -> the library's achievable fraction of it, looked up on first use."""

    def __init__(self, backend: Backend, architecture: str):
        super().__init__()
        self._backend, self._architecture = backend, architecture

    def __missing__(self, link: str) -> float:
        fraction = self[link] = self._backend.achievable_fraction(link, self._architecture)
        return fraction


def link_class(graph: nx.DiGraph[Node], path: Sequence[Node]) -> str:
    """NCCL's hardware class of a path: ``net`` if it leaves the server, ``nvlink`` if
    it is NVLink only, else ``pci`` (PCIe, host staging)."""
    links = {graph.edges[u, v].get("link") for u, v in zip(path, path[1:])}
    if "network" in links:
        return "net"
    if links and links <= {"nvlink"}:
        return "nvlink"
    return "pci"


def _nvlink_capacity(graph: nx.DiGraph[Node], gpus: Sequence[Node]) -> dict[tuple[Node, Node], int]:
    """Direct GPU-to-GPU NVLink edges among ``gpus`` with their number of links."""
    members = set(gpus)
    # graph.edges(data=True) in its order, over the members' successors only: a view
    # over every edge of a 65,536-GPU graph cost a tenth of a second.
    adjacency = graph_dicts(graph)._adj
    return {
        (u, v): int(data.get("links", 1))
        for u in (n for n in adjacency if n in members)
        for v, data in adjacency[u].items()
        if v in members and data.get("link") == "nvlink"
    }


def nvlink_rings(graph: nx.DiGraph[Node], gpus: Sequence[Node], max_rings: int) -> list[list[Node]]:
    """Rings through every GPU over direct NVLink edges only, as NCCL's search builds
    one ring per channel on NVLink servers: the largest set of Hamiltonian cycles that
    share no physical link (a doubled link can carry two), each run in both directions
    (a link is full duplex). Empty when no such ring exists (PCIe servers; NVSwitch
    servers, where every GPU pair is one switch away)."""
    n = len(gpus)
    directed = _nvlink_capacity(graph, gpus)
    if n < 3 or not directed or n > 16:
        return []
    index = {g: i for i, g in enumerate(gpus)}
    capacity = {}
    for (u, v), links in directed.items():
        capacity[frozenset((index[u], index[v]))] = links
    cycles = _hamiltonian_cycles(n, capacity, limit=20000)
    best: list[tuple[int, ...]] = []

    def choose(start: int, chosen: list[tuple[int, ...]], left: dict[frozenset[int], int]) -> None:
        nonlocal best
        if len(chosen) > len(best):
            best = list(chosen)
        if 2 * len(best) >= max_rings or len(best) == max(1, sum(left.values()) // n + len(chosen)):
            return
        for c in range(start, len(cycles)):
            edges = [frozenset((a, b)) for a, b in zip(cycles[c], cycles[c][1:] + cycles[c][:1])]
            if all(left[e] > 0 for e in edges):
                for e in edges:
                    left[e] -= 1
                choose(c + 1, chosen + [cycles[c]], left)
                for e in edges:
                    left[e] += 1
            if 2 * len(best) >= max_rings:
                return

    choose(0, [], dict(capacity))
    rings = []
    for cycle in best:
        ring = [gpus[i] for i in cycle]
        rings.append(ring)
        rings.append([ring[0]] + ring[:0:-1])  # the same links the other way round
    return rings[:max_rings]


def _hamiltonian_cycles(n: int, capacity: Mapping[frozenset[int], int], limit: int) -> list[tuple[int, ...]]:
    """Undirected Hamiltonian cycles from vertex 0 (each once: second vertex < last)."""
    neighbours = {i: sorted(j for j in range(n) if frozenset((i, j)) in capacity) for i in range(n)}
    found: list[tuple[int, ...]] = []
    path = [0]
    seen = {0}

    def extend() -> None:
        if len(found) >= limit:
            return
        last = path[-1]
        if len(path) == n:
            if frozenset((last, 0)) in capacity and path[1] < path[-1]:
                found.append(tuple(path))
            return
        for nxt in neighbours[last]:
            if nxt not in seen:
                path.append(nxt)
                seen.add(nxt)
                extend()
                path.pop()
                seen.discard(nxt)

    extend()
    return found


def channel_rings(graph: nx.DiGraph[Node], nodes: Sequence[Sequence[Node]], max_rings: int,
                  rails: Mapping[Node, Node] | None = None) -> list[list[Node]]:
    """The rings of every channel over all ranks, nodes visited in order.

    Inside a node: the NVLink rings where they exist, else the rank order (which goes
    through each PCIe switch and socket in turn). Across nodes NCCL gives every NIC
    (rail) its own channels: ring c enters and leaves each node at a different GPU, so
    its node-to-node hop uses that GPU's NIC. Here the local order is rotated by c
    times GPUs-per-NIC for c = 0 .. NICs-1 (capped at ``max_rings``); NVLink rings are
    rotated onto the NICs that ``rails`` (the router's GPU -> NIC) gives their GPUs."""
    first = list(nodes[0])
    local = nvlink_rings(graph, first, max_rings) if len(first) > 2 else []
    if len(nodes) > 1 and local:
        local = _rings_through_nics(rails or {}, local)
    elif len(nodes) > 1:
        server = graph.nodes[first[0]].get("server")
        nics = sum(1 for d in graph_dicts(graph)._node.values() if d.get("kind") == "nic" and d.get("server") == server)
        k = max(1, min(nics, len(first), max_rings))
        shift = len(first) // k
        local = [first[c * shift:] + first[:c * shift] for c in range(k)]
    if not local:
        return [[g for node in nodes for g in node]]
    rings = []
    for ring in local:
        order = [first.index(g) for g in ring]
        rings.append([node[i] for node in nodes for i in order])
    return rings


def _rings_through_nics(nic_of: Mapping[Node, Node], rings: list[list[Node]]) -> list[list[Node]]:
    """NVLink rings rotated so that, across nodes, channel c enters and leaves each node
    through NIC c mod k (k NICs), as NCCL's search gives every NIC its own channels: it
    starts and ends a channel's intra-node path at GPUs next to that channel's NIC. A
    ring is rotated to start at a GPU of that NIC whose ring predecessor (the GPU that
    sends to the next node) shares the NIC where one exists. Without this every ring
    would enter each node at the first GPU and one NIC would carry all inbound traffic.
    The ring count is cut to a multiple of k so that every NIC carries as many channels
    (NCCL's channels are equal shares of the bytes, so one NIC with an extra channel
    would pace them all)."""
    nics = sorted({nic_of[g] for g in rings[0] if g in nic_of}, key=str)
    k = len(nics)
    if k < 2:
        return rings
    count = len(rings) // k * k or len(rings)
    out = []
    for c, ring in enumerate(rings[:count]):
        target = nics[c % k]
        starts = [i for i, g in enumerate(ring) if nic_of.get(g) == target]
        if not starts:
            out.append(ring)
            continue
        paired = [i for i in starts if nic_of.get(ring[i - 1]) == target]
        i = (paired or starts)[0]
        out.append(ring[i:] + ring[:i])
    return out

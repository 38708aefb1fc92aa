"""Small helpers for annotated cluster graphs."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import networkx as nx


def add_duplex_link(
    graph: nx.DiGraph[Any],
    u: Hashable,
    v: Hashable,
    *,
    bandwidth: float,
    latency: float,
    link: str,
    **attrs: object,
) -> None:
    """Join ``u`` and ``v`` by a full-duplex link: one edge each way, each with the
    full ``bandwidth`` (bytes/s) and ``latency`` (s). Extra keyword arguments become
    attributes of both edges (``links=2``: the edge stands for two physical links
    ganged together, as some NVLink GPU pairs are)."""
    if bandwidth <= 0:
        raise ValueError(f"link {u!r}-{v!r}: bandwidth must be > 0, got {bandwidth}")
    if latency < 0:
        raise ValueError(f"link {u!r}-{v!r}: latency must be >= 0, got {latency}")
    for a, b in ((u, v), (v, u)):
        graph.add_edge(a, b, bandwidth=float(bandwidth), latency=float(latency), link=link, **attrs)


# Attribute values a copy may share between graphs (immutable).
_SCALARS = (str, int, float, bool, type(None))


def copy_graph(graph: nx.DiGraph[Any], bandwidth_scale: Mapping[Any, float] | None = None) -> nx.DiGraph[Any]:
    """``graph.copy()``, written straight into networkx's dicts: the same graph
    attributes, nodes in the same order with copies of their attribute dicts, and
    successors and predecessors in the order ``copy`` gives (predecessors in the order
    the edges are met walking the successors), each edge one new attribute dict
    shared by both ends. A few times faster on a graph of 100,000 nodes.

    ``bandwidth_scale``: where given, each copied edge that has a ``link`` kind gets its
    ``bandwidth`` times ``bandwidth_scale[link]`` (in the same walk: a second walk over
    200,000 edges costs a tenth of a second)."""
    out: nx.DiGraph[Any] = graph.__class__()
    out.graph.update(graph.graph)
    source: Any = graph  # networkx's dicts (internals its type stubs do not declare)
    node = {n: d.copy() for n, d in source._node.items()}
    succ: dict[Any, dict[Any, dict[str, Any]]] = {n: {} for n in node}
    pred: dict[Any, dict[Any, dict[str, Any]]] = {n: {} for n in node}
    for u, nbrs in source._adj.items():
        out_of_u = succ[u]
        for v, data in nbrs.items():
            copied = out_of_u[v] = pred[v][u] = data.copy()
            if bandwidth_scale is not None:
                link = copied.get("link")
                if link is not None:
                    copied["bandwidth"] = copied["bandwidth"] * bandwidth_scale[link]
    target: Any = out
    target._node, target._adj, target._pred = node, succ, pred  # (networkx resets its cached views)
    return out


class ServerStamp:
    """A server built once (under ``prefix``) and stamped into a graph under other
    prefixes: the same nodes, edges and attribute dicts, in the same order, with every
    name (and every string attribute naming a node of the server or the server
    itself) carried over to the new prefix. What the builder would give, at a fraction
    of its cost: ``topologies.cluster`` uses it where building a second server and
    stamping the first agree exactly."""

    def __init__(self, server: nx.DiGraph[Any], prefix: str):
        source: Any = server
        self.prefix = prefix
        self.usable = all(isinstance(n, str) and n.startswith(f"{prefix}.") for n in source._node)
        cut = len(prefix)
        self.suffixes = [n[cut:] for n in source._node] if self.usable else []
        number = {n: i for i, n in enumerate(source._node)}
        self.nodes = [self._split(d) for d in source._node.values()]
        self.succ = [[(number[v], *self._split(d)) for v, d in nbrs.items()] for nbrs in source._adj.values()]
        self.pred = [[number[u] for u in nbrs] for nbrs in source._pred.values()]
        self.plain_edges = not any(renamed for edges in self.succ for _, _, renamed in edges)
        self.graph_attributes = dict(server.graph)

    def _split(self, attributes: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        """An attribute dict and its (key, suffix) pairs that name the server or its nodes."""
        renamed = []
        for key, value in attributes.items():
            if not isinstance(value, _SCALARS):
                self.usable = False  # a mutable value would be shared between servers
            elif isinstance(value, str) and (value == self.prefix or value.startswith(f"{self.prefix}.")):
                renamed.append((key, value[len(self.prefix):]))
        return attributes, renamed

    def rename(self, name: str, prefix: str) -> str:
        """``name`` (of the stamped server) under ``prefix``."""
        return prefix + name[len(self.prefix):]

    def stamp(self, graph: nx.DiGraph[Any], prefix: str) -> None:
        """Add the server under ``prefix`` to ``graph`` (none of its names there yet)."""
        target: Any = graph
        node, succ, pred = target._node, target._adj, target._pred
        names = [prefix + suffix for suffix in self.suffixes]
        if not node.keys().isdisjoint(names):
            raise ValueError(f"server {prefix!r}: its nodes are in the graph already")
        for name, (attributes, renamed) in zip(names, self.nodes):
            node[name] = _renamed(attributes, renamed, prefix)
        # Each node's successors, then its predecessors (the same edge dicts), found in
        # this server's own list rather than in the graph's dicts of every node.
        made = []
        for name, edges in zip(names, self.succ):
            if self.plain_edges:
                out_of = {names[j]: attributes.copy() for j, attributes, _ in edges}
            else:
                out_of = {names[j]: _renamed(attributes, renamed, prefix) for j, attributes, renamed in edges}
            succ[name] = out_of
            made.append(out_of)
        for name, sources in zip(names, self.pred):
            pred[name] = {names[i]: made[i][name] for i in sources}
        graph.graph.update(self.graph_attributes)


def _renamed(attributes: dict[str, Any], renamed: list[tuple[str, str]], prefix: str) -> dict[str, Any]:
    """A copy of ``attributes`` with each (key, suffix) of ``renamed`` set to prefix + suffix."""
    data = attributes.copy()
    for key, suffix in renamed:
        data[key] = prefix + suffix
    return data


def same_graph(a: nx.DiGraph[Any], b: nx.DiGraph[Any]) -> bool:
    """Whether two graphs hold the same attributes, nodes, successors and predecessors,
    each in the same order (``==`` on graphs compares neither)."""
    def listed(graph: Any) -> tuple[list[Any], ...]:
        return (list(graph.graph.items()), [(n, list(d.items())) for n, d in graph._node.items()],
                [(u, [(v, list(d.items())) for v, d in nbrs.items()]) for u, nbrs in graph._adj.items()],
                [(v, list(nbrs)) for v, nbrs in graph._pred.items()])
    return listed(a) == listed(b)

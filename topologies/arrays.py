"""A directed graph's nodes and edges as flat lists and arrays, for speed.

At 65,536 GPUs a cluster graph has about 100,000 nodes and 200,000 edges, and a Python
loop that touches every edge costs a tenth of a second or more. These readings walk
networkx's dicts with C-level iteration (``map``, ``zip``, ``itertools.chain``,
``np.fromiter``) instead, each in the graph's own order: nodes as inserted, edges node
by node in each node's successor order (what ``graph.edges`` lists), predecessors node
by node in each node's predecessor order.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Mapping, Sequence
from itertools import chain
from operator import itemgetter, methodcaller
from typing import Any, overload

import networkx as nx
import numpy as np

Node = Hashable


class GraphArrays:
    """Nodes and edges of ``graph`` as lists and numpy arrays, read once (the graph is not
    changed afterwards). Edge ``e`` is the ``e``-th of ``graph.edges``."""

    def __init__(self, graph: nx.DiGraph[Any]):
        dicts: Any = graph  # networkx's dicts (internals its type stubs do not declare)
        self._adj: dict[Node, dict[Node, dict[str, Any]]] = dicts._adj
        self._pred: dict[Node, dict[Node, dict[str, Any]]] = dicts._pred
        self.nodes: list[Node] = list(self._adj)
        self.node_data: list[dict[str, Any]] = _in_order(dicts._node, self.nodes)
        self.index: dict[Node, int] = dict(zip(self.nodes, range(len(self.nodes))))
        self.out_degree = np.fromiter(map(len, self._adj.values()), dtype=np.int64, count=len(self.nodes))
        # Where each node's edges start in the edge numbering.
        self.first_edge = np.concatenate([[0], np.cumsum(self.out_degree)]).astype(np.int64)
        self.edge_data: list[dict[str, Any]] = list(chain.from_iterable(map(dict.values, self._adj.values())))
        self.targets = self.indices(chain.from_iterable(self._adj.values()), len(self.edge_data))
        self.sources = np.repeat(np.arange(len(self.nodes), dtype=np.int64), self.out_degree)
        # (u, v) of each edge, and u -> v -> its number, made as asked for (at 65,536 GPUs
        # a tuple per edge and a dict per node cost a tenth of a second; a run reads few).
        self.edges = EdgeList(self)
        self.edge_id = EdgeNumbers(self)
        self._edge_values: dict[str, list[Any]] = {}
        self._node_values: dict[str, list[Any]] = {}

    def indices(self, nodes: Any, count: int = -1) -> np.ndarray:
        """Each of ``nodes`` (an iterable) by its number."""
        return np.fromiter(map(self.index.__getitem__, nodes), dtype=np.int64, count=count)

    def node_values(self, key: str) -> list[Any]:
        """Each node's attribute ``key`` (None where it has none); read once, shared: not
        to be changed."""
        return _attribute(self._node_values, self.node_data, key)

    def edge_values(self, key: str) -> list[Any]:
        """Each edge's attribute ``key`` (None where it has none); read once, shared: not
        to be changed."""
        return _attribute(self._edge_values, self.edge_data, key)

    def edge_column(self, key: str) -> np.ndarray:
        """Each edge's attribute ``key`` (which every edge has) as floats."""
        return np.fromiter(map(itemgetter(key), self.edge_data), dtype=float, count=len(self.edge_data))

    def predecessors(self) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
        """Every node's predecessors, node after node in its predecessor order: how many
        each node has, their numbers, and the attributes of each such edge."""
        preds = _in_order(self._pred, self.nodes)
        counts = np.fromiter(map(len, preds), dtype=np.int64, count=len(preds))
        data = list(chain.from_iterable(map(dict.values, preds)))
        return counts, self.indices(chain.from_iterable(preds), len(data)), data


class EdgeList(Sequence[tuple[Node, Node]]):
    """(u, v) of every edge of a :class:`GraphArrays`, in its numbering."""

    def __init__(self, arrays: GraphArrays):
        self._nodes, self._sources, self._targets = arrays.nodes, arrays.sources, arrays.targets

    @overload
    def __getitem__(self, e: int) -> tuple[Node, Node]: ...
    @overload
    def __getitem__(self, e: slice) -> list[tuple[Node, Node]]: ...

    def __getitem__(self, e: int | slice) -> tuple[Node, Node] | list[tuple[Node, Node]]:
        if isinstance(e, slice):
            return list(zip(self._named(self._sources[e]), self._named(self._targets[e])))
        return self._nodes[self._sources[e]], self._nodes[self._targets[e]]

    def __iter__(self) -> Iterator[tuple[Node, Node]]:
        return zip(self._named(self._sources), self._named(self._targets))

    def __len__(self) -> int:
        return len(self._sources)

    def _named(self, numbers: np.ndarray) -> Iterator[Node]:
        return map(self._nodes.__getitem__, numbers.tolist())


class EdgeNumbers(Mapping[Node, dict[Node, int]]):
    """u -> v -> the number of edge (u, v) in a :class:`GraphArrays`; each node's dict
    made the first time it is asked for."""

    def __init__(self, arrays: GraphArrays):
        self._arrays = arrays
        self._made: dict[Node, dict[Node, int]] = {}

    def __getitem__(self, u: Node) -> dict[Node, int]:
        found = self._made.get(u)
        if found is None:
            arrays = self._arrays
            start = int(arrays.first_edge[arrays.index[u]])
            successors = arrays._adj[u]
            found = self._made[u] = dict(zip(successors, range(start, start + len(successors))))
        return found

    def first(self, u: Node) -> int | None:
        """The number of ``u``'s first edge (None: it has none), without making its dict."""
        arrays = self._arrays
        i = arrays.index[u]
        return int(arrays.first_edge[i]) if arrays.out_degree[i] else None

    def __iter__(self) -> Iterator[Node]:
        return iter(self._arrays.nodes)

    def __len__(self) -> int:
        return len(self._arrays.nodes)


def _attribute(cache: dict[str, list[Any]], data: list[dict[str, Any]], key: str) -> list[Any]:
    """Attribute ``key`` of every dict in ``data`` (None where absent), kept in ``cache``."""
    found = cache.get(key)
    if found is None:
        found = cache[key] = list(map(methodcaller("get", key), data))
    return found


def _in_order(values: dict[Node, Any], nodes: list[Node]) -> list[Any]:
    """``values[n]`` for each of ``nodes``: the dict's values as they are where its keys
    are ``nodes`` in order (networkx keeps its node, successor and predecessor dicts in
    one order; compared first, one pointer per node), else looked up node by node."""
    if list(values) == nodes:
        return list(values.values())
    return list(map(values.__getitem__, nodes))


def numbered(values: list[Any]) -> np.ndarray:
    """Each of ``values`` as a number: equal values the same (in order of first
    appearance), None -1."""
    numbers = dict(zip(dict.fromkeys(values), range(len(values))))
    numbers[None] = -1
    return np.fromiter(map(numbers.__getitem__, values), dtype=np.int64, count=len(values))


class RunKeys:
    """Keys of runs of nodes (a server's members, numbered one after another) that are
    equal only where what the runs see is: per member, in the graph's order, its
    successors and its predecessors, each by its place in the run (-1: outside it),
    with the edge's ``weight``. Read from the graph's arrays for all runs at once; a
    key is then a few slices of them, where the tuples of names and weights a
    server's shape is made of cost a third of a second at 65,536 GPUs."""

    def __init__(self, arrays: GraphArrays, owner: np.ndarray, weight: str):
        """``owner``: each node's run as a number (-1: none); ``weight``: the edge
        attribute compared (every edge has it)."""
        self._index = arrays.index
        count = len(arrays.nodes)
        # Each node's first node of the run of its owner that it is in.
        starts = np.flatnonzero(np.diff(owner, prepend=owner[:1] - 1))
        run_start = np.zeros(count, dtype=np.int64)
        run_start[starts] = starts
        run_start = np.maximum.accumulate(run_start)
        self._out, self._first_edge = arrays.out_degree, arrays.first_edge
        self._succ = _local(owner, run_start, arrays.targets, arrays.sources)
        self._succ_weights = np.fromiter(map(itemgetter(weight), arrays.edge_data), dtype=float,
                                         count=len(arrays.edge_data))
        self._in, pred_sources, pred_data = arrays.predecessors()
        self._first_pred = np.concatenate([[0], np.cumsum(self._in)]).astype(np.int64)
        self._pred = _local(owner, run_start, pred_sources, np.repeat(np.arange(count), self._in))
        self._pred_weights = np.fromiter(map(itemgetter(weight), pred_data), dtype=float, count=len(pred_data))

    def key(self, members: Sequence[Node]) -> bytes | None:
        """The key of the run of ``members`` (in the graph's order); None where they are
        not numbered one after another."""
        a, b = self._index[members[0]], self._index[members[-1]] + 1
        if b - a != len(members):
            return None
        ea, eb = self._first_edge[a], self._first_edge[b]
        pa, pb = self._first_pred[a], self._first_pred[b]
        numbers = (self._out[a:b], self._succ[ea:eb], self._in[a:b], self._pred[pa:pb])
        return np.concatenate(numbers).tobytes() + self._succ_weights[ea:eb].tobytes() + \
            self._pred_weights[pa:pb].tobytes()


def _local(owner: np.ndarray, run_start: np.ndarray, far: np.ndarray, near: np.ndarray) -> np.ndarray:
    """Each neighbour ``far`` of a node ``near`` by its place in ``near``'s run, -1 where
    it belongs to another run or none."""
    return np.where((owner[far] == owner[near]) & (owner[near] >= 0), far - run_start[near], -1)

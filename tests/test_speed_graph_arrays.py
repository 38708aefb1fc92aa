"""The array readings that make a 65,536-GPU graph cheap to route on (issue #19) give
exactly what the per-edge Python loops gave: a graph's edges, numbers and
predecessors (topologies.arrays.GraphArrays); servers of one key have one shape
(RunKeys: built once per key instead of per server); servers found by runs of nodes;
a single group's max-min rate in numpy; the edge index of flow groups built lazily."""

from __future__ import annotations

import random
from typing import Any

import networkx as nx
import numpy as np
import pytest

from simulator.flows import FlowGroup, GroupsByEdge, edge_neighbours
from simulator.maxmin import EdgeUsage, max_min_rates_python, single_group_rate
from simulator.routing import Router
from simulator.server_shapes import ROUTE_WEIGHT
from topologies import build_cluster
from topologies.arrays import GraphArrays

GB = 1e9


def _cluster(layout: str, nodes: int, fabric: str = "single_switch", **server: Any) -> nx.DiGraph:
    params: dict[str, Any] = {"switch_latency": 1e-6}
    if fabric == "leaf_spine":
        params.update(nodes_per_leaf=2, spines=2)
    return build_cluster(nodes=nodes, gpus_per_node=8, server_layout=layout,
                         server_params={"pcie_bandwidth": 16 * GB, "pcie_latency": 1e-6, **server},
                         nic_bandwidth=12.5 * GB, nic_latency=1e-6, fabric=fabric, fabric_params=params,
                         host_pcie_bandwidth=16 * GB, host_pcie_latency=1e-6).graph


def _shuffled(graph: nx.DiGraph, seed: int) -> nx.DiGraph:
    """``graph`` with its nodes and edges inserted in a random order (servers no longer
    numbered in one run; predecessors in another order than the successors walk)."""
    rnd = random.Random(seed)
    nodes, edges = list(graph.nodes(data=True)), list(graph.edges(data=True))
    rnd.shuffle(nodes)
    rnd.shuffle(edges)
    out: nx.DiGraph = nx.DiGraph()
    out.graph.update(graph.graph)
    out.add_nodes_from(nodes)
    out.add_edges_from((u, v, dict(d)) for u, v, d in edges)
    return out


GRAPHS = {
    "pcie, 2 switches": lambda: _cluster("pcie_tree", 6, pcie_switches=2),
    "dgx1, leaf-spine": lambda: _cluster("dgx1", 6, "leaf_spine"),
    "nvswitch, rails": lambda: _cluster("nvswitch", 4, nvlink_bandwidth=300 * GB),
    "pcie, shuffled": lambda: _shuffled(_cluster("pcie_tree", 6, pcie_switches=2), 1),
}


@pytest.mark.parametrize("name", GRAPHS)
def test_graph_arrays_are_the_graph_read_edge_by_edge(name):
    graph = GRAPHS[name]()
    arrays = GraphArrays(graph)
    assert arrays.nodes == list(graph.nodes) and list(arrays.edges) == list(graph.edges)
    assert [arrays.edges[e] for e in range(len(arrays.edges))] == list(graph.edges) == arrays.edges[:]
    assert [arrays.edge_id[u][v] for u, v in graph.edges] == list(range(graph.number_of_edges()))
    assert [(arrays.nodes[i], arrays.nodes[j]) for i, j in zip(arrays.sources, arrays.targets)] == list(graph.edges)
    assert arrays.edge_values("link") == [d.get("link") for _, _, d in graph.edges(data=True)]
    counts, sources, data = arrays.predecessors()
    assert counts.tolist() == [len(graph.pred[v]) for v in graph.nodes]
    assert [arrays.nodes[i] for i in sources] == [u for v in graph.nodes for u in graph.pred[v]]
    assert all(d is graph.pred[v][u] for (u, v), d in zip(((u, v) for v in graph.nodes for u in graph.pred[v]),
                                                          data))


@pytest.mark.parametrize("name", GRAPHS)
def test_servers_of_one_key_have_one_shape(name):
    graph = GRAPHS[name]()
    templates = Router(graph)._templates
    assert templates is not None
    shapes: dict[Any, Any] = {}
    for server in templates.members:
        key = templates._key(server)
        if key is not None:
            assert shapes.setdefault(key, templates._shape(server)) == templates._shape(server)
    if name != "pcie, shuffled":  # (servers not numbered in one run have no key)
        assert shapes, "servers off one switch, numbered in one run, have keys"


def test_a_server_that_differs_gets_another_key():
    graph = _cluster("pcie_tree", 4, pcie_switches=2)
    graph.edges["n2.gpu0", "n2.pcie0"]["link"] = "nvlink"  # another route weight
    templates = Router(graph)._templates
    assert templates is not None
    keys = {server: templates._key(server) for server in templates.members}
    assert keys["n1"] == keys["n3"] != keys["n2"]
    assert templates.template("n1") is templates.template("n3") is not templates.template("n2")
    assert graph.edges["n2.gpu0", "n2.pcie0"][ROUTE_WEIGHT] == 1


def test_members_of_servers_not_numbered_in_one_run():
    graph = _shuffled(_cluster("dgx1", 5), 3)
    templates = Router(graph)._templates
    assert templates is not None
    expected: dict[Any, list[Any]] = {}
    for node, server in graph.nodes(data="server"):
        if server is not None:
            expected.setdefault(server, []).append(node)
    assert templates.members == expected


def test_one_group_rate_in_numpy_is_the_python_round():
    rnd = random.Random(7)
    capacity = np.array([rnd.choice([0.0, -0.0, -1.0, 5.0, float("inf"), float("nan")]) if rnd.random() < 0.1
                         else rnd.uniform(1e8, 1e11) for _ in range(5000)])
    for _ in range(200):
        edges = rnd.sample(range(len(capacity)), rnd.randint(0, 600))
        usage = EdgeUsage({e: rnd.choice([1, 2, 3, 1e-13]) for e in edges})
        count = rnd.randint(1, 9)
        expected = max_min_rates_python([usage], capacity.tolist(), [count])[0]
        found = single_group_rate(usage, capacity, count)
        assert found == expected or (np.isnan(found) and np.isnan(expected))


def test_groups_by_edge_indexed_late_are_indexed_in_order():
    rnd = random.Random(3)
    groups = [FlowGroup(EdgeUsage({e: 1 for e in rnd.sample(range(40), 6)})) for _ in range(30)]
    eager: dict[int, dict[FlowGroup, None]] = {}
    late = GroupsByEdge()
    for group in groups:
        for e in group.usage.edges:
            eager.setdefault(e, {})[group] = None
        late.add(group)
    assert late._by_edge == {}  # nothing indexed until asked
    late.neighbours()
    assert late._by_edge == eager and [list(v) for v in late._by_edge.values()] == [list(v) for v in eager.values()]
    for group in groups:
        group.flows.append(object())  # (active: neighbours skip groups without flows)
    assert list(late.neighbours()(groups[0])) == list(edge_neighbours(eager)(groups[0]))

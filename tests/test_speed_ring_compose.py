"""Bundles composed shape by shape are the bundles counted route by route, to the bit.

:meth:`simulator.graph_links.GraphLinks.bundle` composes the routes of a large set of
pairs once per route shape and translates them per server
(:func:`simulator.route_product.compose_pairs`), with edge ids by arithmetic where a
server's edges are numbered in one run; :meth:`CollectiveLibrary._ring_topology` reads
the link classes, network latency and staging of the ring's hops from the same
composition. Both must give exactly what counting each pair's own route gives: the
same edge counts in the same order and the same worst latency, on random clusters
(hypothesis, seeded; every shipped layout and fabric, P2P/GPUDirect off, rails) with
their nodes in the builder's order and shuffled (no server numbered in one run), for
rings, random pairs of every kind of end, repeated pairs and a pair from a node to
itself; and whole simulations must not change a bit.
"""

from __future__ import annotations

import json
import random

import networkx as nx
import pytest
from hypothesis import HealthCheck, given, settings

from simulator import graph_links as graph_links_module
from simulator import load_scenario, simulate
from simulator.build import forget_shared_clusters
from simulator.graph_links import GraphLinks
from simulator.route_product import compose_pairs
from tests.test_routing_templates import clusters, sampled_pairs, shuffled


def counted(graph: nx.DiGraph, pairs: tuple[tuple[str, str], ...]) -> tuple[list[tuple[int, int]], float]:
    """Edge counts (in order) and worst latency, route after route, on a fresh GraphLinks."""
    links = GraphLinks(graph)
    mapping: dict[int, int] = {}
    worst = 0.0
    for src, dst in pairs:
        route = links.route(src, dst)
        worst = max(worst, route.latency_s)
        for e in route.edges:
            mapping[e] = mapping.get(e, 0) + 1
    return list(mapping.items()), worst


def pairs_of(graph: nx.DiGraph, rnd: random.Random) -> tuple[tuple[str, str], ...]:
    gpus = [v for v, kind in graph.nodes(data="kind") if kind == "gpu"]
    ring = [(gpus[i], gpus[(i + 1) % len(gpus)]) for i in range(len(gpus))]
    sampled = sampled_pairs(graph, rnd, 60)
    return tuple(ring + sampled + ring[:5] + [(gpus[0], gpus[0])])


def assert_composed_as_counted(graph: nx.DiGraph, seed: int) -> None:
    pairs = pairs_of(graph, random.Random(seed))
    links = GraphLinks(graph)
    composed = compose_pairs(links.router, links.edge_id, links.route, pairs)
    expected_items, expected_worst = counted(graph, pairs)
    if composed is None:
        assert links.router.templates is None
        return
    assert list(composed.usage().items()) == expected_items
    worst = composed.worst_latency(links.latency)
    assert worst == expected_worst and type(worst) is float
    # Each composed row is the pair's own route.
    for where, edges in composed.groups:
        for i, row in zip(where.tolist(), edges.tolist()):
            assert tuple(row) == links.route(*pairs[i]).edges, pairs[i]


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(clusters())
def test_composed_bundles_are_counted_bundles(case):
    graph, seed = case
    assert_composed_as_counted(graph, seed)


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(clusters())
def test_composed_bundles_are_counted_bundles_in_any_node_order(case):
    graph, seed = case
    assert_composed_as_counted(shuffled(graph, random.Random(seed)), seed)


BASE = ["cluster.server.gpus_per_switch=null", "workload.model=resnet50", "simulation.iterations=1",
        "simulation.warmup_iterations=0"]
SIMULATIONS = {
    "pcie-2-switches": ["cluster.nodes=16", "cluster.gpus_per_node=8", "cluster.server.pcie_switches=2"],
    "leaf-spine": ["cluster.nodes=16", "cluster.gpus_per_node=4", "cluster.fabric.topology=leaf_spine",
                   "cluster.fabric.nodes_per_leaf=2", "cluster.fabric.spines=3"],
    "nvswitch": ["cluster.nodes=12", "cluster.gpus_per_node=8", "cluster.server.layout=nvswitch",
                 "cluster.server.pcie_switches=null", "cluster.gpu=A100-SXM4-40GB"],
    "dgx1": ["cluster.nodes=10", "cluster.gpus_per_node=8", "cluster.server.layout=dgx1",
             "cluster.server.pcie_switches=null", "cluster.gpu=V100-SXM2-16GB"],
    "no-p2p": ["cluster.nodes=16", "cluster.gpus_per_node=4", "cluster.server.p2p=false"],
    "auto": ["cluster.nodes=16", "cluster.gpus_per_node=8", "training.strategy=auto"],
    "mpi": ["cluster.nodes=16", "cluster.gpus_per_node=4", "training.collectives.backend=mpi"],
    "geforce": ["cluster.nodes=16", "cluster.gpus_per_node=4", "cluster.gpu=RTX-2080Ti"],
}


@pytest.mark.parametrize("name", sorted(SIMULATIONS))
def test_simulations_do_not_change(name, monkeypatch):
    scenario = load_scenario(None, BASE + SIMULATIONS[name])

    def text() -> str:
        forget_shared_clusters()  # a fresh graph, so fresh routes and bundles
        data = simulate(scenario).to_dict()
        data.pop("version", None)
        data.pop("simulated_events", None)
        return json.dumps(data, sort_keys=True)

    composed = text()
    monkeypatch.setattr(graph_links_module, "COMPOSE_PAIRS", 10**9)  # every bundle route by route
    assert text() == composed

"""Composed routes are the full search's routes, pair by pair, on every shipped layout and fabric.

The router composes a route between servers from per-server templates and the switch
graph (:mod:`simulator.server_templates`), and replays networkx's bidirectional search
where shortest paths tie without ECMP (several NICs per server on one switch). Every
path it returns, after the rail and staging rules, must be the path a router that
searches the whole graph for every pair returns: random clusters (hypothesis, seeded)
over server layouts (pcie_tree, dgx1, nvswitch), NIC counts and placements, sockets,
P2P/GPUDirect off, dedicated parameter-server hosts and fabrics (single switch,
leaf-spine, rail-optimized), on sampled pairs of ends; the same clusters with their
nodes and edges inserted in a random order (the search breaks ties by the order it
meets neighbours in, which the replay must follow); and fixed larger clusters.
Between GPUs of different servers (and each GPU and its rail NIC) the router must not
need the search at all on those layouts.
"""

from __future__ import annotations

import random
from typing import Any

import networkx as nx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.routing import Router
from topologies import build_cluster

GB = 1e9
ENDS = ("gpu", "cpu", "ps_host", "nic")


def cluster(layout: str, nodes: int, gpus: int, fabric: str, *, ps: int = 0, **options: Any) -> nx.DiGraph:
    """A cluster graph as simulator.build makes it (bandwidths do not change routes)."""
    server: dict[str, Any] = {"pcie_bandwidth": 16 * GB, "pcie_latency": 1e-6}
    for key in ("p2p", "gdr", "nics"):
        if key in options:
            server[key] = options[key]
    if layout == "pcie_tree":
        server["pcie_switches"] = options.get("pcie_switches", 1)
    if layout in ("pcie_tree", "nvswitch"):
        for key in ("sockets", "nic_placement"):
            if key in options:
                server[key] = options[key]
    if layout == "nvswitch":
        server["nvlink_bandwidth"] = 300 * GB
    params: dict[str, Any] = {"switch_latency": 1e-6}
    if fabric == "leaf_spine":
        params.update(nodes_per_leaf=options.get("nodes_per_leaf", 2), spines=options.get("spines", 2),
                      rails=options.get("rails", False))
    return build_cluster(nodes=nodes, gpus_per_node=gpus, server_layout=layout, server_params=server,
                         nic_bandwidth=12.5 * GB, nic_latency=1e-6, fabric=fabric, fabric_params=params,
                         dedicated_ps=ps, host_pcie_bandwidth=16 * GB, host_pcie_latency=1e-6).graph


def routers(graph: nx.DiGraph) -> tuple[Router, Router]:
    """(composing router, router that searches the whole graph for every pair)."""
    composed, searched = Router(graph), Router(graph)
    searched._templates = None
    return composed, searched


def sampled_pairs(graph: nx.DiGraph, rnd: random.Random, n: int) -> list[tuple[str, str]]:
    """``n`` random pairs of ends, half of them GPU to GPU, plus each sampled GPU with its
    rail NIC (the pairs the rail rule routes)."""
    ends = [v for v, kind in graph.nodes(data="kind") if kind in ENDS]
    gpus = [v for v, kind in graph.nodes(data="kind") if kind == "gpu"]
    pairs = []
    for i in range(n):
        pool = gpus if i % 2 and len(gpus) > 1 else ends
        a, b = rnd.sample(pool, 2)
        pairs.append((a, b))
    return pairs


def assert_same_paths(graph: nx.DiGraph, pairs: list[tuple[str, str]]) -> Router:
    composed, searched = routers(graph)
    assert composed._templates is not None, "the shipped layouts and fabrics have the templates' shape"
    for a, b in pairs:
        assert composed.path(a, b) == searched.path(a, b), (a, b)
    for gpu, nic in list(composed.rail_nics.items())[:: max(1, len(composed.rail_nics) // 16)]:
        assert composed.path(gpu, nic) == searched.path(gpu, nic), (gpu, nic)
        assert composed.path(nic, gpu) == searched.path(nic, gpu), (nic, gpu)
    return composed


@st.composite
def clusters(draw: st.DrawFn) -> tuple[nx.DiGraph, int]:
    layout = draw(st.sampled_from(["pcie_tree", "dgx1", "nvswitch"]))
    options: dict[str, Any] = {}
    if layout == "dgx1":
        gpus = 8
        options["nics"] = draw(st.sampled_from([1, 2, 4]))
    elif layout == "nvswitch":
        gpus = draw(st.sampled_from([4, 8]))
        options["nics"] = draw(st.sampled_from([1, gpus // 2, gpus]))
        options["sockets"] = draw(st.sampled_from([1, 2]))
        options["nic_placement"] = draw(st.sampled_from(["root", "switch"]))
    else:
        gpus = draw(st.sampled_from([2, 4, 8]))
        options["pcie_switches"] = draw(st.sampled_from([s for s in (1, 2, 4) if gpus % s == 0]))
        options["sockets"] = draw(st.sampled_from([1, 2]) if options["pcie_switches"] > 1 else st.just(1))
        options["nics"] = draw(st.sampled_from([1, 2, 3]))
        options["nic_placement"] = draw(st.sampled_from(["root", "switch"]))
    if draw(st.integers(0, 4)) == 0:
        options[draw(st.sampled_from(["p2p", "gdr"]))] = False
    fabric = draw(st.sampled_from(["single_switch", "leaf_spine"]))
    if fabric == "leaf_spine":
        options.update(nodes_per_leaf=draw(st.integers(1, 4)), spines=draw(st.integers(1, 4)),
                       rails=draw(st.booleans()))
    nodes = draw(st.integers(2, 10))
    ps = draw(st.sampled_from([0, 0, 1, 2]))
    return cluster(layout, nodes, gpus, fabric, ps=ps, **options), draw(st.integers(0, 2**32 - 1))


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(clusters())
def test_composed_paths_are_the_searched_paths_on_random_clusters(case):
    graph, seed = case
    assert_same_paths(graph, sampled_pairs(graph, random.Random(seed), 120))


def shuffled(graph: nx.DiGraph, rnd: random.Random) -> nx.DiGraph:
    """The same cluster with its nodes and edges inserted in a random order."""
    out: nx.DiGraph = nx.DiGraph()
    out.graph.update(graph.graph)
    nodes = list(graph.nodes(data=True))
    rnd.shuffle(nodes)
    out.add_nodes_from(nodes)
    edges = list(graph.edges(data=True))
    rnd.shuffle(edges)
    out.add_edges_from(edges)
    return out


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(clusters())
def test_composed_paths_follow_the_search_whatever_the_order_of_nodes_and_edges(case):
    graph, seed = case
    rnd = random.Random(seed)
    graph = shuffled(graph, rnd)
    assert_same_paths(graph, sampled_pairs(graph, rnd, 120))


LARGER = {
    "nvswitch, 8 rails, one switch, 48 nodes": ("nvswitch", 48, 8, "single_switch", {}),
    "nvswitch, 4 NICs at the root, one switch, 40 nodes": ("nvswitch", 40, 8, "single_switch",
                                                           {"nics": 4, "nic_placement": "root"}),
    "dgx1, 4 NICs, one switch, 40 nodes": ("dgx1", 40, 8, "single_switch", {}),
    "dgx1, 4 NICs, rails, 32 nodes": ("dgx1", 32, 8, "leaf_spine", {"rails": True, "nodes_per_leaf": 4, "spines": 4}),
    "nvswitch, rails, 48 nodes": ("nvswitch", 48, 8, "leaf_spine", {"rails": True, "nodes_per_leaf": 8, "spines": 3}),
    "nvswitch, leaf-spine, 40 nodes": ("nvswitch", 40, 8, "leaf_spine", {"nodes_per_leaf": 4, "spines": 4}),
    "pcie_tree, 2 switches, one switch, 64 nodes + 4 hosts": ("pcie_tree", 64, 8, "single_switch",
                                                             {"pcie_switches": 2, "ps": 4}),
    "pcie_tree, 2 sockets, 2 NICs, leaf-spine, 48 nodes": ("pcie_tree", 48, 8, "leaf_spine",
                                                          {"pcie_switches": 2, "sockets": 2, "nics": 2,
                                                           "nodes_per_leaf": 4, "spines": 2}),
}


@pytest.mark.parametrize("name", sorted(LARGER))
def test_composed_paths_are_the_searched_paths_on_larger_clusters(name):
    layout, nodes, gpus, fabric, options = LARGER[name]
    graph = cluster(layout, nodes, gpus, fabric, **options)
    assert_same_paths(graph, sampled_pairs(graph, random.Random(name), 300))


@pytest.mark.parametrize("name", sorted(LARGER))
def test_routes_between_gpus_of_different_servers_need_no_search(name):
    layout, nodes, gpus, fabric, options = LARGER[name]
    graph = cluster(layout, nodes, gpus, fabric, **options)
    router = Router(graph)
    templates = router._templates
    assert templates is not None
    every_gpu = [v for v, kind in graph.nodes(data="kind") if kind == "gpu"]
    rnd = random.Random(name)
    for _ in range(200):
        a, b = rnd.sample(every_gpu, 2)
        if graph.nodes[a]["server"] != graph.nodes[b]["server"]:
            assert templates.shortest(a, b, router.ecmp) is not None, (a, b)
    for gpu, nic in router.rail_nics.items():
        assert templates.shortest(gpu, nic, router.ecmp) is not None, (gpu, nic)
        assert templates.shortest(nic, gpu, router.ecmp) is not None, (nic, gpu)

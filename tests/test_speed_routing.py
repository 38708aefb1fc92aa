"""Routes composed from server templates are the routes a search finds, to the node.

The router finds a route between two servers as (a path to the source's switch) +
(a switch path) + (a path from the destination's switch), each searched once per server
shape, instead of searching the whole graph per pair; a bundle of every worker with
every parameter server is counted end by end. Both must give exactly what the search
and the pair-by-pair bundle give, ECMP's hash choice included, on every server layout
and fabric, rail-optimized ones included (tests/test_routing_templates.py samples larger
and random clusters).
"""

from __future__ import annotations

import pytest
import simpy

from simulator import load_scenario
from simulator.build import build
from simulator.network import Network
from simulator.routing import Router

BASE = ["cluster.server.gpus_per_switch=null", "simulation.iterations=1", "simulation.warmup_iterations=0"]
LEAF_SPINE = ["cluster.fabric.topology=leaf_spine", "cluster.fabric.nodes_per_leaf=2", "cluster.fabric.spines=3"]
PS = ["training.strategy=parameter_server", "training.parameter_servers.count=3"]
DGX1 = ["cluster.gpus_per_node=8", "cluster.gpu=V100-SXM2-16GB", "cluster.server.layout=dgx1",
        "cluster.server.pcie_switches=null"]
NVSWITCH = ["cluster.gpus_per_node=8", "cluster.gpu=A100-SXM4-80GB", "cluster.server.layout=nvswitch",
            "cluster.server.pcie_switches=null"]

CLUSTERS = {
    "pcie": ["cluster.nodes=3", "cluster.gpus_per_node=4"],
    "pcie-2-switches": ["cluster.nodes=3", "cluster.gpus_per_node=8", "cluster.server.pcie_switches=2"],
    "two-sockets": ["cluster.nodes=3", "cluster.gpus_per_node=4", "cluster.server.sockets=2",
                    "cluster.server.pcie_switches=2"],
    "no-p2p": ["cluster.nodes=3", "cluster.gpus_per_node=4", "cluster.server.p2p=false"],
    "no-gdr": ["cluster.nodes=3", "cluster.gpus_per_node=4", "cluster.server.gpudirect_rdma=false"],
    "leaf-spine": ["cluster.nodes=5", "cluster.gpus_per_node=4"] + LEAF_SPINE,
    "leaf-spine-ps-hosts": ["cluster.nodes=5", "cluster.gpus_per_node=4",
                            "training.parameter_servers.placement=dedicated"] + PS + LEAF_SPINE,
    "dgx1": ["cluster.nodes=3"] + DGX1,
    "dgx1-leaf-spine": ["cluster.nodes=4"] + DGX1 + LEAF_SPINE,
    "nvswitch": ["cluster.nodes=2"] + NVSWITCH,
    "nvswitch-rails": ["cluster.nodes=3", "cluster.fabric.topology=leaf_spine", "cluster.fabric.nodes_per_leaf=1",
                       "cluster.fabric.rails=true"] + NVSWITCH,
    "one-node": ["cluster.nodes=1", "cluster.gpus_per_node=4"],
}


def _network(overrides: list[str]) -> Network:
    return build(load_scenario(None, BASE + overrides)).network


@pytest.mark.parametrize("name", sorted(CLUSTERS))
def test_composed_routes_are_the_searched_routes(name):
    net = _network(CLUSTERS[name])
    composed, searched = net.router, Router(net.graph)
    searched._templates = None  # search every pair, as before templates
    graph = net.graph
    ends = [n for n, kind in graph.nodes(data="kind") if kind in ("gpu", "cpu", "ps_host", "nic")]
    for a in ends:
        for b in ends:
            if a != b:
                assert composed.path(a, b) == searched.path(a, b), (a, b)
    assert composed._templates is not None  # rails too: a server's NICs on several switches


@pytest.mark.parametrize("name", ["pcie", "two-sockets", "leaf-spine", "leaf-spine-ps-hosts", "no-p2p", "dgx1"])
def test_a_bundle_counted_end_by_end_equals_the_pair_by_pair_bundle(name):
    sim = build(load_scenario(None, BASE + CLUSTERS[name] + PS))
    ctx = sim.context
    ends = [(ctx.gpus, ctx.server_hosts), (ctx.server_hosts, ctx.gpus), (ctx.node_hosts, ctx.server_hosts),
            (list(ctx.gpus[:3]) * 2, ctx.server_hosts), (ctx.gpus, ctx.server_hosts[:1])]
    for sources, destinations in ends:
        pairwise = Network(simpy.Environment(), sim.network.graph.copy())
        composed = Network(simpy.Environment(), sim.network.graph.copy())
        usage, latency = pairwise.bundle(tuple((s, d) for d in destinations for s in sources))
        usage_c, latency_c = composed.bundle_product(sources, destinations)
        assert usage_c.mapping == usage.mapping
        assert latency_c == latency


def test_networks_over_one_graph_share_its_routes():
    graph = _network(CLUSTERS["leaf-spine"]).graph
    a, b = Network(simpy.Environment(), graph), Network(simpy.Environment(), graph)
    assert a.router is b.router
    assert a.route("n0.gpu0", "n3.gpu1") is b.route("n0.gpu0", "n3.gpu1")


def test_the_vectorized_hash_is_zlibs_crc32():
    import zlib

    import numpy as np

    from simulator.spine_product import crc32_continued

    sources = [f"n{i}.gpu{i % 8}" for i in range(300)]
    starts = np.array([zlib.crc32(f"{s}->".encode()) for s in sources], dtype=np.uint32)
    for destination in ("ps0.cpu", "n17.cpu1", "x"):
        got = crc32_continued(destination.encode(), starts)
        assert [int(c) for c in got] == [zlib.crc32(f"{s}->{destination}".encode()) for s in sources]

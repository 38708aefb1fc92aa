"""Topology builders: structure and the contention it creates."""

from __future__ import annotations

import pytest
import simpy

from simulator.network import Network
from topologies import FABRICS, SERVER_LAYOUTS, build_cluster, register_fabric

from .conftest import run_flows

GB = 1e9


def cluster(nodes=2, gpus=4, switches=2, dedicated_ps=0):
    return build_cluster(
        nodes=nodes,
        gpus_per_node=gpus,
        server_layout="pcie_tree",
        server_params={"pcie_switches": switches, "pcie_bandwidth": 12 * GB, "pcie_latency": 1e-6},
        nic_bandwidth=1.25 * GB,
        nic_latency=10e-6,
        fabric="single_switch",
        fabric_params={"switch_latency": 1e-6},
        dedicated_ps=dedicated_ps,
        host_pcie_bandwidth=12 * GB,
        host_pcie_latency=1e-6,
    )


def test_registries_hold_the_scenario_names():
    assert "pcie_tree" in SERVER_LAYOUTS and "single_switch" in FABRICS


def test_duplicate_registration_is_refused():
    with pytest.raises(ValueError, match="already registered"):
        register_fabric("single_switch")(lambda *a, **k: None)


def test_pcie_tree_counts_and_full_duplex_links():
    c = cluster(nodes=2, gpus=4, switches=2, dedicated_ps=1)
    g = c.graph
    kinds = [d["kind"] for _, d in g.nodes(data=True)]
    assert kinds.count("gpu") == 8 and kinds.count("pcie_switch") == 4 and kinds.count("cpu") == 2
    assert kinds.count("ps_host") == 1 and kinds.count("nic") == 3 and kinds.count("switch") == 1
    # Per node: 4 GPU links + 2 switch uplinks + 1 NIC link; 3 NIC cables; 1 PS PCIe link.
    assert g.number_of_edges() == 2 * (2 * 7 + 3 + 1)
    assert all(g.has_edge(v, u) for u, v in g.edges)
    assert c.gpus == tuple(f"n{n}.gpu{i}" for n in range(2) for i in range(4))


def test_cross_node_route_latency_is_sum_of_hops():
    c = cluster()
    net = Network(simpy.Environment(), c.graph)
    route = net.route("n0.gpu0", "n1.gpu3")
    # gpu->pcie->cpu->nic (3 PCIe hops), nic->switch (10 us + 1 us switch), switch->nic
    # (10 us), nic->cpu->pcie->gpu (3 PCIe hops).
    assert len(route.edges) == 8
    assert route.latency_s == pytest.approx(6e-6 + 21e-6)


def test_four_gpus_behind_one_switch_share_its_uplink():
    c = cluster(nodes=1, gpus=4, switches=1)
    env = simpy.Environment()
    net = Network(env, c.graph)
    # Each GPU sends 1.2 GB to host memory; the 12 GB/s uplink gives each a quarter:
    # 1.2 GB / 3 GB/s = 0.4 s (+ 2 PCIe hops of latency).
    t = run_flows(env, net, [(0.0, f"n0.gpu{i}", "n0.cpu", 1.2e9) for i in range(4)])
    assert t == pytest.approx([0.4 + 2e-6] * 4, rel=1e-9)


def test_peer_to_peer_under_one_switch_does_not_touch_the_uplink():
    c = cluster(nodes=1, gpus=4, switches=1)
    net = Network(simpy.Environment(), c.graph)
    route = net.route("n0.gpu0", "n0.gpu1")
    assert [net.edges[e] for e in route.edges] == [("n0.gpu0", "n0.pcie0"), ("n0.pcie0", "n0.gpu1")]


def test_uneven_gpus_per_switch_is_refused():
    with pytest.raises(ValueError, match="evenly"):
        cluster(nodes=1, gpus=6, switches=4)

"""Routing rules: GPUs do not forward, ECMP spreads pairs, staging through host memory."""

from __future__ import annotations

import networkx as nx
import pytest
import simpy

from simulator.network import Network
from simulator.routing import Router
from topologies import add_duplex_link

from .conftest import run_flows

GB = 1e9


def pcie_box(p2p: bool = True, gdr: bool = True, nvlink: bool = False) -> nx.DiGraph:
    """cpu - switch - {gpu0, gpu1, nic}; optional NVLink gpu0-gpu1."""
    g = nx.DiGraph()
    g.add_node("cpu", kind="cpu")
    g.add_node("sw", kind="pcie_switch")
    g.add_node("nic", kind="nic")
    for i in range(2):
        g.add_node(f"gpu{i}", kind="gpu", host="cpu", p2p=p2p, gdr=gdr)
        add_duplex_link(g, f"gpu{i}", "sw", bandwidth=12 * GB, latency=1e-6, link="pcie")
    add_duplex_link(g, "sw", "cpu", bandwidth=12 * GB, latency=1e-6, link="pcie")
    add_duplex_link(g, "nic", "sw", bandwidth=12 * GB, latency=1e-6, link="pcie")
    if nvlink:
        add_duplex_link(g, "gpu0", "gpu1", bandwidth=25 * GB, latency=1e-6, link="nvlink")
    return g


def test_peer_to_peer_goes_through_the_switch():
    assert Router(pcie_box()).path("gpu0", "gpu1") == ["gpu0", "sw", "gpu1"]


def test_p2p_off_stages_through_host_memory():
    assert Router(pcie_box(p2p=False)).path("gpu0", "gpu1") == ["gpu0", "sw", "cpu", "sw", "gpu1"]


def test_nvlink_is_not_staged_even_with_p2p_off():
    assert Router(pcie_box(p2p=False, nvlink=True)).path("gpu0", "gpu1") == ["gpu0", "gpu1"]


def test_gdr_off_stages_nic_traffic_in_both_directions():
    router = Router(pcie_box(gdr=False))
    assert router.path("gpu0", "nic") == ["gpu0", "sw", "cpu", "sw", "nic"]
    assert router.path("nic", "gpu1") == ["nic", "sw", "cpu", "sw", "gpu1"]
    assert Router(pcie_box(gdr=True)).path("gpu0", "nic") == ["gpu0", "sw", "nic"]


def test_staging_slows_a_copy_by_the_shared_uplink():
    # With p2p off both directions of the one switch-CPU link carry the copy, so two
    # simultaneous copies gpu0->gpu1 and gpu1->gpu0 share it: each at 6 GB/s instead of 12.
    times = {}
    for p2p in (True, False):
        env = simpy.Environment()
        net = Network(env, pcie_box(p2p=p2p))
        times[p2p] = run_flows(env, net, [(0.0, "gpu0", "gpu1", 12e9), (0.0, "gpu1", "gpu0", 12e9)])
    assert times[True] == pytest.approx([1.0 + 2e-6] * 2, rel=1e-9)
    assert times[False] == pytest.approx([2.0 + 4e-6] * 2, rel=1e-9)


def test_gpus_do_not_forward_traffic():
    # gpu0 - gpu1 - gpu2 joined by NVLink in a line, and all three under one switch:
    # gpu0 -> gpu2 takes the switch (2 hops), not NVLink through gpu1 (also 2 hops).
    g = nx.DiGraph()
    g.add_node("sw", kind="pcie_switch")
    for i in range(3):
        g.add_node(f"gpu{i}", kind="gpu")
        add_duplex_link(g, f"gpu{i}", "sw", bandwidth=12 * GB, latency=0, link="pcie")
    add_duplex_link(g, "gpu0", "gpu1", bandwidth=25 * GB, latency=0, link="nvlink")
    add_duplex_link(g, "gpu1", "gpu2", bandwidth=25 * GB, latency=0, link="nvlink")
    router = Router(g)
    assert router.path("gpu0", "gpu2") == ["gpu0", "sw", "gpu2"]
    assert router.path("gpu0", "gpu1") == ["gpu0", "gpu1"]


def test_ecmp_spreads_pairs_over_equal_cost_spines_deterministically():
    g = nx.DiGraph(ecmp=True)
    for leaf in ("leaf0", "leaf1"):
        g.add_node(leaf, kind="switch")
        for s in range(4):
            add_duplex_link(g, leaf, f"spine{s}", bandwidth=GB, latency=0, link="network")
    for h in range(16):
        g.add_node(f"h{h}", kind="nic")
        add_duplex_link(g, f"h{h}", f"leaf{h % 2}", bandwidth=GB, latency=0, link="network")
    router = Router(g)
    spines = {router.path(f"h{a}", f"h{b}")[2] for a in range(0, 16, 2) for b in range(1, 16, 2)}
    assert spines == {f"spine{s}" for s in range(4)}
    assert Router(g).path("h0", "h1") == router.path("h0", "h1")

"""Closed forms of a ring allreduce across nodes on one NIC each (issues 12/13: Horovod's
25 GbE rows): what crosses each node's NIC, and the latency of one node-to-node hop."""

from __future__ import annotations

import pytest

from simulator.engine import build
from simulator.loading import load_scenario
from simulator.validation.run import collective_estimate

GB = 1e9
NIC_GBPS = 25.0
NIC_US = 20.0  # the catalog's one-way host-to-host figure for Ethernet through TCP
SWITCH_US = 0.5


def scenario(nodes: int, backend: str):
    return load_scenario({
        "name": "ring-over-nics",
        "cluster": {"nodes": nodes, "gpus_per_node": 4, "gpu": "P100-PCIe-16GB", "server": {"layout": "pcie_tree"},
                    "nic": {"link": None, "bandwidth_gbps": NIC_GBPS, "latency_us": NIC_US},
                    "fabric": {"topology": "single_switch", "switch_latency_us": SWITCH_US}},
        "workload": {"model": "resnet50", "batch_per_gpu": 32},
        "training": {"strategy": "ring_allreduce", "collectives": {"backend": backend}},
        "simulation": {"iterations": 2, "warmup_iterations": 1, "mode": "fast"},
    })


@pytest.mark.parametrize("nodes", [2, 4])
def test_ring_of_four_gpu_nodes_crosses_each_nic_once_per_direction(nodes):
    """Flow model alone (``ideal``): 2(N-1)/N S / B_nic + 2(N-1) route latencies; the ring
    enters and leaves each node once, so the NIC carries the ring's bytes once each way
    (four GPUs per node do not make it 4x)."""
    s = 256e6
    n = 4 * nodes
    t = collective_estimate(scenario(nodes, "ideal"), "allreduce", s, "ring_allreduce").time_s
    bandwidth = 2 * (n - 1) / n * s / (NIC_GBPS * GB / 8)
    assert bandwidth < t < bandwidth * 1.01


def test_nccl_ring_over_one_nic_per_node_is_one_channel_at_the_nic_rate():
    """On a PCIe server with one NIC, NCCL's rings all leave through that NIC: one ring
    here, whose bus bandwidth is the NIC's rate times the backend's achievable network
    fraction (not divided by the GPUs per node)."""
    from simulator.collective_cost import get_backend

    sim = build(scenario(2, "nccl"))
    topo = sim.context.collectives.topology
    assert topo.channels == 1
    fraction = get_backend("nccl").achievable_fraction("network", "Pascal")
    assert topo.ring_busbw == pytest.approx(NIC_GBPS * GB / 8 * fraction)

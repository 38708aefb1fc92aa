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
    from simulator.collectives.backend import get_backend

    sim = build(scenario(2, "nccl"))
    topo = sim.context.collectives.topology
    assert topo.channels == 1
    fraction = get_backend("nccl").achievable_fraction("network", "Pascal")
    assert topo.ring_busbw == pytest.approx(NIC_GBPS * GB / 8 * fraction)


def dgx1_scenario(nodes: int, backend: str):
    return load_scenario({
        "name": "dgx1-over-four-nics",
        "cluster": {"nodes": nodes, "gpus_per_node": 8, "gpu": "V100-SXM2-16GB", "server": {"layout": "dgx1"},
                    "nic": {"link": None, "bandwidth_gbps": 100.0, "latency_us": 1.1},
                    "fabric": {"topology": "single_switch", "switch_latency_us": SWITCH_US}},
        "workload": {"model": "resnet50", "batch_per_gpu": 32},
        "training": {"strategy": "ring_allreduce", "collectives": {"backend": backend}},
        "simulation": {"iterations": 2, "warmup_iterations": 1, "mode": "fast"},
    })


def test_dgx1_rings_across_nodes_spread_over_all_four_nics():
    """NCCL gives each NIC its own channels: every ring enters and leaves a DGX-1 through
    one NIC (at the two GPUs under that NIC's PCIe switch), each of the 4 NICs carries
    the same number of rings. Before, all six NVLink rings entered at GPU 0, so NIC 0
    carried every inbound byte."""
    sim = build(dgx1_scenario(2, "nccl"))
    graph = sim.network.graph
    rings = sim.context.collectives.rings
    assert len(rings) == 4

    def nic_of(gpu):
        switch = next(v for v in graph.successors(gpu) if graph.nodes[v]["kind"] == "pcie_switch")
        return next(v for v in graph.successors(switch) if graph.nodes[v]["kind"] == "nic")

    entry_nics = [nic_of(ring[0]) for ring in rings]
    exit_nics = [nic_of(ring[7]) for ring in rings]
    assert sorted(entry_nics) == ["n0.nic0", "n0.nic1", "n0.nic2", "n0.nic3"]
    assert exit_nics == entry_nics


def test_dgx1_ring_allreduce_across_nodes_runs_at_four_nics_rate():
    """NCCL backend, large message: 4 rings each carry S/4 over their own 100 Gb/s NIC
    at the backend's achievable network fraction f, so the bus bandwidth is 4 f B_nic
    and t = 2(N-1)/N S / (4 f B_nic) plus latency terms (< 2% at 512 MB): four times
    the one-NIC rate."""
    from simulator.collectives.backend import get_backend

    s = 512e6
    n = 16
    fraction = get_backend("nccl").achievable_fraction("network", "Volta")
    t = collective_estimate(dgx1_scenario(2, "nccl"), "allreduce", s, "ring_allreduce").time_s
    bandwidth = 2 * (n - 1) / n * s / (4 * fraction * 100.0 * GB / 8)
    assert bandwidth < t < bandwidth * 1.02


def test_a_connection_cap_bounds_each_channel_across_nodes():
    """``net_connection_gbps`` C: each channel's node-to-node hop is one connection of at
    most C, so with one channel the bus bandwidth is C/8 bytes/s whatever the NIC, and
    a large ring allreduce takes 2(N-1)/N S / (C/8) (+ latencies < 2%)."""

    s, n, cap = 256e6, 8, 5.0
    sc = scenario(2, "nccl")
    data = sc.model_dump()
    data["training"]["collectives"].update({"net_connection_gbps": cap, "max_channels": 1})
    capped = type(sc).model_validate(data)
    t = collective_estimate(capped, "allreduce", s, "ring_allreduce").time_s
    bound = 2 * (n - 1) / n * s / (cap * GB / 8)
    assert bound < t < bound * 1.02
    # a cap above what the NIC achieves changes nothing
    data["training"]["collectives"]["net_connection_gbps"] = 400.0
    loose = type(sc).model_validate(data)
    data["training"]["collectives"].pop("net_connection_gbps")
    plain = type(sc).model_validate(data)
    assert collective_estimate(loose, "allreduce", s, "ring_allreduce").time_s == \
        collective_estimate(plain, "allreduce", s, "ring_allreduce").time_s


def transport_scenario(nic: dict, collectives: dict | None = None):
    """Two 4-GPU PCIe nodes, one NIC each (``nic`` as the scenario states it) beside the
    GPUs' PCIe switch (GPUDirect RDMA: no hop through host memory to bind first)."""
    return load_scenario({
        "name": "ring-by-transport",
        "cluster": {"nodes": 2, "gpus_per_node": 4, "gpu": "P100-PCIe-16GB",
                    "server": {"layout": "pcie_tree", "nic_placement": "switch"},
                    "nic": nic, "fabric": {"topology": "single_switch", "switch_latency_us": SWITCH_US}},
        "workload": {"model": "resnet50", "batch_per_gpu": 32},
        "training": {"strategy": "ring_allreduce", "collectives": {"backend": "nccl", **(collectives or {})}},
        "simulation": {"iterations": 2, "warmup_iterations": 1, "mode": "fast"},
    })


@pytest.mark.parametrize(("nic", "transport"), [
    ({"link": "IB-EDR"}, "rdma"),  # verbs
    ({"link": "100GbE-RoCE"}, "rdma"),  # verbs over Ethernet
    ({"link": "100GbE"}, "socket"),  # kernel TCP
    ({"link": "100GbE", "transport": "rdma"}, "rdma"),  # the scenario's word over the link's
    ({"link": None, "bandwidth_gbps": 100.0, "latency_us": 1.0, "transport": "socket"}, "socket"),
    ({"link": None, "bandwidth_gbps": 100.0, "latency_us": 1.0}, ""),  # not known: the general figure
])
def test_the_ring_crosses_the_network_at_the_fraction_of_the_nics_transport(nic, transport):
    """One ring through each node's one NIC: its bus bandwidth is the NIC's catalog rate
    (line rate x efficiency) x the backend's achievable fraction for the transport that
    drives it (rdma: InfiniBand and RoCE verbs; socket: kernel TCP)."""
    from simulator import catalog
    from simulator.collectives.backend import get_backend

    nccl = get_backend("nccl")
    assert nccl.network_by_transport["rdma"] != nccl.network_by_transport["socket"]  # else this test shows nothing
    fraction = nccl.network_by_transport.get(transport, nccl.achievable["network"])
    rate = catalog.get_link(nic["link"]).bandwidth_bytes_per_s if nic.get("link") else 100.0 * GB / 8
    topo = build(transport_scenario(nic)).context.collectives.topology
    assert topo.channels == 1
    assert topo.ring_busbw == pytest.approx(rate * fraction, rel=1e-12)


def test_a_measured_network_efficiency_wins_over_the_transports_figure():
    topo = build(transport_scenario({"link": "IB-EDR"}, {"network_efficiency": 0.5})).context.collectives.topology
    assert topo.ring_busbw == pytest.approx(100e9 / 8 * 0.97 * 0.5, rel=1e-12)  # IB-EDR line rate x catalog efficiency


def test_catalog_links_name_the_transport_libraries_use():
    from simulator import catalog

    assert {catalog.get_link(n).transport for n in ("IB-FDR", "IB-EDR", "IB-HDR", "IB-NDR")} == {"rdma"}
    assert {catalog.get_link(n).transport for n in ("25GbE-RoCE", "100GbE-RoCE", "200GbE-RoCE")} == {"rdma"}
    assert {catalog.get_link(n).transport for n in ("1GbE", "10GbE", "25GbE", "100GbE")} == {"socket"}
    assert {catalog.get_link(n).transport for n in ("pcie3x16", "nvlink2")} == {""}

"""Collectives of a library that reduces in host memory (``mpi``: Horovod without NCCL):
copy to the host, ring between the hosts, CPU sums, copy back (issue 13: the Horovod
README's "allreduce on CPU" rows were simulated as NCCL on the GPUs)."""

from __future__ import annotations

import pytest

from simulator.collectives.backend import get_backend
from simulator.engine import build
from simulator.loading import load_scenario
from simulator.validation.run import collective_estimate

NIC_GBPS = 10.0
NIC_US = 25.0


def scenario(nodes: int, gpus_per_node: int, backend: str):
    return load_scenario({
        "name": "host-memory-allreduce",
        "cluster": {"nodes": nodes, "gpus_per_node": gpus_per_node, "gpu": "P100-PCIe-16GB",
                    "server": {"layout": "pcie_tree"},
                    "nic": {"link": None, "bandwidth_gbps": NIC_GBPS, "latency_us": NIC_US},
                    "fabric": {"topology": "single_switch", "switch_latency_us": 0.0}},
        "workload": {"model": "resnet50", "batch_per_gpu": 32},
        "training": {"strategy": "ring_allreduce", "collectives": {"backend": backend}},
        "simulation": {"iterations": 2, "warmup_iterations": 1, "mode": "fast"},
    })


def _bottleneck(sim, src, dst) -> tuple[float, float]:
    """(bytes/s of the slowest link, latency) of the route src -> dst."""
    net = sim.network
    route = net.route(src, dst)
    return min(net.capacity[e] for e in route.edges), route.latency_s


def test_mpi_allreduce_is_copy_down_host_ring_cpu_sum_copy_up():
    """Two nodes of one GPU: t = S/B_d2h + lat + 2(N-1)/N S/B_nic + 2(N-1) lat_net
    + 3(N-1)/N S/R_cpu + S/B_h2d + lat, every term from the graph and the backend."""
    s, n = 200e6, 2
    sc = scenario(2, 1, "mpi")
    sim = build(sc)
    gpu0, gpu1 = sim.cluster.gpus[0], sim.cluster.gpus[1]
    host0 = sim.network.graph.nodes[gpu0]["host"]
    host1 = sim.network.graph.nodes[gpu1]["host"]
    down, down_lat = _bottleneck(sim, gpu0, host0)
    up, up_lat = _bottleneck(sim, host0, gpu0)
    wire, wire_lat = _bottleneck(sim, host0, host1)
    reduce = get_backend("mpi").host_reduce_gbytes_s * 1e9
    expected = (s / down + down_lat + 2 * (n - 1) / n * s / wire + 2 * (n - 1) * wire_lat
                + 3 * (n - 1) / n * s / reduce + s / up + up_lat)
    t = collective_estimate(sc, "allreduce", s, "ring_allreduce").time_s
    assert wire == pytest.approx(NIC_GBPS * 1e9 / 8, rel=0.05)
    assert t == pytest.approx(expected, rel=1e-6)


def test_ranks_of_one_cpu_share_its_pcie_uplink_and_not_the_network():
    """Four GPUs under one PCIe switch of one node: the four copies share the switch's
    uplink (4 S over it), and there is no network hop (one host): the time is the two
    copies plus the CPU's sum, slower than NCCL's ring over the same switch."""
    s, n = 100e6, 4
    sc = scenario(1, 4, "mpi")
    sim = build(sc)
    gpus = sim.cluster.gpus
    host = sim.network.graph.nodes[gpus[0]]["host"]
    route = sim.network.route(gpus[0], host)
    shared = min(sim.network.capacity[e] for e in route.edges[1:])  # switch -> CPU, shared by four
    reduce = get_backend("mpi").host_reduce_gbytes_s * 1e9
    t = collective_estimate(sc, "allreduce", s, "ring_allreduce").time_s
    copies = 2 * 4 * s / shared
    assert t == pytest.approx(copies + 3 * (n - 1) / n * s / reduce, rel=0.01)
    assert t > collective_estimate(scenario(1, 4, "nccl"), "allreduce", s, "ring_allreduce").time_s


def test_ranks_that_are_not_gpus_have_no_host_fabric():
    """A rank that is not a GPU (a CPU device: it already is the host) has nothing to
    copy, so no host fabric is built and the library runs its plain ring."""
    from simulator.collectives.fabric import Fabric, host_fabric

    sim = build(scenario(2, 1, "mpi"))
    f = sim.context.collectives.fabric
    assert host_fabric(f) is not None
    cpu_nodes = [[sim.network.graph.nodes[g]["host"] for g in node] for node in f.nodes]
    assert host_fabric(Fabric(f.env, f.network, cpu_nodes, f.detailed)) is None

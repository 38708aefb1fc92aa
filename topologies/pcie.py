"""Server layouts: how the GPUs, PCIe switches, CPU and NIC of one node are wired."""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from .graph import add_duplex_link
from .registry import register_server_layout


@dataclass(frozen=True)
class ServerPorts:
    """The nodes of one server that the rest of the cluster attaches to."""

    gpus: tuple[str, ...]  # in local rank order
    host: str  # where host memory and CPU processes (colocated servers) live
    nics: tuple[str, ...]  # network ports, to be joined by the fabric


@register_server_layout("pcie_tree")
def pcie_tree(
    graph: nx.DiGraph,
    prefix: str,
    gpus: int,
    *,
    pcie_switches: int,
    pcie_bandwidth: float,
    pcie_latency: float,
) -> ServerPorts:
    """One CPU (root complex) with ``pcie_switches`` switches below it and
    ``gpus / pcie_switches`` GPUs below each switch; one NIC at the root complex.

    GPUs under one switch talk peer to peer through it; everything else crosses the
    switch's single uplink to the CPU, which is where PCIe contention comes from.
    Every link (GPU-switch, switch-CPU, NIC-CPU) is x16 of the given bandwidth.
    """
    if pcie_switches < 1 or gpus % pcie_switches:
        raise ValueError(f"{gpus} GPUs cannot be spread evenly over {pcie_switches} PCIe switches")
    per_switch = gpus // pcie_switches
    host = f"{prefix}.cpu"
    graph.add_node(host, kind="cpu")
    gpu_names = []
    for s in range(pcie_switches):
        switch = f"{prefix}.pcie{s}"
        graph.add_node(switch, kind="pcie_switch")
        add_duplex_link(graph, switch, host, bandwidth=pcie_bandwidth, latency=pcie_latency, link="pcie")
        for g in range(s * per_switch, (s + 1) * per_switch):
            gpu = f"{prefix}.gpu{g}"
            graph.add_node(gpu, kind="gpu")
            add_duplex_link(graph, gpu, switch, bandwidth=pcie_bandwidth, latency=pcie_latency, link="pcie")
            gpu_names.append(gpu)
    nic = f"{prefix}.nic0"
    graph.add_node(nic, kind="nic")
    add_duplex_link(graph, nic, host, bandwidth=pcie_bandwidth, latency=pcie_latency, link="pcie")
    return ServerPorts(tuple(gpu_names), host, (nic,))


def host_only(graph: nx.DiGraph, prefix: str, *, pcie_bandwidth: float, pcie_latency: float) -> ServerPorts:
    """A CPU-only host (a dedicated parameter server): CPU and one NIC."""
    host = f"{prefix}.cpu"
    nic = f"{prefix}.nic0"
    graph.add_node(host, kind="ps_host")
    graph.add_node(nic, kind="nic")
    add_duplex_link(graph, nic, host, bandwidth=pcie_bandwidth, latency=pcie_latency, link="pcie")
    return ServerPorts((), host, (nic,))

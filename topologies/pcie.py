"""Server layouts built from PCIe: how the GPUs, PCIe switches, CPUs and NICs of one
node are wired.

A PCIe server is a tree per CPU socket: the socket's root complex, PCIe switches
below it, GPUs (and possibly NICs) below the switches. With two sockets the two root
complexes are joined by the inter-socket link (Intel QPI/UPI, AMD Infinity Fabric;
link kind ``qpi``), so traffic between GPUs of different sockets crosses it.

Two switches model what the hardware and driver allow, and the network enforces them
through attributes on every GPU node:

* ``p2p`` — GPU peer-to-peer over PCIe. Off, a copy to another GPU of the same node is
  staged through host memory (GPU -> ``host`` -> GPU), so even two GPUs under one
  switch cross its uplink twice.
* ``gdr`` — GPUDirect RDMA. Off, the NIC cannot read or write GPU memory; traffic
  between a GPU and a NIC is staged through host memory.

``host`` is the CPU node of the GPU's own socket (its memory is where staging lands).

Naming (fixed; the simulator and scenario files rely on it): ``{prefix}.gpu{i}``,
``{prefix}.pcie{j}``, ``{prefix}.nic{k}``; CPU of socket 0 is ``{prefix}.cpu`` (as it
always was), of socket ``s >= 1`` ``{prefix}.cpu{s}``. Every node of a server carries
``server=prefix``; GPUs, PCIe switches, CPUs and NICs carry their ``socket``; NICs
carry their ``rail`` (index within the server), which rail-optimized fabrics use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

import networkx as nx

from .graph import add_duplex_link
from .registry import LayoutParams, register_server_layout

#: Default inter-socket bandwidth, bytes/s per direction: two Intel QPI links at
#: 9.6 GT/s, each 2 bytes per transfer per direction = 19.2 GB/s (Intel Xeon E5-2600 v4
#: datasheet, as in a DGX-1's two E5-2698 v4). Measured GPU traffic across QPI is
#: usually far lower; pass a measured figure where you have one.
QPI_BANDWIDTH = 2 * 19.2e9
#: Default inter-socket latency per crossing, seconds: an order-of-magnitude figure for
#: one QPI/UPI hop (remote-socket accesses cost roughly 50-150 ns more than local).
QPI_LATENCY = 0.1e-6

NicPlacement = Literal["root", "switch"]


@dataclass(frozen=True)
class ServerPorts:
    """The nodes of one server that the rest of the cluster attaches to."""

    gpus: tuple[str, ...]  # in local rank order
    host: str  # where host memory and CPU processes (colocated servers) live
    nics: tuple[str, ...]  # network ports, to be joined by the fabric


def cpu_name(prefix: str, socket: int) -> str:
    """The CPU (root complex + memory) node of ``socket``: ``{prefix}.cpu`` for socket
    0, ``{prefix}.cpu{socket}`` otherwise."""
    return f"{prefix}.cpu" if socket == 0 else f"{prefix}.cpu{socket}"


def spread(index: int, count: int, buckets: int) -> int:
    """Which of ``buckets`` contiguous, as-even-as-possible groups item ``index`` of
    ``count`` falls into (4 NICs over 2 sockets: 0, 0, 1, 1; 1 NIC over 4 switches:
    switch 0; 2 NICs over 4 switches: switches 0 and 2)."""
    return index * buckets // count


class PcieLinks(Protocol):
    """The PCIe, QPI, peer-to-peer and GPUDirect parameters every layout declares
    (fields of its :class:`~topologies.registry.LayoutParams` dataclass)."""

    @property
    def pcie_bandwidth(self) -> float: ...
    @property
    def pcie_latency(self) -> float: ...
    @property
    def qpi_bandwidth(self) -> float: ...
    @property
    def qpi_latency(self) -> float: ...
    @property
    def p2p(self) -> bool: ...
    @property
    def gdr(self) -> bool: ...


def build_pcie_server(
    graph: nx.DiGraph[Any],
    prefix: str,
    gpus: int,
    links: PcieLinks,
    *,
    sockets: int,
    pcie_switches: int,
    nics: int,
    nic_placement: NicPlacement,
) -> ServerPorts:
    """Build the PCIe side of a server (shared by every layout, NVLink ones included),
    its links as ``links`` (the layout's parameters) says.

    ``pcie_switches`` switches are spread contiguously over ``sockets`` sockets, the
    ``gpus`` GPUs evenly over the switches (GPU ``i`` under switch ``i // (gpus /
    pcie_switches)``), ``nics`` NICs contiguously over the sockets' root complexes
    (``nic_placement="root"``) or over the switches (``"switch"``). Every PCIe link
    (GPU-switch, switch-CPU, NIC-parent) runs at ``pcie_bandwidth``.
    """
    pcie_bandwidth, pcie_latency = links.pcie_bandwidth, links.pcie_latency
    qpi_bandwidth, qpi_latency, p2p, gdr = links.qpi_bandwidth, links.qpi_latency, links.p2p, links.gdr
    if sockets not in (1, 2):
        raise ValueError(f"sockets must be 1 or 2, got {sockets}")
    if pcie_switches < 1 or gpus < 1 or gpus % pcie_switches:
        raise ValueError(f"{gpus} GPUs cannot be spread evenly over {pcie_switches} PCIe switches")
    if nics < 1:
        raise ValueError(f"a server needs at least one NIC, got nics={nics}")
    if nic_placement not in ("root", "switch"):
        raise ValueError(f"nic_placement must be 'root' or 'switch', got {nic_placement!r}")

    cpus = [cpu_name(prefix, s) for s in range(sockets)]
    for s, cpu in enumerate(cpus):
        graph.add_node(cpu, kind="cpu", server=prefix, socket=s)
    for s in range(1, sockets):
        add_duplex_link(graph, cpus[s - 1], cpus[s], bandwidth=qpi_bandwidth, latency=qpi_latency, link="qpi")

    per_switch = gpus // pcie_switches
    switches: list[str] = []
    gpu_names: list[str] = []
    for j in range(pcie_switches):
        socket = spread(j, pcie_switches, sockets)
        switch = f"{prefix}.pcie{j}"
        graph.add_node(switch, kind="pcie_switch", server=prefix, socket=socket)
        add_duplex_link(graph, switch, cpus[socket], bandwidth=pcie_bandwidth, latency=pcie_latency, link="pcie")
        switches.append(switch)
        for i in range(j * per_switch, (j + 1) * per_switch):
            gpu = f"{prefix}.gpu{i}"
            graph.add_node(
                gpu, kind="gpu", server=prefix, socket=socket, host=cpus[socket], p2p=bool(p2p), gdr=bool(gdr)
            )
            add_duplex_link(graph, gpu, switch, bandwidth=pcie_bandwidth, latency=pcie_latency, link="pcie")
            gpu_names.append(gpu)

    nic_names: list[str] = []
    for k in range(nics):
        nic = f"{prefix}.nic{k}"
        if nic_placement == "switch":
            j = spread(k, nics, pcie_switches)
            parent, socket = switches[j], spread(j, pcie_switches, sockets)
        else:
            socket = spread(k, nics, sockets)
            parent = cpus[socket]
        graph.add_node(nic, kind="nic", server=prefix, socket=socket, rail=k)
        add_duplex_link(graph, nic, parent, bandwidth=pcie_bandwidth, latency=pcie_latency, link="pcie")
        nic_names.append(nic)
    return ServerPorts(tuple(gpu_names), cpus[0], tuple(nic_names))


@dataclass(frozen=True, kw_only=True)
class PcieTreeParams(LayoutParams):
    """What :func:`pcie_tree` takes (bandwidths bytes/s, latencies seconds)."""

    pcie_bandwidth: float
    pcie_latency: float
    pcie_switches: int = 1
    sockets: int = 1
    qpi_bandwidth: float = QPI_BANDWIDTH
    qpi_latency: float = QPI_LATENCY
    p2p: bool = True
    gdr: bool = True
    nics: int = 1
    nic_placement: NicPlacement = "root"


@register_server_layout("pcie_tree", params=PcieTreeParams)
def pcie_tree(graph: nx.DiGraph[Any], prefix: str, gpus: int, **params: Any) -> ServerPorts:
    """A PCIe-only server: ``sockets`` CPUs (1 or 2, joined by QPI) with
    ``pcie_switches`` switches spread over them and ``gpus / pcie_switches`` GPUs
    below each switch; ``nics`` NICs at the root complexes or under the switches.

    GPUs under one switch talk peer to peer through it (when ``p2p``); everything else
    crosses the switch's single uplink to its CPU, which is where PCIe contention comes
    from, and GPUs on different sockets also cross the QPI link. The defaults (one
    socket, one NIC at the root complex, P2P and GPUDirect RDMA on) are the original
    single-socket tree, with the same node names.
    """
    p = PcieTreeParams(**params)
    return build_pcie_server(graph, prefix, gpus, p, sockets=p.sockets, pcie_switches=p.pcie_switches, nics=p.nics,
                             nic_placement=p.nic_placement)


def host_only(graph: nx.DiGraph[Any], prefix: str, *, pcie_bandwidth: float, pcie_latency: float) -> ServerPorts:
    """A CPU-only host (a dedicated parameter server): CPU and one NIC."""
    host = cpu_name(prefix, 0)
    nic = f"{prefix}.nic0"
    graph.add_node(host, kind="ps_host", server=prefix, socket=0)
    graph.add_node(nic, kind="nic", server=prefix, socket=0, rail=0)
    add_duplex_link(graph, nic, host, bandwidth=pcie_bandwidth, latency=pcie_latency, link="pcie")
    return ServerPorts((), host, (nic,))

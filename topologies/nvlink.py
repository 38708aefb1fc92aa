"""Server layouts with NVLink: the DGX-1 hybrid cube mesh and NVSwitch servers.

An NVLink server is a PCIe server (see :mod:`topologies.pcie`: CPUs, QPI, PCIe
switches, NICs, host staging) plus NVLink edges (link kind ``nvlink``) that GPU-to-GPU
traffic takes instead of PCIe. The ``p2p`` GPU attribute refers to PCIe peer access
only; NVLink traffic is never staged through host memory.

One directed edge stands for all the NVLink links ganged between its two ends: its
``bandwidth`` is their sum, and its ``links`` attribute says how many physical links it
stands for (two V100s joined by two NVLinks: one edge each way, ``links=2``,
50 GB/s).

**DGX-1 (V100).** Eight Tesla V100 SXM2, each with six NVLink 2.0 links of 25 GB/s per
direction (NVIDIA, *DGX-1 With Tesla V100 System Architecture*, WP-08437-002: "Each
Tesla V100 GPU has six NVLink connection points, each providing a point-to-point
connection to another GPU at a peak bandwidth of 25 GB/s in each direction"), wired
as a hybrid cube mesh: two fully connected quads (GPUs 0-3, 4-7), some pairs with two
links, plus one edge from each GPU to its counterpart in the other quad. The exact
link list, :data:`DGX1_NVLINKS`, is the ``nvidia-smi topo -m`` matrix of a DGX-1V (as
printed in Microway's "nvidia-smi: Control Your GPUs", microway.com/hpc-tech-tips/
nvidia-smi_control-your-gpus/; NV1/NV2 = one/two links): 24 links, six per GPU. The
same output gives the PCIe tree: GPUs 0,1 / 2,3 / 4,5 / 6,7 share a PCIe switch (PIX)
with one ConnectX-4 InfiniBand NIC each (mlx5_0..3), switches 0-1 under CPU 0, 2-3
under CPU 1 (two Xeon E5-2698 v4 joined by QPI).

**NVSwitch (DGX A100 / DGX H100 style).** Every GPU has all of its NVLinks to the
NVSwitch chips, so any GPU reaches any other at its full NVLink bandwidth in two hops
(GPU -> switch -> GPU). The switch chips are modelled as one non-blocking node
(``{prefix}.nvswitch0``, kind ``nvswitch``), joined to each GPU by one edge of the
GPU's total NVLink bandwidth: A100 12 x 25 GB/s = 300 GB/s, H100 18 x 25 GB/s =
450 GB/s per direction (NVIDIA A100 / H100 datasheets: 600 / 900 GB/s bidirectional).
Two GPUs share each PCIe switch, which also holds the compute NICs ("rails": one per
GPU in both DGX A100 (8 ConnectX-6 HDR) and DGX H100 (8 ConnectX-7 NDR); NVIDIA DGX
A100 / DGX H100 user guides), on two CPU sockets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import networkx as nx

from .graph import add_duplex_link
from .pcie import QPI_BANDWIDTH, QPI_LATENCY, NicPlacement, ServerPorts, build_pcie_server
from .registry import LayoutParams, register_server_layout

#: DGX-1 (V100) NVLink wiring: ``(gpu_a, gpu_b, links)``, from ``nvidia-smi topo -m``.
DGX1_NVLINKS: tuple[tuple[int, int, int], ...] = (
    (0, 1, 1), (0, 2, 1), (0, 3, 2), (0, 4, 2),
    (1, 2, 2), (1, 3, 1), (1, 5, 2),
    (2, 3, 2), (2, 6, 1),
    (3, 7, 1),
    (4, 5, 1), (4, 6, 1), (4, 7, 2),
    (5, 6, 2), (5, 7, 1),
    (6, 7, 2),
)  # fmt: skip
#: NVLink 2.0, one link, one direction, bytes/s (datasheet peak).
NVLINK2_BANDWIDTH = 25e9
#: NVLink latency per hop, seconds (the figure of the simulator's link catalog).
NVLINK_LATENCY = 1.5e-6
DGX1_GPUS = 8


@dataclass(frozen=True, kw_only=True)
class Dgx1Params(LayoutParams):
    """What :func:`dgx1` takes (bandwidths bytes/s, latencies seconds; ``nvlink_bandwidth``
    is one link's, per direction)."""

    pcie_bandwidth: float
    pcie_latency: float
    nvlink_bandwidth: float = NVLINK2_BANDWIDTH
    nvlink_latency: float = NVLINK_LATENCY
    qpi_bandwidth: float = QPI_BANDWIDTH
    qpi_latency: float = QPI_LATENCY
    p2p: bool = True
    gdr: bool = True
    nics: int = 4


@register_server_layout("dgx1", params=Dgx1Params)
def dgx1(graph: nx.DiGraph[Any], prefix: str, gpus: int, **params: Any) -> ServerPorts:
    """A DGX-1 with V100: 8 GPUs in the hybrid cube mesh of :data:`DGX1_NVLINKS`
    (``nvlink_bandwidth`` per link per direction), 4 PCIe switches with 2 GPUs each,
    2 sockets joined by QPI, ``nics`` NICs spread over the PCIe switches (4: one per
    switch, as built).

    The server always has its 8 GPUs; ``gpus`` (1 to 8) says how many of them run a
    rank (GPUs ``0..gpus-1``), as when a job uses part of a DGX-1. Parameters: the
    fields of :class:`Dgx1Params`.
    """
    if not 1 <= gpus <= DGX1_GPUS:
        raise ValueError(f"a DGX-1 has {DGX1_GPUS} GPUs; cannot run {gpus} ranks on one")
    p = Dgx1Params(**params)
    ports = build_pcie_server(graph, prefix, DGX1_GPUS, p, sockets=2, pcie_switches=4, nics=p.nics,
                              nic_placement="switch")
    for a, b, links in DGX1_NVLINKS:
        add_duplex_link(
            graph,
            f"{prefix}.gpu{a}",
            f"{prefix}.gpu{b}",
            bandwidth=links * p.nvlink_bandwidth,
            latency=p.nvlink_latency,
            link="nvlink",
            links=links,
        )
    return ServerPorts(ports.gpus[:gpus], ports.host, ports.nics)


@dataclass(frozen=True, kw_only=True)
class NvSwitchParams(LayoutParams):
    """What :func:`nvswitch` takes (bandwidths bytes/s, latencies seconds;
    ``nvlink_bandwidth`` is the GPU's total, per direction). ``pcie_switches`` None:
    ``gpus / 2``; ``nics`` None: one per GPU."""

    nvlink_bandwidth: float
    pcie_bandwidth: float
    pcie_latency: float
    nvlink_latency: float = NVLINK_LATENCY
    nvlinks: int | None = None
    pcie_switches: int | None = None
    sockets: int = 2
    qpi_bandwidth: float = QPI_BANDWIDTH
    qpi_latency: float = QPI_LATENCY
    p2p: bool = True
    gdr: bool = True
    nics: int | None = None
    nic_placement: NicPlacement = "switch"


@register_server_layout("nvswitch", params=NvSwitchParams)
def nvswitch(graph: nx.DiGraph[Any], prefix: str, gpus: int, **params: Any) -> ServerPorts:
    """``gpus`` GPUs all joined to one NVSwitch node, each by an edge of
    ``nvlink_bandwidth`` (the GPU's total NVLink bandwidth per direction; ``nvlinks``,
    if given, is recorded as the edge's ``links``).

    PCIe side: ``pcie_switches`` (default ``gpus / 2``, two GPUs per switch) spread
    over ``sockets``; ``nics`` NICs (default ``gpus``: one rail per GPU; ``gpus / 2``:
    one per GPU pair) spread over the switches, so rail ``k`` sits next to GPU ``k``
    (or GPUs ``2k, 2k+1``). Parameters: the fields of :class:`NvSwitchParams`.
    """
    p = NvSwitchParams(**params)
    ports = build_pcie_server(graph, prefix, gpus, p, sockets=p.sockets,
                              pcie_switches=max(1, gpus // 2) if p.pcie_switches is None else p.pcie_switches,
                              nics=gpus if p.nics is None else p.nics, nic_placement=p.nic_placement)
    fabric = f"{prefix}.nvswitch0"
    graph.add_node(fabric, kind="nvswitch", server=prefix)
    extra = {} if p.nvlinks is None else {"links": p.nvlinks}
    for gpu in ports.gpus:
        add_duplex_link(graph, gpu, fabric, bandwidth=p.nvlink_bandwidth, latency=p.nvlink_latency, link="nvlink",
                        **extra)
    return ports

"""Small builders shared by the topology tests (plain numbers, bytes/s and seconds)."""

from __future__ import annotations

from typing import Any

import networkx as nx

from topologies import ClusterGraph, build_cluster

GB = 1e9
PCIE = 12 * GB
NIC = 12.5 * GB  # 100 Gb/s


def cluster(
    layout: str,
    server_params: dict[str, Any],
    *,
    nodes: int = 1,
    gpus: int = 8,
    fabric: str = "single_switch",
    fabric_params: dict[str, Any] | None = None,
    nic_bandwidth: float = NIC,
    dedicated_ps: int = 0,
    max_edges: int | None = None,
) -> ClusterGraph:
    """``nodes`` servers of ``layout`` (12 GB/s PCIe, 100 Gb/s NICs) on ``fabric``."""
    return build_cluster(
        nodes=nodes,
        gpus_per_node=gpus,
        server_layout=layout,
        server_params={"pcie_bandwidth": PCIE, "pcie_latency": 1e-6, **server_params},
        nic_bandwidth=nic_bandwidth,
        nic_latency=1e-6,
        fabric=fabric,
        fabric_params={"switch_latency": 1e-7} if fabric_params is None else fabric_params,
        dedicated_ps=dedicated_ps,
        host_pcie_bandwidth=PCIE,
        host_pcie_latency=1e-6,
        max_edges=max_edges,
    )


def kinds(graph: nx.DiGraph) -> dict[str, int]:
    """How many nodes of each kind."""
    counts: dict[str, int] = {}
    for _, data in graph.nodes(data=True):
        counts[data["kind"]] = counts.get(data["kind"], 0) + 1
    return counts


def hop_path(graph: nx.DiGraph, src: str, dst: str) -> list[str]:
    """Fewest-hop path that does not pass through a GPU (GPUs never forward)."""
    view = graph.subgraph([n for n, d in graph.nodes(data=True) if d["kind"] != "gpu" or n in (src, dst)])
    return nx.shortest_path(view, src, dst)

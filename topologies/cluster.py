"""Compose a whole cluster from a server layout, a fabric and parameter-server hosts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import networkx as nx

from .fabric import fabric_edges
from .graph import ServerStamp, same_graph
from .pcie import ServerPorts, host_only
from .registry import FABRICS, SERVER_LAYOUTS


class ClusterTooLarge(ValueError):
    """The cluster's graph would have more edges than the caller allows."""


@dataclass(frozen=True)
class ClusterGraph:
    """A built cluster: the graph plus the names the simulator needs."""

    graph: nx.DiGraph[Any]
    gpus: tuple[str, ...]  # global rank order: node-major, then local GPU index
    hosts: tuple[str, ...]  # one per worker node
    ps_hosts: tuple[str, ...]  # dedicated parameter-server hosts (may be empty)


def build_cluster(
    *,
    nodes: int,
    gpus_per_node: int,
    server_layout: str,
    server_params: Mapping[str, Any],
    nic_bandwidth: float,
    nic_latency: float,
    fabric: str,
    fabric_params: Mapping[str, Any],
    dedicated_ps: int = 0,
    ps_nic_bandwidth: float | None = None,
    host_pcie_bandwidth: float,
    host_pcie_latency: float,
    max_edges: int | None = None,
) -> ClusterGraph:
    """Build ``nodes`` identical servers joined by ``fabric``, plus ``dedicated_ps``
    CPU-only parameter-server hosts on the same fabric. Bandwidths are bytes/s,
    latencies seconds. A single node with no dedicated servers gets no fabric.

    ``max_edges``: raise :class:`ClusterTooLarge` once the first server is built if the
    whole graph would have more edges (servers x the first one's, plus the fabric's),
    before the time and memory of building it are spent."""
    if server_layout not in SERVER_LAYOUTS:
        raise KeyError(server_layout)
    if fabric not in FABRICS:
        raise KeyError(fabric)
    graph: nx.DiGraph[Any] = nx.DiGraph()
    gpus: list[str] = []
    hosts: list[str] = []
    nic_links: list[tuple[str, float, float]] = []
    stamp = _stamp(server_layout, gpus_per_node, server_params) if nodes > 2 else None
    if stamp is not None:  # each port's name but the prefix ("n0"), cut once
        cut = len(stamp[0].prefix)
        gpu_suffixes, host_suffix = [g[cut:] for g in stamp[1].gpus], stamp[1].host[cut:]
        nic_suffixes = [v[cut:] for v in stamp[1].nics]
    for n in range(nodes):
        if stamp is None:
            ports = SERVER_LAYOUTS[server_layout](graph, f"n{n}", gpus_per_node, **server_params)
        else:
            server, prefix = stamp[0], f"n{n}"
            server.stamp(graph, prefix)
            ports = ServerPorts(tuple([prefix + suffix for suffix in gpu_suffixes]), prefix + host_suffix,
                                tuple([prefix + suffix for suffix in nic_suffixes]))
        if n == 0 and max_edges is not None:
            _check_size(graph, nodes, dedicated_ps, len(ports.nics), fabric, fabric_params, max_edges)
        gpus.extend(ports.gpus)
        hosts.append(ports.host)
        nic_links.extend((nic, nic_bandwidth, nic_latency) for nic in ports.nics)
    ps_hosts: list[str] = []
    for p in range(dedicated_ps):
        ports = host_only(graph, f"ps{p}", pcie_bandwidth=host_pcie_bandwidth, pcie_latency=host_pcie_latency)
        ps_hosts.append(ports.host)
        bandwidth = nic_bandwidth if ps_nic_bandwidth is None else ps_nic_bandwidth
        nic_links.extend((nic, bandwidth, nic_latency) for nic in ports.nics)
    if nodes + dedicated_ps > 1:
        FABRICS[fabric](graph, nic_links, **fabric_params)
    return ClusterGraph(graph, tuple(gpus), tuple(hosts), tuple(ps_hosts))


def _check_size(graph: nx.DiGraph[Any], nodes: int, dedicated_ps: int, nics: int, fabric: str,
                fabric_params: Mapping[str, Any], max_edges: int) -> None:
    """Raise ClusterTooLarge if ``nodes`` servers like the one in ``graph`` (plus the
    parameter-server hosts, two edges each, and the fabric) exceed ``max_edges``."""
    per_server = graph.number_of_edges()
    servers = nodes + dedicated_ps
    total = nodes * per_server + 2 * dedicated_ps  # a parameter-server host: its CPU-NIC link
    if servers > 1:
        total += fabric_edges(fabric, servers, nodes * nics + dedicated_ps, max(nics, 1), dict(fabric_params))
    if total > max_edges:
        raise ClusterTooLarge(
            f"the cluster graph would have {total:,} edges ({nodes:,} servers of {per_server:,} plus the fabric's), "
            f"above the limit of {max_edges:,}"
        )


def _stamp(layout: str, gpus: int, params: Mapping[str, Any]) -> tuple[ServerStamp, ServerPorts] | None:
    """Server ``n0`` of a built-in layout, to stamp every server from (building each
    costs seconds at thousands of servers), with its ports; None unless stamping ``n0``
    as ``n1`` gives exactly what the builder gives for ``n1``."""
    builder = SERVER_LAYOUTS[layout]
    if not builder.__module__.startswith(f"{__package__}."):
        return None  # a layout registered elsewhere may name things its own way
    built = []
    for prefix in ("n0", "n1"):
        server: nx.DiGraph[Any] = nx.DiGraph()
        built.append((server, builder(server, prefix, gpus, **params)))
    (first, ports), (second, second_ports) = built
    stamp = ServerStamp(first, "n0")
    if not stamp.usable or not all(isinstance(name, str) for name in (*ports.gpus, ports.host, *ports.nics)):
        return None
    stamped: nx.DiGraph[Any] = nx.DiGraph()
    stamp.stamp(stamped, "n1")
    renamed = ServerPorts(tuple([stamp.rename(g, "n1") for g in ports.gpus]), stamp.rename(ports.host, "n1"),
                          tuple([stamp.rename(v, "n1") for v in ports.nics]))
    if renamed != second_ports or not same_graph(stamped, second):
        return None
    return stamp, ports

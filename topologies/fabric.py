"""Fabrics: how the NICs of the nodes are joined."""

from __future__ import annotations

from collections.abc import Sequence

import networkx as nx

from .graph import add_duplex_link
from .registry import register_fabric


@register_fabric("single_switch")
def single_switch(
    graph: nx.DiGraph,
    nic_links: Sequence[tuple[str, float, float]],
    *,
    switch_latency: float,
) -> None:
    """One non-blocking switch with a cable to every NIC.

    ``nic_links`` holds ``(nic, bandwidth, latency)`` per NIC: each cable runs at its
    NIC's speed, so a server behind a faster NIC gets a faster cable. The switch's own
    forwarding delay is put on its ingress edges, so a flow between two NICs pays
    ``latency(src cable) + switch_latency + latency(dst cable)``; its backplane is
    never the bottleneck.
    """
    switch = "switch0"
    graph.add_node(switch, kind="switch")
    for nic, bandwidth, latency in nic_links:
        add_duplex_link(graph, nic, switch, bandwidth=bandwidth, latency=latency, link="network")
        graph.edges[nic, switch]["latency"] = latency + switch_latency

"""Fabrics: how the NICs of the nodes are joined.

Each fabric builder takes the graph and ``nic_links``, one ``(nic, bandwidth,
latency)`` per NIC of every server (several per server for multi-NIC servers), and
cables every NIC to a network switch with a link of its NIC's speed. Switches are
nodes of kind ``switch`` with a ``tier`` (``leaf`` or ``spine``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import networkx as nx

from .graph import add_duplex_link
from .registry import FABRIC_PARAMS, FabricParams, register_fabric


@dataclass(frozen=True, kw_only=True)
class SingleSwitchParams(FabricParams):
    """What :func:`single_switch` takes (seconds)."""

    switch_latency: float


@register_fabric("single_switch", params=SingleSwitchParams)
def single_switch(graph: nx.DiGraph[Any], nic_links: Sequence[tuple[str, float, float]], **params: Any) -> None:
    """One non-blocking switch with a cable to every NIC.

    ``nic_links`` holds ``(nic, bandwidth, latency)`` per NIC: each cable runs at its
    NIC's speed, so a server behind a faster NIC gets a faster cable. The switch's own
    forwarding delay is put on its ingress edges, so a flow between two NICs pays
    ``latency(src cable) + switch_latency + latency(dst cable)``; its backplane is
    never the bottleneck. Parameters: the fields of :class:`SingleSwitchParams`.
    """
    p = SingleSwitchParams(**params)
    switch = "switch0"
    graph.add_node(switch, kind="switch", tier="leaf")
    for nic, bandwidth, latency in nic_links:
        add_duplex_link(graph, nic, switch, bandwidth=bandwidth, latency=latency, link="network")
        graph.edges[nic, switch]["latency"] = latency + p.switch_latency


def fabric_edges(fabric: str, servers: int, nics: int, rails: int, params: dict[str, Any]) -> int:
    """Edges ``fabric`` adds for ``servers`` servers with ``nics`` NICs among them, at
    most ``rails`` per server, counted before building it (a leaf-spine's cables grow
    with leaves x spines): a cable each way per NIC, plus, for a leaf-spine, a link each
    way between every leaf and every spine. A fabric registered elsewhere is counted by
    its NIC cables."""
    edges = 2 * nics
    if FABRIC_PARAMS.get(fabric) is LeafSpineParams:
        declared = LeafSpineParams(**params)  # its defaults, where params leave them out
        leaves = -(-servers // max(declared.nodes_per_leaf, 1)) * (rails if declared.rails else 1)
        edges += 2 * leaves * max(declared.spines, 1)
    return edges


def _server_of(graph: nx.DiGraph[Any], nic: str) -> str:
    """The server a NIC belongs to: its ``server`` attribute, else its name's prefix."""
    return graph.nodes[nic].get("server") or str(nic).rsplit(".", 1)[0]


@dataclass(frozen=True, kw_only=True)
class LeafSpineParams(FabricParams):
    """What :func:`leaf_spine` (and ``fat_tree``) takes (latencies seconds)."""

    switch_latency: float
    nodes_per_leaf: int
    spines: int = 2
    oversubscription: float = 1.0
    uplink_latency: float = 0.0
    rails: bool = False


@register_fabric("leaf_spine", params=LeafSpineParams)
def leaf_spine(graph: nx.DiGraph[Any], nic_links: Sequence[tuple[str, float, float]], **params: Any) -> None:
    """A two-level leaf-spine (folded Clos, two-level fat tree) fabric.

    Servers are taken in order (worker nodes, then parameter-server hosts) and put
    ``nodes_per_leaf`` to a leaf switch; all NICs of a server hang off its group's
    leaf, or, with ``rails``, NIC ``k`` of every server of the group hangs off the
    group's leaf for rail ``k`` (rail-optimized: one leaf per rail per group). Every
    leaf has one link to each of ``spines`` spine switches.

    Oversubscription: a leaf's total uplink bandwidth is its total downlink (NIC cable)
    bandwidth divided by ``oversubscription`` (>= 1; 1 is non-blocking), split evenly
    over its spine links. Latency, as in :func:`single_switch`: NIC cables carry their
    NIC's latency, leaf-spine cables ``uplink_latency``, and each switch's forwarding
    delay sits on its ingress edges, so a flow between leaves pays two cables, two
    uplinks and three switches. Sets ``graph.graph["ecmp"] = True``: flows between
    leaves are spread over the ``spines`` equal-cost paths. Parameters: the fields of
    :class:`LeafSpineParams`.
    """
    p = LeafSpineParams(**params)
    nodes_per_leaf, spines, oversubscription, rails = p.nodes_per_leaf, p.spines, p.oversubscription, p.rails
    switch_latency, uplink_latency = p.switch_latency, p.uplink_latency
    if nodes_per_leaf < 1:
        raise ValueError(f"nodes_per_leaf must be >= 1, got {nodes_per_leaf}")
    if spines < 1:
        raise ValueError(f"spines must be >= 1, got {spines}")
    if oversubscription < 1:
        raise ValueError(f"oversubscription must be >= 1, got {oversubscription}")
    servers: dict[str, int] = {}  # server -> group, in order of first appearance
    for nic, _, _ in nic_links:
        servers.setdefault(_server_of(graph, nic), len(servers) // nodes_per_leaf)
    rail_count = 1
    if rails:
        rail_count = 1 + max(int(graph.nodes[nic].get("rail", 0)) for nic, _, _ in nic_links)

    downlink: dict[str, float] = {}
    for nic, bandwidth, latency in nic_links:
        rail = int(graph.nodes[nic].get("rail", 0)) if rails else 0
        leaf = f"leaf{servers[_server_of(graph, nic)] * rail_count + rail}"
        if leaf not in downlink:
            graph.add_node(leaf, kind="switch", tier="leaf")
            downlink[leaf] = 0.0
        add_duplex_link(graph, nic, leaf, bandwidth=bandwidth, latency=latency, link="network")
        graph.edges[nic, leaf]["latency"] = latency + switch_latency
        downlink[leaf] += bandwidth
    for s in range(spines):
        graph.add_node(f"spine{s}", kind="switch", tier="spine")
    for leaf, total in downlink.items():
        uplink = total / oversubscription / spines
        for s in range(spines):
            spine = f"spine{s}"
            add_duplex_link(graph, leaf, spine, bandwidth=uplink, latency=uplink_latency, link="network")
            graph.edges[leaf, spine]["latency"] = uplink_latency + switch_latency
            graph.edges[spine, leaf]["latency"] = uplink_latency + switch_latency
    graph.graph["ecmp"] = True


register_fabric("fat_tree", params=LeafSpineParams)(leaf_spine)

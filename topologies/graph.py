"""Small helpers for annotated cluster graphs."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import networkx as nx


def add_duplex_link(
    graph: nx.DiGraph[Any],
    u: Hashable,
    v: Hashable,
    *,
    bandwidth: float,
    latency: float,
    link: str,
    **attrs: object,
) -> None:
    """Join ``u`` and ``v`` by a full-duplex link: one edge each way, each with the
    full ``bandwidth`` (bytes/s) and ``latency`` (s). Extra keyword arguments become
    attributes of both edges (``links=2``: the edge stands for two physical links
    ganged together, as some NVLink GPU pairs are)."""
    if bandwidth <= 0:
        raise ValueError(f"link {u!r}-{v!r}: bandwidth must be > 0, got {bandwidth}")
    if latency < 0:
        raise ValueError(f"link {u!r}-{v!r}: latency must be >= 0, got {latency}")
    for a, b in ((u, v), (v, u)):
        graph.add_edge(a, b, bandwidth=float(bandwidth), latency=float(latency), link=link, **attrs)

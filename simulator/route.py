"""A route through a :class:`simulator.network.Network`: the directed edges a flow
crosses from one node to another.

Its own module, apart from :mod:`simulator.flows`, because it is a plain frozen
dataclass with a cached property: it stays interpreted when the engine core is compiled
(:mod:`simulator.compiled`), where a compiled class would not keep the cached value.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from functools import cached_property

from .maxmin import EdgeUsage

Node = Hashable


@dataclass(frozen=True)
class Route:
    """The directed edges a flow crosses from ``src`` to ``dst``."""

    src: Node
    dst: Node
    edges: tuple[int, ...]
    latency_s: float

    @cached_property
    def usage(self) -> EdgeUsage:
        return EdgeUsage({e: 1 for e in self.edges})

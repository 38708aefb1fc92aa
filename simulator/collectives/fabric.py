"""What a collective runs on, and the flow plumbing every collective algorithm shares.

A :class:`Fabric` is the network plus how the ranks sit in nodes, and whether flows
are simulated one per rank (detailed) or bundled per phase (fast). On it this module
builds the two shapes every collective is made of: ring steps (each member sends a
chunk to its successor, step k after step k-1 arrived) and a phase of concurrent
point-to-point flows; and, for libraries that reduce in host memory, the fabric of the
ranks' host CPUs. The algorithms built from these are in
:mod:`simulator.collectives.algorithms`, the library that runs them in
:mod:`simulator.collectives.library`.
"""

from __future__ import annotations

import functools
from collections.abc import Generator, Hashable, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING

import simpy

from ..event_loop import Signal
from ..network import Network
from .ring_member import RingMember

if TYPE_CHECKING:
    import networkx as nx

Node = Hashable
Program = Generator[simpy.Event, object, None]


@dataclass(frozen=True)
class Fabric:
    """What a collective runs on: the network and how ranks sit in nodes."""

    env: simpy.Environment
    network: Network
    nodes: Sequence[Sequence[Node]]  # GPU endpoints grouped by node, in rank order
    detailed: bool

    @property
    def ranks(self) -> list[Node]:
        return list(self._ranks)

    @functools.cached_property
    def _ranks(self) -> tuple[Node, ...]:
        """Every rank, node after node (flattened once: at 65,536 GPUs each flattening
        costs, and a library asks several times)."""
        return tuple(chain.from_iterable(self.nodes))


# Each ring set's (member, successor) pairs, by the identity of the set (kept alive here,
# so an id is never reused while cached): a library runs every bucket over the same
# rings, and rebuilding 24,000 pairs per call took a quarter of a 4,000-GPU DGX-1 run.
_RING_PAIRS: dict[int, tuple[Sequence[Sequence[Node]], tuple[tuple[Node, Node], ...]]] = {}


def ring_pairs(rings: Sequence[Sequence[Node]]) -> tuple[tuple[Node, Node], ...]:
    """Every (member, successor) pair of every ring, ring after ring (a ring of one
    member: the member and itself)."""
    return tuple(chain.from_iterable(zip(r, [*r[1:], *r[:1]]) for r in rings))


def _ring_pairs(rings: Sequence[Sequence[Node]]) -> tuple[tuple[Node, Node], ...]:
    hit = _RING_PAIRS.get(id(rings))
    if hit is not None and hit[0] is rings:
        return hit[1]
    pairs = ring_pairs([r for r in rings if len(r) > 1])
    if len(_RING_PAIRS) >= 256:
        _RING_PAIRS.clear()
    _RING_PAIRS[id(rings)] = (rings, pairs)
    return pairs


def ring_steps(f: Fabric, rings: Sequence[Sequence[Node]], chunk: float, steps: int,
               route_latency: bool = True) -> Program:
    """Every ring runs ``steps`` steps; in each, every member sends ``chunk`` bytes to
    its successor, and may send step k only after receiving step k-1. Without
    ``route_latency`` the steps pay no latency: a cost model charges it."""
    if steps == 0 or chunk == 0 or not any(len(r) > 1 for r in rings):
        return
    net = f.network
    if not f.detailed:
        usage, latency = net.bundle(_ring_pairs(rings))
        yield net.start_flow(usage, steps * chunk, steps * latency if route_latency else 0.0, label="ring")
        return
    members: list[simpy.Event] = []
    labels = [f"ring step {k}" for k in range(steps)]  # (made once, not per flow)
    for ring in (r for r in rings if len(r) > 1):
        n = len(ring)
        received = [[Signal() for _ in range(steps)] for _ in range(n)]  # (the members' own events)
        for r in range(n):
            route = net.route(ring[r], ring[(r + 1) % n])  # (the same at every step: routes are cached)
            member = RingMember(net, route.usage, chunk, route.latency_s if route_latency else 0.0, labels,
                                received[r], received[(r + 1) % n])
            members.append(member.finished)
    yield simpy.AllOf(f.env, members)


def concurrent_flows(f: Fabric, pairs: Sequence[tuple[Node, Node]], nbytes: float,
                     extra_latency: float = 0.0) -> Program:
    """Move ``nbytes`` over every pair at once; done when the last arrives."""
    pairs = [(a, b) for a, b in pairs if a != b]
    if not pairs or nbytes == 0:
        return
    net = f.network
    if not f.detailed:
        usage, latency = net.bundle(tuple(pairs))
        yield net.start_flow(usage, nbytes, latency + extra_latency, label="phase")
        return
    flows = [net.transfer(a, b, nbytes) for a, b in pairs]
    yield simpy.AllOf(f.env, flows)
    if extra_latency:
        yield f.env.timeout(extra_latency)


def host_of(graph: nx.DiGraph[Node], gpu: Node) -> Node | None:
    """The CPU whose memory a GPU's host copies go to (None: the rank is not a GPU)."""
    data = graph.nodes[gpu]
    return data.get("host") if data.get("kind") == "gpu" else None


def host_fabric(f: Fabric) -> Fabric | None:
    """The ranks' host CPUs as a fabric: each node's distinct CPUs in rank order (ranks
    on one CPU exchange through shared memory, off the modelled links). None when a
    rank has no host CPU in the graph (CPU devices: the rank already is the host)."""
    graph = f.network.structure
    nodes = []
    for node in f.nodes:
        hosts = [host_of(graph, g) for g in node]
        if any(h is None for h in hosts):
            return None
        nodes.append(list(dict.fromkeys(hosts)))
    return Fabric(f.env, f.network, nodes, f.detailed)

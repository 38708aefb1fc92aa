"""Allreduce algorithms as programs of point-to-point flows over the real topology.

Each algorithm is a generator to run inside a SimPy process; it returns when every
rank holds the reduced result. All of them have two paths over the same network:

* **detailed**: every flow of every rank, with its data dependencies;
* **fast**: each phase in which all ranks move the same bytes at the same time is one
  bundled flow over every rank's edges (advancing at its most contended member's rate).

Closed forms on N ranks with per-step latency a and bandwidth B, message S:

* ``ring``: reduce-scatter then all-gather, 2(N-1) steps of S/N:
  2(N-1)/N * S/B + 2(N-1) a.
* ``tree``: NCCL's double binary tree: two binary trees over the ranks, each carrying
  half the data, built so that a rank is interior in at most one of them. A reduce
  phase streams every child's half up to its parent while a broadcast phase streams it
  back down (chunks pipeline through the levels, so each phase costs its busiest link
  plus one latency per level): about 2 S/B + 2 depth a, depth = ceil(log2(N+1)).
  Fewer latency terms than ring, so it wins for small messages on many ranks.
* ``halving_doubling``: Rabenseifner: reduce-scatter by recursive halving, all-gather
  by recursive doubling, log2(N) pairwise exchanges each way:
  2(N-1)/N * S/B + 2 log2(N) a (N a power of two; otherwise the extra ranks first fold
  their data into a partner and get the result back at the end: + 2 (S/B + a)).
* ``hierarchical``: reduce-scatter inside each node over its fast links, allreduce of
  each 1/L shard across nodes (L concurrent rings, one per local GPU index), all-gather
  inside each node. The slow inter-node links carry 2(M-1)/M * S per node instead of
  2(N-1)/N * S, over 2(M-1) instead of 2(N-1) latency-bound steps.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Generator, Hashable, Sequence
from dataclasses import dataclass

import simpy

from .collective_cost import (Backend, CollectivePlan, Topology, channel_rings, logical_channels, nvls_efficiency,
                              plan, staged)
from .flows import Route
from .graph_links import gc_paused
from .network import Network

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
        return [g for node in self.nodes for g in node]


# -- building blocks ------------------------------------------------------------------


# Each ring set's (member, successor) pairs, by the identity of the set (kept alive here,
# so an id is never reused while cached): a library runs every bucket over the same
# rings, and rebuilding 24,000 pairs per call took a quarter of a 4,000-GPU DGX-1 run.
_RING_PAIRS: dict[int, tuple[Sequence[Sequence[Node]], tuple[tuple[Node, Node], ...]]] = {}


def _ring_pairs(rings: Sequence[Sequence[Node]]) -> tuple[tuple[Node, Node], ...]:
    hit = _RING_PAIRS.get(id(rings))
    if hit is not None and hit[0] is rings:
        return hit[1]
    pairs = tuple((r[i], r[(i + 1) % len(r)]) for r in rings if len(r) > 1 for i in range(len(r)))
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
    programs = []
    for ring in (r for r in rings if len(r) > 1):
        n = len(ring)
        received = [[f.env.event() for _ in range(steps)] for _ in range(n)]

        def member(r: int, ring=ring, n=n, received=received) -> Program:
            for k in range(steps):
                if k > 0:
                    yield received[r][k - 1]
                if route_latency:
                    yield net.transfer(ring[r], ring[(r + 1) % n], chunk, label=f"ring step {k}")
                else:
                    route = net.route(ring[r], ring[(r + 1) % n])
                    yield net.start_flow(route.usage, chunk, 0.0, label=f"ring step {k}")
                received[(r + 1) % n][k].succeed()

        programs.extend(f.env.process(member(r)) for r in range(n))
    yield simpy.AllOf(f.env, programs)


def concurrent_flows(f: Fabric, pairs: Sequence[tuple[Node, Node]], nbytes: float, extra_latency: float = 0.0) -> Program:
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


# -- algorithms -------------------------------------------------------------------------


def ring_allreduce(f: Fabric, nbytes: float) -> Program:
    ranks = f.ranks
    n = len(ranks)
    yield from ring_steps(f, [ranks], nbytes / n, 2 * (n - 1))


def binary_tree(ranks: Sequence[Node]) -> list[tuple[Node, Node]]:
    """(child, parent) edges of a balanced binary tree over ``ranks``.

    Rank ``i`` sits at position p = i + 1; the root is the largest power of two <= N and
    a node whose lowest set bit is b > 1 has children p - b/2 and p + b/2 (or the
    nearest p + b/4, p + b/8, ... that exists). Odd positions are exactly the leaves,
    which is what lets a shifted copy of the tree use the leaves as interior nodes.
    """
    n = len(ranks)
    edges: list[tuple[Node, Node]] = []

    def children(p: int) -> list[int]:
        b = p & -p
        if b == 1:
            return []
        kids = [p - b // 2]
        step = b // 2
        while step >= 1 and p + step > n:
            step //= 2
        if step >= 1:
            kids.append(p + step)
        return kids

    stack = [1 << (n.bit_length() - 1)]
    while stack:
        p = stack.pop()
        for c in children(p):
            edges.append((ranks[c - 1], ranks[p - 1]))
            stack.append(c)
    return edges


def double_binary_tree(ranks: Sequence[Node]) -> tuple[list[tuple[Node, Node]], list[tuple[Node, Node]]]:
    """Two trees; the second is the first over the ranks shifted by one position, so
    the first tree's interior nodes (even positions) are the second's leaves."""
    shifted = list(ranks[-1:]) + list(ranks[:-1])
    return binary_tree(ranks), binary_tree(shifted)


def tree_depth(n: int) -> int:
    """Levels of :func:`binary_tree` over ``n`` ranks."""
    return math.ceil(math.log2(n + 1))


def tree_allreduce(f: Fabric, nbytes: float) -> Program:
    ranks = f.ranks
    if len(ranks) < 2 or nbytes == 0:
        return
    first, second = double_binary_tree(ranks)
    up = first + second
    down = [(parent, child) for child, parent in up]
    # Each level of the pipeline adds one hop's latency beyond the first.
    levels = tree_depth(len(ranks)) - 1
    level_latency = max(f.network.route(a, b).latency_s for a, b in up) * levels
    yield from concurrent_flows(f, up, nbytes / 2, level_latency)
    yield from concurrent_flows(f, down, nbytes / 2, level_latency)


def halving_doubling_allreduce(f: Fabric, nbytes: float) -> Program:
    ranks = f.ranks
    n = len(ranks)
    if n < 2 or nbytes == 0:
        return
    p = 1 << (n.bit_length() - 1)  # largest power of two <= n
    extra = [(ranks[p + i], ranks[i]) for i in range(n - p)]
    yield from concurrent_flows(f, extra, nbytes)  # fold the extra ranks in
    core = ranks[:p]
    size = nbytes
    distances = [p >> (k + 1) for k in range(int(math.log2(p)))]
    for d in distances:  # recursive halving: exchange half of what is left
        size /= 2
        yield from concurrent_flows(f, [(core[i], core[i ^ d]) for i in range(p)], size)
    for d in reversed(distances):  # recursive doubling: gather it back
        yield from concurrent_flows(f, [(core[i], core[i ^ d]) for i in range(p)], size)
        size *= 2
    yield from concurrent_flows(f, [(b, a) for a, b in extra], nbytes)  # hand results back


def hierarchical_allreduce(f: Fabric, nbytes: float) -> Program:
    local = len(f.nodes[0])
    if any(len(node) != local for node in f.nodes):
        raise ValueError("hierarchical allreduce needs the same number of GPUs in every node")
    if len(f.nodes) == 1 or local == 1:
        yield from ring_allreduce(f, nbytes)
        return
    m = len(f.nodes)
    shard = nbytes / local
    yield from ring_steps(f, f.nodes, shard, local - 1)  # reduce-scatter inside nodes
    across = [[node[j] for node in f.nodes] for j in range(local)]
    yield from ring_steps(f, across, shard / m, 2 * (m - 1))  # allreduce each shard across nodes
    yield from ring_steps(f, f.nodes, shard, local - 1)  # all-gather inside nodes


ALLREDUCE_ALGORITHMS: dict[str, Callable[[Fabric, float], Program]] = {
    "ring": ring_allreduce,
    "tree": tree_allreduce,
    "halving_doubling": halving_doubling_allreduce,
    "hierarchical": hierarchical_allreduce,
}


def fastest_algorithm(f: Fabric, nbytes: float) -> str:
    """The algorithm ``auto`` uses for one message size: each candidate is simulated
    alone on an idle copy of the network (fast path) and the quickest wins, ties to
    the earlier name in :data:`ALLREDUCE_ALGORITHMS`. This is the same selection NCCL
    makes from its cost model, made with the simulator's own model of this topology."""
    best, best_time = "ring", math.inf
    for name, algorithm in ALLREDUCE_ALGORITHMS.items():
        env = simpy.Environment()
        scratch = Fabric(env, Network(env, f.network.graph), f.nodes, detailed=False)
        env.process(algorithm(scratch, nbytes))
        env.run()
        if env.now < best_time * (1 - 1e-9):
            best, best_time = name, env.now
    return best


# -- a collective library on top of the flows --------------------------------------------


class CollectiveLibrary:
    """Runs collectives as a library (:mod:`simulator.collective_cost`) does: its
    rings (one per channel), its choice of algorithm and protocol per call, its launch
    and per-step latency, its protocol's bytes on the wire. The bandwidth term stays a
    flow over the real topology, so it feels contention like every other transfer.

    With a backend that has no latency table (``ideal``, ``gloo``) the algorithms run
    exactly as the plain flow programs above."""

    def __init__(self, f: Fabric, backend: Backend, architecture: str, protocol: str = "auto",
                 max_channels: int | None = None):
        self.fabric = f
        self.backend = backend
        self.protocol = protocol
        self.architecture = architecture
        limit = max_channels or backend.max_channels
        nodes = [list(node) for node in f.nodes]
        self.rings = channel_rings(f.network.graph, nodes, limit, f.network.router.rail_nics) if backend.models_steps \
            else [f.ranks]
        self._topology: Topology | None = None
        self._tree_topology: Topology | None = None
        self._plans: dict[tuple[str, float, str], CollectivePlan] = {}
        self.plans_used: dict[str, CollectivePlan] = {}  # "algorithm/protocol" -> a plan that ran
        self.calls: dict[str, int] = {}  # "algorithm/protocol" -> calls run
        self._host_fabric = host_fabric(f) if backend.host_memory else None

    @property
    def topology(self) -> Topology:
        if self._topology is None:
            with gc_paused():
                self._topology = self._ring_topology()
        return self._topology

    def _ring_topology(self) -> Topology:
        net = self.fabric.network
        pairs = tuple((r[i], r[(i + 1) % len(r)]) for r in self.rings for i in range(len(r)))
        rate = self._bundle_rate(pairs)
        routes = self._routes(pairs)
        classes = {_class_of(route.edges, net.link_of) for route in routes.values()} - {"net"}
        intra_class = "nvlink" if classes == {"nvlink"} else "pci"
        switch_bw = self._switch_bandwidth()
        # Summed as numpy scalars, as before the per-edge link kinds were listed.
        network_latency = max((sum(net.latency[e] for e in route.edges if net.link_of[e] == "network")
                               for route in routes.values()), default=0.0)
        return Topology(
            ranks=len(self.fabric.ranks), nodes=len(self.fabric.nodes), intra_class=intra_class,
            architecture=self.architecture,
            channels=logical_channels(self.backend, self.architecture, len(self.rings), switch_bw),
            ring_busbw=min(rate, self._staging_rate(pairs, routes), self._connection_rate(routes))
            * len(self.rings),
            flow_busbw=rate * len(self.rings),
            switch_bw=switch_bw,
            network_latency_s=network_latency,
        )

    def _bundle_rate(self, pairs: tuple[tuple[Node, Node], ...]) -> float:
        """Rate of each member of a bundle of ``pairs`` alone on the idle network."""
        net = self.fabric.network
        usage, _ = net.bundle(pairs)
        return min(net.capacity[e] / count for e, count in usage.mapping.items())

    def _routes(self, pairs: Sequence[tuple[Node, Node]]) -> dict[tuple[Node, Node], Route]:
        """Route of every distinct pair, from the network's cache. (Link kinds are read
        per edge from the network's lists: at 65,536 GPUs a node path and a graph view
        lookup per hop cost seconds.)"""
        route = self.fabric.network.route
        return {p: route(*p) for p in dict.fromkeys(pairs)}

    def _tree_pairs(self) -> tuple[tuple, tuple]:
        """NCCL's tree as (intra-node, inter-node) hops, both directions, per channel:
        a chain through each node's GPUs (in the channel's ring order), and across nodes
        a double binary tree of the nodes, each tree carrying half the buffer, entered
        and left through the channel's GPU (hence its NIC)."""
        nodes, per_node = self.fabric.nodes, len(self.fabric.nodes[0])
        intra, inter = [], []
        for ring in self.rings:
            locals_ = [ring[i * per_node:(i + 1) * per_node] for i in range(len(nodes))]
            for chain in locals_:
                for a, b in zip(chain, chain[1:]):
                    intra += [(a, b), (b, a)]
            if len(nodes) > 1:
                first, second = double_binary_tree(list(range(len(nodes))))
                for child, parent in first + second:
                    inter += [(locals_[child][0], locals_[parent][0]), (locals_[parent][0], locals_[child][0])]
        return tuple(intra), tuple(inter)

    @functools.cached_property
    def _tree_hop_rates(self) -> tuple[float, float]:
        """Rate of each hop of the tree's (chain, node-tree) bundles alone on the idle
        network, host staging included; 0 where a bundle is empty."""
        rates = []
        for pairs in self._tree_pairs():
            routes = self._routes(pairs) if pairs else {}
            rates.append(min(self._bundle_rate(pairs), self._staging_rate(pairs, routes), self._connection_rate(routes))
                         if pairs else 0.0)
        return tuple(rates)

    def _tree_busbw(self) -> float:
        """busBw (NCCL's: 2 x algbw) of the tree flows alone: chain hops carry S per
        channel each way, inter-node tree hops S/2 per channel each way."""
        k = len(self.rings)
        seconds_per_byte = max((share / rate for rate, share in zip(self._tree_hop_rates, (1.0 / k, 0.5 / k)) if rate),
                               default=0.0)
        return 2.0 / seconds_per_byte if seconds_per_byte else 0.0

    def _node_tree_algbw(self) -> float:
        """Algorithm bandwidth of the node tree's NIC flows alone (inter-node tree hops
        carry S/2 per channel each way), as NVLS tree runs them."""
        return self._tree_hop_rates[1] * 2.0 * len(self.rings)

    def _staging_rate(self, pairs: Sequence[tuple[Node, Node]], routes: dict[tuple[Node, Node], Route]) -> float:
        """The rate at which a ring's hops through host memory can go: each staged hop
        at most the backend's ``host_staging_gbytes_s`` (inf when no hop is staged).
        (A ceiling shared by all the hops a CPU stages fitted the dev set worse: it
        over-penalizes 8-GPU GeForce servers.)"""
        cap = self.backend.host_staging_gbytes_s
        if not cap:
            return math.inf
        graph, edges = self.fabric.network.graph, self.fabric.network.edges
        paths = {p: [edges[e][0] for e in route.edges] + [p[1]] for p, route in routes.items()}
        if not any(staged(graph, paths[pair]) for pair in pairs):
            return math.inf
        return cap * 1e9

    def _connection_rate(self, routes: dict[tuple[Node, Node], Route]) -> float:
        """The most a hop across the network moves: one connection of the transport,
        at most the backend's ``connection_gbytes_s`` (inf when unset or no hop leaves
        a node)."""
        cap = self.backend.connection_gbytes_s
        link_of = self.fabric.network.link_of
        if not cap or not any(_class_of(route.edges, link_of) == "net" for route in routes.values()):
            return math.inf
        return cap * 1e9

    def describe(self) -> dict:
        """What the library did, for reports and JSON: backend, channels (NCCL's count:
        on NVSwitch servers one ring shape repeated), the distinct rings, calls."""
        return {
            "backend": self.backend.name,
            "channels": logical_channels(self.backend, self.architecture, len(self.rings), self._switch_bandwidth()),
            "rings": [[str(g) for g in ring] for ring in self.rings],
            "calls": dict(sorted(self.calls.items())),
        }

    def _through_host_memory(self, collective: str, nbytes: float, algorithm: str) -> Program:
        """MPI / gloo with GPU buffers: copy to the host, run the collective between
        the hosts, copy back. The host ring moves S/N per step over 2(N-1) steps as the
        rank ring does (N = ranks: the ranks of one CPU hand chunks over in its memory);
        each rank's CPU sums (N-1)/N S for an allreduce or reduce-scatter. Every
        ``algorithm`` runs as this ring (gloo's halving-doubling moves the same bytes
        per rank with fewer latency terms, which the host copies dwarf)."""
        f, hosts = self.fabric, self._host_fabric
        assert hosts is not None
        n = len(f.ranks)
        graph = f.network.graph
        ups = [(g, _host_of(graph, g)) for g in f.ranks]
        yield from concurrent_flows(f, ups, nbytes)
        ring = hosts.ranks
        name = "host/ring"
        self.calls[name] = self.calls.get(name, 0) + 1
        if collective == "allreduce":
            yield from ring_steps(hosts, [ring], nbytes / n, 2 * (n - 1))
        elif collective in ("allgather", "reduce_scatter"):
            yield from ring_steps(hosts, [ring], nbytes / n, n - 1)
        else:
            yield from concurrent_flows(hosts, list(zip(ring[:-1], ring[1:])), nbytes)
        if collective in ("allreduce", "reduce_scatter"):
            yield f.env.timeout(3 * (n - 1) / n * nbytes / (self.backend.host_reduce_gbytes_s * 1e9))
        yield from concurrent_flows(f, [(h, g) for g, h in ups], nbytes)

    def _switch_bandwidth(self) -> float:
        """Bytes/s of a GPU's link to its NVSwitch, as the library achieves it (0: none)."""
        gpu = self.fabric.ranks[0]
        switch = self._switch_of(gpu)
        return self.fabric.network.graph.edges[gpu, switch]["bandwidth"] if switch is not None else 0.0

    def _switch_of(self, gpu: Node) -> Node | None:
        graph = self.fabric.network.graph
        return next((v for v in graph.successors(gpu) if graph.nodes[v].get("kind") == "nvswitch"), None)

    def _nvls_usage(self):
        """Every GPU's link to its NVSwitch, both ways: what NVLS moves over."""
        up = [(g, self._switch_of(g)) for g in self.fabric.ranks]
        usage, _ = self.fabric.network.bundle(tuple(up + [(b, a) for a, b in up]))
        return usage

    def _topology_for(self, collective: str, algorithm: str) -> Topology:
        """The topology, with the tree's own bandwidth where the tree may run (routing
        its hops costs time at scale, so only then)."""
        if collective != "allreduce" or algorithm not in ("auto", "tree", "nvls_tree"):
            return self.topology
        if "tree" not in self.backend.algorithms and self.backend.nvls is None:
            return self.topology
        if self._tree_topology is None:
            topo = self.topology
            spec = self.backend.nvls
            node_tree = (self._node_tree_algbw() if spec is not None and topo.nodes > 1 and topo.switch_bw > 0
                         and self.architecture in spec.efficiency else 0.0)
            tree = self._tree_busbw() if "tree" in self.backend.algorithms else 0.0
            self._tree_topology = dataclasses.replace(topo, tree_busbw=tree, node_tree_algbw=node_tree)
        return self._tree_topology

    def plan(self, collective: str, nbytes: float, algorithm: str = "auto") -> CollectivePlan:
        key = (collective, nbytes, algorithm)
        if key not in self._plans:
            topology = self._topology_for(collective, algorithm)
            self._plans[key] = plan(self.backend, topology, collective, nbytes, algorithm, self.protocol)
        return self._plans[key]

    def run(self, collective: str, nbytes: float, algorithm: str = "auto") -> Program:
        """Program of one call (allreduce, allgather, reduce_scatter or broadcast)."""
        f = self.fabric
        n = len(f.ranks)
        if n < 2 or nbytes == 0:
            return
        if self.backend.host_memory and self._host_fabric is not None:
            yield from self._through_host_memory(collective, nbytes, algorithm)
            return
        if not self.backend.models_steps or algorithm in ("halving_doubling", "hierarchical"):
            if collective == "allreduce":
                yield from ALLREDUCE_ALGORITHMS["ring" if algorithm == "auto" else algorithm](f, nbytes)
            else:
                yield from _plain(f, collective, nbytes)
            return
        p = self.plan(collective, nbytes, algorithm)
        name = f"{p.algorithm}/{p.protocol}"
        self.plans_used.setdefault(name, p)
        self.calls[name] = self.calls.get(name, 0) + 1
        yield f.env.timeout(p.latency_s)
        wire = nbytes * p.byte_factor * p.bandwidth_factor
        k = len(self.rings)
        if p.algorithm == "nvls":
            # The switch reduces (multimem loads) and multicasts (multimem stores): each
            # GPU's link carries the others' share of the buffer once each way, at once.
            yield f.network.start_flow(self._nvls_usage(), wire * (n - 1) / n, 0.0, label="nvls")
        elif p.algorithm == "nvls_tree":
            # NVLS inside every node and the node tree over the NICs, pipelined: both
            # move at once, the NVLS flows slowed by the switch's reduction efficiency.
            efficiency = nvls_efficiency(self.backend.nvls, self.architecture, achieved=True)
            flows = [f.network.start_flow(self._nvls_usage(), wire * (n - 1) / n / efficiency, 0.0, label="nvls")]
            _, inter = self._tree_pairs()
            usage, _ = f.network.bundle(inter)
            flows.append(f.network.start_flow(usage, wire * 0.5 / k, 0.0, label="tree"))
            yield simpy.AllOf(f.env, flows)
        elif p.algorithm == "tree":
            # Reduce up and broadcast down pipelined: the chain and the node tree move
            # at once, each as one bundled flow feeling the network's contention.
            intra, inter = self._tree_pairs()
            flows = []
            for pairs, share in ((intra, 1.0 / k), (inter, 0.5 / k)):
                if pairs:
                    usage, _ = f.network.bundle(pairs)
                    flows.append(f.network.start_flow(usage, wire * share, 0.0, label="tree"))
            yield simpy.AllOf(f.env, flows)
        elif collective == "allreduce":
            yield from ring_steps(f, self.rings, wire / (k * n), 2 * (n - 1), route_latency=False)
        elif collective == "broadcast":
            pairs = [(r[i], r[i + 1]) for r in self.rings for i in range(n - 1)]
            usage, _ = f.network.bundle(tuple(pairs))
            yield f.network.start_flow(usage, wire / k, 0.0, label="broadcast")
        else:  # allgather, reduce_scatter: n-1 ring steps of size / n
            yield from ring_steps(f, self.rings, wire / (k * n), n - 1, route_latency=False)


def _class_of(edges: Sequence[int], link_of: Sequence[str | None]) -> str:
    """:func:`simulator.collective_cost.link_class` of a route, from its edges' link
    kinds: ``net`` if it leaves the server, ``nvlink`` if it is NVLink only, else ``pci``."""
    links = {link_of[e] for e in edges}
    if "network" in links:
        return "net"
    if links and links <= {"nvlink"}:
        return "nvlink"
    return "pci"


def _host_of(graph, gpu: Node) -> Node | None:
    """The CPU whose memory a GPU's host copies go to (None: the rank is not a GPU)."""
    data = graph.nodes[gpu]
    return data.get("host") if data.get("kind") == "gpu" else None


def host_fabric(f: Fabric) -> Fabric | None:
    """The ranks' host CPUs as a fabric: each node's distinct CPUs in rank order (ranks
    on one CPU exchange through shared memory, off the modelled links). None when a
    rank has no host CPU in the graph (CPU devices: the rank already is the host)."""
    graph = f.network.graph
    nodes = []
    for node in f.nodes:
        hosts = [_host_of(graph, g) for g in node]
        if any(h is None for h in hosts):
            return None
        nodes.append(list(dict.fromkeys(hosts)))
    return Fabric(f.env, f.network, nodes, f.detailed)


def _plain(f: Fabric, collective: str, nbytes: float) -> Program:
    """allgather / reduce_scatter as n-1 ring steps of S/n; broadcast as a pipelined
    chain root -> 1 -> ... -> n-1 moving S over every hop at once."""
    n = len(f.ranks)
    if collective in ("allgather", "reduce_scatter"):
        yield from ring_steps(f, [f.ranks], nbytes / n, n - 1)
    else:
        yield from concurrent_flows(f, list(zip(f.ranks[:-1], f.ranks[1:])), nbytes)

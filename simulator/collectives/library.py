"""A collective library on top of the flows: NCCL-like channels, plans and protocol on the real topology.

:class:`CollectiveLibrary` runs collectives as a library does: over its rings (one per
channel, :mod:`simulator.collectives.channels`), with its choice of algorithm and
protocol per call and its launch and per-step latency
(:mod:`simulator.collectives.cost`), and its protocol's bytes on the wire. It measures
what the rings, trees and NVLS flows reach on the idle network to describe the
topology to the cost model, then runs the chosen plan's bandwidth term as flows over
the real topology (:mod:`simulator.collectives.fabric`), so it feels contention like
every other transfer. Backends without a latency table, and the algorithms no library
runs, fall back to the plain flow programs of :mod:`simulator.collectives.algorithms`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence
from typing import cast

import numpy as np
import simpy

from ..flows import Route
from ..gc_policy import gc_paused
from ..maxmin import EdgeUsage
from .algorithms import ALLREDUCE_ALGORITHMS, double_binary_tree, plain_collective
from .backend import Backend
from .channels import channel_rings
from .cost import CollectivePlan, Topology, logical_channels, nvls_efficiency, plan
from .fabric import Fabric, Node, Program, concurrent_flows, host_fabric, host_of, ring_pairs, ring_steps


class CollectiveLibrary:
    """Runs collectives as a library (:mod:`simulator.collectives.cost`) does: its
    rings (one per channel), its choice of algorithm and protocol per call, its launch
    and per-step latency, its protocol's bytes on the wire. The bandwidth term stays a
    flow over the real topology, so it feels contention like every other transfer.

    With a backend that has no latency table (``ideal``, ``gloo``) the algorithms run
    exactly as the plain flow programs of :mod:`simulator.collectives.algorithms`."""

    def __init__(self, f: Fabric, backend: Backend, architecture: str, protocol: str = "auto",
                 max_channels: int | None = None):
        self.fabric = f
        self.backend = backend
        self.protocol = protocol
        self.architecture = architecture
        limit = max_channels or backend.max_channels
        nodes = [list(node) for node in f.nodes]
        net = f.network
        self.rings = channel_rings(net.structure, nodes, limit, net.router.rail_nics) if backend.models_steps \
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
        pairs = ring_pairs(self.rings)
        rate = self._bundle_rate(pairs)
        features = self._composed_features(pairs)
        if features is None:
            routes = self._routes(pairs)
            classes = {_class_of(route.edges, net.link_of) for route in routes.values()} - {"net"}
            # Summed as numpy scalars, as before the per-edge link kinds were listed.
            network_latency = max((sum(net.latency[e] for e in route.edges if net.link_of[e] == "network")
                                   for route in routes.values()), default=0.0)
            ceiling = min(self._staging_rate(routes), self._connection_rate(routes))
        else:
            classes, network_latency, ceiling = features
        intra_class = "nvlink" if classes == {"nvlink"} else "pci"
        switch_bw = self._switch_bandwidth()
        return Topology(
            ranks=len(self.fabric.ranks), nodes=len(self.fabric.nodes), intra_class=intra_class,
            architecture=self.architecture,
            channels=logical_channels(self.backend, self.architecture, len(self.rings), switch_bw),
            ring_busbw=min(rate, ceiling) * len(self.rings),
            flow_busbw=rate * len(self.rings),
            switch_bw=switch_bw,
            network_latency_s=network_latency,
        )

    def _composed_features(self, pairs: tuple[tuple[Node, Node], ...]) -> tuple[set[str], float, float] | None:
        """What :meth:`_ring_topology` reads from the routes of ``pairs`` (the link classes
        of the hops inside nodes, the worst network latency, the staging and connection
        ceiling), from the routes composed shape by shape
        (:meth:`simulator.graph_links.GraphLinks.composed`: no route object per pair).
        None where they are not composed, or no route crosses the network (the per-route
        arithmetic then decides whether the latency is 0 or 0.0)."""
        links = self.fabric.network.links
        composed = links.composed(pairs)
        if composed is None:
            return None
        network, nvlink, into_cpu = links.link_mask("network"), links.link_mask("nvlink"), links.into_cpu_mask
        classes: set[str] = set()
        worst = 0.0
        staged = crosses = False
        for edges in composed.rows():
            net_rows = network[edges].any(axis=1)
            crosses = crosses or bool(net_rows.any())
            inside = edges[~net_rows]
            if len(inside):  # "nvlink": NVLink only (and not empty); else "pci"
                only_nvlink = nvlink[inside].all(axis=1) & (inside.shape[1] > 0)
                if only_nvlink.any():
                    classes.add("nvlink")
                if not only_nvlink.all():
                    classes.add("pci")
            # Network latency summed edge after edge from the source (adding 0.0 for the
            # other edges changes no bit), as the per-route sum does.
            sums = np.zeros(len(edges))
            for column in edges.T:
                sums += np.where(network[column], links.latency[column], 0.0)
            if len(sums):
                worst = max(worst, float(sums.max()))
            staged = staged or bool(self._staged(into_cpu[edges[:, :-1]].sum(axis=1), net_rows).any())
        if not worst > 0:
            return None
        cap, connection = self.backend.host_staging_gbytes_s, self.backend.connection_gbytes_s
        ceiling = min(cap * 1e9 if cap and staged else math.inf,  # as _staging_rate and _connection_rate
                      connection * 1e9 if connection and crosses else math.inf)
        return classes, np.float64(worst), ceiling

    def _bundle_rate(self, pairs: tuple[tuple[Node, Node], ...]) -> float:
        """Rate of each member of a bundle of ``pairs`` alone on the idle network."""
        net = self.fabric.network
        usage, _ = net.bundle(pairs)
        if len(usage.edges) > 256:  # the same quotients (capacity / count) and minimum, in numpy
            return float(np.min(net.capacity[usage.index] / usage.multiplicity))
        return min(float(net.capacity[e]) / count for e, count in usage.mapping.items())

    def _routes(self, pairs: Sequence[tuple[Node, Node]]) -> dict[tuple[Node, Node], Route]:
        """Route of every distinct pair, from the network's cache. (Link kinds are read
        per edge from the network's lists: at 65,536 GPUs a node path and a graph view
        lookup per hop cost seconds.)"""
        route = self.fabric.network.route
        return {p: route(*p) for p in dict.fromkeys(pairs)}

    def _tree_pairs(self) -> tuple[tuple[tuple[Node, Node], ...], tuple[tuple[Node, Node], ...]]:
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
            rates.append(min(self._bundle_rate(pairs), self._staging_rate(routes), self._connection_rate(routes))
                         if pairs else 0.0)
        return cast("tuple[float, float]", tuple(rates))

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

    def _staging_rate(self, routes: dict[tuple[Node, Node], Route]) -> float:
        """The rate at which a ring's hops through host memory can go: each staged hop
        at most the backend's ``host_staging_gbytes_s`` (inf when no hop is staged).
        (A ceiling shared by all the hops a CPU stages fitted the dev set worse: it
        over-penalizes 8-GPU GeForce servers.)"""
        cap = self.backend.host_staging_gbytes_s
        if not cap:
            return math.inf
        # A route is staged where one of its interior nodes (the heads of every edge but
        # the last) is a CPU, unless it stays inside the node and crosses no more CPUs
        # than the P2P level lets peer copies through.
        into_cpu, link_of = self.fabric.network.links.into_cpu, self.fabric.network.link_of
        cpu_hops = np.array([sum(1 for e in route.edges[:-1] if into_cpu[e]) for route in routes.values()])
        leaves = np.array([_class_of(route.edges, link_of) == "net" for route in routes.values()], dtype=bool)
        return cap * 1e9 if self._staged(cpu_hops, leaves).any() else math.inf

    def _staged(self, cpu_hops: np.ndarray, leaves_node: np.ndarray) -> np.ndarray:
        """Per route, whether it goes through host memory: it passes a CPU, and either
        leaves the node or passes more CPUs than the P2P level lets peer copies through."""
        return (cpu_hops > 0) & (leaves_node | (cpu_hops > self._p2p_cpu_hops))

    @functools.cached_property
    def _p2p_cpu_hops(self) -> float:
        """How many CPUs a GPU-to-GPU route inside a node may pass through and still be
        a peer-to-peer copy (the backend's ``p2p_level``); 0 where the GPUs cannot do
        P2P at all (then every hop through a CPU is staged in host memory)."""
        hops = {"PXB": 0, "PHB": 1, "SYS": math.inf}[self.backend.p2p_level]
        graph = self.fabric.network.structure
        if hops and not all(graph.nodes[g].get("p2p", True) for g in self.fabric.ranks):
            return 0
        return hops

    def _connection_rate(self, routes: dict[tuple[Node, Node], Route]) -> float:
        """The most a hop across the network moves: one connection of the transport,
        at most the backend's ``connection_gbytes_s`` (inf when unset or no hop leaves
        a node)."""
        cap = self.backend.connection_gbytes_s
        link_of = self.fabric.network.link_of
        if not cap or not any(_class_of(route.edges, link_of) == "net" for route in routes.values()):
            return math.inf
        return cap * 1e9

    def describe(self) -> dict[str, object]:
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
        graph = f.network.structure
        ups = [(g, host_of(graph, g)) for g in f.ranks]
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
        net = self.fabric.network
        return float(net.capacity[net.edge_index[gpu, switch]]) if switch is not None else 0.0

    def _switch_of(self, gpu: Node) -> Node | None:
        graph = self.fabric.network.structure
        return next((v for v in graph.successors(gpu) if graph.nodes[v].get("kind") == "nvswitch"), None)

    def _nvls_usage(self) -> EdgeUsage:
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
                yield from plain_collective(f, collective, nbytes)
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
            spec = self.backend.nvls
            assert spec is not None  # the cost model plans NVLS tree only with an NVLS spec
            efficiency = nvls_efficiency(spec, self.architecture, achieved=True)
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
            chains = [(r[i], r[i + 1]) for r in self.rings for i in range(n - 1)]
            usage, _ = f.network.bundle(tuple(chains))
            yield f.network.start_flow(usage, wire / k, 0.0, label="broadcast")
        else:  # allgather, reduce_scatter: n-1 ring steps of size / n
            yield from ring_steps(f, self.rings, wire / (k * n), n - 1, route_latency=False)


def _class_of(edges: Sequence[int], link_of: Sequence[str | None]) -> str:
    """:func:`simulator.collectives.channels.link_class` of a route, from its edges' link
    kinds: ``net`` if it leaves the server, ``nvlink`` if it is NVLink only, else ``pci``."""
    links = {link_of[e] for e in edges}
    if "network" in links:
        return "net"
    if links and links <= {"nvlink"}:
        return "nvlink"
    return "pci"

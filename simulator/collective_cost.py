"""How a collective library runs a collective: rings, channels, protocol, latency.

The flow network (:mod:`simulator.network`) knows how fast bytes move over links. A
real library adds what a clean bandwidth model leaves out, and leaving it out makes
every prediction optimistic (see ``../shared/DESIGN.md``, "Accuracy"):

* a **launch cost** per call and a **latency per pipeline step** that depends on the
  protocol and on the link class the step crosses (NVLink, PCIe, network);
* a **protocol** whose wire format carries flags with the data (NCCL's LL sends a flag
  with every 4 bytes: half the bandwidth; LL128: 120 of 128 bytes; Simple: all), with
  its own bandwidth ceilings;
* **channels**: several rings in parallel, found by searching the server graph for
  rings that use NVLink only (what NCCL's topology search does on a DGX-1);
* **achievable bandwidth per link class** (NCCL reaches 20 of an NVLink's 25 GB/s) and
  **host staging across CPU sockets** (no peer-to-peer over QPI/UPI);
* the **choice** of algorithm and protocol per call, made as the library makes it:
  from its own latency + size / bandwidth estimate, not by simulating every option.

All the numbers live in backend files (``simulator/data/backends/*.yaml``, one per
library, every figure with its source); this module turns them into a
:class:`CollectivePlan` per (collective, size) that :mod:`simulator.collectives` runs
on the flow network. The ``ideal`` backend is the plain flow model, where the closed
forms hold exactly.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

import networkx as nx
import yaml
from pydantic import BaseModel, ConfigDict, Field

from topologies.graph import copy_graph

from .server_shapes import graph_dicts

Node = Hashable
PROTOCOLS = ("LL", "LL128", "Simple")
ARCH_ORDER = ("Kepler", "Maxwell", "Pascal", "Volta", "Turing", "Ampere", "Hopper")


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProtocolSpec(_Frozen):
    wire_efficiency: float = Field(gt=0, le=1, description="Payload fraction of the bytes on the wire.")


class NvlsSpec(_Frozen):
    efficiency: dict[str, float]  # the library's own figure, on which it chooses
    achieved: dict[str, float] = Field(default_factory=dict)  # what runs reach, if measured otherwise
    channels: int = Field(ge=2)
    latency_us: float = Field(ge=0)
    # NVLS tree (several nodes): NVLS inside each node, a tree of nodes over the NICs.
    tree_net_latency_us: float | None = Field(None, ge=0)
    tree_per_channel_gbytes_s: dict[str, list[float]] = Field(default_factory=dict)


class Backend(_Frozen):
    """One collective library's cost model (a file in ``simulator/data/backends``)."""

    name: str
    description: str
    source: str
    algorithms: list[str]
    protocols: dict[str, ProtocolSpec]
    base_latency_us: dict[str, dict[str, float]] = Field(default_factory=dict)
    step_latency_us: dict[str, dict[str, dict[str, float]]] = Field(default_factory=dict)
    net_overhead_us: float = 0.0
    ring_plateau_factor: dict[str, float] = Field(default_factory=dict)
    ll_max_busbw_gbytes_s: dict[str, float | dict[str, float]] = Field(default_factory=dict)
    ll128_per_channel_gbytes_s: dict[str, float] = Field(default_factory=dict)
    tree_bandwidth_factor: float = 1.0
    tree_per_channel_gbytes_s: dict[str, list[float]] = Field(default_factory=dict)
    # Tree with LL / LL128: busBw x this (one node, several nodes) instead of the wire
    # efficiency, LL128 capped per channel by node count (GB/s).
    tree_protocol_factor: dict[str, list[float]] = Field(default_factory=dict)
    tree_ll128_per_channel_gbytes_s: dict[str, list[float]] = Field(default_factory=dict)
    # The library's size-dependent correction of tree bandwidth in its estimate (choice
    # only), per protocol, indexed by log2(bytes / 64).
    tree_correction_factor: dict[str, list[float]] = Field(default_factory=dict)
    max_channels: int = Field(1, ge=1)
    achievable: dict[str, float | dict[str, float]] = Field(default_factory=dict)
    host_staging_gbytes_s: float | None = Field(None, gt=0)
    # The most one channel's connection across the network moves (None: no limit): a
    # single TCP stream where the transport opens one socket per connection (NCCL's
    # socket transport before 2.4.8) and the network caps a flow (a cloud's per-flow
    # limit). Set per scenario: ``training.collectives.net_connection_gbps``.
    connection_gbytes_s: float | None = Field(None, gt=0)
    # How much slower a rank computes while the library's collective runs on its device
    # (its kernels hold SMs and memory bandwidth): fitted; 1 = no interference.
    compute_interference: float = Field(1.0, ge=1.0)
    call_overhead_us: float = Field(0.0, ge=0)
    # What a pipeline step costs in a run beyond the library's own latency table (which
    # it chooses by), per protocol; not part of the choice.
    step_overhead_us: dict[str, float] = Field(default_factory=dict)
    # NCCL's channel count where its search repeats one ring shape (NVSwitch servers:
    # every GPU pair one switch away), by GPU architecture; fewer where the GPU's switch
    # link carries fewer channels of ``nvswitch_channel_gbytes_s`` (two per such share).
    nvswitch_channels: dict[str, int] = Field(default_factory=dict)
    nvswitch_channel_gbytes_s: float = Field(20.0, gt=0)
    nvls: NvlsSpec | None = None
    # Libraries that reduce in host memory (MPI, gloo with GPU tensors): every rank copies
    # its buffer to its CPU, the ring runs between the hosts, the CPU sums what arrives
    # (reading two buffers, writing one, at ``host_reduce_gbytes_s``), the result is
    # copied back to the GPU.
    host_memory: bool = False
    host_reduce_gbytes_s: float = Field(10.0, gt=0)

    @property
    def models_steps(self) -> bool:
        """Whether steps pay the backend's latency table (else their route latency)."""
        return bool(self.step_latency_us)

    def achievable_fraction(self, link: str, architecture: str) -> float:
        value = self.achievable.get(link, 1.0)
        if isinstance(value, dict):
            return value.get(architecture, 1.0)
        return value


def with_measured(backend: Backend, host_staging_gbytes_s: float | None = None,
                  network_efficiency: float | None = None, net_connection_gbps: float | None = None,
                  compute_interference: float | None = None) -> Backend:
    """``backend`` with the figures a user measured on their machine in place of its
    fitted ones (unchanged where a figure is None)."""
    update: dict = {}
    if compute_interference is not None:
        update["compute_interference"] = compute_interference
    if net_connection_gbps is not None:
        update["connection_gbytes_s"] = net_connection_gbps / 8
    if host_staging_gbytes_s is not None:
        update["host_staging_gbytes_s"] = host_staging_gbytes_s
    if network_efficiency is not None:
        update["achievable"] = {**backend.achievable, "network": network_efficiency}
    return backend.model_copy(update=update) if update else backend


def list_backends() -> list[str]:
    folder = resources.files("simulator") / "data" / "backends"
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


@cache
def get_backend(name: str) -> Backend:
    """The backend called ``name``; ``KeyError`` listing the known ones if absent."""
    if name not in list_backends():
        raise KeyError(f"unknown collective backend {name!r}; known: {', '.join(list_backends())}")
    text = (resources.files("simulator") / "data" / "backends" / f"{name}.yaml").read_text(encoding="utf-8")
    return Backend.model_validate(yaml.safe_load(text))


# -- the graph as the library sees it ---------------------------------------------------


def achievable_graph(graph: nx.DiGraph, backend: Backend, architecture: str) -> nx.DiGraph:
    """A copy of ``graph`` whose link bandwidths are what the library achieves on them:
    each link class scaled by its achievable fraction. Copied straight into networkx's
    dicts (what ``graph.copy()`` gives, in the same order) with each link class's
    fraction looked up once: at 65,536 GPUs networkx's own copy took over a second."""
    out = copy_graph(graph)
    fractions: dict[str, float] = {}
    for nbrs in graph_dicts(out)._adj.values():
        for data in nbrs.values():
            link = data.get("link")
            if link is not None:
                fraction = fractions.get(link)
                if fraction is None:
                    fraction = fractions[link] = backend.achievable_fraction(link, architecture)
                data["bandwidth"] = data["bandwidth"] * fraction
    return out


def staged(graph: nx.DiGraph, path: Sequence[Node]) -> bool:
    """Whether a GPU-to-GPU path goes through a CPU: no peer-to-peer (GeForce cards,
    ``p2p: false``) or across the socket link, where NCCL copies through host memory
    (its SHM transport) instead."""
    return any(graph.nodes[v].get("kind") == "cpu" for v in path[1:-1])


def link_class(graph: nx.DiGraph, path: Sequence[Node]) -> str:
    """NCCL's hardware class of a path: ``net`` if it leaves the server, ``nvlink`` if
    it is NVLink only, else ``pci`` (PCIe, host staging)."""
    links = {graph.edges[u, v].get("link") for u, v in zip(path, path[1:])}
    if "network" in links:
        return "net"
    if links and links <= {"nvlink"}:
        return "nvlink"
    return "pci"


def _nvlink_capacity(graph: nx.DiGraph, gpus: Sequence[Node]) -> dict[tuple[Node, Node], int]:
    """Direct GPU-to-GPU NVLink edges among ``gpus`` with their number of links."""
    members = set(gpus)
    return {
        (u, v): int(data.get("links", 1))
        for u, v, data in graph.edges(data=True)
        if u in members and v in members and data.get("link") == "nvlink"
    }


def nvlink_rings(graph: nx.DiGraph, gpus: Sequence[Node], max_rings: int) -> list[list[Node]]:
    """Rings through every GPU over direct NVLink edges only, as NCCL's search builds
    one ring per channel on NVLink servers: the largest set of Hamiltonian cycles that
    share no physical link (a doubled link can carry two), each run in both directions
    (a link is full duplex). Empty when no such ring exists (PCIe servers; NVSwitch
    servers, where every GPU pair is one switch away)."""
    n = len(gpus)
    directed = _nvlink_capacity(graph, gpus)
    if n < 3 or not directed or n > 16:
        return []
    index = {g: i for i, g in enumerate(gpus)}
    capacity = {}
    for (u, v), links in directed.items():
        capacity[frozenset((index[u], index[v]))] = links
    cycles = _hamiltonian_cycles(n, capacity, limit=20000)
    best: list[tuple[int, ...]] = []

    def choose(start: int, chosen: list[tuple[int, ...]], left: dict) -> None:
        nonlocal best
        if len(chosen) > len(best):
            best = list(chosen)
        if 2 * len(best) >= max_rings or len(best) == max(1, sum(left.values()) // n + len(chosen)):
            return
        for c in range(start, len(cycles)):
            edges = [frozenset((a, b)) for a, b in zip(cycles[c], cycles[c][1:] + cycles[c][:1])]
            if all(left[e] > 0 for e in edges):
                for e in edges:
                    left[e] -= 1
                choose(c + 1, chosen + [cycles[c]], left)
                for e in edges:
                    left[e] += 1
            if 2 * len(best) >= max_rings:
                return

    choose(0, [], dict(capacity))
    rings = []
    for cycle in best:
        ring = [gpus[i] for i in cycle]
        rings.append(ring)
        rings.append([ring[0]] + ring[:0:-1])  # the same links the other way round
    return rings[:max_rings]


def _hamiltonian_cycles(n: int, capacity: dict, limit: int) -> list[tuple[int, ...]]:
    """Undirected Hamiltonian cycles from vertex 0 (each once: second vertex < last)."""
    neighbours = {i: sorted(j for j in range(n) if frozenset((i, j)) in capacity) for i in range(n)}
    found: list[tuple[int, ...]] = []
    path = [0]
    seen = {0}

    def extend() -> None:
        if len(found) >= limit:
            return
        last = path[-1]
        if len(path) == n:
            if frozenset((last, 0)) in capacity and path[1] < path[-1]:
                found.append(tuple(path))
            return
        for nxt in neighbours[last]:
            if nxt not in seen:
                path.append(nxt)
                seen.add(nxt)
                extend()
                path.pop()
                seen.discard(nxt)

    extend()
    return found


def channel_rings(graph: nx.DiGraph, nodes: Sequence[Sequence[Node]], max_rings: int,
                  rails: Mapping[Node, Node] | None = None) -> list[list[Node]]:
    """The rings of every channel over all ranks, nodes visited in order.

    Inside a node: the NVLink rings where they exist, else the rank order (which goes
    through each PCIe switch and socket in turn). Across nodes NCCL gives every NIC
    (rail) its own channels: ring c enters and leaves each node at a different GPU, so
    its node-to-node hop uses that GPU's NIC. Here the local order is rotated by c
    times GPUs-per-NIC for c = 0 .. NICs-1 (capped at ``max_rings``); NVLink rings are
    rotated onto the NICs that ``rails`` (the router's GPU -> NIC) gives their GPUs."""
    first = list(nodes[0])
    local = nvlink_rings(graph, first, max_rings) if len(first) > 2 else []
    if len(nodes) > 1 and local:
        local = _rings_through_nics(rails or {}, local)
    elif len(nodes) > 1:
        server = graph.nodes[first[0]].get("server")
        nics = sum(1 for _, d in graph.nodes(data=True) if d.get("kind") == "nic" and d.get("server") == server)
        k = max(1, min(nics, len(first), max_rings))
        shift = len(first) // k
        local = [first[c * shift:] + first[:c * shift] for c in range(k)]
    if not local:
        return [[g for node in nodes for g in node]]
    rings = []
    for ring in local:
        order = [first.index(g) for g in ring]
        rings.append([node[i] for node in nodes for i in order])
    return rings


def _rings_through_nics(nic_of: Mapping[Node, Node], rings: list[list[Node]]) -> list[list[Node]]:
    """NVLink rings rotated so that, across nodes, channel c enters and leaves each node
    through NIC c mod k (k NICs), as NCCL's search gives every NIC its own channels: it
    starts and ends a channel's intra-node path at GPUs next to that channel's NIC. A
    ring is rotated to start at a GPU of that NIC whose ring predecessor (the GPU that
    sends to the next node) shares the NIC where one exists. Without this every ring
    would enter each node at the first GPU and one NIC would carry all inbound traffic.
    The ring count is cut to a multiple of k so that every NIC carries as many channels
    (NCCL's channels are equal shares of the bytes, so one NIC with an extra channel
    would pace them all)."""
    nics = sorted({nic_of[g] for g in rings[0] if g in nic_of}, key=str)
    k = len(nics)
    if k < 2:
        return rings
    count = len(rings) // k * k or len(rings)
    out = []
    for c, ring in enumerate(rings[:count]):
        target = nics[c % k]
        starts = [i for i, g in enumerate(ring) if nic_of.get(g) == target]
        if not starts:
            out.append(ring)
            continue
        paired = [i for i in starts if nic_of.get(ring[i - 1]) == target]
        i = (paired or starts)[0]
        out.append(ring[i:] + ring[:i])
    return out


# -- the library's choice ---------------------------------------------------------------


@dataclass(frozen=True)
class CollectivePlan:
    """How one collective call runs."""

    algorithm: str
    protocol: str
    channels: int
    latency_s: float  # launch + every pipeline step's latency
    byte_factor: float  # bytes on the wire per payload byte (protocol), >= 1
    bandwidth_factor: float  # extra slowdown of the bandwidth term from the library's ceilings, >= 1
    estimate_s: float  # the library's own estimate, on which the choice was made


@dataclass(frozen=True)
class Topology:
    """What the cost model needs to know about where a collective runs."""

    ranks: int
    nodes: int
    intra_class: str  # nvlink | pci
    architecture: str
    channels: int
    ring_busbw: float  # bytes/s, all channels together, as the library can drive the rings
    flow_busbw: float = 0.0  # bytes/s the flows reach on the network alone (>= ring_busbw); 0: same
    switch_bw: float = 0.0  # bytes/s of a GPU's link to an NVSwitch (0: none), for NVLS
    tree_busbw: float = 0.0  # NCCL-style tree busBw (2 x algbw) of the tree's flows alone (0: as ring)
    node_tree_algbw: float = 0.0  # bytes/s of the node tree's NIC flows alone (algbw), for NVLS tree
    network_latency_s: float = 0.0  # one node-to-node hop's latency on the fabric (NICs, switches)


def _arch_key(architecture: str, table: dict) -> str:
    """The entry of an architecture-keyed table for ``architecture`` (older GPUs use
    the oldest entry, as NCCL indexes them with Volta's)."""
    keys = [a for a in ARCH_ORDER if a in table]
    if not keys:
        raise KeyError(architecture)
    idx = ARCH_ORDER.index(architecture) if architecture in ARCH_ORDER else 0
    best = keys[0]
    for key in keys:
        if ARCH_ORDER.index(key) <= idx:
            best = key
    return best


def _steps(collective: str, ranks: int) -> int:
    return 2 * (ranks - 1) if collective == "allreduce" else ranks - 1 if collective != "broadcast" else ranks


def latency_s(backend: Backend, topo: Topology, collective: str, algorithm: str, protocol: str, nbytes: float) -> float:
    """The library's latency term of one call (NCCL's ncclTopoTuneModel)."""
    base = backend.call_overhead_us + backend.base_latency_us.get(algorithm, {}).get(protocol, 0.0)
    table = backend.step_latency_us
    intra = table[topo.intra_class][algorithm][protocol]
    if topo.nodes == 1:
        if algorithm == "tree":
            return (base + 2 * (topo.ranks - 1) * intra) * 1e-6
        return (base + _steps(collective, topo.ranks) * intra) * 1e-6
    # NCCL's per-step network latency assumes RDMA; the fabric's own latency (a TCP
    # stack on Ethernet, switches) comes on top, as NCCL adds its graph's latencyInter.
    inter = table["net"][algorithm][protocol] + topo.network_latency_s * 1e6
    if algorithm == "tree":
        per_node = topo.ranks // topo.nodes
        return (base + 2 * ((per_node - 1) * intra + math.log2(topo.nodes) * inter)) * 1e-6
    overhead = backend.net_overhead_us * (3 if protocol == "Simple" else 1)
    intra = max(intra, overhead)
    steps = _steps(collective, topo.ranks)
    inter_steps = 2 * (topo.nodes - 1) if collective == "allreduce" else topo.nodes - 1
    lat = base + (steps - inter_steps) * intra + inter_steps * inter
    plateau = backend.ring_plateau_factor
    if plateau and collective == "allreduce" and protocol == "Simple" and nbytes / (topo.channels * topo.ranks) >= 64:
        late = ARCH_ORDER.index(topo.architecture) >= ARCH_ORDER.index("Ampere") if topo.architecture in ARCH_ORDER else False
        lat *= plateau["ampere_and_later" if late else "pre_ampere"]
    return lat * 1e-6


def run_steps(collective: str, algorithm: str, topo: Topology) -> int:
    """Pipeline steps one call takes (what a per-step overhead is paid on): the ring's
    steps, or the tree's hops up and down (chain in the node, log2 of the nodes)."""
    if algorithm == "tree":
        per_node = topo.ranks // topo.nodes
        return 2 * ((per_node - 1) + math.ceil(math.log2(topo.nodes)))
    return _steps(collective, topo.ranks)


def step_overhead_s(backend: Backend, topo: Topology, collective: str, algorithm: str, protocol: str) -> float:
    """The run's latency beyond the library's estimate: every step's overhead."""
    return run_steps(collective, algorithm, topo) * backend.step_overhead_us.get(protocol, 0.0) * 1e-6


def logical_channels(backend: Backend, architecture: str, rings: int, switch_bw: float = 0.0) -> int:
    """NCCL's number of channels: the rings found, or on an NVSwitch server (``switch_bw``:
    bytes/s of a GPU's link to the switch, as the library achieves it) one ring shape
    repeated: two channels per ``nvswitch_channel_gbytes_s`` of the link (NCCL's search
    speed, its channels then doubled), at most the library's count for the architecture
    (8 A100: 240 GB/s -> 24; a 2-GPU bridge of 40 GB/s -> 4)."""
    if switch_bw > 0 and backend.nvswitch_channels:
        cap = backend.nvswitch_channels[_arch_key(architecture, backend.nvswitch_channels)]
        found = 2 * max(1, round(switch_bw / (backend.nvswitch_channel_gbytes_s * 1e9)))
        return max(rings, min(cap, found))
    return rings


def protocol_busbw(backend: Backend, topo: Topology, algorithm: str, protocol: str, base: float | None = None) -> float:
    """Bus bandwidth (bytes/s) of an algorithm and protocol: ``base`` (default the
    rings' bandwidth, which is what NCCL's own model assumes for every algorithm)
    through the protocol's wire efficiency and ceilings; 0 if unavailable."""
    bw = topo.ring_busbw if base is None else base
    gb = 1e9
    if protocol == "LL128":
        if topo.intra_class != "nvlink" or not backend.ll128_per_channel_gbytes_s:
            return 0.0
        if ARCH_ORDER.index(topo.architecture) < ARCH_ORDER.index("Volta"):
            return 0.0
    if algorithm == "tree":
        if not backend.tree_per_channel_gbytes_s:
            bw *= backend.tree_bandwidth_factor
        else:
            caps = backend.tree_per_channel_gbytes_s[_arch_key(topo.architecture, backend.tree_per_channel_gbytes_s)]
            bw = min(bw * backend.tree_bandwidth_factor, topo.channels * caps[min(topo.nodes, 3) - 1] * gb)
    spec = backend.protocols[protocol]
    tree_factor = backend.tree_protocol_factor.get(protocol) if algorithm == "tree" else None
    bw *= tree_factor[0 if topo.nodes == 1 else 1] if tree_factor else spec.wire_efficiency
    if algorithm == "tree" and protocol == "LL128" and backend.tree_ll128_per_channel_gbytes_s:
        caps = backend.tree_ll128_per_channel_gbytes_s[_arch_key(topo.architecture, backend.tree_ll128_per_channel_gbytes_s)]
        bw = min(bw, topo.channels * caps[min(topo.nodes, 3) - 1] * gb)
    if protocol == "LL" and backend.ll_max_busbw_gbytes_s:
        table = backend.ll_max_busbw_gbytes_s
        if topo.nodes == 1:
            one = table["one_node"]
            cap = one[_arch_key(topo.architecture, one)]
        else:
            cap = table["two_nodes" if topo.nodes == 2 else "more_nodes"]
        bw = min(bw, cap * gb)
    if protocol == "LL128" and algorithm != "tree" and backend.ll128_per_channel_gbytes_s:
        caps = backend.ll128_per_channel_gbytes_s
        bw = min(bw, topo.channels * caps[_arch_key(topo.architecture, caps)] * gb)
    return bw


def algorithm_bandwidth(collective: str, algorithm: str, ranks: int, busbw: float) -> float:
    """Algorithm bandwidth (size / time) from the library's bus bandwidth (NCCL's
    tuning: ring busBw x nRanks / nSteps, tree busBw x 0.5)."""
    if algorithm == "tree":
        return busbw * 0.5
    return busbw * ranks / _steps(collective, ranks)


def nvls_efficiency(spec: NvlsSpec, architecture: str, achieved: bool = False) -> float:
    """NVLS's fraction of the switch link, x (channels-1)/channels as NCCL counts it:
    the library's own figure (``achieved=False``, what it chooses by) or what runs reach."""
    table = spec.achieved if achieved and architecture in spec.achieved else spec.efficiency
    return table[architecture] * (spec.channels - 1) / spec.channels


def nvls_plan(backend: Backend, topo: Topology, nbytes: float) -> CollectivePlan | None:
    """NVLink SHARP allreduce on one NVSwitch node (Hopper and later), or None where
    NCCL would not offer it. The flows: every GPU sends the buffer to the switch and
    receives the result, at the link's rate x NVLS efficiency x (channels-1)/channels
    (NCCL's efficiency for the choice, the achieved one for the run)."""
    spec = backend.nvls
    if spec is None or topo.nodes != 1 or topo.switch_bw <= 0 or topo.architecture not in spec.efficiency:
        return None
    lat = (backend.call_overhead_us + spec.latency_us) * 1e-6
    moved = nbytes * (topo.ranks - 1) / topo.ranks
    return CollectivePlan("nvls", "Simple", spec.channels, lat, 1.0,
                          1.0 / nvls_efficiency(spec, topo.architecture, achieved=True),
                          lat + moved / (topo.switch_bw * nvls_efficiency(spec, topo.architecture)))


def nvls_tree_plan(backend: Backend, topo: Topology, nbytes: float) -> CollectivePlan | None:
    """NVLS tree allreduce across NVSwitch nodes (Hopper and later, NCCL >= 2.18): NVLS
    reduces and multicasts inside each node while a double binary tree of the nodes
    exchanges the node's partial sums over its NICs, pipelined. None where NCCL would
    not offer it.

    NCCL's estimate (tuning.cc): per channel min(NVLS link x efficiency x (nCh-1)/nCh
    x 2, network x (2 on two nodes, a tree of two nodes moving half a ring's bytes),
    perChMaxNVLSTreeBws), as bus bandwidth; latency NVLink 25 us + 2 log2(nodes) x
    (network step latency + the fabric's). The run: the NVLS flows and the node
    tree's flows at once, at their own rates."""
    spec = backend.nvls
    if (spec is None or spec.tree_net_latency_us is None or topo.nodes < 2 or topo.switch_bw <= 0
            or topo.architecture not in spec.efficiency or topo.node_tree_algbw <= 0):
        return None
    n = topo.ranks
    cap = math.inf
    if spec.tree_per_channel_gbytes_s:
        caps = spec.tree_per_channel_gbytes_s[_arch_key(topo.architecture, spec.tree_per_channel_gbytes_s)]
        cap = spec.channels * caps[min(topo.nodes, 3) - 1] * 1e9 * n / (2 * (n - 1))
        if cap <= 0:
            return None

    def flows(achieved: bool) -> float:  # the slower of the NVLS side and the node tree side
        return min(topo.switch_bw * nvls_efficiency(spec, topo.architecture, achieved) * n / (n - 1),
                   topo.node_tree_algbw)

    inter = spec.tree_net_latency_us + 2 * topo.network_latency_s * 1e6  # Simple pays the flush twice
    lat = (backend.call_overhead_us + spec.latency_us + 2 * math.log2(topo.nodes) * inter) * 1e-6
    # The run's flows go at their own rates; only the library's ceiling slows them further.
    return CollectivePlan("nvls_tree", "Simple", spec.channels, lat, 1.0, flows(True) / min(flows(True), cap),
                          lat + nbytes / min(flows(False), cap))


def _tree_correction(backend: Backend, collective: str, algorithm: str, protocol: str, nbytes: float) -> float:
    """The library's size-dependent tree bandwidth correction (1 outside its table)."""
    table = backend.tree_correction_factor.get(protocol)
    if algorithm != "tree" or collective != "allreduce" or not table or nbytes < 64:
        return 1.0
    index = int(math.log2(nbytes // 64))
    return table[index] if index < len(table) else 1.0


def plan(backend: Backend, topo: Topology, collective: str, nbytes: float,
         algorithm: str = "auto", protocol: str = "auto") -> CollectivePlan:
    """The (algorithm, protocol) the library would run for this call, with its costs.

    ``auto`` picks as the library does: the smallest of its own estimates
    latency + size / algorithm bandwidth over what it allows (NCCL: tree only for
    allreduce; LL128 only over NVLink from Volta on)."""
    algorithms = [a for a in backend.algorithms if a in ("ring", "tree")] if algorithm == "auto" else [algorithm]
    if collective != "allreduce":
        algorithms = ["ring"]
    best: CollectivePlan | None = None
    nvls = nvls_plan(backend, topo, nbytes) if collective == "allreduce" and algorithm in ("auto", "nvls") else None
    if nvls is not None and protocol in ("auto", "Simple"):
        best = nvls
    if collective == "allreduce" and algorithm in ("auto", "nvls_tree") and protocol in ("auto", "Simple"):
        tree = nvls_tree_plan(backend, topo, nbytes)
        if tree is not None and (best is None or tree.estimate_s < best.estimate_s):
            best = tree
    algorithms = [a for a in algorithms if a not in ("nvls", "nvls_tree")]
    protocols = list(backend.protocols) if protocol == "auto" else [protocol]
    for algo in algorithms:
        for proto in protocols:
            if proto not in backend.protocols:
                raise ValueError(f"protocol {proto!r} is not one of {backend.name}'s: {', '.join(backend.protocols)}")
            # The choice: NCCL's estimate, with the ring bandwidth for every algorithm.
            busbw = protocol_busbw(backend, topo, algo, proto) if backend.models_steps else topo.ring_busbw
            if busbw <= 0:
                continue
            lat = latency_s(backend, topo, collective, algo, proto, nbytes) if backend.models_steps else 0.0
            estimate = lat + nbytes / (algorithm_bandwidth(collective, algo, topo.ranks, busbw)
                                       * _tree_correction(backend, collective, algo, proto, nbytes))
            # The run: the algorithm's own flows, slowed by the protocol's ceilings.
            wire = 1.0 / backend.protocols[proto].wire_efficiency
            if algo == "tree" and topo.tree_busbw:
                flows = topo.tree_busbw
                achieved = protocol_busbw(backend, topo, algo, proto, base=topo.tree_busbw)
            else:
                flows = topo.flow_busbw or topo.ring_busbw
                achieved = busbw
            ceiling = max(1.0, flows / wire / achieved)
            run_lat = lat + step_overhead_s(backend, topo, collective, algo, proto)
            candidate = CollectivePlan(algo, proto, topo.channels, run_lat, wire, ceiling, estimate)
            if best is None or estimate < best.estimate_s * (1 - 1e-12):
                best = candidate
    if best is None:
        raise ValueError(f"{backend.name} cannot run {collective} with algorithm {algorithm} and protocol {protocol}")
    return best


__all__ = [
    "Backend", "CollectivePlan", "Topology", "achievable_graph", "algorithm_bandwidth", "channel_rings",
    "get_backend", "latency_s", "logical_channels", "run_steps", "step_overhead_s", "staged", "with_measured", "link_class", "list_backends", "nvlink_rings", "nvls_efficiency", "nvls_plan", "nvls_tree_plan", "plan", "protocol_busbw",
]

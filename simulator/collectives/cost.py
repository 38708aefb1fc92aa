"""How a collective library costs and chooses a call: latency, bus bandwidth, algorithm, protocol.

The flow network (:mod:`simulator.network`) knows how fast bytes move over links. A
real library adds what a clean bandwidth model leaves out, and leaving it out makes
every prediction optimistic (see ``../shared/DESIGN.md``, "Accuracy"):

* a **launch cost** per call and a **latency per pipeline step** that depends on the
  protocol and on the link class the step crosses (NVLink, PCIe, network);
* a **protocol** whose wire format carries flags with the data (NCCL's LL sends a flag
  with every 4 bytes: half the bandwidth; LL128: 120 of 128 bytes; Simple: all), with
  its own bandwidth ceilings;
* the **choice** of algorithm and protocol per call, made as the library makes it:
  from its own latency + size / bandwidth estimate (NCCL's ``ncclTopoTuneModel``), not
  by simulating every option.

This module turns a backend's figures (:mod:`simulator.collectives.backend`) and what
the rings reach on the topology (a :class:`Topology`, measured by
:class:`simulator.collectives.library.CollectiveLibrary` over the channels of
:mod:`simulator.collectives.channels`) into a :class:`CollectivePlan` per (collective,
size), which the library then runs on the flow network. The ``ideal`` backend is the
plain flow model, where the closed forms hold exactly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

from .backend import Backend, NvlsSpec

# Ada (sm_89) after Ampere: NCCL's tuning indexes compute capability 8.0-8.9 as Ampere
# (tuning.cc's compCapIndex), which the tables' fallback to the nearest older entry gives.
ARCH_ORDER = ("Kepler", "Maxwell", "Pascal", "Volta", "Turing", "Ampere", "Ada", "Hopper")


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


def _arch_key(architecture: str, table: Mapping[str, object]) -> str:
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
        late = (ARCH_ORDER.index(topo.architecture) >= ARCH_ORDER.index("Ampere")
                if topo.architecture in ARCH_ORDER else False)
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
        ll128_caps = backend.tree_ll128_per_channel_gbytes_s
        caps = ll128_caps[_arch_key(topo.architecture, ll128_caps)]
        bw = min(bw, topo.channels * caps[min(topo.nodes, 3) - 1] * gb)
    if protocol == "LL" and backend.ll_max_busbw_gbytes_s:
        table = backend.ll_max_busbw_gbytes_s
        if topo.nodes == 1:
            one = cast("dict[str, float]", table["one_node"])
            cap = one[_arch_key(topo.architecture, one)]
        else:
            cap = cast(float, table["two_nodes" if topo.nodes == 2 else "more_nodes"])
        bw = min(bw, cap * gb)
    if protocol == "LL128" and algorithm != "tree" and backend.ll128_per_channel_gbytes_s:
        per_channel = backend.ll128_per_channel_gbytes_s
        bw = min(bw, topo.channels * per_channel[_arch_key(topo.architecture, per_channel)] * gb)
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
    (NCCL's efficiency for the choice, the achieved one for the run). The run's latency
    adds the backend's ``run_overhead_us`` to NCCL's own, which the choice does not see."""
    spec = backend.nvls
    if spec is None or topo.nodes != 1 or topo.switch_bw <= 0 or topo.architecture not in spec.efficiency:
        return None
    lat = (backend.call_overhead_us + spec.latency_us) * 1e-6
    moved = nbytes * (topo.ranks - 1) / topo.ranks
    return CollectivePlan("nvls", "Simple", spec.channels, lat + spec.run_overhead_us * 1e-6, 1.0,
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
    return CollectivePlan("nvls_tree", "Simple", spec.channels, lat + spec.run_overhead_us * 1e-6, 1.0,
                          flows(True) / min(flows(True), cap), lat + nbytes / min(flows(False), cap))


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

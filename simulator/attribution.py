"""Where the lost speedup goes.

With one GPU an iteration takes T1; with N GPUs, T. Speedup is N T1 / T, so the lost
speedup N - N T1 / T = N (T - T1) / T splits exactly into the parts of T - T1 (per
iteration, on rank 0):

* ``compute``: its compute time minus T1 (non-zero only when ranks compute at other
  speeds than the single GPU, e.g. a slow GPU or jitter);
* ``straggler_wait``: waiting with no sync of its own in flight (for other ranks);
* exposed communication (waiting while its sync is in flight), split by what limited
  communication at each instant: the most loaded link of the network at that moment
  (``nic_saturation`` for a network link, ``parameter_server`` for a dedicated
  server's link or its aggregation CPU, ``pcie_contention`` for PCIe and inter-socket
  links, ``nvlink``), or ``latency`` when no bytes were moving (flows paying latency);
* ``interference`` (only where it occurs): compute slowed by a collective on the same
  device (the breakdown's ``interference_s``).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .intervals import covered_time

if TYPE_CHECKING:
    from .built import BuiltSimulation

CATEGORIES = (
    "compute", "straggler_wait", "nic_saturation", "parameter_server", "pcie_contention", "nvlink", "latency",
)


def edge_category(sim: BuiltSimulation, edge: int) -> str:
    graph = sim.cluster.graph
    u, v = sim.network.edges[edge]
    link = graph.edges[u, v].get("link")
    if link == "network":
        nic = u if graph.nodes[u].get("kind") == "nic" else v
        if any(graph.nodes[n].get("kind") == "ps_host" for n in graph.successors(nic)):
            return "parameter_server"
        return "nic_saturation"
    if link in ("pcie", "qpi"):
        return "pcie_contention"
    return "nvlink" if link == "nvlink" else "nic_saturation"


def _union(intervals: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for a, b in sorted(intervals):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        elif b > a:
            merged.append((a, b))
    return merged


def _minus(intervals: list[tuple[float, float]], removed: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """``intervals`` less ``removed`` (both sorted and disjoint, as :func:`_union` makes them)."""
    out: list[tuple[float, float]] = []
    j = 0
    for a, b in intervals:
        while j < len(removed) and removed[j][1] <= a:
            j += 1
        k = j
        while k < len(removed) and removed[k][0] < b:
            if removed[k][0] > a:
                out.append((a, removed[k][0]))
            a = max(a, removed[k][1])
            k += 1
        if b > a:
            out.append((a, b))
    return out


def attribute(
    sim: BuiltSimulation,
    waits: Sequence[tuple[float, float]],
    compute_s: float,
    idle_s: float,
    iteration_s: float,
    single_gpu_iteration_s: float,
    interference_s: float = 0.0,
    bucket_copy_s: float = 0.0,
    input_copy_s: float = 0.0,
) -> dict[str, Any]:
    """Seconds per iteration and share of the lost speedup of each category
    (``bucket_copy_s``: the GPU copying gradient buckets, a cause of its own;
    ``input_copy_s``: the batch copied from host memory, of which the one-GPU job paid
    ``sim.input_copy_one_gpu_s`` too)."""
    seconds = dict.fromkeys(CATEGORIES, 0.0)
    seconds["compute"] = compute_s - single_gpu_iteration_s
    seconds["straggler_wait"] = idle_s
    log = sim.network.bottleneck_log
    times = [t for t, _ in log]
    busy_servers = _union([iv for busy in sim.context.server_busy for iv in busy])
    # what the GPU spent copying buckets is booked as bucket_copies, not as communication
    comm = _minus(_union(sim.context.comm_intervals[0]), _union(sim.timelines[0].copy_intervals))
    for lo, hi in waits:
        for a, b in comm:
            a, b = max(a, lo), min(b, hi)
            if b <= a:
                continue
            i = max(bisect_right(times, a) - 1, 0)
            t = a
            while t < b:
                end = min(times[i + 1], b) if i + 1 < len(log) else b
                edge = log[i][1] if log and log[i][0] <= t else -1
                if end > t:
                    if edge >= 0:
                        seconds[edge_category(sim, edge)] += end - t
                    else:  # nothing moving: a server computing, or latency
                        on_server = covered_time(busy_servers, t, end)
                        seconds["parameter_server"] += on_server
                        seconds["latency"] += end - t - on_server
                t, i = end, i + 1
    n = max(len(waits), 1)
    for key in CATEGORIES[2:]:
        seconds[key] /= n
    if interference_s > 0:
        seconds["interference"] = interference_s
    if bucket_copy_s > 0:
        seconds["bucket_copies"] = bucket_copy_s
    if input_copy_s > 0:  # scaling loses only what the node's copies take beyond one GPU's
        seconds["compute"] += sim.input_copy_one_gpu_s
        seconds["input_copy"] = input_copy_s - sim.input_copy_one_gpu_s
    gpus = sim.resolved.total_gpus
    return {
        "lost_speedup": gpus * (iteration_s - single_gpu_iteration_s) / iteration_s,
        "seconds": seconds,
        "speedup": {k: gpus * v / iteration_s for k, v in seconds.items()},
    }

"""Collect phase: the recorded timeline -> a tidy :class:`SimResult`.

All figures are over the measured window: from the start of the first iteration after
warmup to the end of the last iteration, on rank 0 (the representative rank in the
fast path). The breakdown splits one iteration into

* ``compute_s`` - the GPU computing (forward, backward, optimizer step);
* ``exposed_communication_s`` - the GPU waiting while its gradient sync is in flight;
* ``idle_s`` - the GPU waiting with no sync of its own in flight (for other ranks);
* ``input_wait_s`` (only with ``workload.data: real``) - the GPU waiting for the input
  pipeline's next batch;
* ``interference_s`` (only where a collective slows compute on its device) - how much
  longer compute took beside the collectives than alone;

* ``bucket_copy_s`` (only under ``training.bucket_copies`` where buckets are packed) -
  the GPU copying gradient buckets into their flat buffers and back out;

and these add up to ``iteration_time_s``. Utilization of a link is the bytes it
carried over its capacity times the window; of a GPU, its compute time over the
window; of a parameter server, its aggregation time over the window.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ._version import __version__
from .attribution import attribute
from .intervals import covered_time

if TYPE_CHECKING:
    from .built import BuiltSimulation

TOP_RESOURCES = 5


def resource_label(resource: str, kind: str) -> str:
    """A resource with its kind in brackets, unless the name already says it
    ("gpu compute (every GPU)", not "gpu compute (every GPU) (gpu)")."""
    return resource if kind.lower() in resource.lower() else f"{resource} ({kind})"


@dataclass(frozen=True)
class Utilization:
    resource: str
    kind: str  # gpu, pcie, network, parameter_server
    utilization: float


@dataclass(frozen=True)
class SimResult:
    """The outcome of one simulated scenario."""

    scenario: str
    version: str
    seed: int
    mode: str
    strategy: str
    model: str
    gpu: str
    nodes: int
    gpus_per_node: int
    total_gpus: int
    batch_per_gpu: int
    global_batch: int
    sample_unit: str
    iteration_time_s: float
    throughput_samples_per_s: float
    speedup: float
    scaling_efficiency: float
    breakdown: dict[str, float]
    bottleneck: Utilization
    utilization: list[Utilization]
    iteration_times_s: list[float]
    simulated_events: int
    flows: int
    attribution: dict[str, Any] = field(default_factory=dict)
    replications: dict[str, dict[str, float]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        """Deterministic JSON: same scenario and seed give byte-identical text."""
        return json.dumps(self.to_dict(), sort_keys=True, indent=2)

    def to_row(self) -> dict[str, Any]:
        """One flat record (dotted keys) for tables and sweeps."""
        row: dict[str, Any] = {}

        def flatten(prefix: str, value: Any) -> None:
            if isinstance(value, dict):
                for k, v in value.items():
                    flatten(f"{prefix}.{k}" if prefix else k, v)
            elif not isinstance(value, list):
                row[prefix] = value

        flatten("", self.to_dict())
        return row


def _busiest_links(sim: BuiltSimulation, window: float) -> list[Utilization]:
    """The links that can be among the report's top resources: the ``TOP_RESOURCES``
    first of every link that moved bytes, in the report's order (utilization rounded to
    12 digits, descending, then name). Utilizations in one numpy pass, and rounded and
    named only for the links that can reach the cut: at 65,536 GPUs all 196,608 links
    move bytes, and rounding, naming and sorting every one took a third of a second."""
    start_bytes = sim.edge_bytes_at_window_start
    moved = sim.network.edge_bytes() - (0.0 if start_bytes is None else start_bytes)
    used = np.flatnonzero(moved > 0)
    if used.size == 0:
        return []
    values = moved[used] / (sim.network.capacity[used] * window)
    kept = _near_the_top(values)
    utils = values[kept].tolist()
    rounded = [round(u, 12) for u in utils]
    cut = heapq.nlargest(TOP_RESOURCES, rounded)[-1]  # a link below it has TOP_RESOURCES links above
    edges = sim.network.edges
    picked = used[kept].tolist()
    named = sorted((-r, f"{edges[i][0]}->{edges[i][1]}", k) for k, (i, r) in enumerate(zip(picked, rounded))
                   if r >= cut)
    graph = sim.cluster.graph
    out = []
    for _, name, k in named[:TOP_RESOURCES]:
        u, v = edges[picked[k]]
        out.append(Utilization(name, graph.edges[u, v]["link"], float(utils[k])))
    return out


def _near_the_top(values: np.ndarray) -> np.ndarray:
    """Positions (ascending) of the ``values`` whose rounding to 12 digits can reach the
    ``TOP_RESOURCES``-th largest rounded value: Python's ``round`` is monotone, so that
    value is the rounding of the ``TOP_RESOURCES``-th largest value, and every value
    that rounds to it or above lies within half a unit of the 12th digit (and of the
    last bit) below it; the margin keeps a few more, which the exact test drops. All
    positions where a value is not finite."""
    if len(values) <= TOP_RESOURCES or not np.isfinite(values).all():
        return np.arange(len(values))
    cut = round(float(np.partition(values, len(values) - TOP_RESOURCES)[len(values) - TOP_RESOURCES]), 12)
    return np.flatnonzero(values >= cut - (1e-11 + abs(cut) * 1e-15))


def collect(sim: BuiltSimulation, baseline_throughput: float | None) -> SimResult:
    s, view = sim.scenario, sim.resolved
    warmup = view.warmup_iterations
    tl = sim.timelines[0]
    starts = tl.iteration_start[warmup:]
    ends = tl.iteration_end[warmup:]
    times = [e - b for b, e in zip(starts, ends)]
    window_lo, window_hi = starts[0], ends[-1]
    window = window_hi - window_lo
    iteration_time = float(np.mean(times))

    total_gpus, batch_per_gpu = view.total_gpus, view.batch_per_gpu
    # Each rank contributes its batch at its own pace (they differ only without a
    # barrier, under asynchronous parameter servers); a simulated rank stands for
    # total_gpus / simulated ranks real ones.
    paces = [
        float(np.mean(np.subtract(r.iteration_end[warmup:], r.iteration_start[warmup:]))) for r in sim.timelines
    ]
    samples_per_gpu = view.global_batch / total_gpus  # batch_per_gpu x accumulated micro-batches
    per_rank = samples_per_gpu * total_gpus / len(paces)
    throughput = float(sum(per_rank / pace for pace in paces))
    if baseline_throughput is None:  # one GPU: it is its own baseline
        speedup = 1.0 if total_gpus == 1 else float("nan")
    else:
        speedup = throughput / baseline_throughput

    compute_per_iter = float(np.mean(tl.compute_s[warmup:]))
    waits = list(zip(tl.backward_end[warmup:], tl.sync_end[warmup:]))
    waiting = sum(e - b for b, e in waits) / len(waits)
    comm = sim.context.comm_intervals[0]
    exposed = sum(covered_time(comm, b, e) for b, e in waits) / len(waits)
    if tl.copy_intervals:  # bucket copies between backward and the end of sync: GPU work, not waiting
        copying = sum(covered_time(tl.copy_intervals, b, e) for b, e in waits) / len(waits)
        covered = sum(covered_time(comm + tl.copy_intervals, b, e) for b, e in waits) / len(waits)
        exposed, waiting = covered - copying, waiting - copying
    comm_total = covered_time(sim.context.comm_intervals[0], window_lo, window_hi) / len(times)
    breakdown = {
        "compute_s": compute_per_iter,
        "exposed_communication_s": exposed,
        "idle_s": max(waiting - exposed, 0.0),
        "communication_s": comm_total,
    }
    if tl.interference_s:  # compute slowed beside a collective on its device
        slowed = float(np.mean(tl.interference_s[warmup:]))
        if slowed > 0:
            breakdown["interference_s"] = slowed
    copies = float(np.mean(tl.copy_s[warmup:])) if tl.copy_s else 0.0
    if copies > 0:  # the GPU packing and unpacking gradient buckets
        breakdown["bucket_copy_s"] = copies
    input_wait = None
    if tl.input_wait_s:  # workload.data: real - the GPU waiting for its next batch
        input_wait = float(np.mean(tl.input_wait_s[warmup:]))
        breakdown["input_wait_s"] = input_wait
    if tl.input_copy_s:  # workload.input_copy: exposed - the batch copied from host memory
        breakdown["input_copy_s"] = float(np.mean(tl.input_copy_s[warmup:]))

    single_gpu_s = iteration_time if baseline_throughput is None else samples_per_gpu / baseline_throughput
    attribution = attribute(
        sim, waits, compute_per_iter, breakdown["idle_s"], iteration_time, single_gpu_s,
        breakdown.get("interference_s", 0.0), copies, breakdown.get("input_copy_s", 0.0),
    ) if total_gpus > 1 and baseline_throughput is not None else {}
    if attribution and input_wait is not None:
        attribution["seconds"]["input_pipeline"] = input_wait
        attribution["speedup"]["input_pipeline"] = total_gpus * input_wait / iteration_time

    resources = [Utilization("gpu compute (every GPU)", "gpu", (compute_per_iter + copies) / iteration_time)]
    resources += _busiest_links(sim, window)
    for j, busy in enumerate(sim.context.server_busy):
        if busy:
            util = covered_time(busy, window_lo, window_hi) / window
            resources.append(Utilization(f"parameter server {j} (aggregation)", "parameter_server", util))
    # Ties broken by name so the report is deterministic.
    resources.sort(key=lambda r: (-round(r.utilization, 12), r.resource))

    return SimResult(
        scenario=s.name,
        version=__version__,
        seed=s.simulation.seed,
        mode="detailed" if sim.detailed else "fast",
        strategy=sim.strategy_name,
        model=s.workload.model,
        gpu=s.cluster.gpu,
        nodes=s.cluster.nodes,
        gpus_per_node=s.cluster.gpus_per_node,
        total_gpus=total_gpus,
        batch_per_gpu=batch_per_gpu,
        global_batch=view.global_batch,
        sample_unit=sim.sample_unit,
        iteration_time_s=iteration_time,
        throughput_samples_per_s=throughput,
        speedup=speedup,
        scaling_efficiency=speedup / total_gpus,
        breakdown=breakdown,
        bottleneck=resources[0],
        attribution=attribution,
        utilization=resources[:TOP_RESOURCES],
        iteration_times_s=times,
        simulated_events=sim.env.events_processed,
        flows=sim.network.flows_started,
    )


# Two-sided 95% Student t quantiles for 1..30 degrees of freedom; 1.96 beyond. A table,
# not scipy.stats.t.ppf: scipy (tens of MB, not otherwise needed) would become a core
# dependency for these 30 constants of every statistics textbook.
_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)
HEADLINE_METRICS = ("iteration_time_s", "throughput_samples_per_s", "speedup", "scaling_efficiency")


def confidence_interval(values: Sequence[float]) -> dict[str, float]:
    """Mean, sample standard deviation and 95% t confidence interval of the mean."""
    x = np.asarray(values, dtype=float)
    mean = float(x.mean())
    # Deviations from the first value: identical runs give exactly 0 (a mean of equal
    # floats need not equal them in the last bit).
    std = float((x - x[0]).std(ddof=1)) if len(x) > 1 else 0.0
    t = _T95[len(x) - 2] if 2 <= len(x) <= 31 else 1.96
    half = t * std / np.sqrt(len(x))
    return {"n": len(x), "mean": mean, "std": std, "ci95_low": mean - half, "ci95_high": mean + half}


def combine_replications(runs: Sequence[SimResult]) -> SimResult:
    """One result whose headline metrics and breakdown are means over ``runs``."""
    stats = {m: confidence_interval([getattr(r, m) for r in runs]) for m in HEADLINE_METRICS}
    breakdown = {k: float(np.mean([r.breakdown[k] for r in runs])) for k in runs[0].breakdown}
    means: dict[str, Any] = {m: stats[m]["mean"] for m in HEADLINE_METRICS}
    return replace(
        runs[0],
        **means,
        breakdown=breakdown,
        iteration_times_s=[t for r in runs for t in r.iteration_times_s],
        simulated_events=sum(r.simulated_events for r in runs),
        flows=sum(r.flows for r in runs),
        replications=stats,
    )

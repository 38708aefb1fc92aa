"""``advise gpus``: the largest GPU count whose scaling efficiency stays at or above a
target, what breaks it beyond, and what would move the limit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ..engine import build, simulate
from ..scenario import Scenario
from .answers import GPUAdvice
from .common import quick, resource_label, with_

#: Node counts ``advise gpus`` tries (with the scenario's GPUs per node).
NODE_GRID: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 40, 48, 64, 80, 96, 128, 160, 192, 256,
                               384, 512, 768, 1024)

_CAUSE = {
    "nic_saturation": "NIC", "parameter_server": "parameter server", "pcie_contention": "PCIe uplink",
    "latency": "collective latency", "nvlink": "NVLink", "straggler_wait": "stragglers", "compute": "compute",
    "interference": "compute slowed by collectives", "input_pipeline": "input pipeline",
    "bucket_copies": "gradient bucket copies", "input_copy": "batch copied from host",
}


def _gpu_formula(scenario: Scenario) -> list[str]:
    sim = build(with_(scenario, **{"cluster.nodes": 1, "cluster.gpus_per_node": 1,
                                   "cluster.server.pcie_switches": None, "cluster.server.gpus_per_switch": None,
                                   "cluster.server.sockets": None}))
    S = float(sim.costs.gradient_bytes.sum())
    # every accumulated micro-batch computes; only the last one's backward overlaps sync
    steps = scenario.training.gradient_accumulation_steps
    t_c = sim.costs.total_s + (steps - 1) * float(sim.costs.forward_s.sum() + sim.costs.backward_s.sum())
    t_b = float(sim.costs.backward_s.sum())
    c, t = scenario.cluster, scenario.training
    B = sim.resolved.nic_bandwidth
    g = c.gpus_per_node
    lines = [f"T_compute = {t_c * 1e3:.1f} ms (backward {t_b * 1e3:.1f} ms overlaps sync), S = {S / 1e6:.1f} MB, "
             f"NIC B = {B / 1e9:.2f} GB/s"]
    if t.strategy == "parameter_server":
        ps = t.parameter_servers
        k = ps.count
        b_ps = sim.resolved.ps_nic_bandwidth or B
        lines.append(f"efficiency(N) ~ T_compute / (T_compute + max(0, max(N*S/(k*B_ps), g*S/B) - T_backward)), "
                     f"k = {k}, B_ps = {b_ps / 1e9:.2f} GB/s, g = {g}")
        n_max = math.floor(k * b_ps * (t_b + t_c * (1 / 0.8 - 1)) / S) if S else 0
        lines.append(f"  at 0.8: N*S/(k*B_ps) <= T_backward + T_compute*(1/0.8-1) -> N <= {n_max} (if g*S/B fits)")
    else:
        alpha = (c.nic.resolved_latency_us + c.fabric.switch_latency_us) * 1e-6
        nb = max(1, len(sim.buckets))
        lines.append(f"ring: T_sync(N) = 2(N-1)/N * S/B + n_buckets*2(N-1)*alpha, alpha = {alpha * 1e6:.1f} us "
                     f"(NIC + switch; PCIe hops add more), n_buckets = {nb}; "
                     f"efficiency(N) ~ T_compute / (T_compute + max(0, T_sync(N) - T_backward))")
        t_bw = 2 * S / B
        lines.append(f"  bandwidth term -> 2*S/B = {t_bw * 1e3:.1f} ms vs T_backward {t_b * 1e3:.1f} ms; "
                     f"latency term at N=1024: {nb * 2 * 1023 * alpha * 1e3:.2f} ms")
        slack = t_b + t_c * (1 / 0.8 - 1) - t_bw
        n_lat = math.floor(slack / (2 * nb * alpha)) + 1 if slack > 0 else 0
        lines.append("  at 0.8: 2*S/B + n_buckets*2(N-1)*alpha <= T_backward + T_compute/4 -> "
                     + (f"N <= {n_lat} (bandwidth alone fits)" if slack > 0 else
                        "bandwidth term alone exceeds the slack: multi-node training falls below 0.8"))
    return lines


def advise_gpus(scenario: Scenario, *, target_efficiency: float = 0.8, max_gpus: int = 4096,
                on_step: Callable[[int, int], None] | None = None) -> GPUAdvice:
    """The largest GPU count (nodes of the scenario's GPUs per node) at or above the target.

    ``on_step(done, total)`` reports progress over the node counts the scan may try
    (once before the first, after each, and ``(total, total)`` when the scan stops)."""
    g = scenario.cluster.gpus_per_node
    steps = sum(1 for n in NODE_GRID if n * g <= max_gpus)
    report = on_step or (lambda done, total: None)
    report(0, steps)
    rows: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    failing: dict[str, Any] | None = None
    failing_result = None
    failing_scenario = None
    for nodes in NODE_GRID:
        if nodes * g > max_gpus:
            break
        try:
            s = with_(scenario, **{"cluster.nodes": nodes})
            result = simulate(quick(s))
        except Exception as exc:  # a fabric that cannot take this many nodes ends the scan
            if nodes == 1:
                raise
            rows.append({"gpus": nodes * g, "nodes": nodes, "error": str(exc)})
            break
        row = {"gpus": nodes * g, "nodes": nodes, "scaling_efficiency": result.scaling_efficiency,
               "speedup": result.speedup, "throughput_samples_per_s": result.throughput_samples_per_s,
               "bottleneck": f"{resource_label(result.bottleneck.resource, result.bottleneck.kind)} at "
                             f"{result.bottleneck.utilization:.0%}"}
        rows.append(row)
        report(len(rows), steps)
        if result.total_gpus > 1 and result.scaling_efficiency < target_efficiency:
            failing, failing_result, failing_scenario = row, result, s
            break
        best = row
    what_if = []
    if failing is not None and failing_result is not None:
        seconds = dict(failing_result.attribution.get("seconds", {}))
        seconds.pop("compute", None)
        cause = max(seconds, key=lambda name: seconds[name]) if seconds else "compute"
        b = failing_result.bottleneck
        failing = {**failing, "component": _CAUSE.get(cause, cause),
                   "bottleneck": f"{resource_label(b.resource, b.kind)} at {b.utilization:.0%}",
                   "lost_seconds": seconds}
        what_if = _what_if(failing_scenario, cause)  # type: ignore[arg-type]
    report(steps, steps)
    capped = failing is None and not any("error" in r for r in rows)
    rows = [r for r in rows if "error" not in r]
    return GPUAdvice(scenario.name, target_efficiency, g, best["gpus"] if best else 0, best["nodes"] if best else 0,
                     best["scaling_efficiency"] if best else 0.0, failing, _gpu_formula(scenario), rows, what_if,
                     capped)


#: Causes of lost speedup that gradient accumulation spreads over more samples.
COMMUNICATION_CAUSES = frozenset({"nic_saturation", "parameter_server", "pcie_contention", "latency", "nvlink"})


def _what_if(scenario: Scenario, cause: str) -> list[dict[str, Any]]:
    c, t = scenario.cluster, scenario.training
    changes: list[tuple[str, dict[str, Any]]] = []
    if cause in ("nic_saturation", "latency") or cause == "parameter_server":
        bw = c.nic.resolved_bandwidth_gbps * 4
        changes.append((f"4x NIC bandwidth ({bw:.0f} Gb/s)", {"cluster.nic.bandwidth_gbps": bw}))
    if cause == "parameter_server":
        changes.append((f"2x parameter servers ({2 * t.parameter_servers.count})",
                        {"training.parameter_servers.count": 2 * t.parameter_servers.count}))
    if cause == "latency" and t.strategy != "parameter_server":
        changes.append(("hierarchical allreduce", {"training.strategy": "hierarchical_allreduce"}))
    if cause == "pcie_contention":
        changes.append(("PCIe gen 4", {"cluster.server.pcie_generation": 4}))
    if t.strategy == "parameter_server" and cause != "parameter_server":
        changes.append(("ring allreduce instead of parameter servers", {"training.strategy": "ring_allreduce"}))
    if cause in COMMUNICATION_CAUSES and t.parallelism is None:
        # the same gradient bytes for four times the samples (a larger batch per step)
        steps = 4 * t.gradient_accumulation_steps
        changes.append((f"{steps} micro-batches per iteration (gradient accumulation; `clustersim advise "
                        "accumulation` finds the fewest)", {"training.gradient_accumulation_steps": steps}))
    out = []
    for label, dotted in changes:
        try:
            r = simulate(quick(with_(scenario, **dotted)))
        except Exception:  # noqa: BLE001 - a what-if that cannot be built is just left out
            continue
        out.append({"change": label, "scaling_efficiency": r.scaling_efficiency, "speedup": r.speedup})
    return out

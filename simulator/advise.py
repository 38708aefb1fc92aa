"""Configuration guidelines: three questions answered with a formula and a simulation.

* :func:`advise_batch` - the per-GPU batch and per-layer convolution algorithms that
  fit in GPU memory (:mod:`simulator.memory`) with the best simulated throughput, the
  runners-up, and what stops a larger batch; for a shared workspace and per-layer ones.
* :func:`advise_ps` - the fewest parameter servers at which the servers' NICs stop
  being the bottleneck: the closed form ``k >= N*S / (B_ps * T)``, confirmed by
  simulating k-1, k and k+1.
* :func:`advise_gpus` - the largest GPU count whose scaling efficiency stays at or
  above a target, what breaks it beyond, and what would move the limit.

Each returns a dataclass with ``.to_dict()`` and ``.lines()`` (the printed report:
formula with the scenario's numbers, the simulated confirmation, the next bottleneck).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from . import algorithms, catalog, memory, zoo
from .compute import ACTIVATION_BYTES, default_compute_efficiency, roofline_costs
from .engine import build, simulate
from .errors import ScenarioError
from .scenario import Scenario

GIB = memory.GIB
#: Batch sizes the batch search tries (a fixed grid: more memory only adds candidates).
BATCH_GRID: tuple[int, ...] = tuple(
    sorted({1, 2, 4} | set(range(8, 257, 8)) | set(range(256, 1025, 32)) | set(range(1024, 8193, 256)))
)
#: Node counts ``advise gpus`` tries (with the scenario's GPUs per node).
NODE_GRID: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 40, 48, 64, 80, 96, 128, 160, 192, 256,
                               384, 512, 768, 1024)
TIE = 0.005  # throughputs within 0.5% count as equal; the larger batch wins


def _with(scenario: Scenario, **dotted: Any) -> Scenario:
    data = scenario.model_dump()
    for key, value in dotted.items():
        node = data
        *path, last = key.split(".")
        for part in path:
            node = node[part]
        node[last] = value
    return Scenario.model_validate(data)


def _quick(scenario: Scenario) -> Scenario:
    """Fewer iterations for searches (identical ranks: every iteration is the same)."""
    return _with(scenario, **{"simulation.iterations": min(scenario.simulation.iterations, 2),
                              "simulation.warmup_iterations": min(scenario.simulation.warmup_iterations, 1),
                              "simulation.replications": 1})


def resource_label(resource: str, kind: str) -> str:
    """A resource with its kind in brackets, unless the name already says it
    ("gpu compute (every GPU)", not "gpu compute (every GPU) (gpu)")."""
    return resource if kind.lower() in resource.lower() else f"{resource} ({kind})"


# -- batch ----------------------------------------------------------------------------


@dataclass
class BatchChoice:
    """One batch with its algorithm choice, memory and simulated throughput."""

    batch: int
    workspace_mode: str
    throughput_samples_per_s: float
    iteration_time_s: float
    memory_gib: float
    workspace_gib: float
    algorithm_counts: dict[str, int]
    conv_algorithms: dict[str, str]  # layer -> algorithm, implicit_gemm layers left out
    bottleneck: str = ""


@dataclass
class BatchAdvice:
    scenario: str
    model: str
    gpu: str
    precision: str
    memory_gib: float
    usable_gib: float
    fixed_gib: float  # parameters + gradients + optimizer state
    per_sample_gib: float  # activations + input + backward transient, per sample
    max_batch: int  # largest batch that fits with implicit GEMM (no workspace)
    best: BatchChoice
    runners_up: list[BatchChoice]
    per_mode: dict[str, BatchChoice]  # the best for shared and for per-layer workspaces
    limit: str
    searched: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def scenario_overrides(self) -> list[str]:
        """``--set`` overrides that reproduce the best choice."""
        out = [f"workload.batch_per_gpu={self.best.batch}", f"workload.workspace={self.best.workspace_mode}",
               "workload.conv_algorithm=implicit_gemm"]
        return out

    def lines(self) -> list[str]:
        b = self.best
        out = [
            f"memory: {self.fixed_gib:.2f} GiB fixed (parameters + gradients + optimizer state) + "
            f"{self.per_sample_gib * 1024:.1f} MiB per sample (activations, input, backward transient)",
            f"max batch (implicit GEMM, no workspace) = floor(({self.usable_gib:.2f} usable - {self.fixed_gib:.2f}) / "
            f"{self.per_sample_gib:.5f}) = {self.max_batch}   [{self.gpu}: {self.memory_gib:.0f} GiB - "
            f"{memory.CONTEXT_RESERVE_GIB} GiB CUDA context]",
            f"best: batch {b.batch}, {b.workspace_mode} workspace {b.workspace_gib:.2f} GiB, "
            f"{b.throughput_samples_per_s:.1f} samples/s simulated ({b.iteration_time_s * 1e3:.1f} ms/iteration), "
            f"memory {b.memory_gib:.2f} of {self.usable_gib:.2f} GiB; conv algorithms {_counts(b.algorithm_counts)}",
        ]
        for mode, choice in self.per_mode.items():
            out.append(f"  {mode} workspace: batch {choice.batch}, {choice.throughput_samples_per_s:.1f} samples/s, "
                       f"workspace {choice.workspace_gib:.2f} GiB, {_counts(choice.algorithm_counts)}")
        out.append("runners-up:")
        for c in self.runners_up:
            out.append(f"  batch {c.batch} ({c.workspace_mode}): {c.throughput_samples_per_s:.1f} samples/s, "
                       f"memory {c.memory_gib:.2f} GiB, workspace {c.workspace_gib:.2f} GiB")
        out.append(f"larger batch: {self.limit}")
        out.append(f"next bottleneck at the best batch: {b.bottleneck}")
        return out


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} x{n}" for name, n in counts.items() if n) or "none"


def _layer_times(model: zoo.Model, gpu: catalog.GPUSpec, scenario: Scenario, batch: int) -> dict[str, np.ndarray]:
    """Per algorithm, each layer's forward + backward time with that algorithm where
    it is eligible (implicit GEMM elsewhere)."""
    w = scenario.workload
    out = {}
    for name in algorithms.ALGORITHMS:
        chosen = [name if layer.kind == "conv" and algorithms.eligible(layer, name) else
                  ("implicit_gemm" if layer.kind == "conv" else None) for layer in model.layers]
        costs = roofline_costs(
            model, gpu, precision=w.precision, batch=batch,
            compute_efficiency=w.compute_efficiency or default_compute_efficiency(w.precision),
            memory_efficiency=w.memory_efficiency, layer_overhead_s=w.layer_overhead_us * 1e-6,
            optimizer=w.optimizer, conv_algorithms=chosen,
        )
        out[name] = costs.forward_s + costs.backward_s
    return out


def choose_algorithms(scenario: Scenario, batch: int, mode: str, usable: int,
                      model: zoo.Model | None = None) -> list[str | None] | None:
    """The fastest per-layer conv algorithms whose workspace fits beside the batch
    (None when the batch does not fit even without workspace).

    shared: every layer takes the fastest option within one workspace cap W, the
    largest W that fits; per_layer: greedy by time saved per workspace byte."""
    w = scenario.workload
    model = model or zoo.get_model(w.model, sequence_length=w.sequence_length)
    gpu = catalog.get_gpu(scenario.cluster.gpu)
    base = memory.estimate(model, gpu, batch=batch, precision=w.precision, optimizer=w.optimizer,
                           workspace_mode=mode)
    headroom = usable - base.total
    if headroom < 0:
        return None
    act = ACTIVATION_BYTES[w.precision]
    times = _layer_times(model, gpu, scenario, batch)
    chosen: list[str | None] = [("implicit_gemm" if layer.kind == "conv" else None) for layer in model.layers]
    options: dict[int, list[tuple[str, int, float]]] = {}
    for i, layer in enumerate(model.layers):
        if layer.kind != "conv":
            continue
        opts = [(a, algorithms.workspace_bytes(layer, a, batch, act), float(times[a][i]))
                for a in algorithms.ALGORITHMS if algorithms.eligible(layer, a)]
        options[i] = [o for o in opts if o[2] < times["implicit_gemm"][i] and o[1] <= headroom]
    if mode == "shared":
        caps = sorted({ws for opts in options.values() for _, ws, _ in opts})
        cap = caps[-1] if caps else 0
        for i, opts in options.items():
            fits = [o for o in opts if o[1] <= cap]
            if fits:
                chosen[i] = min(fits, key=lambda o: o[2])[0]
        return chosen
    used = 0
    current = {i: ("implicit_gemm", 0, float(times["implicit_gemm"][i])) for i in options}
    while True:
        best, best_ratio = None, 0.0
        for i, opts in options.items():
            _, ws0, t0 = current[i]
            for o in opts:
                saved, extra = t0 - o[2], o[1] - ws0
                if saved <= 0 or used + extra > headroom:
                    continue
                ratio = saved / max(extra, 1)
                if ratio > best_ratio:
                    best, best_ratio = (i, o), ratio
        if best is None:
            break
        i, o = best
        used += o[1] - current[i][1]
        current[i] = o
        chosen[i] = o[0]
    return chosen


def _choice(scenario: Scenario, model: zoo.Model, batch: int, mode: str, chosen: list[str | None],
            usable: int) -> BatchChoice:
    overrides = {layer.name: a for layer, a in zip(model.layers, chosen) if a not in (None, "implicit_gemm")}
    s = _with(scenario, **{"workload.batch_per_gpu": batch, "workload.workspace": mode,
                           "workload.conv_algorithm": "implicit_gemm", "workload.conv_algorithms": overrides})
    est = memory.estimate_scenario(s)
    if est.total > usable:  # the memory model must accept what is proposed
        raise AssertionError(f"batch search proposed {est.total / GIB:.2f} GiB > {usable / GIB:.2f} GiB usable")
    result = simulate(_quick(_with(s, **{"workload.check_memory": False})), with_baseline=False)
    counts = {a: sum(1 for c in chosen if c == a) for a in algorithms.ALGORITHMS}
    b = result.bottleneck
    return BatchChoice(batch, mode, result.throughput_samples_per_s, result.iteration_time_s, est.total / GIB,
                       est.workspace / GIB, counts, overrides, f"{resource_label(b.resource, b.kind)} at {b.utilization:.0%}")


def advise_batch(scenario: Scenario, *, memory_gib: float | None = None, max_batch: int | None = None) -> BatchAdvice:
    """Search batch sizes and per-layer conv algorithms that fit; best simulated throughput.

    ``memory_gib`` replaces the GPU's capacity (what-if); ``max_batch`` caps the search."""
    w = scenario.workload
    model = zoo.get_model(w.model, sequence_length=w.sequence_length)
    gpu = catalog.get_gpu(scenario.cluster.gpu)
    capacity = int((memory_gib if memory_gib is not None else gpu.memory_gib) * GIB)
    usable = capacity - int(memory.CONTEXT_RESERVE_GIB * GIB)
    one = memory.estimate(model, gpu, batch=1, precision=w.precision, optimizer=w.optimizer)
    fixed = one.parameters + one.gradients + one.optimizer
    per_sample = one.total - fixed
    biggest = (usable - fixed) // per_sample
    if biggest < 1:
        raise ScenarioError(f"workload.batch_per_gpu: even batch 1 of {model.name} in {w.precision} needs "
                            f"{one.total / GIB:.2f} GiB; the {gpu.name} has {usable / GIB:.2f} GiB usable")
    top = min(biggest, max_batch) if max_batch else biggest
    grid = [b for b in BATCH_GRID if b <= top] or [1]
    choices: list[BatchChoice] = []
    per_mode: dict[str, BatchChoice] = {}
    for mode in ("shared", "per_layer"):
        mode_best = None
        for batch in grid:
            chosen = choose_algorithms(scenario, batch, mode, usable, model)
            if chosen is None:
                continue
            c = _choice(scenario, model, batch, mode, chosen, usable)
            choices.append(c)
            if mode_best is None or c.throughput_samples_per_s >= mode_best.throughput_samples_per_s * (1 - TIE):
                mode_best = c if (mode_best is None or c.throughput_samples_per_s > mode_best.throughput_samples_per_s
                                  or c.batch > mode_best.batch) else mode_best
        per_mode[mode] = mode_best  # type: ignore[assignment]
    mode_order = {"shared": 0, "per_layer": 1}
    best = max(per_mode.values(), key=lambda c: (c.throughput_samples_per_s, -mode_order[c.workspace_mode]))
    ranked = sorted((c for c in choices if c is not best), key=lambda c: -c.throughput_samples_per_s)
    runners_up = ranked[:3]
    if max_batch and biggest > max_batch:
        limit = f"the search was capped at batch {max_batch}"
    else:
        est = memory.estimate(model, gpu, batch=int(biggest) + 1, precision=w.precision, optimizer=w.optimizer)
        parts = est.components()
        big = max(parts, key=parts.get)  # type: ignore[arg-type]
        limit = (f"memory: batch {biggest + 1} needs {est.total / GIB:.2f} GiB even without workspace > "
                 f"{usable / GIB:.2f} GiB usable; {big.replace('_', ' ')} dominate ({parts[big] / GIB:.2f} GiB, "
                 "linear in the batch)")
        if best.batch < biggest:
            limit += (f"; batches {best.batch + 1}..{biggest} fit but simulate no faster (less room left for "
                      "fast-algorithm workspace, or throughput has saturated)")
    return BatchAdvice(scenario.name, model.name, gpu.name, w.precision, capacity / GIB, usable / GIB, fixed / GIB,
                       per_sample / GIB, int(biggest), best, runners_up, per_mode, limit, len(choices))


# -- parameter servers ----------------------------------------------------------------


@dataclass
class PSAdvice:
    scenario: str
    workers: int  # N: endpoints pushing to the servers (GPUs, or nodes with local aggregation)
    gradient_bytes: float  # S
    server_bandwidth_bytes_s: float  # B_ps
    worker_nic_bytes_s: float
    backward_s: float  # compute the pushes can overlap with
    worker_nic_s: float  # time a worker node's own NIC needs for its pushes
    window_s: float  # T = max(backward, worker NIC time)
    k_closed_form: int
    simulated: dict[int, dict[str, Any]]  # k -> throughput, iteration time, bottleneck
    k_simulated_knee: int
    compute_bound: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        gb = 1e9
        out = [
            "each server moves N*S/k bytes each way per iteration; it must fit in the time it can overlap with:",
            f"  N*S/(k*B_ps) <= T = max(T_backward, T_worker_nic) = max({self.backward_s * 1e3:.1f} ms, "
            f"{self.worker_nic_s * 1e3:.1f} ms) = {self.window_s * 1e3:.1f} ms",
            f"  k >= N*S/(B_ps*T) = {self.workers} x {self.gradient_bytes / gb:.3f} GB / "
            f"({self.server_bandwidth_bytes_s / gb:.3f} GB/s x {self.window_s:.4f} s) = "
            f"{self.workers * self.gradient_bytes / (self.server_bandwidth_bytes_s * self.window_s):.2f} -> k = "
            f"{self.k_closed_form}",
            "simulated:",
        ]
        for k, r in sorted(self.simulated.items()):
            out.append(f"  k={k}: {r['throughput_samples_per_s']:.1f} samples/s, {r['iteration_time_s'] * 1e3:.1f} ms/it, "
                       f"bottleneck {r['bottleneck']}")
        out.append(f"simulated knee (fewest servers within 2% of the most): k = {self.k_simulated_knee}")
        if self.compute_bound:
            out.append(f"compute-bound: k={self.k_closed_form} -> {self.k_closed_form + 1} servers changes "
                       "throughput by under 1%")
        top = self.simulated[max(self.simulated)]
        out.append(f"next bottleneck beyond the knee: {top['bottleneck']}")
        return out


def _sim_summary(result) -> dict[str, Any]:
    b = result.bottleneck
    return {"throughput_samples_per_s": result.throughput_samples_per_s, "iteration_time_s": result.iteration_time_s,
            "scaling_efficiency": result.scaling_efficiency,
            "bottleneck": f"{resource_label(b.resource, b.kind)} {b.utilization:.0%}", "bottleneck_kind": b.kind}


def advise_ps(scenario: Scenario) -> PSAdvice:
    """The fewest parameter servers whose NICs keep up (closed form, then simulated)."""
    c, ps = scenario.cluster, scenario.training.parameter_servers
    if scenario.training.strategy != "parameter_server":
        scenario = _with(scenario, **{"training.strategy": "parameter_server"})
    if c.total_gpus < 2:
        raise ScenarioError("cluster: advise ps needs at least 2 GPUs")
    sim = build(scenario)
    S = float(sim.costs.gradient_bytes.sum())
    backward = float(sim.costs.backward_s.sum())
    local = ps.local_aggregation and c.gpus_per_node > 1
    workers = c.nodes if local else c.total_gpus
    per_node = 1 if local else c.gpus_per_node
    nic = c.nic.resolved_bandwidth_gbps * 1e9 / 8
    b_ps = (ps.nic_bandwidth_gbps * 1e9 / 8) if ps.nic_bandwidth_gbps else nic
    worker_nic_s = per_node * S / nic
    window = max(backward, worker_nic_s)
    k = max(1, math.ceil(workers * S / (b_ps * window) - 1e-9))
    ks = sorted({max(1, k - 1), k, k + 1} | {1})
    simulated = {j: _sim_summary(simulate(_quick(_with(scenario, **{"training.parameter_servers.count": j})),
                                          with_baseline=False)) for j in ks}
    best = max(r["throughput_samples_per_s"] for r in simulated.values())
    knee = min(j for j, r in simulated.items() if r["throughput_samples_per_s"] >= 0.98 * best)
    at_k, above = simulated[k]["throughput_samples_per_s"], simulated[k + 1]["throughput_samples_per_s"]
    compute_bound = abs(above - at_k) / at_k < 0.01 and simulated[k]["bottleneck_kind"] == "gpu"
    return PSAdvice(scenario.name, workers, S, b_ps, nic, backward, worker_nic_s, window, k, simulated, knee,
                    compute_bound)


# -- GPU count ------------------------------------------------------------------------

_CAUSE = {
    "nic_saturation": "NIC", "parameter_server": "parameter server", "pcie_contention": "PCIe uplink",
    "latency": "collective latency", "nvlink": "NVLink", "straggler_wait": "stragglers", "compute": "compute",
}


@dataclass
class GPUAdvice:
    scenario: str
    target_efficiency: float
    gpus_per_node: int
    max_gpus: int  # 0 when even the smallest count misses the target
    max_nodes: int
    efficiency_at_max: float
    first_failing: dict[str, Any] | None  # gpus, nodes, efficiency, breaking component, attribution
    formula: list[str]
    scanned: list[dict[str, Any]]
    what_if: list[dict[str, Any]] = field(default_factory=list)
    capped: bool = False  # the scan reached max_gpus without falling below the target

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        out = list(self.formula)
        out.append("simulated:")
        for row in self.scanned:
            out.append(f"  {row['gpus']:>5} GPUs ({row['nodes']} nodes): efficiency {row['scaling_efficiency']:.3f}, "
                       f"speedup {row['speedup']:.1f}")
        out.append(f"largest GPU count with efficiency >= {self.target_efficiency}: {self.max_gpus} GPUs "
                   f"({self.max_nodes} nodes x {self.gpus_per_node}), efficiency {self.efficiency_at_max:.3f}")
        f = self.first_failing
        if self.capped:
            last = self.scanned[-1]
            out.append(f"the scan stopped at its cap (max_gpus) still above the target; the most loaded resource there: "
                       f"{last.get('bottleneck', '?')}")
        if f:
            out.append(f"beyond it ({f['gpus']} GPUs: {f['scaling_efficiency']:.3f}) the limit is the "
                       f"{f['component']} ({f['bottleneck']})")
        for w in self.what_if:
            out.append(f"  what would move it: {w['change']} -> {f['gpus'] if f else '?'} GPUs at efficiency "
                       f"{w['scaling_efficiency']:.3f}")
        return out


def _gpu_formula(scenario: Scenario) -> list[str]:
    sim = build(_with(scenario, **{"cluster.nodes": 1, "cluster.gpus_per_node": 1,
                                   "cluster.server.pcie_switches": None, "cluster.server.gpus_per_switch": None,
                                   "cluster.server.sockets": None}))
    S = float(sim.costs.gradient_bytes.sum())
    t_c = sim.costs.total_s
    t_b = float(sim.costs.backward_s.sum())
    c, t = scenario.cluster, scenario.training
    B = c.nic.resolved_bandwidth_gbps * 1e9 / 8
    g = c.gpus_per_node
    lines = [f"T_compute = {t_c * 1e3:.1f} ms (backward {t_b * 1e3:.1f} ms overlaps sync), S = {S / 1e6:.1f} MB, "
             f"NIC B = {B / 1e9:.2f} GB/s"]
    if t.strategy == "parameter_server":
        ps = t.parameter_servers
        k = ps.count
        b_ps = (ps.nic_bandwidth_gbps * 1e9 / 8) if ps.nic_bandwidth_gbps else B
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
        lines.append(f"  at 0.8: 2*S/B + n_buckets*2(N-1)*alpha <= T_backward + T_compute/4 -> "
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
            s = _with(scenario, **{"cluster.nodes": nodes})
            result = simulate(_quick(s))
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
        cause = max(seconds, key=seconds.get) if seconds else "compute"
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
    out = []
    for label, dotted in changes:
        try:
            r = simulate(_quick(_with(scenario, **dotted)))
        except Exception:  # noqa: BLE001 - a what-if that cannot be built is just left out
            continue
        out.append({"change": label, "scaling_efficiency": r.scaling_efficiency, "speedup": r.speedup})
    return out

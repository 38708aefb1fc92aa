"""``advise batch``: the per-GPU batch and per-layer convolution algorithms that fit in
GPU memory (:mod:`simulator.memory`) with the best simulated throughput, the
runners-up, and what stops a larger batch; for a shared workspace and per-layer ones.
"""

from __future__ import annotations

import numpy as np

from .. import algorithms, memory, zoo
from ..compute import ACTIVATION_BYTES
from ..engine import simulate
from ..errors import ScenarioError
from ..resolved import Resolved, resolve, resolved
from ..scenario import Scenario
from .answers import BatchAdvice, BatchChoice
from .common import quick, resource_label, with_

GIB = memory.GIB
#: Batch sizes the batch search tries (a fixed grid: more memory only adds candidates).
BATCH_GRID: tuple[int, ...] = tuple(
    sorted({1, 2, 4} | set(range(8, 257, 8)) | set(range(256, 1025, 32)) | set(range(1024, 8193, 256)))
)
TIE = 0.005  # throughputs within 0.5% count as equal; the larger batch wins


def _layer_times(view: Resolved, batch: int) -> dict[str, np.ndarray]:
    """Per algorithm, each layer's forward + backward time with that algorithm where
    it is eligible (implicit GEMM elsewhere)."""
    out = {}
    architecture = view.gpu.architecture
    for name in algorithms.ALGORITHMS:
        chosen = [name if layer.kind == "conv" and algorithms.eligible(layer, name, architecture) else
                  ("implicit_gemm" if layer.kind == "conv" else None) for layer in view.model.layers]
        costs = view.roofline(batch, conv_algorithms=chosen)
        out[name] = costs.forward_s + costs.backward_s
    return out


def choose_algorithms(scenario: Scenario | Resolved, batch: int, mode: str, usable: int) -> list[str | None] | None:
    """The fastest per-layer conv algorithms whose workspace fits beside the batch
    (None when the batch does not fit even without workspace).

    shared: every layer takes the fastest option within one workspace cap W, the
    largest W that fits; per_layer: greedy by time saved per workspace byte."""
    view = resolved(scenario)
    w, model = view.scenario.workload, view.model
    base = memory.estimate(model, view.gpu, batch=batch, precision=w.precision, optimizer=w.optimizer,
                           workspace_mode=mode)
    headroom = usable - base.total
    if headroom < 0:
        return None
    act = ACTIVATION_BYTES[w.precision]
    architecture = view.gpu.architecture
    times = _layer_times(view, batch)
    chosen: list[str | None] = [("implicit_gemm" if layer.kind == "conv" else None) for layer in model.layers]
    options: dict[int, list[tuple[str, int, float]]] = {}
    for i, layer in enumerate(model.layers):
        if layer.kind != "conv":
            continue
        opts = [(a, algorithms.workspace_bytes(layer, a, batch, act), float(times[a][i]))
                for a in algorithms.ALGORITHMS if algorithms.eligible(layer, a, architecture)]
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
    s = with_(scenario, **{"workload.batch_per_gpu": batch, "workload.workspace": mode,
                           "workload.conv_algorithm": "implicit_gemm", "workload.conv_algorithms": overrides})
    est = memory.estimate_scenario(s)
    if est.total > usable:  # the memory model must accept what is proposed
        raise AssertionError(f"batch search proposed {est.total / GIB:.2f} GiB > {usable / GIB:.2f} GiB usable")
    result = simulate(quick(with_(s, **{"workload.check_memory": False})), with_baseline=False)
    counts = {a: sum(1 for c in chosen if c == a) for a in algorithms.ALGORITHMS}
    b = result.bottleneck
    return BatchChoice(batch, mode, result.throughput_samples_per_s, result.iteration_time_s, est.total / GIB,
                       est.workspace / GIB, counts, overrides,
                       f"{resource_label(b.resource, b.kind)} at {b.utilization:.0%}")


def advise_batch(scenario: Scenario, *, memory_gib: float | None = None, max_batch: int | None = None) -> BatchAdvice:
    """Search batch sizes and per-layer conv algorithms that fit; best simulated throughput.

    ``memory_gib`` replaces the GPU's capacity (what-if); ``max_batch`` caps the search."""
    view = resolve(scenario)
    w, model, gpu = scenario.workload, view.model, view.gpu
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
            chosen = choose_algorithms(view, batch, mode, usable)
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

"""``advise accumulation``: the fewest gradient-accumulation micro-batches per iteration
(``training.gradient_accumulation_steps``) at which scaling efficiency reaches a target.

With n micro-batches an iteration computes n x T (T: one micro-batch's forward and
backward) and synchronizes once, so what communication costs is spread over n times the
samples. Two simulations, at n = 1 and 2, give the iteration as
``t(n) = s x (n x T + o) + E``: ``s`` the slowdown of waiting for the slowest rank
(``variability.iteration_cv``; 1 without it), ``o`` the optimizer step, ``E`` the
communication not hidden behind the last micro-batch's backward (the same for every n).
Efficiency is the one-GPU iteration ``n x T + o + E1`` over it (``E1``: what the one-GPU
baseline itself waits for, its parameter-server round trips; 0 under allreduce), so

    efficiency >= target  <=>  n >= ((target x E - E1) / (1 - target x s) - o) / T,

reachable only below ``1 / s``. The answer is confirmed by simulating n - 1, n and n + 1
(and, where n - 1 already reaches the target, by bisecting below it).
A larger accumulated batch changes the optimization as any larger batch does (the
learning-rate schedule must follow it); this answers the throughput side only.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from ..engine import build, simulate
from ..errors import ScenarioError
from ..scenario import Scenario
from .answers import AccumulationAdvice
from .common import quick, resource_label, with_

FIELD = "training.gradient_accumulation_steps"


def _at(scenario: Scenario, steps: int) -> Scenario:
    return quick(with_(scenario, **{FIELD: steps}))


def advise_accumulation(scenario: Scenario, *, target_efficiency: float = 0.8, max_steps: int = 4096,
                        on_step: Callable[[int, int], None] | None = None) -> AccumulationAdvice:
    """The fewest micro-batches reaching ``target_efficiency`` (closed form, then simulated)."""
    if scenario.cluster.total_gpus < 2:
        raise ScenarioError("cluster: advise accumulation needs at least 2 GPUs")
    if scenario.training.parallelism is not None:
        raise ScenarioError("training.parallelism: advise accumulation is for plain data parallelism; "
                            "a transformer step's micro-batches follow from parallelism.global_batch")
    if not 0 < target_efficiency < 1:
        raise ScenarioError(f"target_efficiency must be in (0, 1), got {target_efficiency!r}")
    costs = build(_at(scenario, 1)).costs
    passes = float(costs.forward_s.sum() + costs.backward_s.sum())
    optimizer = 0.0 if scenario.training.strategy == "parameter_server" else float(costs.optimizer_s)
    one, two = simulate(_at(scenario, 1)), simulate(_at(scenario, 2))
    # waiting for others never speeds compute up (a jittery run can measure under 1)
    slowdown = max((two.iteration_time_s - one.iteration_time_s) / passes, 1.0)
    exposed = max(one.iteration_time_s - slowdown * (passes + optimizer), 0.0)
    # the one-GPU baseline's own iteration (its samples at its throughput)
    baseline_s = scenario.workload.batch_per_gpu / (one.throughput_samples_per_s / one.speedup)
    exposed_one = max(baseline_s - passes - optimizer, 0.0)
    ceiling = 1 / slowdown
    needed = None
    if target_efficiency * slowdown < 1:
        needed = max(1, math.ceil(((target_efficiency * exposed - exposed_one) / (1 - target_efficiency * slowdown)
                                   - optimizer) / passes - 1e-9))
    simulated: dict[int, dict[str, float | str]] = {}

    def run(n: int) -> bool:
        """Simulate n micro-batches (once); whether they reach the target."""
        if n not in simulated:
            if on_step is not None:
                on_step(len(simulated), len(simulated) + 1)
            r = simulate(_at(scenario, n))
            b = r.bottleneck
            simulated[n] = {"scaling_efficiency": r.scaling_efficiency,
                            "throughput_samples_per_s": r.throughput_samples_per_s,
                            "iteration_time_s": r.iteration_time_s, "global_batch": r.global_batch,
                            "bottleneck": f"{resource_label(b.resource, b.kind)} {b.utilization:.0%}"}
        return float(simulated[n]["scaling_efficiency"]) >= target_efficiency

    if needed is not None:
        for n in (needed - 1, needed, needed + 1):
            if 1 <= n <= max_steps:
                run(n)
        if needed - 1 >= 1 and run(needed - 1):  # the closed form asked too much: bisect below
            lo, hi = 0, needed - 1  # hi reaches; lo does not (0: none)
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (lo, mid) if run(mid) else (mid, hi)
            if hi > 1:
                run(hi - 1)
    reaching = [n for n, r in simulated.items() if float(r["scaling_efficiency"]) >= target_efficiency]
    return AccumulationAdvice(
        scenario=scenario.name, target_efficiency=target_efficiency, gpus=scenario.cluster.total_gpus,
        batch_per_gpu=scenario.workload.batch_per_gpu, micro_batch_s=passes, optimizer_s=optimizer,
        slowdown=slowdown, exposed_s=exposed, exposed_one_gpu_s=exposed_one, efficiency_one=one.scaling_efficiency,
        ceiling=ceiling,
        steps_closed_form=needed, simulated=simulated, steps=min(reaching) if reaching else None,
        capped=needed is not None and needed > max_steps)

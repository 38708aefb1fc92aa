"""Build, run and collect: the three phases after a scenario is loaded.

* **Build** (:mod:`simulator.build`) turns a :class:`Scenario` into its resolved view
  (:mod:`simulator.resolved`), a topology graph, a flow-level network, per-layer
  compute costs and gradient buckets, and a synchronization strategy: a
  :class:`~simulator.built.BuiltSimulation`.
* **Run** (:mod:`simulator.training`) advances SimPy time over the ranks' iterations.
* **Collect** (:mod:`simulator.results`) turns the recorded timeline into a
  :class:`SimResult`.

:func:`simulate` runs the three; ``build``, ``run`` and the types are re-exported here
for callers that drive the phases themselves.
"""

from __future__ import annotations

import dataclasses

from .build import _framework_launch_times, build, cacheable, rank_compute_costs
from .built import MIB, BuiltSimulation, CountingEnvironment, RankTimeline
from .fast_path import fast_path_inexact
from .measured_collectives import MeasuredAllreduce
from .results import SimResult, collect, combine_replications
from .run_budget import install as install_budget
from .scenario import Scenario
from .timeline import TimelineRecorder
from .training import run as _run
from .variation import ComputeVariation

__all__ = [
    "MIB", "BuiltSimulation", "ComputeVariation", "CountingEnvironment", "RankTimeline", "_framework_launch_times",
    "build", "fast_path_inexact", "rank_compute_costs", "run", "simulate",
]


# One-GPU baseline throughputs by the baseline scenario's JSON: a sweep's runs of one
# workload on clusters of every size share their baseline (only where build.cacheable).
_BASELINES: dict[str, float] = {}
BASELINES_KEPT = 1024


def _baseline_throughput(single: Scenario) -> float:
    if not cacheable(single):
        return simulate(single, with_baseline=False).throughput_samples_per_s
    key = single.model_dump_json()
    throughput = _BASELINES.get(key)
    if throughput is None:
        throughput = simulate(single, with_baseline=False).throughput_samples_per_s
        if len(_BASELINES) >= BASELINES_KEPT:
            del _BASELINES[next(iter(_BASELINES))]
        _BASELINES[key] = throughput
    return throughput


def run(sim: BuiltSimulation) -> None:
    """Run phase (:func:`simulator.training.run`) within the work budget (:mod:`simulator.run_budget`)."""
    install_budget(sim)
    _run(sim)


def simulate(scenario: Scenario, *, with_baseline: bool = True, record_timeline: bool = False) -> SimResult:
    """Simulate a scenario and return its result, speedup included.

    Speedup is measured against the same scenario simulated on one GPU (no gradient
    synchronization), with the same per-GPU batch. ``record_timeline`` (off by default,
    free when off) adds per-rank phases and every flow to ``result.extra["timeline"]``
    (of the first replication). With ``simulation.replications`` > 1 the headline
    metrics are means over independent runs and ``result.replications`` holds each
    metric's mean, standard deviation and 95% confidence interval.
    """
    if scenario.training.parallelism is not None:  # a transformer step as Megatron-LM / FSDP run it
        from .llm.run import simulate_llm

        return simulate_llm(scenario, record_timeline=record_timeline)
    baseline_throughput = None
    if with_baseline and scenario.cluster.total_gpus > 1:
        baseline_throughput = _baseline_throughput(scenario.single_gpu())
    runs = []
    for replication in range(scenario.simulation.replications):
        sim = build(scenario, replication)
        recorder = TimelineRecorder(sim) if record_timeline and replication == 0 else None
        run(sim)
        result = collect(sim, baseline_throughput)
        runs.append(result if recorder is None else recorder.add_to(result))
    result = runs[0] if len(runs) == 1 else combine_replications(runs)
    if sim.context.collectives is not None:  # the rings and the calls the library chose
        result = dataclasses.replace(result, extra={**result.extra, "collectives": sim.context.collectives.describe()})
    if sim.fast_path_note is not None:  # the fast path was asked for and cannot be exact
        result = dataclasses.replace(result, extra={**result.extra, "fast_path": sim.fast_path_note})
    if isinstance(sim.sync, MeasuredAllreduce):  # training.collectives.measured: where the allreduces' times came from
        result = dataclasses.replace(result, extra={**result.extra, "measured_allreduce": sim.sync.describe()})
    if sim.calibration is not None:  # which numbers are measured and which estimated
        result = dataclasses.replace(result, extra={**result.extra, "calibration": dict(sim.calibration.report)})
    return result

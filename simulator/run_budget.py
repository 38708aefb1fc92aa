"""Run-time bound: a work budget on the events one simulated run may process.

The count limits of the schema bound a scenario's size, not the work it makes: 1,000
iterations of a 64-GPU detailed run are within them and take about 40 minutes. So every
run (each replication, and the one-GPU baseline of speedup, is a run of its own) may
process at most :data:`DEFAULT_MAX_EVENTS` SimPy events; the event that would exceed it
stops the run with one :class:`WorkBudgetExceeded` (exit 2) naming the scenario's
numbers that make the work and what to reduce, instead of running on for minutes.

The budget counts events, not seconds, so whether a run fits does not depend on the
machine or its load: the same scenario passes or stops everywhere, and a run that fits
gives exactly the result it gave without a budget (the count is
``SimResult.simulated_events``). For scale: the shipped scenarios take 150 to 1,100
events, 64 GPUs on the detailed path about 90,000 per iteration (some 40,000 events a
second on one core).

With the budget comes a horizon: no event may lie beyond :data:`MAX_SIMULATED_S` of
simulated time (about 32 years). Real jobs end far sooner; a time out of all proportion
(a one-GPU throughput of 1e-300 samples/s, a profiled layer of 1e308 s) would otherwise
push the clock to where adding a millisecond no longer changes it, and a loop that waits
for the clock to move (the Horovod fusion cycle) would spin without an event to count.

``CLUSTERSIM_MAX_EVENTS=N`` sets the budget (0: no limit); ``clustersim --allow-large``
(``CLUSTERSIM_ALLOW_LARGE=1``) lifts it unless ``CLUSTERSIM_MAX_EVENTS`` is set. Either
way of lifting it lifts the horizon too.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING

from .errors import ClusterSimError, SimulationError, excerpt
from .schema_base import ALLOW_LARGE_ENV, large_allowed

if TYPE_CHECKING:
    from .built import BuiltSimulation

#: Events one run may process by default: about 17 s of CPU time on one core (measured:
#: 64 GPUs on the detailed path, 25 s wall on a loaded machine), nearly 3x what 64 GPUs
#: on the detailed path take over the default 3 + 1 iterations.
DEFAULT_MAX_EVENTS = 1_000_000
#: Environment variable that sets the budget (0 = no limit).
MAX_EVENTS_ENV = "CLUSTERSIM_MAX_EVENTS"
#: Simulated seconds no event may lie beyond while the budget applies (about 32 years):
#: far past any real job, and far below 2**53 clock ticks of a microsecond (9e9 s).
MAX_SIMULATED_S = 1e9


#: Edges (one per direction of a link) the cluster graph may have by default, so that no
#: scenario within the count limits runs past 20 s or 1 GiB by the size of its graph.
#: Measured (``benchmarks/graph_budget.py``, whole runs, machine at load 3-4): at
#: 199,800 edges, 2,700 eight-GPU NVSwitch servers (21,600 GPUs, ring) 13.3 s and 453 MB,
#: 2,700 four-GPU DGX-1 servers 8.7 s and 346 MB; at 296,000 edges the NVSwitch case
#: took 19.0 s. The count limits bound each number, not their product: 65,536 GPUs in
#: eight-GPU NVSwitch servers make 606,000 edges, a leaf-spine of 16,384 leaves and
#: 4,096 spines 134 million. Lifted with the other limits by ``--allow-large``.
DEFAULT_MAX_GRAPH_EDGES = 200_000


def max_graph_edges() -> int | None:
    """The most edges a cluster graph may have, or None when limits are lifted."""
    return None if large_allowed() else DEFAULT_MAX_GRAPH_EDGES


def graph_budget_message(found: str) -> str:
    """The error for a cluster over :func:`max_graph_edges` (``found`` says by how much)."""
    return (f"cluster: {found} (a safeguard: time and memory grow with the graph, at the limit up to about "
            f"13 s and 450 MB). Reduce cluster.nodes, "
            f"or pass `clustersim --allow-large` ({ALLOW_LARGE_ENV}=1) if you mean it")


class WorkBudgetExceeded(SimulationError):
    """A run needed more events than its work budget allows."""


def max_events() -> int | None:
    """The budget in events per run, or None for no limit."""
    text = os.environ.get(MAX_EVENTS_ENV, "").strip().replace("_", "").replace(",", "")
    if text:
        if not (text.isascii() and text.isdigit() and len(text) <= 18):
            raise ClusterSimError(
                f"{MAX_EVENTS_ENV}={excerpt(os.environ[MAX_EVENTS_ENV])}: expected a whole number of events "
                "(0 = no limit)"
            )
        return int(text) or None
    return None if large_allowed() else DEFAULT_MAX_EVENTS


def install(sim: BuiltSimulation, limit: int | None = None) -> None:
    """Make ``sim``'s environment refuse to process more than ``limit`` events (default
    :func:`max_events`). The events are counted as before (the environment's own
    ``step``); the check is one comparison per event."""
    limit = max_events() if limit is None else limit
    if limit is None:
        return
    check_fusion_cycle(sim)
    env = sim.env
    if hasattr(env, "over_limit"):  # a CountingEnvironment: its own run loop checks (no call an event)

        def over_limit(upcoming: float, beyond_horizon: bool) -> WorkBudgetExceeded:
            if beyond_horizon:
                return WorkBudgetExceeded(beyond_horizon_message(sim, upcoming))
            return WorkBudgetExceeded(over_budget_message(sim, limit))

        env.event_limit, env.horizon, env.over_limit = limit, MAX_SIMULATED_S, over_limit
        return
    step, peek, horizon, inf = type(env).step, env.peek, MAX_SIMULATED_S, math.inf  # (looked up once)
    # The environment's count made here where it can be (one call less for every event).
    uncounted = getattr(type(env), "uncounted_step", None)

    def budgeted_step() -> None:
        upcoming = peek()
        if upcoming > horizon and upcoming != inf:
            raise WorkBudgetExceeded(beyond_horizon_message(sim, upcoming))
        if env.events_processed >= limit and upcoming != inf:  # more to do, none left to do it with
            raise WorkBudgetExceeded(over_budget_message(sim, limit))
        if uncounted is None:
            step(env)
        else:
            env.events_processed += 1  # (as the environment's own step counts)
            uncounted(env)

    env.step = budgeted_step  # type: ignore[method-assign]


#: What one pipeline operation (a micro-batch's forward or backward of one model chunk
#: on one stage) is counted as against the event budget: it takes 4.9 to 15.8 simulated
#: events (measured on Llama-2 7B layouts of 8 to 512 micro-batches), and the step's
#: operation lists and records cost about as much again: counted at 4, 250,000
#: operations took 15.3 s and 196 MB on an idle core; at 8 the default budget allows
#: 125,000 (about 8 s).
EVENTS_PER_PIPELINE_OP = 8


def check_pipeline_work(stages: int, micro_batches: int, virtual_stages: int, collectives_per_op: int = 0) -> None:
    """Refuse a transformer step whose pipeline schedule alone is beyond the work
    budget, before its operation lists are made (a global batch of 10 million samples
    took 270 s and 2.6 GB): the operations are counted exactly, each as
    :data:`EVENTS_PER_PIPELINE_OP` events, and so is each of the ``collectives_per_op``
    collectives an operation runs inside it (ZeRO-3 one parameter tensor at a time)."""
    limit = max_events()
    ops = 2 * stages * micro_batches * virtual_stages
    events = ops * (1 + collectives_per_op) * EVENTS_PER_PIPELINE_OP
    if limit is None or events <= limit:
        return
    inside = f", each with {collectives_per_op:,} per-tensor collectives" if collectives_per_op else ""
    raise WorkBudgetExceeded(
        f"training.parallelism: one step runs {ops:,} pipeline operations ({stages:,} stage(s) x "
        f"{micro_batches:,} micro-batches x {virtual_stages:,} virtual stage(s), forward and backward{inside}), "
        f"counted as {events:,} simulated events, beyond the work budget of {limit:,}. Reduce "
        "training.parallelism.global_batch, or raise training.parallelism.micro_batch or the data-parallel size; "
        f"or raise the budget with {MAX_EVENTS_ENV}=N (0 = no limit) or `clustersim --allow-large` "
        f"({ALLOW_LARGE_ENV}=1)"
    )


def check_fusion_cycle(sim: BuiltSimulation) -> None:
    """A Horovod fusion cycle must move the clock everywhere below the horizon: a cycle
    under the clock's resolution there (0.22 us at 1e9 s) would stop advancing it while
    nothing else happens, and the fusion loop would spin without an event to count."""
    if sim.fusion_tensors is None:
        return
    cycle_ms = sim.scenario.training.fusion_cycle_ms
    shortest_ms = MAX_SIMULATED_S * 2.0**-52 * 1e3
    if cycle_ms < shortest_ms:
        raise WorkBudgetExceeded(
            f"training.fusion_cycle_ms: {cycle_ms:.3g} ms is too short for the simulated clock (at least "
            f"{shortest_ms:.2g} ms; Horovod's HOROVOD_CYCLE_TIME is milliseconds, default 5); "
            f"`clustersim --allow-large` ({ALLOW_LARGE_ENV}=1) or {MAX_EVENTS_ENV}=0 lifts the check"
        )


def over_budget_message(sim: BuiltSimulation, limit: int) -> str:
    """What stopped, the scenario's numbers that make the work, and what to reduce."""
    s = sim.scenario
    sim_spec, t = s.simulation, s.training
    ranks = len(sim.timelines)
    iterations = sim_spec.iterations + sim_spec.warmup_iterations
    flows = getattr(sim.network, "flows_started", None)
    made_of = [
        f"{iterations:,} iterations (simulation.iterations {sim_spec.iterations:,} + warmup_iterations "
        f"{sim_spec.warmup_iterations:,})",
        f"{ranks:,} rank(s) followed of {s.cluster.total_gpus:,} GPUs"
        + (" (detailed path)" if sim.detailed and ranks > 1 else ""),
        f"{len(sim.buckets):,} gradient bucket(s) per iteration",
    ]
    if flows is not None:
        made_of.append(f"{flows:,} network flows so far")
    reduce = ["simulation.iterations or warmup_iterations", "the GPUs (cluster.nodes, cluster.gpus_per_node)"]
    if sim.detailed and ranks > 1:
        reduce.append("the variability that makes every rank followed (variability.*; then simulation.mode auto "
                      "takes the fast path)" if s.variability.active else "simulation.mode (auto or fast: one rank "
                      "followed)")
    if len(sim.buckets) > 64:
        reduce.append("the gradient buckets (raise training.bucket_size_mib)")
    if t.fusion != "ddp_buckets" and t.fusion_cycle_ms < 1:
        reduce.append("the fusion cycles (raise training.fusion_cycle_ms)")
    return (
        f"the run stopped at its work budget of {limit:,} simulated events (simulated time {env_now(sim)}): "
        f"{'; '.join(made_of)}. Reduce {', or '.join(reduce)}; or raise the budget with {MAX_EVENTS_ENV}=N "
        f"(0 = no limit) or `clustersim --allow-large` ({ALLOW_LARGE_ENV}=1)"
    )


def beyond_horizon_message(sim: BuiltSimulation, upcoming: float) -> str:
    """The run's next event lies beyond the horizon: which inputs make times that large."""
    suspects = ["a rate far too low: a bandwidth (cluster.nic.bandwidth_gbps, a link's, "
                "training.collectives.net_connection_gbps) or a measured one-GPU throughput (workload."
                "measured_throughput_samples_per_s, or a validation case's baseline_throughput_samples_per_s)",
                "a layer or collective time in the calibration profile far too long"]
    if sim.scenario.variability.active:
        suspects.append("a slowdown in variability.*")
    return (
        f"the run's next event lies at {upcoming:.3g} s of simulated time, beyond the {MAX_SIMULATED_S:.0e} s "
        f"(about 32 years) a run may reach (simulated time now {env_now(sim)}): a time in the input is out of "
        f"all proportion: {'; or '.join(suspects)}. `clustersim --allow-large` ({ALLOW_LARGE_ENV}=1) or "
        f"{MAX_EVENTS_ENV}=0 lifts the bound"
    )


def env_now(sim: BuiltSimulation) -> str:
    return f"{sim.env.now:.6g} s"


__all__ = ["DEFAULT_MAX_EVENTS", "MAX_EVENTS_ENV", "MAX_SIMULATED_S", "WorkBudgetExceeded", "beyond_horizon_message",
           "check_fusion_cycle", "check_pipeline_work", "install", "max_events", "over_budget_message"]

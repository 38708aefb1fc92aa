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

``CLUSTERSIM_MAX_EVENTS=N`` sets the budget (0: no limit); ``clustersim --allow-large``
(``CLUSTERSIM_ALLOW_LARGE=1``) lifts it unless ``CLUSTERSIM_MAX_EVENTS`` is set.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING

from .errors import ClusterSimError, SimulationError, excerpt
from .scenario import ALLOW_LARGE_ENV, large_allowed

if TYPE_CHECKING:
    from .built import BuiltSimulation

#: Events one run may process by default: 20-30 s on one core, nearly 3x what 64 GPUs
#: on the detailed path take over the default 3 + 1 iterations.
DEFAULT_MAX_EVENTS = 1_000_000
#: Environment variable that sets the budget (0 = no limit).
MAX_EVENTS_ENV = "CLUSTERSIM_MAX_EVENTS"


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
    env = sim.env
    step = type(env).step

    def budgeted_step() -> None:
        if env.events_processed >= limit and env.peek() != math.inf:  # more to do, none left to do it with
            raise WorkBudgetExceeded(over_budget_message(sim, limit))
        step(env)

    env.step = budgeted_step  # type: ignore[method-assign]


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


def env_now(sim: BuiltSimulation) -> str:
    return f"{sim.env.now:.6g} s"


__all__ = ["DEFAULT_MAX_EVENTS", "MAX_EVENTS_ENV", "WorkBudgetExceeded", "install", "max_events",
           "over_budget_message"]

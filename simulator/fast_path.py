"""Which path a scenario runs: one representative rank (the fast path) or every rank.

The build phase asks these questions before it builds anything rank by rank; they read
the scenario only.
"""

from __future__ import annotations

from .resolved import running_strategy
from .scenario import Scenario


def fast_path_inexact(scenario: Scenario, strategy_name: str | None = None) -> str | None:
    """Why one representative rank cannot stand for every rank of ``scenario``, or None.

    The fast path follows one rank and moves each phase as one bundled flow: exact
    only when every rank sees the same thing. Allreduce strategies always do. Under
    parameter servers ranks differ (so ``simulation.mode: auto`` runs the detailed path) when

    * ``sync`` is ``asp`` or ``ssp``: each push is answered on its own, so workers
      drift apart (the fast path would run them as ``bsp``);
    * servers are colocated and do not spread evenly over the nodes (3 servers on 2
      nodes), or a bucket goes to one server (``round_robin``, ``size_balanced``): then
      some workers' shards stay in their own host and others cross the network;
    * requests cost server CPU time (``rpc_us``, ``tensor_us``) and a server has
      fewer cores than workers talk to it: the requests queue, and workers are answered
      one after another.

    With ``simulation.mode: fast`` set explicitly the first two (a different sync
    semantics, servers missing from some nodes) still run the detailed path; the last
    two run the fast path as asked, marked approximate (see :func:`_fast_path_plan`).
    """
    return _fast_path_plan(scenario, strategy_name)[0]


def _fast_path_plan(scenario: Scenario, strategy_name: str | None = None) -> tuple[str | None, bool]:
    """(why the fast path is not exact or None, whether it must not run even when forced)."""
    t = scenario.training
    if (strategy_name or running_strategy(scenario)) != "parameter_server":
        return None, False
    ps, c = t.parameter_servers, scenario.cluster
    if ps.sync != "bsp":
        return f"parameter_servers.sync={ps.sync}: workers are answered one by one and drift apart", True
    if ps.placement == "colocated":
        if ps.count % c.nodes:
            return f"{ps.count} colocated parameter servers do not spread evenly over {c.nodes} nodes", True
        if ps.sharding != "even" and c.nodes > 1:
            return (f"colocated parameter servers with sharding={ps.sharding}: a bucket is local to some "
                    "workers only"), False
    if ps.rpc_us > 0 or ps.tensor_us > 0:
        local = ps.local_aggregation and c.gpus_per_node > 1
        workers = c.nodes if local else c.total_gpus
        if ps.cores < workers:
            return (f"parameter-server requests queue on {ps.cores} core(s) for {workers} workers, "
                    "which are answered one after another"), False
    return None, False


def _collectives_bundled(scenario: Scenario, strategy_name: str) -> bool:
    """Whether every rank is followed only because ranks compute at different speeds
    (jitter, stragglers, speed factors under ``simulation.mode: auto``) on an allreduce
    strategy. Then each rank's compute is simulated, but collectives run as the fast
    path's bundled flows: an allreduce starts only when every rank has the bucket
    ready and buckets go one at a time, so it always runs alone on an idle network,
    exactly as on the fast path (which equals the per-flow path there, see
    tests/test_fast_path_agrees.py). Cost: per rank and segment, not per flow.
    ``simulation.mode: detailed`` still moves every flow."""
    return (scenario.simulation.mode == "auto" and scenario.variability.active
            and strategy_name not in ("none", "parameter_server"))


def _fusion_loop(scenario: Scenario, strategy_name: str) -> bool:
    """Whether the run phase fuses gradients with Horovod's synchronous background loop
    (``fusion: horovod`` with overlap, on an allreduce strategy): the buffers then
    depend on when allreduces finish and are made while the clock runs. Otherwise the
    static buckets of :func:`_buckets` (with overlap off every gradient is ready at the
    end of backward and Horovod's loop and the static ticks agree on what is ready)."""
    t = scenario.training
    return t.fusion == "horovod" and t.overlap and strategy_name not in ("none", "parameter_server")

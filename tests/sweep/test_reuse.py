"""What a sweep's worker reuses from run to run (built clusters with their routes and
max-min solutions, one-GPU baselines) changes no row: rows from a warm worker equal
rows simulated cold, one by one. And the batches a sweep deals out cover every run
once, in expansion order inside a batch, the heaviest first."""

from __future__ import annotations

import json

import pytest

from simulator import engine, load_scenario, run_sweep
from simulator.build import forget_shared_clusters
from simulator.sweep import runner
from simulator.sweep.expand import expand
from simulator.sweep.spec import load_sweep
from simulator.sweep.worker import estimated_cost, run_batch, run_one

from .conftest import small_sweep


def mixed_sweep() -> dict:
    """Ring and parameter servers over two cluster sizes, two NICs and two batches: runs
    of one cluster follow each other (the reuse a worker sees)."""
    return small_sweep(axes={"grid": {
        "cluster.nodes": [1, 2],
        "training.strategy": ["ring_allreduce", "parameter_server"],
        "cluster.nic.link": ["10GbE", "IB-EDR"],
        "workload.batch_per_gpu": [16, 32],
    }})


def cold(scenario) -> dict:
    """One run with nothing kept from earlier runs."""
    forget_shared_clusters()
    engine._BASELINES.clear()
    return run_one(scenario)


def canonical(row: dict) -> str:
    return json.dumps(row, sort_keys=True, default=str)


def test_a_warm_worker_gives_the_rows_of_cold_runs():
    spec, root, source = load_sweep(mixed_sweep())
    tasks = [(run.run, run.scenario) for run in expand(spec, root, source)]
    forget_shared_clusters()
    warm = run_batch(tasks)  # one worker, one run after another, reusing what it can
    assert len(warm) == 16 and all(error is None for _, _, error in warm)
    for (number, metrics, _), (_, scenario) in zip(warm, tasks):
        assert canonical(metrics) == canonical(cold(scenario)), number


def test_pool_and_serial_sweeps_give_the_same_table():
    serial = run_sweep(mixed_sweep(), executor="serial", cache=False, progress=False)
    pooled = run_sweep(mixed_sweep(), workers=2, batch_size=3, cache=False, progress=False)
    assert serial.drop(columns=["error"]).equals(pooled.drop(columns=["error"]))


def test_a_kept_baseline_equals_a_fresh_one():
    scenario = load_scenario(small_sweep()["base"], ["cluster.nodes=2", "training.strategy=parameter_server"])
    first = cold(scenario)
    assert engine._BASELINES  # the one-GPU baseline was kept...
    assert canonical(run_one(scenario)) == canonical(first)  # ...and gives the same speedup


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_batches_cover_every_run_once_heaviest_first(workers):
    base = small_sweep()["base"]
    scenarios = [load_scenario(base, [f"cluster.nodes={n}", f"training.strategy={s}"])
                 for s in ("ring_allreduce", "parameter_server") for n in (1, 2, 4, 8)]
    tasks = list(enumerate(scenarios))
    batches = runner._batches(tasks, workers, 1, 3)
    assert sorted(run for batch in batches for run, _ in batch) == list(range(len(tasks)))
    for batch in batches:  # neighbours in expansion order stay together (they share clusters)
        runs = [run for run, _ in batch]
        assert runs == list(range(runs[0], runs[0] + len(runs)))
    costs = [sum(estimated_cost(s) for _, s in batch) for batch in batches]
    if workers == 1:  # one worker: nothing to balance, expansion order
        assert [batch[0][0] for batch in batches] == sorted(batch[0][0] for batch in batches)
    else:
        assert costs == sorted(costs, reverse=True)

"""run_sweep: tidy rows, cache, resume, interruption, failures, executor independence."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from simulator import SimulationError, load_scenario, run_sweep, simulate
from simulator.sweep import read_results
from simulator.sweep import worker as worker_module

from .conftest import SMALL_BASE, small_sweep, two_hundred_runs

GRID = small_sweep(axes={"grid": {"cluster.nodes": [1, 2, 4],
                                    "training.strategy": ["ring_allreduce", "parameter_server"]}})


def test_rows_are_tidy_config_metrics_seed_version():
    df = run_sweep(GRID, executor="serial", progress=False)
    assert len(df) == 6 and list(df["run"]) == list(range(6))
    assert (df["status"] == "ok").all() and df["error"].isna().all()
    for col in ("seed", "version", "cluster.nodes", "training.strategy", "workload.model", "iteration_time_s",
                "throughput_samples_per_s", "speedup", "scaling_efficiency", "breakdown.compute_s",
                "bottleneck.resource", "utilization.1.utilization"):
        assert col in df.columns, col
    # Each row's metrics are exactly what simulate() gives for that scenario.
    row = df[(df["cluster.nodes"] == 4) & (df["training.strategy"] == "parameter_server")].iloc[0]
    scenario = load_scenario(SMALL_BASE, ["cluster.nodes=4", "training.strategy=parameter_server",
                                          f"simulation.seed={row['seed']}"])
    expected = simulate(scenario)
    assert row["iteration_time_s"] == expected.iteration_time_s
    assert row["total_gpus"] == 8 and row["speedup"] == expected.speedup
    assert row["version"] == expected.version and row["seed"] == expected.seed


def test_two_hundred_runs_then_cache_and_resume_simulate_nothing(tmp_path):
    out = tmp_path / "r.parquet"
    first = run_sweep(two_hundred_runs(), out, workers=2, progress=False)
    s = first.attrs["sweep"]
    assert (s.runs, s.simulated, s.cached, s.failed) == (200, 200, 0, 0)
    assert len(read_results(out)) == 200 and not (tmp_path / "r.parquet.partial.jsonl").exists()

    cached = run_sweep(two_hundred_runs(), tmp_path / "again.parquet", workers=2, progress=False)
    assert (cached.attrs["sweep"].simulated, cached.attrs["sweep"].cached) == (0, 200)

    resumed = run_sweep(two_hundred_runs(), out, resume=True, cache=False, progress=False)
    assert (resumed.attrs["sweep"].simulated, resumed.attrs["sweep"].resumed) == (0, 200)
    assert_frame_equal(read_results(out), read_results(tmp_path / "again.parquet"))
    assert_frame_equal(first, cached)


def test_changing_the_sweep_simulates_only_what_changed(tmp_path):
    run_sweep(GRID, executor="serial", progress=False)
    bigger = small_sweep(axes={"grid": {"cluster.nodes": [1, 2, 4, 8],
                                        "training.strategy": ["ring_allreduce", "parameter_server"]}})
    df = run_sweep(bigger, executor="serial", progress=False)
    assert (df.attrs["sweep"].simulated, df.attrs["sweep"].cached) == (2, 6)


def test_interrupted_sweep_resumes_to_the_uninterrupted_table(tmp_path, monkeypatch):
    run_sweep(two_hundred_runs(), tmp_path / "ref.parquet", executor="serial", cache=False, progress=False)  # reference

    calls = {"n": 0}
    real = worker_module.run_one

    def interrupted_after_73(scenario):
        calls["n"] += 1
        if calls["n"] > 73:
            raise KeyboardInterrupt("Ctrl-C after 73 runs")
        return real(scenario)

    monkeypatch.setattr(worker_module, "run_one", interrupted_after_73)
    out = tmp_path / "r.parquet"
    with pytest.raises(KeyboardInterrupt, match="Ctrl-C after 73 runs"):
        run_sweep(two_hundred_runs(), out, executor="serial", cache=False, progress=False)
    assert list(read_results(out)["run"]) == list(range(73))  # everything finished was kept
    monkeypatch.setattr(worker_module, "run_one", real)

    resumed = run_sweep(two_hundred_runs(), out, resume=True, cache=False, progress=False, workers=2)
    assert (resumed.attrs["sweep"].resumed, resumed.attrs["sweep"].simulated) == (73, 127)
    assert_frame_equal(read_results(out), read_results(tmp_path / "ref.parquet"))


def test_a_killed_sweep_resumes_from_its_journal(tmp_path):
    out = tmp_path / "r.csv"
    full = run_sweep(GRID, out, executor="serial", cache=False, progress=False)
    # A sweep killed outright: no table, a journal whose last line was cut short.
    lines = (tmp_path / "r.csv").read_text()
    out.unlink()
    journal = tmp_path / "r.csv.partial.jsonl"
    records = full.to_dict("records")
    journal.write_text("".join(json.dumps(records[i]) + "\n" for i in (0, 2)) + '{"run": 5, "sta')
    resumed = run_sweep(GRID, out, resume=True, cache=False, executor="serial", progress=False)
    assert (resumed.attrs["sweep"].resumed, resumed.attrs["sweep"].simulated) == (2, 4)
    assert out.read_text() == lines and not journal.exists()


def test_a_failing_run_is_an_error_row_and_the_sweep_goes_on(monkeypatch):
    real = worker_module.run_one

    def fails_on_four_nodes(scenario):
        if scenario.cluster.nodes == 4:
            raise SimulationError("deadlock on purpose")
        return real(scenario)

    monkeypatch.setattr(worker_module, "run_one", fails_on_four_nodes)
    sweep = small_sweep(axes={"grid": {"cluster.nodes": [1, 2, 4], "cluster.gpus_per_node": [2, 3]}},
                        set=["cluster.server.pcie_switches=2"])
    df = run_sweep(sweep, executor="serial", cache=False, progress=False)
    assert len(df) == 6 and df.attrs["sweep"].failed == 4
    errors = df.set_index(["cluster.nodes", "cluster.gpus_per_node"])["error"]
    assert errors[(4, 2)] == "SimulationError: deadlock on purpose"
    assert "cannot be spread evenly" in errors[(1, 3)]  # invalid point: validation error row
    ok = df[df["status"] == "ok"]
    assert sorted(zip(ok["cluster.nodes"], ok["cluster.gpus_per_node"])) == [(1, 2), (2, 2)]
    assert ok["iteration_time_s"].gt(0).all() and df.loc[df["status"] == "error", "iteration_time_s"].isna().all()


def test_results_do_not_depend_on_workers_batching_or_executor():
    sweep = small_sweep(axes={"grid": {"cluster.nodes": [1, 2, 3, 4], "workload.batch_per_gpu": [16, 64]}},
                        replications=2)
    serial = run_sweep(sweep, executor="serial", cache=False, progress=False)
    one_by_one = run_sweep(sweep, workers=2, batch_size=1, cache=False, progress=False)
    batched = run_sweep(sweep, workers=2, batch_size=5, cache=False, progress=False)
    assert_frame_equal(serial, one_by_one)
    assert_frame_equal(serial, batched)


def test_output_format_and_resume_need_a_known_file(tmp_path):
    from simulator import ClusterSimError, ScenarioError

    with pytest.raises(ScenarioError, match="unknown results format '.xlsx'"):
        run_sweep(GRID, tmp_path / "r.xlsx", progress=False)
    with pytest.raises(ClusterSimError, match="resume needs an output file"):
        run_sweep(GRID, resume=True, progress=False)
    with pytest.raises(ClusterSimError, match="unknown executor 'spark'"):
        run_sweep(GRID, executor="spark", cache=False, progress=False)


def test_csv_and_parquet_hold_the_same_table(tmp_path):
    run_sweep(GRID, tmp_path / "r.csv", executor="serial", progress=False)
    run_sweep(GRID, tmp_path / "r.parquet", executor="serial", progress=False)
    csv, parquet = read_results(tmp_path / "r.csv"), read_results(tmp_path / "r.parquet")
    assert list(csv.columns) == list(parquet.columns)
    pd.testing.assert_series_equal(csv["throughput_samples_per_s"], parquet["throughput_samples_per_s"])

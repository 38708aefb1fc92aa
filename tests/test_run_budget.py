"""The run-time bound (issue 18): a run may process at most its work budget of events
(``simulator.run_budget``); past it, one error naming what to reduce, exit 2. A run that
fits gives exactly the result it gives without a budget."""

from __future__ import annotations

import copy
import dataclasses
import json

import pytest

from simulator import load_scenario
from simulator.engine import build, run, simulate
from simulator.errors import ClusterSimError
from simulator.run_budget import DEFAULT_MAX_EVENTS, MAX_EVENTS_ENV, WorkBudgetExceeded, max_events
from simulator.scenario import ALLOW_LARGE_ENV
from simulator.sweep import run_sweep

from .conftest import REPO_ROOT
from .test_bad_input import assert_one_error
from .test_cli import run_main

RING = str(REPO_ROOT / "scenarios" / "ring_4x4_ib100.yaml")
DETAILED = ["simulation.mode=detailed", "cluster.nodes=2", "simulation.iterations=1", "simulation.warmup_iterations=0"]


@pytest.fixture(autouse=True)
def default_budget(monkeypatch):
    monkeypatch.delenv(MAX_EVENTS_ENV, raising=False)
    monkeypatch.delenv(ALLOW_LARGE_ENV, raising=False)


def _events(scenario) -> int:
    return simulate(scenario, with_baseline=False).simulated_events


def test_a_run_over_its_budget_is_one_error_naming_what_to_reduce(capsys, monkeypatch):
    monkeypatch.setenv(MAX_EVENTS_ENV, "500")
    code, out, err = run_main(capsys, "simulate", RING, *[a for o in DETAILED for a in ("--set", o)])
    assert_one_error(code, out, err, f"{RING}: the run stopped at its work budget of 500 simulated events",
                     "simulation.iterations", "8 rank(s) followed of 8 GPUs (detailed path)", "simulation.mode",
                     f"{MAX_EVENTS_ENV}=N")


def test_the_budget_is_exact_and_leaves_results_unchanged(monkeypatch):
    scenario = load_scenario(RING, DETAILED)
    unbounded = simulate(scenario, with_baseline=False)
    counted = unbounded.simulated_events  # the events, plus (as counted) the final step that finds none left

    def fits(limit: int) -> bool:
        monkeypatch.setenv(MAX_EVENTS_ENV, str(limit))
        try:
            result = simulate(scenario, with_baseline=False)
        except WorkBudgetExceeded as exc:
            assert f"work budget of {limit:,} simulated events" in str(exc)
            return False
        assert repr(dataclasses.asdict(result)) == repr(dataclasses.asdict(unbounded))  # NaN speedup: no baseline
        return True

    assert fits(counted)
    smallest = next(limit for limit in (counted - 2, counted - 1, counted) if fits(limit))
    assert smallest >= counted - 1 and not fits(smallest - 1)


def test_build_and_run_callers_get_the_budget_too(monkeypatch):
    monkeypatch.setenv(MAX_EVENTS_ENV, "100")
    sim = build(load_scenario(RING, DETAILED))
    with pytest.raises(WorkBudgetExceeded, match="the run stopped at its work budget of 100 simulated events"):
        run(sim)
    assert sim.env.events_processed == 100


@pytest.mark.parametrize(("env", "expected"), [
    ({}, DEFAULT_MAX_EVENTS), ({MAX_EVENTS_ENV: "0"}, None), ({MAX_EVENTS_ENV: "1_000"}, 1000),
    ({ALLOW_LARGE_ENV: "1"}, None), ({ALLOW_LARGE_ENV: "1", MAX_EVENTS_ENV: "7"}, 7),
])
def test_the_budget_setting(monkeypatch, env, expected):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert max_events() == expected


@pytest.mark.parametrize("value", ["-1", "1e6", "lots", "9" * 30])
def test_a_bad_budget_setting_is_one_error(capsys, monkeypatch, value):
    monkeypatch.setenv(MAX_EVENTS_ENV, value)
    with pytest.raises(ClusterSimError, match=MAX_EVENTS_ENV):
        max_events()
    assert_one_error(*run_main(capsys, "simulate", "-q"), MAX_EVENTS_ENV)


def test_no_limit_and_allow_large(capsys, monkeypatch):
    scenario = load_scenario(RING, DETAILED)
    monkeypatch.setenv(MAX_EVENTS_ENV, "0")
    assert _events(scenario) > 100
    monkeypatch.delenv(MAX_EVENTS_ENV)
    monkeypatch.setattr("simulator.run_budget.DEFAULT_MAX_EVENTS", 100)
    with pytest.raises(WorkBudgetExceeded, match="the run stopped at its work budget of 100 simulated events"):
        _events(scenario)
    monkeypatch.setenv(ALLOW_LARGE_ENV, "")  # restored after the test: --allow-large sets it for the process
    code, _, err = run_main(capsys, "--allow-large", "simulate", RING, "-q",
                            *[a for o in DETAILED for a in ("--set", o)])
    assert code == 0, err


def test_the_shipped_scenarios_are_far_inside_the_default_budget():
    for path in sorted((REPO_ROOT / "scenarios").glob("*.yaml")):
        assert _events(load_scenario(path)) < DEFAULT_MAX_EVENTS // 100, path


def test_a_sweep_run_over_budget_is_an_error_row(monkeypatch):
    from .sweep.conftest import small_sweep

    sweep = small_sweep(axes={"grid": {"simulation.mode": ["fast", "detailed"]}})
    fast = load_scenario({**small_sweep()["base"], "simulation": {"iterations": 1, "warmup_iterations": 0,
                                                                   "mode": "fast"}})
    monkeypatch.setenv(MAX_EVENTS_ENV, str(_events(fast)))  # the fast run fits, the detailed one cannot
    df = run_sweep(sweep, executor="serial", cache=False, progress=False)
    assert list(df["status"]) == ["ok", "error"]
    assert df["error"].iloc[1].startswith("WorkBudgetExceeded: the run stopped at its work budget")


def test_the_horizon_stops_a_run_whose_times_are_out_of_proportion(monkeypatch):
    """No event beyond MAX_SIMULATED_S while the budget applies: NICs of 1e-30 Gb/s make
    an allreduce of ages. Lifting the budget lifts the horizon."""
    from simulator.run_budget import MAX_SIMULATED_S

    slow = load_scenario(RING, ["cluster.nic.bandwidth_gbps=1.0e-30", "simulation.iterations=1"])
    with pytest.raises(WorkBudgetExceeded, match=r"beyond the 1e\+09 s .* a run may reach"):
        simulate(slow, with_baseline=False)
    monkeypatch.setenv(MAX_EVENTS_ENV, "0")
    result = simulate(slow, with_baseline=False)
    assert result.iteration_time_s > MAX_SIMULATED_S


def test_a_fusion_cycle_below_the_clocks_resolution_is_refused():
    # the schema's bound (1 us) keeps the cycle far above the clock's resolution
    with pytest.raises(ClusterSimError, match=r"training.fusion_cycle_ms: Input should be greater than or equal"):
        load_scenario(RING, ["training.framework=horovod", "training.fusion_cycle_ms=1.0e-9"])
    assert simulate(load_scenario(RING, ["training.framework=horovod", "training.fusion_cycle_ms=0.001",
                                         "simulation.iterations=1"]), with_baseline=False).iteration_time_s > 0


# -- the graph budget: clusters whose graph alone would take over 20 s and 1 GiB ---------

DGX1_BERT = str(REPO_ROOT / "scenarios/validation/training_systems/"
                "NVIDIA-DLE-PyTorch-BERT-bert_large-s384-V100-SXM2-16GB-amp-b4-1x4.yaml")


def test_a_cluster_over_the_graph_budget_is_one_error_before_it_is_built(capsys):
    """The fuzzer's reproducer (#18): 10,000 DGX-1 servers are within every count limit,
    and took 21 s and 1.27 GB; refused once the first server is built."""
    from simulator.run_budget import DEFAULT_MAX_GRAPH_EDGES

    code, out, err = run_main(capsys, "simulate", DGX1_BERT, "--set", "cluster.nodes=10000")
    assert_one_error(code, out, err, f"{DGX1_BERT}: cluster: the cluster graph would have 740,000 edges "
                     "(10,000 servers of 66 plus the fabric's)", f"above the limit of {DEFAULT_MAX_GRAPH_EDGES:,}",
                     "Reduce cluster.nodes", "--allow-large", f"{ALLOW_LARGE_ENV}=1")


def test_the_graph_budget_is_lifted_with_the_other_limits(monkeypatch):
    from simulator.run_budget import DEFAULT_MAX_GRAPH_EDGES, max_graph_edges

    assert max_graph_edges() == DEFAULT_MAX_GRAPH_EDGES
    monkeypatch.setenv(ALLOW_LARGE_ENV, "1")
    assert max_graph_edges() is None


def test_a_sweep_run_over_the_graph_budget_is_an_error_row():
    from .sweep.conftest import small_sweep

    # 128 leaves x 4,096 spines: over a million edges in the fabric alone
    sweep = small_sweep(axes={"grid": {"cluster.fabric.spines": [2, 4096]}})
    sweep["base"] = copy.deepcopy(sweep["base"])
    sweep["base"]["cluster"].update(nodes=128, fabric={"topology": "leaf_spine", "nodes_per_leaf": 1})
    df = run_sweep(sweep, executor="serial", cache=False, progress=False)
    assert list(df["status"]) == ["ok", "error"]
    assert "the cluster graph would have" in df["error"].iloc[1]


# -- transformer steps: the pipeline schedule's operations count against the budget ------

LLAMA = {"name": "llama2-7b-32xa100",
         "cluster": {"nodes": 4, "gpus_per_node": 8, "gpu": "A100-SXM4-80GB", "server": {"layout": "nvswitch"},
                     "nic": {"bandwidth_gbps": 1600}},
         "workload": {"model": "llama2_7b", "precision": "bf16", "sequence_length": 4096},
         "training": {"parallelism": {"tensor": 2, "pipeline": 2, "micro_batch": 1, "global_batch": 10_000_000,
                                      "schedule": "1f1b", "zero_stage": 1, "recompute": "selective"}}}


def test_a_transformer_step_beyond_the_budget_is_refused_before_its_schedule_is_made(capsys, tmp_path):
    """The fuzzer's reproducer (#18): a global batch of 10 million samples, 1.25 million
    micro-batches on each of 2 stages, took 270 s and 2.6 GB; now one error."""
    path = tmp_path / "llama.yaml"
    path.write_text(json.dumps(LLAMA))
    code, out, err = run_main(capsys, "simulate", str(path))
    assert_one_error(code, out, err, "training.parallelism: one step runs 5,000,000 pipeline operations (2 stage(s) "
                     "x 1,250,000 micro-batches x 1 virtual stage(s), forward and backward), counted as 40,000,000 "
                     f"simulated events, beyond the work budget of {DEFAULT_MAX_EVENTS:,}",
                     "training.parallelism.global_batch", "--allow-large")


def test_the_pipeline_count_is_exact_at_the_budget(monkeypatch):
    from simulator.run_budget import EVENTS_PER_PIPELINE_OP

    monkeypatch.setenv(MAX_EVENTS_ENV, str(100 * EVENTS_PER_PIPELINE_OP))  # 100 operations: 25 micro-batches x 2 x 2

    def step(global_batch: int):  # 8 data-parallel replicas
        data = copy.deepcopy(LLAMA)
        data["training"]["parallelism"]["global_batch"] = global_batch
        return simulate(load_scenario(data))

    assert step(200).extra["llm"]["layout"]["micro_batches"] == 25
    with pytest.raises(WorkBudgetExceeded, match="one step runs 104 pipeline operations"):
        step(208)


def test_per_tensor_zero3_collectives_count_against_the_budget(monkeypatch):
    # DeepSpeed 0.3-0.5's ZeRO-3: every operation runs an all-gather and a reduce-scatter per
    # parameter tensor of each of its blocks (Llama-2 7B: 6 tensors x 32 blocks x 2 = 384)
    from simulator.run_budget import EVENTS_PER_PIPELINE_OP

    data = copy.deepcopy(LLAMA)
    data["training"]["parallelism"].update(tensor=1, pipeline=1, global_batch=32, zero_stage=3)
    ops = 2 * 1  # one micro-batch per replica on 32 GPUs: forward and backward
    monkeypatch.setenv(MAX_EVENTS_ENV, str(ops * (1 + 384) * EVENTS_PER_PIPELINE_OP))
    assert simulate(load_scenario(data)).iteration_time_s > 0  # flattened gathers: within the budget
    data["training"]["parallelism"]["zero3_gather"] = "parameter"
    assert simulate(load_scenario(data)).iteration_time_s > 0  # exactly at the budget
    monkeypatch.setenv(MAX_EVENTS_ENV, str(ops * (1 + 384) * EVENTS_PER_PIPELINE_OP - 1))
    with pytest.raises(WorkBudgetExceeded, match="one step runs 2 pipeline operations .* each with 384 per-tensor"):
        simulate(load_scenario(data))

"""training.collectives.measured: bucket allreduces timed by the user's nccl-tests run."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.engine import simulate
from simulator.errors import ScenarioError
from simulator.loading import load_scenario
from simulator.scenario import Scenario

from .conftest import REPO_ROOT
from .test_cli import run_main

# An allreduce of 4 ranks on one host: t = 20 us + bytes / (2 GB/s), exact at every size.
SIZES = [2**k for k in range(10, 29, 2)]  # 1 KiB .. 256 MiB


def _run_text(world: int = 4, hosts: int = 1, op: str = "all_reduce_perf", sizes=SIZES, alpha=20e-6, beta=2e9) -> str:
    ranks = [f"#  Rank {r:2d} Group  0 Pid {100 + r} on host{r * hosts // world} device {r} [0x{r:02x}] GPU"
             for r in range(world)]
    rows = [f"{s:12d} {s // 4:12d} float sum -1 {1e6 * (alpha + s / beta):10.3f} 0.0 0.0 0" for s in sizes]
    return "\n".join([f"# Collective test starting: {op}", *ranks,
                      "#  size  count  type  redop  root  time  algbw  busbw #wrong  time  algbw  busbw #wrong",
                      *rows]) + "\n"


def _scenario(tmp_path, text: str | None = None, **training) -> Scenario:
    path = tmp_path / "run.txt"
    path.write_text(text if text is not None else _run_text())
    data = {
        "cluster": {"nodes": 1, "gpus_per_node": 4, "gpu": "RTX-4090",
                    "server": {"layout": "pcie_tree", "pcie_switches": 2, "p2p": False}},
        "workload": {"model": "resnet50", "batch_per_gpu": 32, "precision": "amp"},
        "variability": {"iteration_cv": 0},
        "training": {"strategy": "ring_allreduce", "overlap": False, "bucket_size_mib": 100000,
                     "collectives": {"measured": str(path), "compute_interference": 1.0}, **training},
    }
    return Scenario.model_validate(data)


def test_one_bucket_without_overlap_takes_compute_plus_the_measured_time(tmp_path):
    scenario = _scenario(tmp_path)
    result = simulate(scenario, with_baseline=False)
    one_gpu = simulate(scenario.single_gpu(), with_baseline=False)
    recorded = result.extra["measured_allreduce"]
    assert recorded["sizes"] == len(SIZES) and recorded["world_size_checked"] is True
    from simulator.build import build

    sim = build(scenario)
    nbytes = sum(b for _, b in sim.buckets)
    expected = 20e-6 + nbytes / 2e9  # inside the measured sizes: interpolation of an affine curve is exact
    assert nbytes < SIZES[-1] and len(sim.buckets) == 1
    assert result.breakdown["communication_s"] == pytest.approx(expected, rel=1e-9)
    # the step: the one-GPU step, DDP's copy of the gradients into the bucket, then the allreduce
    assert result.iteration_time_s == pytest.approx(
        one_gpu.iteration_time_s + result.breakdown["bucket_copy_s"] + expected, rel=1e-9)


def test_between_measured_sizes_the_time_is_interpolated_and_beyond_them_the_fitted_line(tmp_path):
    from simulator.build import build

    sim = build(_scenario(tmp_path, _run_text(sizes=[2**20, 2**22, 2**24])))
    sync = sim.sync
    # inside: linear between the neighbours (exact for the affine data)
    assert sync.time_s(3 * 2**20) == pytest.approx(20e-6 + 3 * 2**20 / 2e9, rel=1e-9)
    assert sync.time_s(np.mean([2**22, 2**24])) == pytest.approx(20e-6 + np.mean([2**22, 2**24]) / 2e9, rel=1e-9)
    # beyond the largest size: the alpha-beta line fitted on every size
    assert sync.time_s(2**28) == pytest.approx(20e-6 + 2**28 / 2e9, rel=1e-3)


def test_a_run_of_another_world_size_is_refused(tmp_path):
    with pytest.raises(ScenarioError, match="measured on 8 ranks on 1 host.*runs 4 GPUs"):
        simulate(_scenario(tmp_path, _run_text(world=8)), with_baseline=False)


@pytest.mark.parametrize("text, message", [
    (_run_text(op="all_gather_perf"), "measured allgather; this field takes an all_reduce_perf run"),
    (_run_text(sizes=[2**20]), "at least 2 are needed"),
])
def test_a_run_that_cannot_time_an_allreduce_is_refused(tmp_path, text, message):
    with pytest.raises(ScenarioError, match=message):
        simulate(_scenario(tmp_path, text), with_baseline=False)


def test_a_strategy_that_does_not_allreduce_is_refused(tmp_path):
    with pytest.raises(ScenarioError, match="training.strategy parameter_server does not allreduce"):
        simulate(_scenario(tmp_path, strategy="parameter_server"), with_baseline=False)


def test_a_file_without_rank_lines_is_read_as_an_allreduce_and_marked_unchecked(tmp_path):
    text = "\n".join(line for line in _run_text().splitlines() if "Rank" not in line and "starting" not in line)
    result = simulate(_scenario(tmp_path, text + "\n"), with_baseline=False)
    assert result.extra["measured_allreduce"]["world_size_checked"] is False


def test_the_path_resolves_against_the_scenario_file_and_the_cli_says_where_times_came_from(tmp_path, capsys):
    (tmp_path / "nccl").mkdir()
    (tmp_path / "nccl" / "all_reduce_perf.txt").write_text(_run_text())
    (tmp_path / "job.yaml").write_text(
        "cluster: {nodes: 1, gpus_per_node: 4, gpu: RTX-4090}\n"
        "workload: {model: resnet50, batch_per_gpu: 32, precision: amp}\n"
        "training: {collectives: {measured: nccl/all_reduce_perf.txt}}\n")
    assert load_scenario(tmp_path / "job.yaml").training.collectives.measured == str(
        tmp_path / "nccl" / "all_reduce_perf.txt")
    code, out, err = run_main(capsys, "simulate", str(tmp_path / "job.yaml"))
    assert code == 0, err
    assert "allreduce times measured" in out
    (tmp_path / "bad.yaml").write_text("training: {collectives: {measured: ../../etc/passwd}}\n")
    code, out, err = run_main(capsys, "simulate", str(tmp_path / "bad.yaml"))
    assert code == 2 and "training.collectives.measured" in err and "Traceback" not in err


def test_a_missing_file_exits_2_naming_the_field(tmp_path, capsys):
    (tmp_path / "job.yaml").write_text("cluster: {nodes: 1, gpus_per_node: 2}\n"
                                       "training: {collectives: {measured: nope.txt}}\n")
    code, out, err = run_main(capsys, "simulate", str(tmp_path / "job.yaml"))
    assert code == 2 and "nope.txt" in err and "no such file" in err


def test_compute_beside_a_measured_allreduce_is_slowed_by_the_backends_interference(tmp_path):
    fast = _run_text(beta=50e9)  # allreduces shorter than the backward they overlap: compute is the critical path
    plain = simulate(_scenario(tmp_path, fast, overlap=True, bucket_size_mib=25), with_baseline=False)
    data = _scenario(tmp_path, fast, overlap=True, bucket_size_mib=25).model_dump()
    data["training"]["collectives"]["compute_interference"] = 2.0
    slowed = simulate(Scenario.model_validate(data), with_baseline=False)
    assert "interference_s" not in plain.breakdown
    assert slowed.breakdown["interference_s"] > 0
    assert slowed.iteration_time_s > plain.iteration_time_s


def test_transformer_parallelism_refuses_a_measured_allreduce(tmp_path, capsys):
    (tmp_path / "run.txt").write_text(_run_text(world=32))
    code, out, err = run_main(capsys, "simulate", str(REPO_ROOT / "scenarios/llm_llama2_7b_32xa100.yaml"),
                              "--set", f"training.collectives.measured={tmp_path / 'run.txt'}")
    assert code == 2 and "collectives.measured" in err and "training.parallelism" in err


def test_zero_byte_rows_are_skipped_whatever_their_time():
    from simulator.nccl_tests import parse_nccl_tests

    lines = _run_text().splitlines()
    header = next(i for i, line in enumerate(lines) if "size" in line and "count" in line)
    lines.insert(header + 1, "           0            0 float sum -1       0.00 0.0 0.0 0")
    run = parse_nccl_tests("\n".join(lines), "all_reduce_perf.txt")
    assert 0 not in run.times_s and len(run.times_s) == len(SIZES)

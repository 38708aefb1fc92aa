"""Ranks sharing a CPU host, communication-compute interference, and version-1 profiles
(issue #15). Synthetic profiles with known numbers; no torch, no timing."""

from __future__ import annotations

import json
import math

import pytest
import simpy

from calibration.fit import refit
from simulator.calibrated import CPU_COMPUTE_INTERFERENCE, Overlap
from simulator.engine import build, simulate
from simulator.loading import load_scenario
from simulator.profile import (
    Interference,
    ThreadTimings,
    Timing,
    WholeModelSample,
    estimated_fields,
    load_profile,
)

from .calibration import synthetic

ONE_THREAD_SLOWER = 1.7  # the synthetic profile's 1-thread layers take 1.7x its 2-thread ones


def _one_thread_sweep(model: str = "alexnet", batches=(1, 2, 4, 8)) -> ThreadTimings:
    return synthetic.thread_sweep(ONE_THREAD_SLOWER, 0.005, model=model, batches=batches)


def _profile(tmp_path, *, sweep: bool = True, interference: Interference | None = None, name="p.json"):
    base = synthetic.profile()  # CPU, 2 cores, 2 torch threads
    model = base.models[0].model_copy(update={"threads": 2, "threads_sweep": [_one_thread_sweep()] if sweep else []})
    profile = base.model_copy(update={"models": [model], "interference": interference})
    path = tmp_path / name
    path.write_text(refit(profile).to_json())
    return path


def _scenario(path, ranks: int, batch: int = 4, **extra):
    data = {"calibration": str(path), "cluster": {"nodes": 1, "gpus_per_node": ranks},
            "workload": {"model": "alexnet", "batch_per_gpu": batch}, **extra}
    return load_scenario(data)


# -- threads per rank ------------------------------------------------------------------


def test_two_ranks_on_a_two_core_host_get_the_one_thread_layer_times(tmp_path):
    path = _profile(tmp_path)
    sim = build(_scenario(path, ranks=2))
    for i in range(len(sim.model.layers)):
        af, bf, ab, bb = synthetic.layer_params(i)
        assert sim.costs.forward_s[i] == pytest.approx(ONE_THREAD_SLOWER * (af + 4 * bf), rel=1e-9)
        assert sim.costs.backward_s[i] == pytest.approx(ONE_THREAD_SLOWER * (ab + 4 * bb), rel=1e-9)
    assert sim.costs.optimizer_s == pytest.approx(0.005)  # the optimizer step at 1 thread too
    assert sim.calibration.report["host_share"].startswith("2 rank(s) on 2 core(s): 1 torch thread(s) each")
    assert "measured at 1 thread(s) (2 processes timing at once)" in sim.calibration.report["host_share"]


def test_one_rank_gets_the_whole_host_and_the_main_timings(tmp_path):
    sim = build(_scenario(_profile(tmp_path), ranks=1))
    af, bf, _, _ = synthetic.layer_params(0)
    assert sim.costs.forward_s[0] == pytest.approx(af + 4 * bf, rel=1e-9)
    assert sim.costs.optimizer_s == pytest.approx(0.003)


def test_more_ranks_than_cores_time_share_them(tmp_path):
    sim = build(_scenario(_profile(tmp_path), ranks=4))  # 4 one-thread ranks on 2 cores: each gets half a core
    af, bf, _, _ = synthetic.layer_params(0)
    assert sim.costs.forward_s[0] == pytest.approx(2 * ONE_THREAD_SLOWER * (af + 4 * bf), rel=1e-9)
    assert "time-shared x2" in sim.calibration.report["host_share"]


def test_host_cores_of_the_scenario_set_the_share(tmp_path):
    # 2 ranks on a 4-core host: 2 threads each, the profile's main timings.
    sim = build(_scenario(_profile(tmp_path), ranks=2, cluster={"nodes": 1, "gpus_per_node": 2, "host_cores": 4}))
    af, bf, _, _ = synthetic.layer_params(0)
    assert sim.costs.forward_s[0] == pytest.approx(af + 4 * bf, rel=1e-9)


def test_an_unmeasured_thread_count_is_scaled_linearly_and_said_to_be_estimated(tmp_path):
    sim = build(_scenario(_profile(tmp_path, sweep=False), ranks=2))
    af, bf, _, _ = synthetic.layer_params(0)
    assert sim.costs.forward_s[0] == pytest.approx(2 * (af + 4 * bf), rel=1e-9)  # 2 threads -> 1: twice as long
    assert "estimated: not measured at 1 thread(s)" in sim.calibration.report["host_share"]
    assert "linear in threads" in sim.calibration.report["host_share"]


def test_whole_model_thread_scaling_replaces_linear_when_two_counts_were_measured(tmp_path):
    # Measured at 2 threads and at 1 (whole model 1.6x slower): 2 ranks on an 8-core host
    # want 4 threads, not measured: the 2-thread times x (2/4)^alpha, alpha = log 1.6 / log 2.
    base = synthetic.profile()
    whole2 = [WholeModelSample(batch=4, timing=Timing(times_s=[1.0]))]
    whole1 = [WholeModelSample(batch=4, timing=Timing(times_s=[1.6]))]
    sweep = _one_thread_sweep().model_copy(update={"whole_model": whole1})
    model = base.models[0].model_copy(update={"threads": 2, "whole_model": whole2, "threads_sweep": [sweep]})
    path = tmp_path / "scaling.json"
    path.write_text(refit(base.model_copy(update={"models": [model]})).to_json())
    sim = build(_scenario(path, ranks=2, cluster={"nodes": 1, "gpus_per_node": 2, "host_cores": 8}))
    alpha = math.log(1.6) / math.log(2)
    note = sim.calibration.report["host_share"]
    assert f"alpha {alpha:.2f}" in note and "estimated" in note
    factor = (2 / 4) ** alpha
    # The layer sum disagrees with the whole model: layers scaled to it as well.
    layers = sum(sum(synthetic.layer_params(i)[k] + 4 * synthetic.layer_params(i)[k + 1] for k in (0, 2))
                 for i in range(len(sim.model.layers)))
    total = float(sim.costs.forward_s.sum() + sim.costs.backward_s.sum())
    assert total == pytest.approx(factor * 1.0, rel=1e-9)  # the whole model (1.0 s), scaled to 4 threads
    assert "disagrees with the whole model" in sim.calibration.report["whole_model"]
    assert layers != pytest.approx(1.0, rel=0.05)


# -- interference ----------------------------------------------------------------------


def _run_overlap(f_compute: float, f_comm: float, comm: tuple[float, float], compute: tuple[float, float]):
    """A collective of comm[1] s starting at comm[0], a compute of compute[1] s starting
    at compute[0], on one device; returns (compute end, collective end)."""
    env = simpy.Environment()
    overlap = Overlap(env, 1, f_compute, f_comm)
    ends = {}

    def start(at, gen, key):
        yield env.timeout(at)
        yield from gen()
        ends[key] = env.now

    env.process(start(comm[0], lambda: overlap.communicate([0], comm[1]), "comm"))
    env.process(start(compute[0], lambda: overlap.compute(0, compute[1]), "compute"))
    env.run()
    return ends["compute"], ends["comm"]


@pytest.mark.parametrize("f", [1.0, 1.3, 2.0])
def test_a_layer_fully_overlapped_by_a_collective_is_stretched_by_f(f):
    compute_end, comm_end = _run_overlap(f, 1.0, comm=(0.0, 10.0), compute=(1.0, 2.0))
    assert compute_end == pytest.approx(1.0 + 2.0 * f, rel=1e-12)
    assert comm_end == pytest.approx(10.0, rel=1e-12)  # comm factor 1: the collective keeps its time


def test_a_partly_overlapped_layer_is_stretched_only_while_overlapped():
    # Collective 0-10 s; a 2 s layer from 9 s at f = 2: 1 s overlapped does 0.5 s of
    # work, the remaining 1.5 s run alone: it ends at 11.5 s.
    compute_end, _ = _run_overlap(2.0, 1.0, comm=(0.0, 10.0), compute=(9.0, 2.0))
    assert compute_end == pytest.approx(11.5, rel=1e-12)


def test_both_slow_down_while_they_overlap():
    # 4 s of compute and a 4 s collective from 0 s, each 2x slower beside the other: both
    # run at half speed all along and end at 8 s.
    compute_end, comm_end = _run_overlap(2.0, 2.0, comm=(0.0, 4.0), compute=(0.0, 4.0))
    assert compute_end == pytest.approx(8.0, rel=1e-12) and comm_end == pytest.approx(8.0, rel=1e-12)


def _interference(compute: float, comm: float) -> Interference:
    return Interference(backend="gloo", device_kind="cpu", threads=1, processes=2, work="synthetic", bytes=2**23,
                        compute_alone=Timing(times_s=[1.0]), compute_beside=Timing(times_s=[compute]),
                        comm_alone=Timing(times_s=[1.0]), comm_beside=Timing(times_s=[comm]))


def test_the_profile_s_interference_slows_a_two_rank_job_and_is_reported(tmp_path):
    fixed = {"variability": {"iteration_cv": 0}}
    none = simulate(_scenario(_profile(tmp_path, interference=_interference(1.0, 1.0), name="a.json"), 2, **fixed),
                    with_baseline=False)
    slow = simulate(_scenario(_profile(tmp_path, interference=_interference(1.5, 1.0), name="b.json"), 2, **fixed),
                    with_baseline=False)
    assert slow.iteration_time_s > none.iteration_time_s
    assert slow.extra["calibration"]["interference"].startswith("measured: compute x1.5")
    # Factor 1: exactly the model without interference (no Overlap at all).
    sim = build(_scenario(_profile(tmp_path, interference=_interference(1.0, 1.0), name="c.json"), 2, **fixed))
    assert sim.calibration.overlap is None


def test_gpu_profiles_without_a_measurement_get_no_interference(tmp_path):
    path = tmp_path / "gpu.json"
    path.write_text(refit(synthetic.profile(catalog_gpu="A100-SXM4-40GB")).to_json())
    scenario = load_scenario({"calibration": str(path), "cluster": {"gpu": "A100-SXM4-40GB", "gpus_per_node": 2},
                              "workload": {"model": "alexnet"}})
    sim = build(scenario)
    assert sim.calibration.overlap is None and sim.calibration.compute_interference == 1.0
    assert "host_share" not in sim.calibration.report  # GPUs: one device per rank, as before


# -- version-1 profiles ----------------------------------------------------------------


def test_a_version_1_profile_loads_and_says_what_is_estimated(tmp_path):
    data = json.loads(refit(synthetic.profile()).to_json())
    data["schema_version"] = 1
    for key in ("interference", "iteration_spread"):
        data.pop(key)
    for model in data["models"]:
        model.pop("threads"), model.pop("threads_sweep")
    data["provenance"].pop("load_average_start"), data["provenance"].pop("load_average_end")
    path = tmp_path / "v1.json"
    path.write_text(json.dumps(data))
    profile = load_profile(path)
    assert profile.schema_version == 1
    missing = " | ".join(estimated_fields(profile))
    for what in ("schema_version 1", "models.alexnet.threads_sweep", "interference", "iteration_spread",
                 "load_average_start"):
        assert what in missing
    report = build(_scenario(path, ranks=2)).calibration.report
    assert report["profile_estimated"] == estimated_fields(profile)
    assert report["interference"].startswith(f"default (not in the profile): compute x{CPU_COMPUTE_INTERFERENCE:g}")
    assert "estimated: not measured at 1 thread(s)" in report["host_share"]


def test_the_shipped_profile_still_loads():
    from tests.conftest import REPO_ROOT

    for path in (REPO_ROOT / "calibration" / "profiles").glob("*.json"):
        profile = load_profile(path)
        assert profile.schema_version in (1, 2, 3)
        if profile.schema_version == 1:
            assert estimated_fields(profile)

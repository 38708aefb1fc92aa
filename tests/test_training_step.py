"""Layers scaled to a training iteration measured as a job runs it (profile version 3):
the allocator's page faults of a fresh job process, DDP's bucket copies and the loss,
which the probe's per-layer and forward + backward timings leave out. Synthetic
profiles with known numbers; no torch, no timing."""

from __future__ import annotations

import json

import pytest

from calibration.fit import refit
from simulator.engine import build
from simulator.loading import load_scenario
from simulator.profile import (
    SCHEMA_VERSION,
    ThreadTimings,
    Timing,
    TrainingSteps,
    WholeModelSample,
    estimated_fields,
    load_profile,
)

from .calibration import synthetic

BATCHES = (1, 2, 4, 8)
MAIN_OPT, SWEEP_OPT = 0.003, 0.005  # the synthetic profile's optimizer steps (2 threads; 1 thread)


def _layer_sum(batch: int, factor: float = 1.0) -> float:
    return factor * sum(af + bf * batch + ab + bb * batch for af, bf, ab, bb in
                        (synthetic.layer_params(i) for i in range(len(synthetic.get_model("alexnet").layers))))


def _steps(ratio: dict[int, float], optimizer: float, *, threads: int, processes: int, factor: float = 1.0):
    """Iterations = ratio[batch] x layer sum + optimizer step."""
    return TrainingSteps(threads=threads, processes=processes, ddp=processes > 1, method="synthetic", samples=[
        WholeModelSample(batch=b, timing=Timing(times_s=[r * _layer_sum(b, factor) + optimizer] * 3))
        for b, r in ratio.items()])


def _sweep(factor: float = 1.7, steps: TrainingSteps | None = None) -> ThreadTimings:
    return synthetic.thread_sweep(factor, SWEEP_OPT, batches=BATCHES, steps=steps)


def _profile(tmp_path, *, main_steps=None, sweep_steps=None, name="p.json"):
    base = synthetic.profile()
    model = base.models[0].model_copy(update={"threads": 2, "threads_sweep": [_sweep(steps=sweep_steps)],
                                              "training_step": main_steps})
    path = tmp_path / name
    path.write_text(refit(base.model_copy(update={"models": [model]})).to_json())
    return path


def _sim(path, ranks: int, batch: int = 4, strategy: str = "ring_allreduce"):
    return build(load_scenario({"calibration": str(path), "cluster": {"nodes": 1, "gpus_per_node": ranks},
                                "workload": {"model": "alexnet", "batch_per_gpu": batch},
                                "training": {"strategy": strategy}}))


def _compute(sim) -> float:
    return float(sim.costs.forward_s.sum() + sim.costs.backward_s.sum())


def test_one_rank_layers_plus_optimizer_make_the_measured_iteration(tmp_path):
    # A fresh process's iteration is 1.2x the layer sum at every batch (page faults, loss).
    path = _profile(tmp_path, main_steps=_steps({b: 1.2 for b in BATCHES}, MAIN_OPT, threads=2, processes=1))
    sim = _sim(path, ranks=1)
    assert _compute(sim) == pytest.approx(1.2 * _layer_sum(4), rel=1e-9)
    assert sim.costs.optimizer_s == pytest.approx(MAIN_OPT)  # kept as measured
    assert _compute(sim) + sim.costs.optimizer_s == pytest.approx(1.2 * _layer_sum(4) + MAIN_OPT, rel=1e-9)
    assert sim.calibration.report["training_step_scale"] == pytest.approx(1.2)
    assert "1 fresh process(es) x 2 thread(s)" in sim.calibration.report["training_step"]


def test_every_layer_scales_by_the_same_factor(tmp_path):
    path = _profile(tmp_path, main_steps=_steps({b: 1.1 for b in BATCHES}, MAIN_OPT, threads=2, processes=1))
    plain, scaled = _sim(_profile(tmp_path, name="plain.json"), ranks=1), _sim(path, ranks=1)
    for i in range(len(scaled.model.layers)):
        assert scaled.costs.forward_s[i] == pytest.approx(1.1 * plain.costs.forward_s[i], rel=1e-9)
        assert scaled.costs.backward_s[i] == pytest.approx(1.1 * plain.costs.backward_s[i], rel=1e-9)


def test_the_ratio_is_interpolated_over_batch_and_held_outside(tmp_path):
    path = _profile(tmp_path, main_steps=_steps({2: 1.3, 8: 1.1}, MAIN_OPT, threads=2, processes=1))
    assert _compute(_sim(path, ranks=1, batch=4)) == pytest.approx((1.3 + (1.1 - 1.3) / 3) * _layer_sum(4), rel=1e-9)
    assert _compute(_sim(path, ranks=1, batch=1)) == pytest.approx(1.3 * _layer_sum(1), rel=1e-9)
    assert _compute(_sim(path, ranks=1, batch=16)) == pytest.approx(1.1 * _layer_sum(16), rel=1e-9)


def test_the_step_replaces_the_whole_model_correction_even_within_its_tolerance(tmp_path):
    # 3% over the layer sum: the whole-model check would leave it; the measured iteration does not.
    path = _profile(tmp_path, main_steps=_steps({b: 1.03 for b in BATCHES}, MAIN_OPT, threads=2, processes=1))
    assert _compute(_sim(path, ranks=1)) == pytest.approx(1.03 * _layer_sum(4), rel=1e-9)


def test_two_ranks_of_an_allreduce_job_get_the_ddp_iteration_at_their_thread_count(tmp_path):
    main = _steps({b: 1.5 for b in BATCHES}, MAIN_OPT, threads=2, processes=1)
    ddp = _steps({b: 1.25 for b in BATCHES}, SWEEP_OPT, threads=1, processes=2, factor=1.7)
    path = _profile(tmp_path, main_steps=main, sweep_steps=ddp)
    sim = _sim(path, ranks=2)
    assert _compute(sim) == pytest.approx(1.25 * _layer_sum(4, 1.7), rel=1e-9)
    assert sim.costs.optimizer_s == pytest.approx(SWEEP_OPT)
    assert "DDP with a no-op communication hook" in sim.calibration.report["training_step"]


def test_a_ddp_iteration_is_not_used_for_a_job_without_allreduce(tmp_path):
    ddp = _steps({b: 1.25 for b in BATCHES}, SWEEP_OPT, threads=1, processes=2, factor=1.7)
    sim = _sim(_profile(tmp_path, sweep_steps=ddp), ranks=2, strategy="parameter_server")
    assert _compute(sim) == pytest.approx(_layer_sum(4, 1.7), rel=1e-9)
    assert "training_step_scale" not in sim.calibration.report
    assert sim.calibration.report["training_step"].startswith("not used: the profile's iterations at this thread "
                                                              "count are DDP ones, the job is not")


def test_a_plain_iteration_is_not_used_for_several_ranks(tmp_path):
    # One-process (no DDP) iterations at the sweep's thread count do not describe a DDP rank.
    plain = _steps({b: 1.25 for b in BATCHES}, SWEEP_OPT, threads=1, processes=1, factor=1.7)
    sim = _sim(_profile(tmp_path, sweep_steps=plain), ranks=2)
    assert _compute(sim) == pytest.approx(_layer_sum(4, 1.7), rel=1e-9)


def test_a_profile_without_training_steps_says_so(tmp_path):
    path = _profile(tmp_path)
    profile = load_profile(path)
    assert profile.schema_version == SCHEMA_VERSION == 3
    assert any("models.alexnet.training_step" in line for line in estimated_fields(profile))
    sim = _sim(path, ranks=1)
    assert sim.calibration.report["training_step"].startswith("not measured")
    assert any("training_step" in line for line in sim.calibration.report["profile_estimated"])


def test_a_version_2_profile_loads_and_the_steps_round_trip(tmp_path):
    path = _profile(tmp_path, main_steps=_steps({2: 1.2}, MAIN_OPT, threads=2, processes=1))
    data = json.loads(path.read_text())
    assert data["models"][0]["training_step"]["samples"][0]["batch"] == 2
    data["schema_version"] = 2
    for model in data["models"]:
        model.pop("training_step")
        for sweep in model["threads_sweep"]:
            sweep.pop("training_step")
    old = tmp_path / "v2.json"
    old.write_text(json.dumps(data))
    profile = load_profile(old)
    assert profile.schema_version == 2 and profile.models[0].training_step is None
    missing = " | ".join(estimated_fields(profile))
    assert "schema_version 2: written before version 3" in missing and "training_step" in missing

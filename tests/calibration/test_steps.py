"""Training iterations in fresh processes (calibration.steps): what the probe plans and
how ranks' iterations are pooled. The real spawn runs in test_probe's quick probe; no
timing here."""

from __future__ import annotations

import dataclasses

import pytest

pytest.importorskip("torch")

import torch  # noqa: E402

from calibration import probe as probe_module  # noqa: E402
from calibration.steps import METHOD, StepPlan, pool_steps  # noqa: E402


def _probe(**overrides) -> probe_module.Probe:
    config = dataclasses.replace(probe_module.QUICK, models=["alexnet", "resnet18"], batches=[1, 2], device="cpu",
                                 **overrides)
    return probe_module.Probe(config, "test", show_progress=False)


def test_one_plain_process_at_the_main_threads_and_the_sweeps_processes_in_ddp_per_model():
    probe = _probe()
    sweeps = probe.sweep_plans(torchrun=False)
    plans = probe.step_plans(False, sweeps)
    configs = [(torch.get_num_threads(), 1)] + [(s.threads, s.processes) for s in sweeps]
    assert [(p.threads, p.processes) for p in plans] == [c for c in configs for _ in ("alexnet", "resnet18")]
    assert [p.model for p in plans] == ["alexnet", "resnet18"] * len(configs)
    assert not plans[0].ddp and all(p.ddp == (p.processes > 1) for p in plans)
    assert all(p.batches == (1, 2) and p.warmup >= 2 and p.repeats == probe_module.QUICK.repeats for p in plans)


def test_no_fresh_process_iterations_under_torchrun_or_when_switched_off():
    assert _probe().step_plans(True, []) == []
    assert _probe(training_steps=False).step_plans(False, []) == []


def test_every_ranks_iterations_are_pooled_per_batch_in_ascending_order():
    plan = StepPlan("alexnet", (2, 1), threads=1, processes=2)
    steps = pool_steps(plan, [(0, 1, [0.1, 0.2]), (1, 1, [0.3]), (0, 2, [0.5]), (1, 2, [0.7, 0.9])])
    assert steps.ddp and steps.processes == 2 and steps.threads == 1 and steps.method == METHOD
    assert [(s.batch, s.timing.times_s) for s in steps.samples] == [(1, [0.1, 0.2, 0.3]), (2, [0.5, 0.7, 0.9])]
    assert not pool_steps(StepPlan("alexnet", (1,), threads=2), [(0, 1, [0.1])]).ddp

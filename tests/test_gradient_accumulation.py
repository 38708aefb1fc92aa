"""``training.gradient_accumulation_steps``: each rank runs n micro-batches per iteration,
summing gradients, and synchronizes and steps the optimizer once: the first n-1
micro-batches add their forward and backward and nothing else."""

from __future__ import annotations

import pytest

from simulator import load_scenario, simulate
from simulator.build import build

from .test_bad_input import assert_one_error
from .test_cli import run_main

# Two single-GPU nodes, the ideal backend, no rank-to-rank variation and no compute slowed
# beside a collective: the micro-batches are the only difference the field makes.
TWO_NODES = ["cluster.nodes=2", "cluster.gpus_per_node=1", "cluster.server.pcie_switches=1",
             "cluster.server.gpus_per_switch=1", "training.collectives.backend=ideal",
             "variability.iteration_cv=0"]


def _passes(scenario) -> tuple[float, float]:
    """(forward + backward, optimizer step) seconds of one micro-batch."""
    costs = build(scenario).costs
    return float(costs.forward_s.sum() + costs.backward_s.sum()), float(costs.optimizer_s)


@pytest.mark.parametrize("steps", [2, 5])
def test_one_gpu_runs_every_micro_batch_and_one_optimizer_step(steps):
    one = load_scenario(None, ["cluster.nodes=1", "cluster.gpus_per_node=1", "cluster.server.pcie_switches=1",
                               "cluster.server.gpus_per_switch=1", f"training.gradient_accumulation_steps={steps}"])
    passes, optimizer = _passes(one)
    r = simulate(one)
    assert r.iteration_time_s == pytest.approx(steps * passes + optimizer, rel=1e-9)
    assert r.global_batch == steps * one.workload.batch_per_gpu
    assert r.throughput_samples_per_s == pytest.approx(steps * one.workload.batch_per_gpu / r.iteration_time_s,
                                                       rel=1e-12)
    assert r.breakdown["compute_s"] == pytest.approx(r.iteration_time_s, rel=1e-9)
    assert r.speedup == 1.0


@pytest.mark.parametrize("overlap", ["true", "false"])
def test_the_gradients_are_synchronized_once_per_iteration(overlap):
    base = [*TWO_NODES, f"training.overlap={overlap}"]
    plain = load_scenario(None, base)
    passes, _ = _passes(plain)
    once, four = simulate(plain), simulate(load_scenario(None, [*base, "training.gradient_accumulation_steps=4"]))
    # three more micro-batches of compute; the communication is the same one allreduce
    assert four.iteration_time_s - once.iteration_time_s == pytest.approx(3 * passes, rel=1e-9)
    assert four.breakdown["exposed_communication_s"] == pytest.approx(once.breakdown["exposed_communication_s"],
                                                                      rel=1e-9)
    assert four.breakdown["communication_s"] == pytest.approx(once.breakdown["communication_s"], rel=1e-9)
    assert four.breakdown["compute_s"] - once.breakdown["compute_s"] == pytest.approx(3 * passes, rel=1e-9)
    # the same bytes carry four times the samples: closer to linear scaling
    assert four.throughput_samples_per_s == pytest.approx(
        4 * plain.workload.batch_per_gpu * 2 / four.iteration_time_s, rel=1e-12)
    assert four.scaling_efficiency > once.scaling_efficiency


def test_the_timeline_shows_the_summed_micro_batches_before_the_last_forward():
    scenario = load_scenario(None, [*TWO_NODES, "training.gradient_accumulation_steps=3"])
    passes, _ = _passes(scenario)
    r = simulate(scenario, record_timeline=True)
    rank0 = r.extra["timeline"]["ranks"][0]["intervals"]
    accumulation = [i for i in rank0 if i["kind"] == "accumulation"]
    iterations = scenario.simulation.warmup_iterations + scenario.simulation.iterations
    assert len(accumulation) == iterations
    for interval in accumulation:
        assert interval["end"] - interval["start"] == pytest.approx(2 * passes, rel=1e-9)
        forward = next(i for i in rank0 if i["kind"] == "forward" and i["iteration"] == interval["iteration"])
        assert forward["start"] == interval["end"]
    plain = simulate(load_scenario(None, TWO_NODES), record_timeline=True)
    assert not [i for i in plain.extra["timeline"]["ranks"][0]["intervals"] if i["kind"] == "accumulation"]


def test_the_report_says_how_many_micro_batches_an_iteration_sums(capsys):
    code, out, _ = run_main(capsys, "simulate", "--set", "training.gradient_accumulation_steps=4")
    assert code == 0
    assert "x 4 accumulated" in out


@pytest.mark.parametrize("value, needle", [
    ("0", "gradient_accumulation_steps"),
    ("-2", "gradient_accumulation_steps"),
    ("5000", "gradient_accumulation_steps"),
    ("many", "gradient_accumulation_steps"),
])
def test_a_bad_step_count_exits_2_naming_the_field(capsys, value, needle):
    code, out, err = run_main(capsys, "simulate", "--set", f"training.gradient_accumulation_steps={value}")
    assert_one_error(code, out, err, needle)


def test_accumulation_with_transformer_parallelism_is_refused(capsys):
    code, out, err = run_main(capsys, "simulate", "scenarios/llm_llama2_7b_32xa100.yaml",
                              "--set", "training.gradient_accumulation_steps=4")
    assert_one_error(code, out, err, "parallelism.global_batch")


def test_advise_accumulation_finds_the_fewest_micro_batches_that_reach_the_target():
    from simulator.advise import advise_accumulation

    scenario = load_scenario(None, [*TWO_NODES, "cluster.nic.bandwidth_gbps=1"])
    answer = advise_accumulation(scenario, target_efficiency=0.9)
    passes, optimizer = _passes(scenario)
    assert answer.micro_batch_s == pytest.approx(passes, rel=1e-12)
    assert answer.slowdown == pytest.approx(1.0, rel=1e-9)  # no variability: nobody waits for a straggler
    n = answer.steps_closed_form
    assert n is not None and n > 1
    # the closed form: n x T + o >= 0.9 x (n x T + o + E), and not with n - 1
    e = answer.exposed_s
    assert (n * passes + optimizer) / (n * passes + optimizer + e) >= 0.9
    assert ((n - 1) * passes + optimizer) / ((n - 1) * passes + optimizer + e) < 0.9
    # ... agrees with the simulation
    assert answer.steps == n
    assert answer.simulated[n]["scaling_efficiency"] >= 0.9 > answer.simulated[n - 1]["scaling_efficiency"]
    assert answer.simulated[n]["global_batch"] == 2 * n * scenario.workload.batch_per_gpu


def test_advise_accumulation_says_when_stragglers_cap_the_efficiency(capsys):
    code, out, _ = run_main(capsys, "advise", "accumulation", "scenarios/ring_4x4_ib100.yaml",
                            "--target-efficiency", "0.99", "--set", "variability.iteration_cv=0.05")
    assert code == 0
    assert "no number of micro-batches reaches 0.99" in out


@pytest.mark.parametrize("overrides, needle", [
    (["cluster.nodes=1", "cluster.gpus_per_node=1", "cluster.server.pcie_switches=1",
      "cluster.server.gpus_per_switch=1"], "at least 2 GPUs"),
    (["training.gradient_accumulation_steps=0"], "gradient_accumulation_steps"),
])
def test_advise_accumulation_refuses_what_it_cannot_answer(capsys, overrides, needle):
    args = [a for o in overrides for a in ("--set", o)]
    code, out, err = run_main(capsys, "advise", "accumulation", "scenarios/ring_4x4_ib100.yaml", *args)
    assert_one_error(code, out, err, needle)


def test_advise_accumulation_counts_what_the_one_gpu_baseline_waits_for_under_parameter_servers():
    from simulator.advise import advise_accumulation

    # one GPU pushing to its servers waits too (E1 > 0): the closed form must use it
    scenario = load_scenario("scenarios/ps_4x4_10gbe.yaml", ["cluster.nodes=2", "cluster.nic.bandwidth_gbps=25"])
    answer = advise_accumulation(scenario, target_efficiency=0.7)
    assert answer.exposed_one_gpu_s > 0 and answer.optimizer_s == 0.0
    n = answer.steps_closed_form
    assert n is not None and answer.steps == n
    assert answer.simulated[n]["scaling_efficiency"] >= 0.7 > answer.simulated[n - 1]["scaling_efficiency"]

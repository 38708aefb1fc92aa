"""workload.input_copy: exposed - the batch copied from host memory to every GPU of a
node at once before forward, at the rate of the most shared link (closed forms)."""

from __future__ import annotations

import pytest

from simulator import load_scenario, simulate
from simulator.build import build
from simulator.catalog import pcie_link_for_gen
from simulator.errors import ScenarioError

from .conftest import REPO_ROOT
from .test_cli import run_main

PCIE3 = pcie_link_for_gen(3).bandwidth_bytes_per_s  # 126 Gb/s x 0.8: 12.6 GB/s
RESNET50_SAMPLE = 3 * 224 * 224 * 4  # one fp32 image
LATENCY_BOUND_S = 1e-4  # the routes' latencies: a few PCIe and socket-link hops


def node(gpus: int, *extra: str, switches: int = 1) -> list[str]:
    return ["cluster.nodes=1", f"cluster.gpus_per_node={gpus}", "cluster.gpu=V100-PCIe-16GB",
            f"cluster.server.pcie_switches={switches}", f"cluster.server.gpus_per_switch={gpus // switches}",
            "cluster.server.pcie_generation=3", "workload.model=resnet50", "workload.batch_per_gpu=64",
            "workload.input_copy=exposed", *extra]


def test_gpus_under_one_switch_share_its_uplink():
    # 4 GPUs under one switch: 4 batches cross the switch's link to the CPU.
    sim = build(load_scenario(None, node(4)))
    expected = 4 * 64 * RESNET50_SAMPLE / PCIE3
    assert expected < sim.input_copy_s < expected + LATENCY_BOUND_S
    # One GPU alone: its own link.
    one = build(load_scenario(None, node(1)))
    assert 64 * RESNET50_SAMPLE / PCIE3 < one.input_copy_s < 64 * RESNET50_SAMPLE / PCIE3 + LATENCY_BOUND_S


def test_the_other_sockets_gpus_are_bounded_by_the_socket_link():
    # 8 GPUs, 4 per switch, one switch per socket; the batch lives on socket 0: the other
    # socket's 4 copies cross the socket link at 3 GB/s, slower than 4 over a 12.6 GB/s uplink.
    args = node(8, "cluster.server.sockets=2", "cluster.server.qpi_bandwidth_gbytes_s=3", switches=2)
    expected = 4 * 64 * RESNET50_SAMPLE / 3e9
    assert expected < build(load_scenario(None, args)).input_copy_s < expected + LATENCY_BOUND_S


def test_the_copy_adds_its_time_to_every_iteration_and_its_own_breakdown_line():
    exposed = simulate(load_scenario(None, node(4)))
    hidden = simulate(load_scenario(None, node(4, "workload.input_copy=hidden")))
    copy = exposed.breakdown["input_copy_s"]
    assert copy == pytest.approx(4 * 64 * RESNET50_SAMPLE / PCIE3, abs=LATENCY_BOUND_S)
    assert exposed.iteration_time_s == pytest.approx(hidden.iteration_time_s + copy, rel=1e-9)
    parts = sum(v for k, v in exposed.breakdown.items() if k != "communication_s")
    assert parts == pytest.approx(exposed.iteration_time_s, rel=1e-9)
    assert "input_copy_s" not in hidden.breakdown


def test_a_measured_one_gpu_throughput_already_holds_one_copy():
    # The measured one-GPU step is compute + one GPU's copy: simulated alone, the job
    # still runs at the measured rate; on 4 GPUs under one switch it loses 3 more copies' time.
    measured = 200.0
    one = simulate(load_scenario(None, node(1, f"workload.measured_throughput_samples_per_s={measured}")))
    assert one.throughput_samples_per_s == pytest.approx(measured, rel=1e-9)
    four = simulate(load_scenario(None, node(4, "cluster.server.p2p=true",
                                             f"workload.measured_throughput_samples_per_s={measured}")))
    one_copy = 64 * RESNET50_SAMPLE / PCIE3
    assert four.breakdown["compute_s"] == pytest.approx(64 / measured - one_copy, abs=LATENCY_BOUND_S)
    assert four.breakdown["input_copy_s"] == pytest.approx(4 * one_copy, abs=LATENCY_BOUND_S)
    assert four.iteration_time_s >= 64 / measured + 3 * one_copy


def test_a_copy_longer_than_the_measured_step_is_refused():
    with pytest.raises(ScenarioError, match="workload.input_copy"):
        simulate(load_scenario(None, node(1, "workload.measured_throughput_samples_per_s=100000")))


def test_an_unknown_value_is_refused():
    with pytest.raises(ScenarioError, match="input_copy"):
        load_scenario(None, node(1, "workload.input_copy=sometimes"))


def test_fast_and_detailed_paths_agree():
    args = node(4, "cluster.nodes=2", "variability.iteration_cv=0")
    fast = simulate(load_scenario(None, args + ["simulation.mode=fast"]))
    detailed = simulate(load_scenario(None, args + ["simulation.mode=detailed"]))
    assert detailed.iteration_time_s == pytest.approx(fast.iteration_time_s, rel=1e-9)
    assert detailed.breakdown["input_copy_s"] == pytest.approx(fast.breakdown["input_copy_s"], rel=1e-12)


def test_scaling_loses_only_the_copies_beyond_one_gpus():
    # The one-GPU job copies its own batch too: the lost speedup books the 4-GPU node's
    # copy less one GPU's alone, and the causes still add up to the loss.
    result = simulate(load_scenario(None, node(4, "variability.iteration_cv=0")))
    one_copy = 64 * RESNET50_SAMPLE / PCIE3
    lost = result.attribution
    assert lost["seconds"]["input_copy"] == pytest.approx(3 * one_copy, abs=LATENCY_BOUND_S)
    assert sum(lost["speedup"].values()) == pytest.approx(lost["lost_speedup"], rel=1e-9)


def test_refused_with_transformer_parallelism_which_does_not_model_the_input(capsys):
    code, _out, err = run_main(capsys, "simulate", str(REPO_ROOT / "scenarios/llm_llama2_7b_32xa100.yaml"),
                               "--set", "workload.input_copy=exposed")
    assert code == 2 and "workload.input_copy" in err and "training.parallelism" in err

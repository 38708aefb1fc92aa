"""End-to-end simulation facts: speedup, monotonicity, determinism, fast = detailed."""

from __future__ import annotations

import pytest

from simulator import SimulationError, load_scenario, simulate
from simulator.sync import SYNC_STRATEGIES, Synchronizer

from .conftest import REPO_ROOT

SCENARIOS = REPO_ROOT / "scenarios"


def scenario(*overrides: str, base: str | None = None):
    return load_scenario(base, list(overrides))


def test_one_gpu_has_speedup_one_and_iteration_equals_its_compute():
    r = simulate(scenario("cluster.nodes=1", "cluster.gpus_per_node=1", "cluster.server.pcie_switches=1",
                          "cluster.server.gpus_per_switch=1"))
    assert r.speedup == 1.0 and r.scaling_efficiency == 1.0
    assert r.breakdown["exposed_communication_s"] == 0.0
    assert r.iteration_time_s == pytest.approx(r.breakdown["compute_s"], rel=1e-12)
    assert r.throughput_samples_per_s == pytest.approx(64 / r.iteration_time_s)


def test_breakdown_adds_up_to_the_iteration_time():
    r = simulate(load_scenario(SCENARIOS / "ps_4x4_10gbe.yaml"))
    b = r.breakdown
    assert b["compute_s"] + b["exposed_communication_s"] + b["idle_s"] == pytest.approx(r.iteration_time_s, rel=1e-9)


def test_no_overlap_exposes_the_whole_ring_allreduce():
    # 2 nodes x 1 GPU over 10 GbE: a ring of 2 moves S/2 twice... every bucket after
    # backward: exposed time = sum over buckets of 2(N-1)/N * S_b / B + latency terms.
    s = scenario("cluster.nodes=2", "cluster.gpus_per_node=1", "cluster.server.pcie_switches=1",
                 "cluster.server.gpus_per_switch=1", "training.overlap=false", "training.collectives.backend=ideal")
    r = simulate(s)
    grad_bytes = 25_557_032 * 4
    bandwidth = 10e9 * 1448 / 1538 / 8
    assert r.breakdown["exposed_communication_s"] == pytest.approx(grad_bytes / bandwidth, rel=0.01)
    overlapped = simulate(s.model_copy(update={"training": s.training.model_copy(update={"overlap": True})}))
    assert overlapped.iteration_time_s < r.iteration_time_s


@pytest.mark.parametrize("strategy", ["ring_allreduce", "parameter_server"])
def test_more_nic_bandwidth_never_slows_an_iteration(strategy):
    times = [
        simulate(scenario(f"cluster.nic.bandwidth_gbps={gbps}", f"training.strategy={strategy}",
                          "cluster.nodes=4", "workload.model=vgg16"), with_baseline=False).iteration_time_s
        for gbps in (1, 5, 10, 25, 40, 100, 200)
    ]
    # (equal within rounding once the network no longer limits)
    assert all(a >= b * (1 - 1e-12) for a, b in zip(times, times[1:])), times
    assert times[0] > 5 * times[-1]  # VGG-16 over 1 Gb/s is network bound


def test_more_parameter_servers_never_slow_a_ps_bound_iteration():
    base = SCENARIOS / "ps_4x4_10gbe.yaml"
    times = [
        simulate(load_scenario(base, [f"training.parameter_servers.count={k}"]), with_baseline=False).iteration_time_s
        for k in (1, 2, 4, 8, 16)
    ]
    assert all(a >= b for a, b in zip(times, times[1:])), times
    assert times[0] > 2 * times[-1]


def test_single_ps_incast_time_is_bounded_by_its_nic():
    # 16 workers x VGG-16 gradient (553 MB) into ONE dedicated server on 10 GbE, no
    # overlap: the pushes of all tensors share the server's NIC (16 x 553 MB in), and
    # each tensor is pulled back once its pushes are in. The largest (fc6, 102.8 M
    # parameters) finishes its push last, so the sync takes at least all pushes plus
    # fc6's pull, and at most all pushes, all pulls and all aggregation in sequence.
    r = simulate(load_scenario(SCENARIOS / "ps_4x4_10gbe.yaml",
                               ["training.parameter_servers.count=1", "training.overlap=false"]))
    nic = 10e9 * 1448 / 1538 / 8
    push = 16 * 138_357_544 * 4 / nic
    fc6_pull = 16 * (25088 * 4096 + 4096) * 4 / nic
    aggregation = 16 * 138_357_544 * 4 / 20e9
    assert push + fc6_pull <= r.breakdown["exposed_communication_s"] <= 2 * push + aggregation
    assert r.bottleneck.resource in {"switch0->ps0.nic0", "ps0.nic0->switch0"}
    # Each direction of the server's NIC carries 16 x 553 MB once per iteration.
    assert r.bottleneck.utilization == pytest.approx(push / r.iteration_time_s, rel=1e-6)


@pytest.mark.parametrize("name", ["pcie_8gpu_server.yaml", "ps_4x4_10gbe.yaml", "ring_4x4_ib100.yaml"])
def test_fast_and_detailed_paths_agree(name):
    # Noise-free: the fast path takes the expected slowest of N draws, the detailed path draws.
    fast = simulate(load_scenario(SCENARIOS / name, ["simulation.mode=fast", "variability.iteration_cv=0"]), with_baseline=False)
    detailed = simulate(load_scenario(SCENARIOS / name, ["simulation.mode=detailed", "variability.iteration_cv=0"]), with_baseline=False)
    assert fast.iteration_time_s == pytest.approx(detailed.iteration_time_s, rel=1e-6)
    assert fast.bottleneck.utilization == pytest.approx(detailed.bottleneck.utilization, rel=1e-6)
    assert detailed.flows > 10 * fast.flows


def test_same_scenario_and_seed_give_byte_identical_json():
    a = simulate(load_scenario(SCENARIOS / "ps_4x4_10gbe.yaml")).to_json()
    b = simulate(load_scenario(SCENARIOS / "ps_4x4_10gbe.yaml")).to_json()
    assert a == b


def test_hierarchy_of_speed_over_fabrics():
    # Same 4x4 VGG-16 job: IB EDR ring > 10 GbE ring > 10 GbE with one PS.
    ib = simulate(load_scenario(SCENARIOS / "ring_4x4_ib100.yaml"), with_baseline=False)
    eth = simulate(load_scenario(SCENARIOS / "ring_4x4_ib100.yaml", ["cluster.nic.link=10GbE"]), with_baseline=False)
    ps1 = simulate(load_scenario(SCENARIOS / "ps_4x4_10gbe.yaml", ["training.parameter_servers.count=1"]),
                   with_baseline=False)
    assert ib.throughput_samples_per_s > eth.throughput_samples_per_s > ps1.throughput_samples_per_s


def test_work_left_waiting_is_an_error_naming_what_is_stuck(monkeypatch):
    class NeverDone(Synchronizer):
        def ready(self, rank, key, nbytes):
            return self.env.event()  # nobody will ever trigger it

    monkeypatch.setitem(SYNC_STRATEGIES, "ring_allreduce", NeverDone)
    with pytest.raises(SimulationError, match=r"rank 0 \(n0.gpu0\) waiting for gradient synchronization of iteration 0"):
        simulate(scenario(), with_baseline=False)


def test_horovod_cycle_after_backward_is_exposed_as_latency():
    # A 1 s cycle is longer than the whole backward pass: every gradient waits for the
    # first tick (1 s after backward starts), then goes in 64 MiB buffers.
    base = ["cluster.nodes=2", "cluster.gpus_per_node=1", "cluster.server.pcie_switches=null",
            "cluster.server.gpus_per_switch=null", "cluster.nic.link=IB-EDR", "variability.iteration_cv=0", "training.fusion=horovod"]
    slow_cycle = simulate(load_scenario(None, base + ["training.fusion_cycle_ms=1000"]))
    fast_cycle = simulate(load_scenario(None, base + ["training.fusion_cycle_ms=0.1"]))
    ddp = simulate(load_scenario(None, base[:-1]))
    sim_backward = slow_cycle.breakdown["compute_s"]  # upper bound of the backward pass
    b = slow_cycle.breakdown
    assert b["compute_s"] + b["exposed_communication_s"] + b["idle_s"] == pytest.approx(slow_cycle.iteration_time_s)
    assert slow_cycle.iteration_time_s > 1.0  # forward + the 1 s tick + allreduce
    assert slow_cycle.attribution["seconds"]["latency"] > 1.0 - sim_backward
    assert b["idle_s"] == pytest.approx(0.0, abs=1e-9)
    # With a short cycle fusion overlaps backward about as well as DDP buckets.
    assert fast_cycle.iteration_time_s == pytest.approx(ddp.iteration_time_s, rel=0.05)

"""The host issuing kernels as a bound of its own (simulator.host_dispatch): closed forms."""

from __future__ import annotations

import numpy as np
import pytest

from simulator import load_scenario
from simulator.catalog import get_gpu
from simulator.compute import ComputeCosts, roofline_costs
from simulator.engine import build
from simulator.errors import ScenarioError
from simulator.host_dispatch import kernel_counts, pipelined
from simulator.zoo import get_model

OVERHEAD_S = 20e-6


def _costs(batch: int, host_dispatch_s: float = 0.0, model: str = "resnet50") -> ComputeCosts:
    return roofline_costs(get_model(model), get_gpu("V100-SXM2-16GB"), precision="fp32", batch=batch,
                          compute_efficiency=0.75, memory_efficiency=0.8, layer_overhead_s=OVERHEAD_S,
                          optimizer="momentum", optimizer_kernels="per_tensor", host_dispatch_s=host_dispatch_s)


def test_three_layers_by_hand():
    # layer 0: 2 kernels, 10 us on the GPU; layer 1: fused, 5 us, no kernel; layer 2: 1 kernel, 100 us
    costs = (np.array([10e-6, 5e-6, 100e-6]), np.zeros(3), 0.0)
    counts = (np.array([2.0, 0.0, 1.0]), np.zeros(3), 0)
    forward, backward, optimizer = pipelined(costs, counts, host_dispatch_s=30e-6)
    # layer 0 ends when its second kernel (issued at 60 us) has run its 5 us: 65 us;
    # layer 1 runs on the GPU at once: 70 us; layer 2 is issued at 90 us, ends at 190 us
    assert forward == pytest.approx([65e-6, 5e-6, 120e-6])
    assert forward.sum() + backward.sum() + optimizer == pytest.approx(190e-6)


def test_no_host_bound_leaves_the_costs_unchanged():
    shipped = _costs(32)
    assert _costs(32, host_dispatch_s=0.0).forward_s.tolist() == shipped.forward_s.tolist()
    # a host that issues kernels faster than the GPU's per-kernel overhead binds only while
    # the first kernel is being issued
    fast_host = _costs(32, host_dispatch_s=OVERHEAD_S / 2)
    assert fast_host.forward_s[0] == pytest.approx(shipped.forward_s[0] + OVERHEAD_S / 2, rel=1e-12)
    assert fast_host.forward_s[1:] == pytest.approx(shipped.forward_s[1:], rel=1e-12)
    assert fast_host.backward_s == pytest.approx(shipped.backward_s, rel=1e-12)
    assert fast_host.optimizer_s == pytest.approx(shipped.optimizer_s, rel=1e-12)


def test_a_slow_host_sets_the_pace():
    """With the host far behind, an iteration takes every kernel's issue time plus the
    last one's own run (the optimizer step's last update)."""
    host = 5e-3
    shipped = _costs(1)
    one_us_more = roofline_costs(get_model("resnet50"), get_gpu("V100-SXM2-16GB"), precision="fp32", batch=1,
                                 compute_efficiency=0.75, memory_efficiency=0.8,
                                 layer_overhead_s=OVERHEAD_S + 1e-6, optimizer="momentum",
                                 optimizer_kernels="per_tensor")
    forward_k, backward_k, optimizer_k = kernel_counts(
        (shipped.forward_s, shipped.backward_s, shipped.optimizer_s),
        (one_us_more.forward_s, one_us_more.backward_s, one_us_more.optimizer_s))
    kernels = forward_k.sum() + backward_k.sum() + optimizer_k
    assert optimizer_k == 161  # ResNet-50's parameter tensors, one update each
    slow = _costs(1, host_dispatch_s=host)
    assert slow.total_s == pytest.approx(kernels * host + shipped.optimizer_s / optimizer_k, rel=1e-9)
    assert (slow.forward_s >= shipped.forward_s - 1e-15).all()


def test_small_batches_become_latency_bound_large_ones_stay_throughput_bound():
    host = 50e-6
    small_shipped, small = _costs(1), _costs(1, host_dispatch_s=host)
    large_shipped, large = _costs(128), _costs(128, host_dispatch_s=host)
    assert small.total_s > 1.5 * small_shipped.total_s
    assert large.total_s == pytest.approx(large_shipped.total_s, rel=1e-3)


def test_the_scenario_field_reaches_the_costs_and_bad_values_exit_with_the_field():
    def scenario(**workload):
        return load_scenario({"name": "x", "cluster": {"nodes": 1, "gpus_per_node": 1, "gpu": "V100-SXM2-16GB"},
                              "workload": {"model": "resnet50", "batch_per_gpu": 2, **workload},
                              "simulation": {"iterations": 1, "warmup_iterations": 0}})
    assert build(scenario(host_dispatch_us=100.0)).costs.total_s > build(scenario()).costs.total_s
    with pytest.raises(ScenarioError, match="workload.host_dispatch_us"):
        scenario(host_dispatch_us=-1.0)


def test_an_engine_that_waits_after_every_layer_adds_host_and_gpu():
    # one kernel per layer, the host waiting for the GPU after each: every layer costs issue + run
    costs = (np.array([10e-6, 200e-6, 40e-6]), np.array([30e-6, 60e-6, 0.0]), 0.0)
    counts = (np.ones(3), np.array([1.0, 1.0, 0.0]), 0)
    forward, backward, optimizer = pipelined(costs, counts, host_dispatch_s=50e-6, sync_layers=1)
    assert forward == pytest.approx([60e-6, 250e-6, 90e-6])
    assert backward == pytest.approx([80e-6, 110e-6, 0.0])
    # without the waits the host runs ahead: the 200 us layer starts at its issue, 100 us, and
    # the GPU's own times follow
    free = pipelined(costs, counts, host_dispatch_s=50e-6)
    assert free[0].sum() + free[1].sum() == pytest.approx(100e-6 + 200e-6 + 40e-6 + 60e-6 + 30e-6)


def test_waiting_every_second_layer_lets_the_host_run_ahead_within_a_segment():
    costs = (np.array([100e-6, 100e-6, 100e-6, 100e-6]), np.zeros(4), 0.0)
    counts = (np.ones(4), np.zeros(4), 0)
    forward, _, _ = pipelined(costs, counts, host_dispatch_s=30e-6, sync_layers=2)
    # segment 1: issues at 30 and 60 us, GPU ends at 130 and 230 us; the host waits until 230,
    # segment 2 issues at 260 and 290 us: ends at 360 and 460 us
    assert np.cumsum(forward) == pytest.approx([130e-6, 230e-6, 360e-6, 460e-6])


def test_the_waiting_engines_optimizer_updates_each_cost_issue_plus_run():
    costs = (np.array([100e-6]), np.zeros(1), 161 * 4e-6)
    counts = (np.ones(1), np.zeros(1), 161)
    _, _, optimizer = pipelined(costs, counts, host_dispatch_s=50e-6, sync_layers=15)
    assert optimizer == pytest.approx(161 * (50e-6 + 4e-6))
    _, _, free = pipelined(costs, counts, host_dispatch_s=50e-6)
    # without the waits the host, which issued the one layer at 50 us, issues the 161 updates
    # back to back: the last at 50 + 161 x 50 us, then the last update runs its 4 us
    assert 150e-6 + free == pytest.approx(50e-6 + 161 * 50e-6 + 4e-6)


def test_host_sync_layers_reaches_the_costs_and_zero_changes_nothing():
    def scenario(**workload):
        return load_scenario({"name": "x", "cluster": {"nodes": 1, "gpus_per_node": 1, "gpu": "V100-SXM2-16GB"},
                              "workload": {"model": "resnet50", "batch_per_gpu": 1, **workload},
                              "simulation": {"iterations": 1, "warmup_iterations": 0}})
    free, every, bulk = (build(scenario(host_sync_layers=n)).costs.total_s for n in (0, 1, 15))
    assert build(scenario()).costs.total_s == free
    assert free < bulk < every
    with pytest.raises(ScenarioError, match="workload.host_sync_layers"):
        scenario(host_sync_layers=-1)

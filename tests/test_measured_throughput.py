"""workload.measured_throughput_samples_per_s: compute scaled where costs are made."""

import numpy as np
import pytest

from simulator import load_scenario, simulate
from simulator.engine import build
from simulator.errors import ScenarioError


def scenario(**workload):
    data = {
        "cluster": {"nodes": 1, "gpus_per_node": 4, "gpu": "V100-SXM2-16GB", "server": {"layout": "nvswitch"}},
        "workload": {"model": "resnet50", "batch_per_gpu": 64, **workload},
        "simulation": {"iterations": 2, "warmup_iterations": 1},
    }
    return load_scenario(data)


def test_one_gpu_reproduces_the_measured_throughput_exactly():
    result = simulate(scenario(measured_throughput_samples_per_s=400.0).single_gpu())
    assert result.throughput_samples_per_s == pytest.approx(400.0, rel=1e-9)


def test_bucket_launch_times_come_from_the_scaled_costs():
    # Fails when costs are scaled after the build: the buckets would keep the
    # unscaled launch offsets (here the roofline is ~2.5x faster than 100 samples/s).
    sim = build(scenario(measured_throughput_samples_per_s=100.0))
    backward = float(np.sum(sim.costs.backward_s))
    assert sim.costs.total_s == pytest.approx(64 / 100.0, rel=1e-9)
    assert sim.buckets[-1][0] == pytest.approx(backward, rel=1e-9)
    assert all(0 < offset <= backward * (1 + 1e-12) for offset, _ in sim.buckets)


def test_slower_measured_compute_hides_more_communication():
    # Same cluster; compute 4x slower than the roofline leaves the NVSwitch allreduce
    # fully hidden behind backward except its last bucket, so efficiency rises.
    fast = simulate(scenario())
    roofline_thr = simulate(scenario().single_gpu()).throughput_samples_per_s
    slow = simulate(scenario(measured_throughput_samples_per_s=roofline_thr / 4))
    assert slow.scaling_efficiency > fast.scaling_efficiency
    assert slow.scaling_efficiency <= 1.0 + 1e-9


@pytest.mark.parametrize("bad", [0, -1, float("inf"), float("nan")])
def test_bad_measured_throughput_is_refused(bad):
    with pytest.raises(ScenarioError, match="measured_throughput_samples_per_s"):
        scenario(measured_throughput_samples_per_s=bad)


def test_measured_at_another_batch_carries_the_roofline_batch_ratio():
    # Strong scaling: one GPU measured at batch 128, the job runs 64 per GPU. The level comes
    # from the measurement, the ratio between the two batches from the roofline model.
    from simulator.engine import rank_compute_costs

    roofline_64 = rank_compute_costs(scenario())[0].total_s
    roofline_128 = rank_compute_costs(scenario(batch_per_gpu=128))[0].total_s
    measured = scenario(measured_throughput_samples_per_s=300.0, measured_throughput_batch=128)
    expected = (128 / 300.0) * roofline_64 / roofline_128
    assert build(measured).costs.total_s == pytest.approx(expected, rel=1e-9)
    # a GPU fills less at the smaller batch: fewer samples per second than measured at 128
    assert 64 / expected < 300.0


def test_measured_batch_equal_to_the_batch_changes_nothing():
    plain = build(scenario(measured_throughput_samples_per_s=300.0)).costs
    same = build(scenario(measured_throughput_samples_per_s=300.0, measured_throughput_batch=64)).costs
    assert same.total_s == plain.total_s
    assert np.array_equal(same.backward_s, plain.backward_s)


def test_measured_batch_without_a_measured_throughput_is_refused():
    with pytest.raises(ScenarioError, match="measured_throughput_batch"):
        scenario(measured_throughput_batch=128)


@pytest.mark.parametrize("bad", [0, -3, 2.5, 2**21])
def test_bad_measured_batch_is_refused(bad):
    with pytest.raises(ScenarioError, match="measured_throughput_batch"):
        scenario(measured_throughput_samples_per_s=300.0, measured_throughput_batch=bad)

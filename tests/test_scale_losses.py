"""Losses that grow with scale: waiting for the slowest of N (closed form on the fast
path) and the host CPU input pipeline."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simulator import load_scenario, simulate
from simulator.scale import expected_max_standard_normal, slowest_of


def test_expected_max_of_two_normals_is_one_over_root_pi():
    assert expected_max_standard_normal(1) == 0.0
    assert expected_max_standard_normal(2) == pytest.approx(1 / math.sqrt(math.pi), rel=1e-9)


@pytest.mark.parametrize("n, draws", [(2, 400_000), (8, 200_000), (64, 40_000), (1024, 4_000)])
def test_fast_path_factor_matches_monte_carlo(n, draws):
    cv = 0.1
    rng = np.random.default_rng(1234)
    maxima = np.concatenate([
        (1 + cv * rng.standard_normal((min(draws, 10_000), n))).max(axis=1) for _ in range(max(draws // 10_000, 1))
    ])
    # The factor's excess over 1 (cv E[max Z]) is what the closed form computes: compare that.
    assert slowest_of(n, cv) - 1 == pytest.approx(maxima.mean() - 1, rel=0.01)


RING_8 = ["cluster.nodes=2", "cluster.gpus_per_node=4", "cluster.nic.link=IB-EDR", "workload.model=resnet50",
          "variability.iteration_cv=0.08"]


def test_fast_and_detailed_agree_on_the_slowest_of_n():
    fast = simulate(load_scenario(None, RING_8 + ["simulation.mode=fast", "simulation.iterations=3"]))
    detailed = simulate(load_scenario(None, RING_8 + ["simulation.mode=detailed", "simulation.iterations=40"]))
    assert fast.iteration_time_s == pytest.approx(detailed.iteration_time_s, rel=0.03)
    # The representative rank books its own compute; the rest is waiting for the slowest.
    calm = simulate(load_scenario(None, RING_8 + ["variability.iteration_cv=0"]))
    assert fast.breakdown["compute_s"] == pytest.approx(calm.breakdown["compute_s"], rel=1e-12)
    parts = sum(v for k, v in fast.breakdown.items() if k != "communication_s")  # (in flight, overlapped or not)
    assert parts == pytest.approx(fast.iteration_time_s, rel=1e-9)


def test_compute_bound_iteration_grows_by_the_expected_maximum():
    # One 8-GPU node with NVLink-fast links: communication is hidden, so the iteration
    # is the slowest rank's compute: (1 + cv E[max of 8]) x the one-GPU iteration.
    args = ["cluster.nodes=1", "cluster.gpus_per_node=8", "cluster.server={layout: dgx1}",
            "cluster.gpu=V100-SXM2-16GB", "workload.model=resnet50", "workload.batch_per_gpu=64"]
    calm = simulate(load_scenario(None, args + ["variability.iteration_cv=0"]))
    noisy = simulate(load_scenario(None, args + ["variability.iteration_cv=0.05"]))
    one = 64 / calm.throughput_samples_per_s * calm.speedup  # the one-GPU iteration
    assert calm.iteration_time_s == pytest.approx(one, rel=0.01)
    assert noisy.iteration_time_s == pytest.approx(calm.iteration_time_s * (1 + 0.05 * 1.4236003), rel=0.01)


def real_data(*extra):
    return load_scenario(None, [
        "cluster.nodes=2", "cluster.gpus_per_node=2", "cluster.server.pcie_switches=1",
        "cluster.server.gpus_per_switch=2", "cluster.nic.link=IB-EDR", "workload.model=resnet50",
        "workload.batch_per_gpu=32", "workload.data=real", "workload.input_ms_per_sample=10",
        "cluster.host_cores=4", *extra])


def test_input_pipeline_bounds_throughput_per_node():
    # 4 cores / 10 ms per sample = 400 samples/s per node, whatever the GPUs could do.
    fast_gpus = simulate(real_data("workload.measured_throughput_samples_per_s=100000"))
    assert fast_gpus.throughput_samples_per_s <= 2 * 400 * (1 + 1e-9)
    assert fast_gpus.throughput_samples_per_s == pytest.approx(2 * 400, rel=0.01)
    b = fast_gpus.breakdown
    parts = sum(v for k, v in b.items() if k != "communication_s")  # input wait and interference included
    assert parts == pytest.approx(fast_gpus.iteration_time_s, rel=1e-9)
    # Slow GPUs (100 samples/s each, 200 per node < 400) never wait for their input.
    slow_gpus = simulate(real_data("workload.measured_throughput_samples_per_s=100"))
    synthetic = simulate(real_data("workload.measured_throughput_samples_per_s=100", "workload.data=synthetic"))
    assert slow_gpus.iteration_time_s == pytest.approx(synthetic.iteration_time_s, rel=1e-9)


def test_colocated_servers_take_cores_from_the_input_pipeline():
    # A colocated server on each node takes 2 of its 4 cores: 2 / 10 ms = 200 samples/s per node.
    s = real_data("workload.measured_throughput_samples_per_s=100000", "training.strategy=parameter_server",
                  "training.parameter_servers.placement=colocated", "training.parameter_servers.count=2",
                  "training.parameter_servers.cores=2")
    assert simulate(s).throughput_samples_per_s == pytest.approx(2 * 200, rel=0.01)


def test_synthetic_data_has_no_input_wait_in_its_breakdown():
    assert "input_wait_s" not in simulate(load_scenario(None)).breakdown

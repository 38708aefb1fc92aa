"""Differences between ranks: speed factors, jitter, stragglers, replications."""

from __future__ import annotations

import pytest

from simulator import ScenarioError, load_scenario, simulate

RING_4 = ["cluster.nodes=1", "cluster.gpus_per_node=4", "cluster.server.pcie_switches=1",
          "cluster.server.gpus_per_switch=4", "simulation.iterations=4",
          "variability.iteration_cv=0"]  # noise-free: one slow GPU alone


def test_variability_switches_auto_to_the_detailed_path():
    s = load_scenario(None, RING_4 + ["variability.jitter.distribution=normal", "variability.jitter.cv=0.05"])
    assert s.detailed and simulate(s, with_baseline=False).mode == "detailed"
    with pytest.raises(ScenarioError, match="simulation.mode: fast follows one representative rank"):
        load_scenario(None, RING_4 + ["variability.stragglers.probability=0.1", "simulation.mode=fast"])
    with pytest.raises(ScenarioError, match="rank 9 does not exist"):
        load_scenario(None, RING_4 + ["variability.gpu_speed_factors={9: 0.5}"])


def test_a_half_speed_gpu_makes_every_rank_wait_for_it():
    nominal = simulate(load_scenario(None, RING_4), with_baseline=False)
    slow = simulate(load_scenario(None, RING_4 + ["variability.gpu_speed_factors={3: 0.5}"]), with_baseline=False)
    compute = nominal.breakdown["compute_s"]
    # Rank 3 computes for 2x as long; the ring cannot finish before it does.
    assert slow.iteration_time_s >= 2 * compute
    assert slow.iteration_time_s == pytest.approx(2 * compute + (nominal.iteration_time_s - compute), rel=0.05)
    # Rank 0 computes as before and spends the difference waiting.
    assert slow.breakdown["compute_s"] == pytest.approx(compute, rel=1e-9)
    waited = slow.breakdown["idle_s"] + slow.breakdown["exposed_communication_s"]
    slowed = slow.breakdown.get("interference_s", 0.0)  # compute slowed beside the collectives
    copies = slow.breakdown.get("bucket_copy_s", 0.0)  # the GPU copying gradient buckets
    assert waited == pytest.approx(slow.iteration_time_s - compute - slowed - copies, rel=1e-9)
    assert slow.breakdown["idle_s"] > 0.5 * compute


def test_stragglers_cost_data_parallel_more_than_one_gpu():
    base = ["cluster.nodes=4", "cluster.gpus_per_node=4", "cluster.nic.link=IB-EDR", "simulation.iterations=10"]
    calm = simulate(load_scenario(None, base))
    noisy = simulate(load_scenario(None, base + ["variability.stragglers.probability=0.2",
                                                 "variability.stragglers.slowdown=2"]))
    # One GPU straggles in 20% of iterations (mean factor 1.2); 16 GPUs almost always
    # wait for one (1 - 0.8^16 = 97% of iterations): efficiency falls by about 2/1.2.
    assert noisy.scaling_efficiency < calm.scaling_efficiency * 0.75


def test_replications_reproduce_exactly_with_the_same_seed():
    args = RING_4 + ["variability.jitter.distribution=lognormal", "variability.jitter.cv=0.1",
                     "simulation.replications=4", "simulation.seed=7"]
    a, b = simulate(load_scenario(None, args)), simulate(load_scenario(None, args))
    assert a.to_json() == b.to_json()
    other = simulate(load_scenario(None, args[:-1] + ["simulation.seed=8"]))
    assert other.iteration_time_s != a.iteration_time_s


def test_spread_shrinks_as_jitter_goes_to_zero():
    spreads = []
    for cv in (0.2, 0.05, 0.01, 0.0):
        r = simulate(load_scenario(None, RING_4 + ["variability.jitter.distribution=normal",
                                                   f"variability.jitter.cv={cv}", "simulation.replications=5"]),
                     with_baseline=False)
        stats = r.replications["iteration_time_s"]
        assert stats["n"] == 5 and stats["ci95_low"] <= stats["mean"] <= stats["ci95_high"]
        spreads.append(stats["std"])
    assert spreads[0] > spreads[1] > spreads[2] > spreads[3] == 0.0

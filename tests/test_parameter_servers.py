"""Parameter-server options: sharding, local aggregation, sync modes."""

from __future__ import annotations

import pytest

from simulator import load_scenario, simulate
from simulator.engine import build, run
from simulator.sharding import shard_assignment

from .conftest import REPO_ROOT

PS = REPO_ROOT / "scenarios" / "ps_4x4_10gbe.yaml"


def test_shard_assignment_policies():
    sizes = [10.0, 400.0, 20.0, 30.0, 40.0]
    assert shard_assignment(sizes, 2, "even")[1] == [(0, 0.5), (1, 0.5)]
    assert [s[0][0] for s in shard_assignment(sizes, 2, "round_robin")] == [0, 1, 0, 1, 0]
    # Largest first onto the least loaded: 400 -> 0, 40 -> 1, 30 -> 1, 20 -> 1, 10 -> 1.
    assert [s[0][0] for s in shard_assignment(sizes, 2, "size_balanced")] == [1, 0, 1, 1, 1]


def test_size_balanced_beats_round_robin_on_vgg16():
    # VGG-16's fc6 holds 74% of its parameters; round robin puts more next to it.
    times = {
        policy: simulate(load_scenario(PS, [f"training.parameter_servers.sharding={policy}"]),
                         with_baseline=False).iteration_time_s
        for policy in ("round_robin", "size_balanced", "even")
    }
    assert times["size_balanced"] < times["round_robin"]
    assert times["even"] < times["size_balanced"]


@pytest.mark.parametrize("option", ["training.parameter_servers.sharding=round_robin",
                                    "training.parameter_servers.sharding=size_balanced",
                                    "training.parameter_servers.local_aggregation=true"])
def test_fast_and_detailed_agree(option):
    fast = simulate(load_scenario(PS, [option, "simulation.mode=fast", "variability.iteration_cv=0"]),
                    with_baseline=False)
    detailed = simulate(load_scenario(PS, [option, "simulation.mode=detailed", "variability.iteration_cv=0"]),
                        with_baseline=False)
    assert fast.iteration_time_s == pytest.approx(detailed.iteration_time_s, rel=1e-6)


def bytes_out_of_node0(overrides):
    sim = build(load_scenario(PS, overrides + ["simulation.iterations=1", "simulation.warmup_iterations=0"]))
    run(sim)
    return sim.network.edge_bytes()[sim.network.edge_index[("n0.nic0", "switch0")]]


def test_local_aggregation_sends_one_copy_per_node():
    gradient = 138_357_544 * 4
    assert bytes_out_of_node0([]) == pytest.approx(4 * gradient, rel=1e-9)
    local = bytes_out_of_node0(["training.parameter_servers.local_aggregation=true"])
    assert local == pytest.approx(gradient, rel=1e-9)


def test_asynchronous_workers_do_not_wait_for_a_slow_one():
    base = ["variability.gpu_speed_factors={3: 0.5}", "variability.iteration_cv=0", "simulation.iterations=8",
            "workload.model=resnet50", "cluster.nic.link=IB-EDR", "cluster.nodes=2", "cluster.gpus_per_node=2",
            "cluster.server.gpus_per_switch=2", "training.bucket_size_mib=25"]
    pace = {}
    for mode in ("bsp", "ssp", "asp"):
        r = simulate(load_scenario(PS, base + [f"training.parameter_servers.sync={mode}"]), with_baseline=False)
        pace[mode] = r.iteration_time_s  # rank 0's mean iteration
    # Under bsp rank 0 runs at the slow rank's pace (2x compute); under asp at its own.
    assert pace["asp"] < 0.7 * pace["bsp"]
    # ssp lets rank 0 run 2 iterations ahead, then holds it to the slow pace.
    assert pace["asp"] < pace["ssp"] <= pace["bsp"] * 1.001


def test_asp_throughput_counts_each_rank_at_its_own_pace():
    r = simulate(load_scenario(PS, ["training.parameter_servers.sync=asp", "variability.gpu_speed_factors={3: 0.5}",
                                    "variability.iteration_cv=0", "workload.model=resnet50", "cluster.nic.link=IB-EDR",
                                    "cluster.nodes=2", "cluster.gpus_per_node=2", "cluster.server.gpus_per_switch=2",
                                    "training.bucket_size_mib=25"]), with_baseline=False)
    # Rank 3 contributes at about half rank 0's pace: 3.5 ranks' worth, not 4.
    assert r.throughput_samples_per_s < 4 * 32 / r.iteration_time_s * 0.9

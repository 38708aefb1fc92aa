"""MXNet kvstore 'device' (strategy device_reduce) against its closed form."""

from __future__ import annotations

import pytest
import simpy

from simulator import load_scenario
from simulator.device_reduce import DeviceReduce
from simulator.errors import ClusterSimError
from simulator.network import Network
from simulator.sync import SyncContext

from .conftest import REPO_ROOT, star

GB = 1e9


def context(env, n, bandwidth, latency, *, detailed, buckets=(1.0,), sum_rate=0.0, per_flow=None):
    gpus = [f"h{i}" for i in range(n)]
    return SyncContext(env=env, network=Network(env, star(n, bandwidth, latency)), gpus=gpus, detailed=detailed,
                       per_flow=per_flow, nodes=[gpus], bucket_bytes=list(buckets),
                       comm_intervals=[[] for _ in gpus], device_sum_bytes_per_s=sum_rate)


def time_bucket(ctx, bucket: int, nbytes: float) -> float:
    sync = DeviceReduce(ctx)
    ranks = range(len(ctx.gpus)) if ctx.detailed else range(1)
    done = [sync.ready(r, (0, bucket), nbytes) for r in ranks]
    ctx.env.run(simpy.AllOf(ctx.env, done))
    return ctx.env.now


@pytest.mark.parametrize("n", [2, 4, 16])
@pytest.mark.parametrize("detailed,per_flow", [(False, None), (True, None), (True, False)])
def test_one_key_costs_2_n_minus_1_copies_through_the_owner_link(n, detailed, per_flow):
    # N-1 copies of S into the owner's link, the sum (N+1 passes over S at 400 GB/s),
    # N-1 copies out: 2 (N-1) S / B + 2 x (two hops of latency) + (N+1) S / 400 GB/s.
    bandwidth, hop, size, rate = 10 * GB, 5e-6, 100e6, 400 * GB
    env = simpy.Environment()
    ctx = context(env, n, bandwidth, hop, detailed=detailed, per_flow=per_flow, sum_rate=rate)
    expected = 2 * (n - 1) * size / bandwidth + 2 * 2 * hop + (n + 1) * size / rate
    assert time_bucket(ctx, 0, size) == pytest.approx(expected, rel=1e-6)


def test_a_ring_spreads_the_same_array_over_every_link():
    # The hot spot: 16 GPUs, one 100 MB array. The owner's link carries 15 x 100 MB
    # each way (0.3 s at 10 GB/s); a ring moves 2 x 15/16 x 100 MB per link (18.75 ms).
    env = simpy.Environment()
    ctx = context(env, 16, 10 * GB, 0.0, detailed=False)
    assert time_bucket(ctx, 0, 100e6) == pytest.approx(0.3, rel=1e-9)


def test_owners_are_placed_largest_first_on_the_least_loaded_gpu():
    # MXNet's InitMergeBuffer: 400 -> gpu0, 40 -> gpu1, 30 -> gpu1, 20 -> gpu1, 10 -> gpu1.
    env = simpy.Environment()
    sync = DeviceReduce(context(env, 2, GB, 0.0, detailed=False, buckets=[10.0, 400.0, 20.0, 30.0, 40.0]))
    assert [sync.owner(b) for b in range(5)] == [1, 0, 1, 1, 1]


def test_one_gpu_moves_nothing():
    env = simpy.Environment()
    assert time_bucket(context(env, 1, GB, 1e-3, detailed=False), 0, 1e9) == 0.0


def test_it_runs_inside_one_node_only():
    path = REPO_ROOT / "scenarios" / "validation" / "training_systems" / "MXNet-P2-alexnet-K80-b512-1x16.yaml"
    assert load_scenario(path).training.strategy == "device_reduce"  # from the mxnet_kvstore_device preset
    with pytest.raises(ClusterSimError, match="device_reduce sums on the GPUs of one node"):
        load_scenario(path, ["cluster.nodes=2"])


def test_across_nodes_the_cli_exits_2_with_one_line_naming_the_field(capsys):
    from .test_bad_input import assert_one_error
    from .test_cli import run_main

    code, out, err = run_main(capsys, "simulate", "--set", "training.strategy=device_reduce",
                              "--set", "cluster.nodes=2", "-q")
    assert_one_error(code, out, err, "training.strategy", "device_reduce", "one node")

"""Gradient synchronization strategies against their closed forms."""

from __future__ import annotations

import pytest
import simpy

from simulator.network import Network
from simulator.parameter_servers import ParameterServer
from simulator.sync import SYNC_STRATEGIES, SyncContext

from .conftest import star

RingAllreduce = SYNC_STRATEGIES["ring_allreduce"]

GB = 1e9


def context(env, graph, gpus, *, detailed, servers=(), aggregation=1e30):
    return SyncContext(
        env=env,
        network=Network(env, graph),
        gpus=gpus,
        detailed=detailed,
        nodes=[[g] for g in gpus],
        bucket_bytes=[1.0],
        comm_intervals=[[] for _ in gpus],
        server_hosts=servers,
        aggregation_bytes_per_s=aggregation,
        server_busy=[[] for _ in servers],
    )


def time_sync(strategy_cls, ctx, nbytes: float) -> float:
    """Every rank (or the representative) hands one bucket over at t=0."""
    sync = strategy_cls(ctx)
    ranks = range(len(ctx.gpus)) if ctx.detailed else range(1)
    done = [sync.ready(r, (0, 0), nbytes) for r in ranks]
    ctx.env.run(simpy.AllOf(ctx.env, done))
    return ctx.env.now


@pytest.mark.parametrize("n", [2, 3, 4, 8, 16])
@pytest.mark.parametrize("detailed", [False, True])
def test_ring_allreduce_matches_closed_form(n, detailed):
    bandwidth, hop_latency, size = 1.25 * GB, 5e-6, 100e6
    env = simpy.Environment()
    gpus = [f"h{i}" for i in range(n)]
    ctx = context(env, star(n, bandwidth, hop_latency), gpus, detailed=detailed)
    alpha = 2 * hop_latency  # every ring neighbour is two links away
    expected = 2 * (n - 1) / n * size / bandwidth + 2 * (n - 1) * alpha
    assert time_sync(RingAllreduce, ctx, size) == pytest.approx(expected, rel=0.01)


def test_ring_allreduce_with_n_16_is_bandwidth_bound_at_nearly_2s_over_b():
    # 2(N-1)/N -> 2: 16 ranks moving 1 GB over 10 GB/s take 2 x 15/16 x 0.1 s = 0.1875 s.
    env = simpy.Environment()
    gpus = [f"h{i}" for i in range(16)]
    ctx = context(env, star(16, 10 * GB, 0.0), gpus, detailed=False)
    assert time_sync(RingAllreduce, ctx, 1e9) == pytest.approx(0.1875, rel=1e-9)


@pytest.mark.parametrize("n,k", [(4, 1), (8, 2), (16, 4), (6, 3)])
@pytest.mark.parametrize("detailed", [False, True])
def test_parameter_server_push_is_bounded_by_server_nics(n, k, detailed):
    # N workers push S bytes each, sharded over k servers: every server NIC receives
    # N*S/k bytes. Workers' links are 10x faster so the servers' NICs are the bound.
    # Pull is the mirror image, aggregation is (nearly) free:
    # sync = 2 * N*S/(k*B) + push and pull latencies.
    server_bw, size, latency = 1.25 * GB, 50e6, 10e-6
    env = simpy.Environment()
    graph = star(n, 10 * server_bw, latency, prefix="w")
    for j in range(k):
        graph.add_edge(f"ps{j}", "sw", bandwidth=server_bw, latency=latency, link="network")
        graph.add_edge("sw", f"ps{j}", bandwidth=server_bw, latency=latency, link="network")
    workers = [f"w{i}" for i in range(n)]
    servers = [f"ps{j}" for j in range(k)]
    ctx = context(env, graph, workers, detailed=detailed, servers=servers)
    push_only = n * size / (k * server_bw)
    assert time_sync(ParameterServer, ctx, size) == pytest.approx(2 * push_only + 4 * latency, rel=0.01)


def test_parameter_server_aggregation_adds_n_shards_over_its_rate():
    # One server, 4 workers, 40 MB each over 100 GB/s links: push 4 x 40 MB into the
    # server (1.6 ms), sum 4 x 40 MB at 16 GB/s (10 ms), pull 4 x 40 MB out (1.6 ms).
    n, size, agg, link = 4, 40e6, 16 * GB, 100 * GB
    env = simpy.Environment()
    graph = star(n + 1, link, 0.0, prefix="h")
    workers = [f"h{i}" for i in range(n)]
    ctx = context(env, graph, workers, detailed=True, servers=[f"h{n}"], aggregation=agg)
    transfer = n * size / link
    assert time_sync(ParameterServer, ctx, size) == pytest.approx(2 * transfer + n * size / agg, rel=1e-9)
    [(start, end)] = ctx.server_busy[0]
    assert (start, end - start) == pytest.approx((transfer, 0.010), rel=1e-9)

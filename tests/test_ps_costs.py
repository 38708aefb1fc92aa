"""Parameter servers as systems: request costs on contended server cores, the one-GPU
baseline on the same update path, and speedup never above the GPU count."""

from __future__ import annotations

import typing

import numpy as np
import pytest

from simulator import load_scenario, simulate
from simulator.engine import build, run
from simulator.errors import ClusterSimError
from simulator.scenario import TrainingSpec

# Four one-GPU workers, one dedicated server, a network (PCIe gen5, 1 Pb/s NICs: the schema's bound) and a
# server CPU so fast that only the request costs are left (transfers: ~6 ms of 656):
# compute 32 samples / 1e6 samples/s = 32 us.
FREE = {
    "cluster": {"nodes": 4, "gpus_per_node": 1, "nic": {"link": None, "bandwidth_gbps": 1e6, "latency_us": 0},
                "fabric": {"switch_latency_us": 0}, "server": {"pcie_generation": 5, "pcie_latency_us": 0}},
    "workload": {"model": "resnet18", "batch_per_gpu": 32, "measured_throughput_samples_per_s": 1e6},
    "training": {"strategy": "parameter_server",
                 "parameter_servers": {"count": 1, "aggregation_gbytes_per_s": 1e5, "rpc_us": 2000}},
    "simulation": {"iterations": 2, "warmup_iterations": 1},
}


def scenario(**changes):
    data = {k: dict(v) for k, v in FREE.items()}
    data["training"] = {**FREE["training"], "parameter_servers": dict(FREE["training"]["parameter_servers"])}
    for path, value in changes.items():
        section, *rest = path.split("__")
        node = data[section]
        for part in rest[:-1]:
            node = node.setdefault(part, {})
        node[rest[-1]] = value
    return load_scenario(data)


def tensors_of(s) -> int:
    sim = build(s)
    return len(sim.buckets)  # bucket_size_mib 0 under PS: one bucket per tensor


@pytest.mark.parametrize("mode", ["fast", "detailed"])
@pytest.mark.parametrize("cores", [1, 2])
def test_request_cost_bounds_the_iteration_and_is_met_with_infinite_bandwidth(mode, cores):
    s = scenario(simulation__mode=mode, training__parameter_servers__cores=cores)
    t = tensors_of(s)
    # Every tensor: N pushes and N pulls, each one request of 2 ms on one of `cores` cores.
    bound = 2 * 4 * t * 2000e-6 / cores
    it = simulate(s, with_baseline=False).iteration_time_s
    assert it >= bound * (1 - 1e-9)
    assert it == pytest.approx(bound, rel=0.01)


@pytest.mark.parametrize("mode", ["fast", "detailed"])
@pytest.mark.parametrize("cores", [1, 2])
def test_transport_rate_bounds_the_iteration_by_the_bytes_a_server_core_moves(mode, cores):
    # No per-request cost, only the payload: 4 workers push the whole model (B bytes)
    # and pull it back, 8B through the server's RPC stack at 1 GB/s over `cores` cores.
    s = scenario(simulation__mode=mode, training__parameter_servers__cores=cores,
                 training__parameter_servers__rpc_us=0, training__parameter_servers__transport_gbytes_s=1.0)
    model_bytes = sum(nbytes for _, nbytes in build(s).buckets)
    bound = 2 * 4 * model_bytes / 1e9 / cores
    it = simulate(s, with_baseline=False).iteration_time_s
    assert it >= bound * (1 - 1e-9)
    assert it == pytest.approx(bound, rel=0.02)
    # Twice the rate, half the time: the payload, not a fixed cost, sets it.
    faster = simulate(scenario(simulation__mode=mode, training__parameter_servers__cores=cores,
                               training__parameter_servers__rpc_us=0,
                               training__parameter_servers__transport_gbytes_s=2.0), with_baseline=False)
    assert faster.iteration_time_s == pytest.approx(it / 2, rel=0.03)


@pytest.mark.parametrize("mode", ["fast", "detailed"])
def test_a_connection_cap_bounds_each_workers_stream(mode):
    # One stream per worker and server each way (ps-lite / gRPC over TCP): a worker's
    # pushes of the whole model (B bytes) go one after another at C, so the iteration
    # takes at least B / C, at most B / C for the pushes plus as much for the pulls;
    # with free compute, network and servers it scales as 1 / C.
    def it(gbps):
        s = scenario(simulation__mode=mode, training__parameter_servers__rpc_us=0,
                     training__parameter_servers__connection_gbps=gbps)
        return simulate(s, with_baseline=False).iteration_time_s, sum(b for _, b in build(s).buckets)

    slow, model_bytes = it(8.0)  # 1 GB/s
    assert model_bytes / 1e9 * (1 - 1e-9) <= slow <= 2 * model_bytes / 1e9 * 1.01
    assert it(16.0)[0] == pytest.approx(slow / 2, rel=0.02)
    # without a cap the fast network makes it far shorter
    free = simulate(scenario(simulation__mode=mode, training__parameter_servers__rpc_us=0), with_baseline=False)
    assert free.iteration_time_s < slow / 5


def test_per_tensor_cost_counts_the_tensors_of_a_fused_request():
    # One bucket holding every tensor: each request costs rpc + T x tensor_us, and the
    # 4 pushes and 4 pulls queue on the one core. Followed rank by rank (auto runs the
    # detailed path here), the transfers hide behind the busy core: the iteration is the
    # core's busy time. The fast path, marked approximate, adds that time to the rest.
    t = tensors_of(scenario())
    fused = {"training__bucket_size_mib": 1e6}
    busy = 2 * 4 * (2000e-6 + t * 20e-6)
    result = simulate(scenario(**fused, training__parameter_servers__tensor_us=20), with_baseline=False)
    assert result.mode == "detailed" and "not taken" in result.extra["fast_path"]
    assert result.iteration_time_s >= busy * (1 - 1e-9)
    assert result.iteration_time_s == pytest.approx(busy, rel=1e-3)
    fast = {**fused, "simulation__mode": "fast"}
    free = simulate(scenario(**fast, training__parameter_servers__rpc_us=0), with_baseline=False).iteration_time_s
    approx = simulate(scenario(**fast, training__parameter_servers__tensor_us=20), with_baseline=False)
    assert approx.extra["fast_path"].startswith("approximate")
    assert approx.iteration_time_s == pytest.approx(free + busy, rel=1e-3)


def test_round_robin_placement_makes_a_hot_server():
    # VGG-16: fc6 (102.8 M parameters of 138.4 M) lands whole on one of two servers.
    s = load_scenario("scenarios/ps_4x4_10gbe.yaml", ["training.parameter_servers.sharding=round_robin",
                                                       "training.parameter_servers.count=2",
                                                       "simulation.iterations=1", "simulation.warmup_iterations=0"])
    sim = build(s)
    run(sim)
    into = [sim.network.edge_bytes()[sim.network.edge_index[("switch0", f"ps{j}.nic0")]] for j in range(2)]
    total = 16 * 138_357_544 * 4
    assert sum(into) == pytest.approx(total, rel=1e-9)
    assert max(into) / total > 0.74  # the server holding fc6 receives three quarters of every push


def test_one_gpu_baseline_runs_the_same_update_path():
    s = load_scenario("scenarios/ps_4x4_10gbe.yaml", ["simulation.iterations=1"])
    one = build(s.single_gpu())
    assert one.strategy_name == "parameter_server"  # push, server update, pull: no optimizer on the GPU


STRATEGIES = typing.get_args(TrainingSpec.model_fields["strategy"].annotation)
GRID = [
    ["cluster.nodes=1", "cluster.gpus_per_node=4", "cluster.nic.link=10GbE"],
    ["cluster.nodes=2", "cluster.gpus_per_node=2", "cluster.nic.link=IB-EDR"],
    ["cluster.nodes=4", "cluster.gpus_per_node=1", "cluster.nic.link=100GbE"],
]
PS_VARIANTS = [
    [],
    ["training.parameter_servers.count=4"],  # enough servers to hide communication: was speedup 4.05 on 4 GPUs
    ["training.parameter_servers.placement=colocated", "training.parameter_servers.count=2"],
    ["training.parameter_servers.local_aggregation=true", "training.parameter_servers.rpc_us=50"],
    ["training.parameter_servers.sync=asp"],
]


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("cluster", GRID, ids=["1x4-10GbE", "2x2-EDR", "4x1-100GbE"])
def test_speedup_never_exceeds_the_gpu_count(strategy, cluster):
    variants = PS_VARIANTS if strategy == "parameter_server" else [[]]
    if strategy == "device_reduce" and cluster[0] != "cluster.nodes=1":  # one node only: refused, not run
        with pytest.raises(ClusterSimError, match="device_reduce sums on the GPUs of one node"):
            load_scenario(None, cluster + [f"training.strategy={strategy}", "cluster.server.pcie_switches=1",
                                           "cluster.server.gpus_per_switch=null"])
        return
    for variant in variants:
        for model, cv in (("resnet50", 0.0), ("vgg16", 0.0), ("resnet50", 0.05)):
            s = load_scenario(None, cluster + variant + [
                f"training.strategy={strategy}", f"workload.model={model}", "workload.batch_per_gpu=16",
                "cluster.server.pcie_switches=1", "cluster.server.gpus_per_switch=null",
                f"variability.iteration_cv={cv}", "simulation.iterations=2"])
            r = simulate(s)
            assert np.isfinite(r.speedup)
            assert r.speedup <= r.total_gpus * (1 + 1e-9), (strategy, cluster, variant, model, cv, r.speedup)

"""Physics properties over random small scenarios (issue 18), hypothesis, seeded.

* More bandwidth is never slower: raising the workers' NIC bandwidth (or the dedicated
  servers') never lengthens an iteration.
* More parameter servers are never slower when the servers are the bottleneck, under
  even sharding, on a non-blocking fabric (dedicated servers behind one switch).
* Speedup is at most the number of GPUs.

Each property runs a fixed, derandomized set of small cases (``derandomize=True``, no
example database): the same cases on every run, a few hundred runs in all, some
seconds of CI time. The scenarios are small (at most 4 x 4 GPUs, one measured
iteration, no warm-up) and take the fast path, where every rank is identical."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator import load_scenario
from simulator.engine import simulate

#: Relative slack for float noise in comparisons of iteration times.
REL = 1e-9

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])

MODELS = ["alexnet", "resnet18", "resnet50", "vgg16", "googlenet"]
ALLREDUCE = ["ring_allreduce", "tree_allreduce", "halving_doubling_allreduce", "hierarchical_allreduce"]


def _scenario(cluster: dict[str, Any], workload: dict[str, Any], training: dict[str, Any]):
    return load_scenario({
        "cluster": cluster, "workload": workload, "training": training,
        "simulation": {"iterations": 1, "warmup_iterations": 0},
    })


def _iteration_time(data: tuple) -> float:
    return simulate(_scenario(*data), with_baseline=False).iteration_time_s


@st.composite
def clusters(draw, max_nodes: int = 4) -> dict[str, Any]:
    gpus = draw(st.sampled_from([1, 2, 4]))
    return {
        "nodes": draw(st.integers(1, max_nodes)), "gpus_per_node": gpus,
        "server": {"pcie_switches": 1, "gpus_per_switch": gpus},
        "nic": {"link": "10GbE", "bandwidth_gbps": draw(st.floats(1, 100, allow_nan=False))},
    }


@st.composite
def workloads(draw) -> dict[str, Any]:
    return {"model": draw(st.sampled_from(MODELS)), "batch_per_gpu": draw(st.sampled_from([8, 16, 32, 64]))}


@st.composite
def trainings(draw) -> dict[str, Any]:
    strategy = draw(st.sampled_from([*ALLREDUCE, "parameter_server"]))
    training: dict[str, Any] = {"strategy": strategy, "overlap": draw(st.booleans())}
    if strategy == "parameter_server":
        training["parameter_servers"] = {
            "count": draw(st.integers(1, 4)), "placement": draw(st.sampled_from(["dedicated", "colocated"])),
            "sharding": draw(st.sampled_from(["even", "round_robin", "size_balanced"])),
        }
    return training


@SETTINGS
@given(clusters(), workloads(), trainings(), st.floats(1.05, 8))
def test_more_nic_bandwidth_is_never_slower(cluster, workload, training, factor):
    faster = {**cluster, "nic": {**cluster["nic"], "bandwidth_gbps": cluster["nic"]["bandwidth_gbps"] * factor}}
    slow, fast = _iteration_time((cluster, workload, training)), _iteration_time((faster, workload, training))
    assert fast <= slow * (1 + REL), (slow, fast)


@SETTINGS
@given(clusters(), workloads(), st.integers(1, 4), st.floats(0.5, 10), st.floats(1.05, 8))
def test_more_server_bandwidth_is_never_slower(cluster, workload, count, server_gbps, factor):
    def training(gbps: float) -> dict[str, Any]:
        return {"strategy": "parameter_server",
                "parameter_servers": {"count": count, "placement": "dedicated", "nic_bandwidth_gbps": gbps}}

    slow = _iteration_time((cluster, workload, training(server_gbps)))
    fast = _iteration_time((cluster, workload, training(server_gbps * factor)))
    assert fast <= slow * (1 + REL), (slow, fast)


@SETTINGS
@given(clusters(), workloads(), st.integers(1, 6), st.floats(0.5, 5), st.booleans())
def test_more_servers_are_never_slower_when_servers_are_the_bottleneck(cluster, workload, count, server_gbps,
                                                                       local_aggregation):
    """Dedicated servers behind the one switch of a single_switch fabric (non-blocking),
    every tensor split evenly over them, each server's NIC at most half the slowest
    worker NIC's bandwidth divided among the workers: the servers are the bottleneck."""
    cluster = {**cluster, "nic": {"link": "10GbE", "bandwidth_gbps": 100.0}, "fabric": {"topology": "single_switch"}}

    def training(k: int) -> dict[str, Any]:
        return {"strategy": "parameter_server", "parameter_servers": {
            "count": k, "placement": "dedicated", "sharding": "even", "nic_bandwidth_gbps": server_gbps,
            "local_aggregation": local_aggregation}}

    fewer = _iteration_time((cluster, workload, training(count)))
    more = _iteration_time((cluster, workload, training(count + 1)))
    assert more <= fewer * (1 + REL), (count, fewer, more)


@SETTINGS
@given(clusters(), workloads(), trainings())
def test_speedup_is_at_most_the_number_of_gpus(cluster, workload, training):
    result = simulate(_scenario(cluster, workload, training))
    n = cluster["nodes"] * cluster["gpus_per_node"]
    assert result.speedup <= n * (1 + REL), (n, result.speedup)

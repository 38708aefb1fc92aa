"""The fast path gives the detailed path's answer wherever it is taken.

Random small scenarios over every option of the cluster and of every strategy: when
``simulation.mode: auto`` takes the fast path, the detailed path must give the same
iteration time and throughput within 1e-6; when the fast path cannot be exact
(asynchronous or unevenly placed parameter servers, queued requests) the simulation
must run the detailed path and say why in ``extra["fast_path"]``.

Left out: ``variability.iteration_cv``, which the fast path applies as the expected
slowest of N draws while the detailed path draws (equal in expectation only; see
tests/test_scale_losses.py), and jitter/stragglers/slow GPUs, which always take the
detailed path.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator import load_scenario, simulate
from simulator.engine import fast_path_inexact
from simulator.errors import ClusterSimError

ALLREDUCE = ["ring_allreduce", "tree_allreduce", "halving_doubling_allreduce", "hierarchical_allreduce", "auto",
             "fastest"]


@st.composite
def scenarios(draw) -> list[str]:
    gpus_per_node = draw(st.sampled_from([1, 2, 4]))
    nodes = draw(st.integers(1, 4))
    o = [
        "cluster.server.gpus_per_switch=null",
        "variability.iteration_cv=0",  # left out (see above); on by default
        f"cluster.nodes={nodes}",
        f"cluster.gpus_per_node={gpus_per_node}",
        f"cluster.server.pcie_switches={draw(st.sampled_from([1, 2])) if gpus_per_node == 4 else 1}",
        "cluster.nic.link=" + draw(st.sampled_from(["10GbE", "IB-EDR"])),
        "workload.model=" + draw(st.sampled_from(["alexnet", "resnet18"])),
        f"workload.batch_per_gpu={draw(st.sampled_from([8, 32]))}",
        f"simulation.iterations={draw(st.integers(1, 2))}",
        f"simulation.warmup_iterations={draw(st.integers(0, 1))}",
        f"training.overlap={draw(st.booleans())}",
    ]
    if nodes > 1 and draw(st.booleans()):
        o += ["cluster.fabric.topology=leaf_spine", f"cluster.fabric.nodes_per_leaf={draw(st.integers(1, 2))}",
              f"cluster.fabric.spines={draw(st.integers(1, 2))}",
              f"cluster.fabric.oversubscription={draw(st.sampled_from([1, 4]))}"]
    bucket = draw(st.sampled_from([None, 0, 1, 25]))
    if bucket is not None:
        o.append(f"training.bucket_size_mib={bucket}")
    if draw(st.integers(0, 2)) == 0:
        ps = "training.parameter_servers."
        o += [
            "training.strategy=parameter_server",
            f"{ps}count={draw(st.integers(1, 4))}",
            f"{ps}placement=" + draw(st.sampled_from(["dedicated", "colocated"])),
            f"{ps}sharding=" + draw(st.sampled_from(["even", "round_robin", "size_balanced"])),
            f"{ps}local_aggregation={draw(st.booleans())}",
            f"{ps}sync=" + draw(st.sampled_from(["bsp", "bsp", "asp", "ssp"])),
            f"{ps}staleness={draw(st.integers(0, 2))}",
            f"{ps}cores={draw(st.sampled_from([1, 2, 16]))}",
            f"{ps}rpc_us={draw(st.sampled_from([0, 0, 30]))}",
        ]
    else:
        o += ["training.strategy=" + draw(st.sampled_from(ALLREDUCE)),
              "training.collectives.backend=" + draw(st.sampled_from(["nccl", "ideal", "gloo", "mpi"]))]
        if draw(st.booleans()):
            o.append("training.fusion=horovod")
    return o


@settings(max_examples=120, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(scenarios())
def test_fast_path_equals_detailed_path_wherever_taken(overrides):
    try:
        scenario = load_scenario(None, overrides)
    except ClusterSimError:
        return  # an invalid combination (e.g. nodes_per_leaf on a single switch); refused at load
    auto = simulate(scenario, with_baseline=False)
    reason = fast_path_inexact(scenario)
    if reason is not None:
        assert auto.mode == "detailed"
        assert reason in auto.extra["fast_path"]
        return
    assert auto.mode == "fast" and "fast_path" not in auto.extra
    detailed = simulate(load_scenario(None, overrides + ["simulation.mode=detailed"]), with_baseline=False)
    assert auto.iteration_time_s == pytest.approx(detailed.iteration_time_s, rel=1e-6, abs=0)
    assert auto.throughput_samples_per_s == pytest.approx(detailed.throughput_samples_per_s, rel=1e-6, abs=0)


BASE_PS = ["cluster.server.gpus_per_switch=null", "cluster.nodes=2",
           "cluster.gpus_per_node=2", "workload.model=alexnet", "simulation.iterations=2",
           "simulation.warmup_iterations=0", "training.strategy=parameter_server",
           "training.parameter_servers.count=2", "training.parameter_servers.placement=colocated"]


@pytest.mark.parametrize("mode", ["auto", "fast"])
@pytest.mark.parametrize("options", [["training.parameter_servers.sync=asp"], ["training.parameter_servers.sync=ssp"],
                                     ["training.parameter_servers.count=3"]])  # 3 colocated servers on 2 nodes
def test_parameter_servers_the_fast_path_cannot_follow_run_detailed(options, mode):
    asked = simulate(load_scenario(None, BASE_PS + options + [f"simulation.mode={mode}"]), with_baseline=False)
    detailed = simulate(load_scenario(None, BASE_PS + options + ["simulation.mode=detailed"]), with_baseline=False)
    assert asked.mode == "detailed" and "ran detailed" in asked.extra["fast_path"]
    assert asked.iteration_time_s == detailed.iteration_time_s


@pytest.mark.parametrize("options", [["training.parameter_servers.sharding=round_robin"],
                                     ["training.parameter_servers.rpc_us=20"]])
def test_an_approximate_fast_path_runs_only_when_forced_and_says_so(options):
    auto = simulate(load_scenario(None, BASE_PS + options), with_baseline=False)
    forced = simulate(load_scenario(None, BASE_PS + options + ["simulation.mode=fast"]), with_baseline=False)
    assert auto.mode == "detailed" and "ran detailed" in auto.extra["fast_path"]
    assert forced.mode == "fast" and forced.extra["fast_path"].startswith("approximate: ")

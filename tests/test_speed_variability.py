"""Ranks that differ only in their compute keep bundled collectives, with the per-flow answer.

With jitter, stragglers or a slow GPU (``simulation.mode: auto``) every rank's compute
is simulated, but an allreduce starts only when every rank has the bucket ready and
buckets go one at a time, so each collective runs alone on an idle network: as the
fast path's bundled flows, which equal the per-flow program there (see
tests/test_fast_path_agrees.py). ``simulation.mode: detailed`` still moves every flow.

Tolerance: each rank draws the same numbers in the same order on both paths, so the
compute is bit-identical (asserted exactly). The collective is the same model summed
differently (2(N-1) step flows of S/N one after another against one flow of
2(N-1) S/N): equal up to float rounding, which measured at most 1.2e-14 relative over
these examples. 1e-9 leaves room for rounding to accumulate over iterations and still
catches any modelling difference (one hop's latency is ~1e-6 of an iteration or more).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator import load_scenario, simulate
from simulator.engine import build
from simulator.errors import ClusterSimError

ALLREDUCE = ["ring_allreduce", "tree_allreduce", "halving_doubling_allreduce", "hierarchical_allreduce", "auto",
             "fastest"]


@st.composite
def variable_scenarios(draw) -> list[str]:
    gpus_per_node = draw(st.sampled_from([1, 2, 4]))
    nodes = draw(st.integers(1, 4))
    total = nodes * gpus_per_node
    o = [
        "cluster.server.gpus_per_switch=null",
        f"cluster.nodes={nodes}",
        f"cluster.gpus_per_node={gpus_per_node}",
        "cluster.nic.link=" + draw(st.sampled_from(["10GbE", "IB-EDR"])),
        "workload.model=" + draw(st.sampled_from(["alexnet", "resnet18"])),
        f"simulation.iterations={draw(st.integers(1, 3))}",
        f"simulation.warmup_iterations={draw(st.integers(0, 1))}",
        f"training.overlap={draw(st.booleans())}",
        f"variability.iteration_cv={draw(st.sampled_from([0, 0.05]))}",
        "training.strategy=" + draw(st.sampled_from(ALLREDUCE)),
        "training.collectives.backend=" + draw(st.sampled_from(["nccl", "ideal", "gloo"])),
    ]
    if nodes > 1 and draw(st.booleans()):
        o += ["cluster.fabric.topology=leaf_spine", f"cluster.fabric.nodes_per_leaf={draw(st.integers(1, 2))}",
              "cluster.fabric.spines=2", f"cluster.fabric.oversubscription={draw(st.sampled_from([1, 4]))}"]
    if draw(st.booleans()):
        o.append("training.fusion=horovod")
    kinds = draw(st.sets(st.sampled_from(["jitter", "stragglers", "slow"]), min_size=1))
    if "jitter" in kinds:
        o += ["variability.jitter.distribution=" + draw(st.sampled_from(["normal", "lognormal", "uniform"])),
              f"variability.jitter.cv={draw(st.sampled_from([0.02, 0.2]))}"]
    if "stragglers" in kinds:
        o += [f"variability.stragglers.probability={draw(st.sampled_from([0.1, 0.5]))}",
              "variability.stragglers.slowdown=3"]
    if "slow" in kinds:
        o.append(f"variability.gpu_speed_factors={{{draw(st.integers(0, total - 1))}: 0.5}}")
    return o


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(variable_scenarios())
def test_bundled_collectives_give_the_per_flow_answer_when_ranks_differ(overrides):
    try:
        scenario = load_scenario(None, overrides)
    except ClusterSimError:
        return  # an invalid combination, refused at load
    auto = simulate(scenario, with_baseline=False)
    detailed = simulate(load_scenario(None, overrides + ["simulation.mode=detailed"]), with_baseline=False)
    assert auto.mode == detailed.mode == "detailed"  # every rank followed on both
    assert auto.breakdown["compute_s"] == detailed.breakdown["compute_s"]  # the same draws
    assert auto.iteration_times_s == pytest.approx(detailed.iteration_times_s, rel=1e-9, abs=0)
    assert auto.throughput_samples_per_s == pytest.approx(detailed.throughput_samples_per_s, rel=1e-9, abs=0)
    assert auto.breakdown == pytest.approx(detailed.breakdown, rel=1e-9, abs=1e-15)
    if scenario.cluster.total_gpus > 2:
        assert auto.flows < detailed.flows


RING_16 = ["cluster.server.gpus_per_switch=null", "cluster.nodes=4", "cluster.gpus_per_node=4",
           "workload.model=resnet18", "simulation.iterations=3", "variability.jitter.distribution=lognormal",
           "variability.jitter.cv=0.1", "variability.stragglers.probability=0.1"]


def test_variability_moves_one_bundled_flow_per_collective_phase():
    auto = build(load_scenario(None, RING_16))
    detailed = build(load_scenario(None, RING_16 + ["simulation.mode=detailed"]))
    assert auto.detailed and len(auto.timelines) == 16  # every rank's compute
    assert not auto.context.flows_detailed and detailed.context.flows_detailed


def test_parameter_servers_with_variability_keep_every_flow():
    ps = RING_16 + ["training.strategy=parameter_server", "training.parameter_servers.count=2"]
    assert build(load_scenario(None, ps)).context.flows_detailed

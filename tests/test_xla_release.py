"""``workload.graph_compiler: xla``: gradients leave backward only at the ends of XLA's
compiled clusters (``training.xla_release_points`` evenly spaced points), not as each is
ready."""

from __future__ import annotations

import numpy as np
import pytest

from simulator import load_scenario, simulate
from simulator.build import release_of
from simulator.compute import ComputeCosts, fusion_buckets, fusion_tensors
from simulator.validation.run import graph_compiler_for_text

from .test_bad_input import assert_one_error
from .test_cli import run_main

TWO_NODES = ["cluster.nodes=2", "cluster.gpus_per_node=1", "cluster.server.pcie_switches=1",
             "cluster.server.gpus_per_switch=1", "training.collectives.backend=ideal"]


def _costs(backward: list[float]) -> ComputeCosts:
    n = len(backward)
    return ComputeCosts(forward_s=np.zeros(n), backward_s=np.array(backward), gradient_bytes=np.ones(n),
                        optimizer_s=0.0)


def test_a_gradient_leaves_at_the_next_release_point():
    costs = _costs([0.25, 0.25, 0.5])  # backward lasts 1 s
    xla = load_scenario(None, ["workload.graph_compiler=xla", "training.xla_release_points=4"])
    release = release_of(xla, costs)
    assert release is not None
    assert [release(t) for t in (0.0, 0.1, 0.25, 0.3, 0.5, 0.74, 0.76, 1.0)] == \
        pytest.approx([0.0, 0.25, 0.25, 0.5, 0.5, 0.75, 1.0, 1.0], abs=1e-15)
    one = release_of(load_scenario(None, ["workload.graph_compiler=xla", "training.xla_release_points=1"]), costs)
    assert one is not None and {one(t) for t in (0.01, 0.5, 1.0)} == {1.0}
    assert release_of(load_scenario(None, []), costs) is None  # (no compiler: as soon as ready)


def test_horovod_fusion_fuses_what_the_clusters_release():
    backward = np.array([0.1, 0.1, 0.1, 0.1])  # layers 3..0 ready at 0.1, 0.2, 0.3, 0.4 s
    grads = np.array([1.0, 2.0, 4.0, 8.0])
    costs = _costs(list(backward))
    release = release_of(load_scenario(None, ["workload.graph_compiler=xla", "training.xla_release_points=2"]), costs)
    # Without XLA, a 5 ms cycle launches each gradient on its own tick; with two release
    # points, the first two leave together at 0.2 s and the last two at 0.4 s.
    assert [b for _, b in fusion_buckets(grads, backward, 0.005, 1e9)] == [8.0, 4.0, 2.0, 1.0]
    fused = fusion_buckets(grads, backward, 0.005, 1e9, release)
    assert [b for _, b in fused] == [12.0, 3.0]
    assert [t for t, _ in fused] == pytest.approx([0.2, 0.4])
    tensors = fusion_tensors(grads, backward, release)
    assert [t for t, _ in tensors] == pytest.approx([0.2, 0.2, 0.4, 0.4])
    assert [b for _, b in tensors] == [8.0, 4.0, 2.0, 1.0]


def test_one_release_point_is_no_overlap():
    # Every bucket leaves when backward ends: the iteration is that of overlap off.
    # (the compute held as without XLA: its default fused fork sums are tests/test_fork_gradients.py's)
    xla = simulate(load_scenario(None, TWO_NODES + ["workload.graph_compiler=xla", "training.xla_release_points=1",
                                                    "workload.fork_gradients=sum"]))
    off = simulate(load_scenario(None, TWO_NODES + ["training.overlap=false"]))
    on = simulate(load_scenario(None, TWO_NODES))
    assert xla.iteration_time_s == pytest.approx(off.iteration_time_s, rel=1e-9)
    assert on.iteration_time_s < 0.9 * off.iteration_time_s  # (the case does overlap without XLA)


def test_more_release_points_hide_more_of_the_allreduce():
    times = [simulate(load_scenario(None, TWO_NODES + ["workload.graph_compiler=xla", "workload.fork_gradients=sum",
                                                       f"training.xla_release_points={k}"])).iteration_time_s
             for k in (1, 2, 4)]
    plain = simulate(load_scenario(None, TWO_NODES)).iteration_time_s
    assert times[0] > times[1] > times[2] >= plain * (1 - 1e-9)


def test_horovod_under_xla_starts_its_allreduces_after_backward():
    # The horovod preset's sourced behaviour (DeepLearningExamples#156): one release point,
    # i.e. the iteration of overlap off, give or take the wait for Horovod's next 5 ms cycle
    # tick after backward; a scenario that sets the field keeps its value.
    horovod = load_scenario(None, TWO_NODES + ["workload.graph_compiler=xla", "training.framework=horovod",
                                               "workload.fork_gradients=sum"])
    assert horovod.training.xla_release_points == 1
    assert load_scenario(None, ["training.framework=horovod", "training.xla_release_points=3"]) \
        .training.xla_release_points == 3
    assert load_scenario(None, ["workload.graph_compiler=xla"]).training.xla_release_points == 2
    # (against the same XLA-compiled compute with overlap off: XLA's fusions change the layers)
    xla_off = simulate(load_scenario(None, TWO_NODES + ["workload.graph_compiler=xla", "training.framework=horovod",
                                                        "workload.fork_gradients=sum", "training.overlap=false"]))
    assert 0 <= simulate(horovod).iteration_time_s - xla_off.iteration_time_s <= 0.005
    off = simulate(load_scenario(None, TWO_NODES + ["training.framework=horovod", "training.overlap=false"]))
    on = simulate(load_scenario(None, TWO_NODES + ["training.framework=horovod"]))
    assert on.iteration_time_s < 0.95 * off.iteration_time_s  # (Horovod without XLA does overlap here)


@pytest.mark.parametrize(("text", "compiler"), [
    ("TensorFlow 1.15 (NGC 20.06-tf1), Horovod/NCCL, XLA on, TF32", "xla"),
    ("TensorFlow tf_cnn_benchmarks; XLA auto-clustering (TF_XLA_FLAGS=--tf_xla_auto_jit=2)", "xla"),
    ("TensorFlow 1.15 tf_cnn_benchmarks, replicated variables, NCCL all-reduce, without XLA", "none"),
    ("MXNet (NGC 20.06), fp16", "none"),
])
def test_the_compiler_a_rows_framework_text_names(text, compiler):
    assert graph_compiler_for_text(text) == compiler


@pytest.mark.parametrize(("override", "needles"), [
    ("training.xla_release_points=0", ["training.xla_release_points", "greater than or equal to 1"]),
    ("training.xla_release_points=2.5", ["training.xla_release_points", "integer"]),
    ("workload.graph_compiler=tvm", ["workload.graph_compiler", "'none' or 'xla'"]),
])
def test_bad_values_are_one_error_line(capsys, override, needles):
    assert_one_error(*run_main(capsys, "simulate", "--set", override, "-q"), *needles)

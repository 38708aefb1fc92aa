"""``training.bucket_copies``: a bucket of two or more gradient tensors is copied into a
flat buffer before its allreduce and back out after it, each copy reading and writing its
bytes at the GPU's achievable memory bandwidth."""

from __future__ import annotations

import pytest

from simulator import load_scenario, simulate
from simulator.build import build

from .test_bad_input import assert_one_error
from .test_cli import run_main

# Two single-GPU nodes, the ideal backend, no rank-to-rank variation and no compute slowed
# beside a collective: the copies are the only difference the field makes.
TWO_NODES = ["cluster.nodes=2", "cluster.gpus_per_node=1", "cluster.server.pcie_switches=1",
             "cluster.server.gpus_per_switch=1", "training.collectives.backend=ideal",
             "variability.iteration_cv=0"]


def _pair(*overrides: str):
    on = load_scenario(None, [*TWO_NODES, *overrides])
    off = load_scenario(None, [*TWO_NODES, *overrides, "training.bucket_copies=false"])
    return on, off


def test_one_copy_reads_and_writes_the_bucket_at_the_achievable_memory_bandwidth():
    on, _ = _pair()
    sim = build(on)
    gpu = sim.resolved.gpu
    rate = gpu.memory_bandwidth_gbytes_s * 1e9 * on.workload.memory_efficiency
    assert sim.copy_s_per_byte == pytest.approx(2 / rate)
    assert len(sim.buckets) > 1
    for (_, nbytes), copy_s in zip(sim.buckets, sim.bucket_copy_s):
        assert copy_s == pytest.approx(2 * nbytes / rate)  # every ResNet-50 bucket holds several layers
    # 25 MiB buckets of ResNet-50's 102 MB of fp32 gradients on a V100 (900 GB/s at 0.8):
    # each full bucket copies in 2 x 26.2 MB / 720 GB/s = 72.8 us.
    assert max(sim.bucket_copy_s) == pytest.approx(2 * 25 * 2**20 / 720e9, rel=0.2)


def test_without_overlap_each_bucket_is_copied_in_before_its_launch_and_all_out_after_sync():
    on, off = _pair("training.overlap=false")
    with_copies, without = simulate(on), simulate(off)
    copy = build(on).bucket_copy_s
    extra = with_copies.iteration_time_s - without.iteration_time_s
    # The copies out and the first copy in are on the critical path; a later bucket's copy
    # in may run while the previous bucket is all-reduced.
    assert sum(copy) + copy[0] * (1 - 1e-9) <= extra <= 2 * sum(copy) * (1 + 1e-9)
    assert with_copies.breakdown["bucket_copy_s"] == pytest.approx(2 * sum(copy), rel=1e-9)
    assert "bucket_copy_s" not in without.breakdown
    assert with_copies.breakdown["compute_s"] == pytest.approx(without.breakdown["compute_s"], rel=1e-12)
    parts = sum(v for k, v in with_copies.breakdown.items() if k != "communication_s")
    assert parts == pytest.approx(with_copies.iteration_time_s, rel=1e-9)
    assert with_copies.attribution["seconds"]["bucket_copies"] == pytest.approx(2 * sum(copy), rel=1e-9)


def test_one_bucket_after_backward_pays_both_copies_in_full():
    # One bucket holding every gradient, reduced after backward: copy in, allreduce, copy out.
    on, off = _pair("training.overlap=false", "training.bucket_size_mib=1000")
    copy = build(on).bucket_copy_s
    assert len(copy) == 1
    extra = simulate(on).iteration_time_s - simulate(off).iteration_time_s
    assert extra == pytest.approx(2 * copy[0], rel=1e-9)


def test_with_overlap_the_copy_in_delays_backward_and_the_copy_out_precedes_the_optimizer():
    on, off = _pair()
    with_copies, without = simulate(on), simulate(off)
    copies = 2 * sum(build(on).bucket_copy_s)
    # GPU work either way: never faster, at most every copy added, booked as copies.
    assert 0 < with_copies.iteration_time_s - without.iteration_time_s <= copies * (1 + 1e-9)
    assert with_copies.breakdown["bucket_copy_s"] == pytest.approx(copies, rel=1e-9)
    parts = sum(v for k, v in with_copies.breakdown.items() if k != "communication_s")
    assert parts == pytest.approx(with_copies.iteration_time_s, rel=1e-9)


def test_nothing_is_copied_for_one_tensor_per_bucket_one_gpu_or_parameter_servers():
    per_tensor = build(load_scenario(None, [*TWO_NODES, "training.bucket_size_mib=0"]))
    assert per_tensor.copy_s_per_byte > 0 and not any(per_tensor.bucket_copy_s)
    one_gpu = build(load_scenario(None, []).single_gpu())
    assert one_gpu.copy_s_per_byte == 0 and not any(one_gpu.bucket_copy_s)
    ps = build(load_scenario(None, [*TWO_NODES, "training.strategy=parameter_server",
                                    "training.bucket_size_mib=25"]))
    assert ps.copy_s_per_byte == 0


def test_horovod_copies_each_fusion_buffer_in_and_out_around_its_allreduce():
    # Horovod under XLA: every gradient leaves at the end of backward, in one cycle, packed
    # into 64 MiB fusion buffers (ResNet-50: two, of 20 and 87 tensors); on Horovod's one
    # stream each buffer is copied in, allreduced and copied out in turn, so every copy
    # lengthens the wait after backward.
    on, off = _pair("training.framework=horovod", "workload.graph_compiler=xla")
    sim = build(on)
    with_copies, without = simulate(on), simulate(off)
    copies = 2 * float(sum(sim.costs.gradient_bytes)) * sim.copy_s_per_byte
    extra = with_copies.iteration_time_s - without.iteration_time_s
    assert extra == pytest.approx(copies, rel=0.02)
    assert with_copies.breakdown["exposed_communication_s"] - without.breakdown["exposed_communication_s"] == \
        pytest.approx(copies, rel=0.02)
    assert "bucket_copy_s" not in with_copies.breakdown  # the fusion loop's work, not the rank's compute


@pytest.mark.parametrize(("override", "needles"), [
    ("training.bucket_copies=sometimes", ["training.bucket_copies", "boolean"]),
])
def test_bad_values_are_one_error_line(capsys, override, needles):
    assert_one_error(*run_main(capsys, "simulate", "--set", override, "-q"), *needles)


def test_time_copying_is_not_also_blamed_on_communication():
    from simulator.attribution import _minus

    assert _minus([(0.0, 10.0), (12.0, 20.0)], [(2.0, 3.0), (5.0, 13.0), (19.0, 25.0)]) == \
        [(0.0, 2.0), (3.0, 5.0), (13.0, 19.0)]
    assert _minus([(1.0, 2.0)], []) == [(1.0, 2.0)] and _minus([(0.0, 5.0)], [(0.0, 5.0)]) == []
    # Copies inside the wait after backward (the last bucket's copy in) overlap the
    # collectives' intervals: the causes still add up to the lost speedup.
    on, _ = _pair()
    result = simulate(on)
    a = result.attribution
    assert a["seconds"]["bucket_copies"] > 0
    assert sum(a["speedup"].values()) == pytest.approx(a["lost_speedup"], rel=1e-9, abs=1e-9)

"""Framework presets (training.framework) and the new fields' bad values (exit 2)."""

from __future__ import annotations

import numpy as np
import pytest

from simulator import ScenarioError, load_scenario, simulate
from simulator.engine import _framework_launch_times, build
from simulator.frameworks import get_preset, list_frameworks

from .test_cli import run_main

EXPECTED = {"none", "tensorflow_ps", "tensorflow_replicated_nccl", "tensorflow_collective", "horovod", "pytorch_ddp",
            "mxnet_kvstore_device", "mxnet_dist_sync", "paddle", "oneflow", "deepspeed",
            "tf_cnn_benchmarks_ps"}


def flatten(prefix, value):
    if isinstance(value, dict):
        return [k for key, v in value.items() for k in flatten(f"{prefix}.{key}" if prefix else key, v)]
    return [prefix]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_preset_loads_and_cites_a_source_for_every_field_it_sets(name):
    assert EXPECTED <= set(list_frameworks())
    preset = get_preset(name)
    assert set(flatten("", preset["sets"])) <= set(preset["sources"])
    s = load_scenario({"training": {"framework": name}})
    for path in flatten("", preset["sets"]):
        node = s
        for part in path.split("."):
            node = getattr(node, part)
        value = preset["sets"]
        for part in path.split("."):
            value = value[part]
        assert node == value, path


def test_explicit_fields_win_over_the_preset():
    s = load_scenario({"training": {"framework": "horovod", "bucket_size_mib": 10,
                                    "parameter_servers": {"count": 3}}})
    assert (s.training.fusion, s.training.bucket_size_mib, s.training.fusion_cycle_ms) == ("horovod", 10, 5)
    ps = load_scenario({"training": {"framework": "mxnet_dist_sync", "parameter_servers": {"sharding": "round_robin"}}})
    assert ps.training.parameter_servers.sharding == "round_robin"
    assert ps.training.parameter_servers.local_aggregation is True  # from the preset
    # A dumped scenario re-validates to itself (the preset has nothing left to fill).
    assert type(ps).model_validate(ps.model_dump()) == ps


def test_no_preset_is_byte_identical_to_none():
    assert simulate(load_scenario(None)).to_json() == simulate(
        load_scenario(None, ["training.framework=none"])).to_json()


def test_ddp_first_bucket_is_small():
    # PyTorch DDP: the first bucket closes at 1 MiB, the others at 25 MiB.
    sim = build(load_scenario(None, ["training.framework=pytorch_ddp", "training.bucket_size_mib=null"]))
    grads = sim.costs.gradient_bytes[::-1]
    first = float(np.cumsum(grads[grads > 0])[np.argmax(np.cumsum(grads[grads > 0]) >= 2**20)])
    assert sim.buckets[0][1] == pytest.approx(first)
    assert 2**20 <= sim.buckets[0][1] < 25 * 2**20 <= sim.buckets[1][1]


def test_oneflow_groups_gradients_into_16_mib_buckets_launched_in_order_during_backward():
    # OneFlow's collective boxing: consecutive gradients (reverse layer order) fused up to
    # its 16 MiB threshold, each group launched when its last gradient is ready.
    sim = build(load_scenario(None, ["training.framework=oneflow"]))
    grads = sim.costs.gradient_bytes
    sizes = [b for _, b in sim.buckets]
    assert sum(sizes) == pytest.approx(25_557_032 * 4)
    assert all(size >= 16 * 2**20 for size in sizes[:-1])
    # a bucket overshoots 16 MiB by less than its last (largest possible) tensor
    assert all(size - 16 * 2**20 < grads.max() for size in sizes)
    launches = [t for t, _ in sim.buckets]
    assert launches == sorted(launches) and launches[-1] == pytest.approx(sim.costs.backward_s.sum())
    assert len(sizes) == 6  # ResNet-50's 97.5 MiB: five groups of 16-21 MiB and the 11.3 MiB rest
    assert sim.scenario.training.bucket_copies  # use_buffer: fused groups are copied in and out


def test_fp16_gradients_halve_the_bytes_on_the_wire():
    amp = build(load_scenario(None, ["workload.precision=amp"]))
    fp16 = build(load_scenario(None, ["workload.precision=amp", "training.gradient_precision=fp16"]))
    assert sum(b for _, b in amp.buckets) == pytest.approx(25_557_032 * 4)
    assert sum(b for _, b in fp16.buckets) == pytest.approx(25_557_032 * 2)


@pytest.mark.parametrize("precision, bytes_per_gradient", [("amp", 2), ("fp32", 4), ("fp16", 2), ("tf32", 4)])
def test_compute_precision_on_the_wire_casts_only_amp_gradients(precision, bytes_per_gradient):
    # tf_cnn_benchmarks' replicated mode all-reduces fp16 gradients when the model runs in
    # fp16 (amp here: fp32 parameters, fp16 compute) and fp32 ones otherwise.
    gpu = ["cluster.gpu=A100-SXM4-40GB"] if precision == "tf32" else []
    sim = build(load_scenario(None, [f"workload.precision={precision}", "training.gradient_precision=compute", *gpu]))
    assert sum(b for _, b in sim.buckets) == pytest.approx(25_557_032 * bytes_per_gradient)


def test_tensorflow_replicated_preset_sends_fp16_gradients_under_amp():
    tf = ["training.framework=tensorflow_replicated_nccl"]
    amp = build(load_scenario(None, [*tf, "workload.precision=amp"]))
    fp32 = build(load_scenario(None, [*tf, "workload.precision=fp32"]))
    assert sum(b for _, b in amp.buckets) == pytest.approx(25_557_032 * 2)
    assert sum(b for _, b in fp32.buckets) == pytest.approx(25_557_032 * 4)


def test_framework_thread_launches_buckets_one_after_another():
    class T:  # the two training fields the function reads
        launch_overhead_us = 50_000.0
        negotiation_us_per_tensor = 10_000.0

    class S:
        training = T()

    # Ready at 0.1, 0.1, 0.3 s with 1, 2, 1 tensors: each costs 0.05 + 0.01 x tensors.
    got = _framework_launch_times(S(), [(0.1, 1.0), (0.1, 2.0), (0.3, 3.0)], [1, 2, 1])
    assert [round(t, 12) for t, _ in got] == [0.16, 0.23, 0.36]


def test_negotiation_cost_lengthens_a_non_overlapped_iteration():
    # Two ranks, overlap off: after backward the framework launches the K buckets one
    # after another, 100 us each, while the launched ones synchronize (in order). The
    # first launch delays everything; later ones hide behind slower allreduces. So the
    # iteration grows by at least one launch and at most K of them.
    base = ["training.overlap=false", "training.bucket_size_mib=0", "cluster.nodes=1", "cluster.gpus_per_node=2",
            "cluster.server={layout: pcie_tree}"]
    calm = simulate(load_scenario(None, base), with_baseline=False)
    slow = simulate(load_scenario(None, base + ["training.negotiation_us_per_tensor=100"]), with_baseline=False)
    layers = len(build(load_scenario(None, base)).buckets)  # one tensor per bucket
    added = slow.iteration_time_s - calm.iteration_time_s
    assert 100e-6 * (1 - 1e-6) <= added <= layers * 100e-6
    # equal up to float rounding (the times are summed along different event paths)
    assert slow.breakdown["compute_s"] == pytest.approx(calm.breakdown["compute_s"], rel=1e-12)


BAD = [
    ("training.framework=nope", "unknown framework 'nope'"),
    ("training.parameter_servers.rpc_us=-1", "rpc_us"),
    ("training.parameter_servers.rpc_us=.nan", "rpc_us"),
    ("training.parameter_servers.tensor_us=.inf", "tensor_us"),
    ("training.parameter_servers.cores=0", "cores"),
    ("cluster.host_cores=0", "host_cores"),
    ("workload.data=jpeg", "workload.data"),
    ("workload.input_ms_per_sample=-1", "input_ms_per_sample"),
    ("workload.input_ms_per_sample=.nan", "input_ms_per_sample"),
    ("variability.iteration_cv=-0.1", "iteration_cv"),
    ("variability.iteration_cv=0.9", "iteration_cv"),
    ("variability.iteration_cv=.nan", "iteration_cv"),
    ("training.first_bucket_mib=-1", "first_bucket_mib"),
    ("training.gradient_precision=int8", "gradient_precision"),
    ("training.launch_overhead_us=-5", "launch_overhead_us"),
    ("training.negotiation_us_per_tensor=.inf", "negotiation_us_per_tensor"),
]


@pytest.mark.parametrize("override, needle", BAD)
def test_bad_values_are_refused(override, needle):
    with pytest.raises(ScenarioError, match=needle):
        load_scenario(None, [override])


def test_bad_framework_exits_2_with_one_message(capsys):
    code, out, err = run_main(capsys, "simulate", "--set", "training.framework=tensorflw")
    assert code == 2 and "Traceback" not in err
    assert "training.framework" not in err or "unknown framework 'tensorflw'" in err
    assert "unknown framework 'tensorflw' (did you mean 'tensorflow_ps'" in err
    assert "; known: deepspeed, horovod" in err


def test_one_gpu_pays_no_framework_launch_or_negotiation_cost():
    # One GPU synchronizes nothing, so the framework has no bucket to launch.
    from simulator import load_scenario, simulate

    base = {"cluster": {"nodes": 1, "gpus_per_node": 1}, "training": {"overlap": False}}
    costly = {"cluster": base["cluster"],
              "training": {"overlap": False, "negotiation_us_per_tensor": 100, "launch_overhead_us": 50}}
    for overlap in (True, False):
        base["training"]["overlap"] = costly["training"]["overlap"] = overlap
        plain, with_costs = simulate(load_scenario(base)), simulate(load_scenario(costly))
        assert with_costs.iteration_time_s == pytest.approx(plain.iteration_time_s, rel=1e-12)
        assert with_costs.iteration_time_s == pytest.approx(with_costs.breakdown["compute_s"], rel=1e-12)


@pytest.mark.parametrize("text, strategy, preset", [
    ("OneFlow 0.8 nn.Graph, NCCL", "ring_allreduce", "oneflow"),
    ("PyTorch DDP (NCCL)", "ring_allreduce", "pytorch_ddp"),
    ("TensorFlow + Horovod", "ring_allreduce", "horovod"),
    ("MXNet kvstore dist_sync", "parameter_server", "mxnet_dist_sync"),
    ("BytePS", "parameter_server", None),
])
def test_a_validation_rows_framework_text_names_its_preset(text, strategy, preset):
    from simulator.validation.run import preset_for_text

    assert preset_for_text(text, strategy) == preset

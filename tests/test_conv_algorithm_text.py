"""Which convolution algorithms a measured row's framework ran: autotuned, or cuDNN's heuristic.

MXNet autotuned cuDNN by default only from 2016-06-27 (#2538) to 2016-07-21 (b852065) and
again from v0.9.1 (2016-12-29, #3498); before that its convolutions ran what cuDNN's
heuristic query returns, which the model takes as precomputed implicit GEMM on every layer.
"""

from __future__ import annotations

import pytest

from simulator import load_scenario, simulate
from simulator.memory import scenario_algorithms
from simulator.validation.run import conv_algorithm_for_text, host_sync_layers_for_text, workload_for_text
from simulator.zoo import get_model


@pytest.mark.parametrize("text", [
    "MXNet (commit 0a03417, Dec 2016) example/image-classification/train_imagenet.py --benchmark 1",
    "MXNet (late 2016) example train_imagenet.py, kvstore device",
    "MXNet v0.8 train_imagenet.py",
    "MXNet (2016)",  # all of 2016 but three weeks ran the heuristic
])
def test_mxnet_dated_inside_the_no_autotune_window_runs_the_heuristic(text):
    assert conv_algorithm_for_text(text) == "precomputed_gemm"


@pytest.mark.parametrize("text", [
    "MXNet 1.2.0.rc1 example/image-classification/train_imagenet.py --benchmark 1",  # autotunes again
    "MXNet 0.9.3 (2017)",
    "MXNet 20.12 NGC, Horovod",
    "TensorFlow 1.15 tf_cnn_benchmarks, late 2016",  # TensorFlow autotunes by default
    "Torch7 (cudnn.torch), Dec 2016",
    None,
])
def test_every_other_row_keeps_the_autotuner(text):
    assert conv_algorithm_for_text(text) is None


def test_workload_for_text_writes_the_heuristic_into_a_generated_scenario():
    fields = workload_for_text("MXNet (late 2016) example train_imagenet.py, kvstore device", "resnet152", "fp32")
    assert fields["conv_algorithm"] == "precomputed_gemm"
    assert "conv_algorithm" not in workload_for_text("MXNet 1.2.0.rc1 train_imagenet.py", "resnet50", "fp32")


def _one_gpu(algorithm: str):
    return load_scenario({"name": f"m40-{algorithm}", "cluster": {"nodes": 1, "gpus_per_node": 1, "gpu": "M40"},
                          "workload": {"model": "resnet50", "batch_per_gpu": 32, "precision": "fp32",
                                       "conv_algorithm": algorithm}})


def test_the_heuristic_gives_up_winograd_and_costs_time_where_the_autotuner_took_it():
    auto, heuristic = _one_gpu("auto"), _one_gpu("precomputed_gemm")
    convs = sum(layer.kind == "conv" for layer in get_model("resnet50").layers)
    picked = scenario_algorithms(auto)
    assert 0 < picked.count("winograd") < convs  # the autotuner takes Winograd on some 3x3 stride-1 layers
    assert scenario_algorithms(heuristic).count("precomputed_gemm") == convs
    t_auto = simulate(auto, with_baseline=False).iteration_time_s
    t_heuristic = simulate(heuristic, with_baseline=False).iteration_time_s
    # Winograd (factor 0.55) beats precomputed GEMM (0.90) wherever it fits: the heuristic is slower,
    # by less than giving up Winograd's 0.55 on every conv would cost
    assert 1.0 < t_heuristic / t_auto < 0.90 / 0.55


@pytest.mark.parametrize(("text", "layers"), [
    ("MXNet (commit 0a03417, Dec 2016) example/image-classification/train_imagenet.py", 3),  # InitOpSegs
    ("MXNet (late 2016) example train_imagenet.py, kvstore device", 3),
    ("MXNet 1.2.0.rc1 example/image-classification/train_imagenet.py --benchmark 1", 15),  # bulk segments
    ("MXNet kvstore", 15),
    ("MXNet 20.12 NGC, Horovod (runner default kv-store=horovod), DALI data", None),  # asynchronous engine
    ("TensorFlow 1.15 tf_cnn_benchmarks", None),
    ("PyTorch 21.03 NGC, DDP (NCCL)", None),
])
def test_mxnets_engine_waits_for_the_gpu_after_each_segment(text, layers):
    assert host_sync_layers_for_text(text) == layers
    assert workload_for_text(text, "resnet50", "fp32").get("host_sync_layers") == layers

"""``workload.optimizer_kernels``: how many kernels the optimizer step launches, and what they move.

The step moves a fixed number of fp32 words per parameter when one kernel does the whole
update; written per tensor it launches once per parameter tensor, and written as
element-wise ops (Google's BERT ``AdamWeightDecayOptimizer``) it launches 17 kernels per
tensor moving 39 words per parameter (under XLA: one fused kernel plus one ``Assign`` copy
per state tensor written)."""

from __future__ import annotations

import typing

import pytest

from simulator import compute, load_scenario
from simulator.catalog import get_gpu
from simulator.engine import build
from simulator.errors import ScenarioError
from simulator.optimizer_step import (
    AMP_MASTER_COPY_WORDS,
    ELEMENTWISE_STEPS,
    OPTIMIZER_KERNELS,
    OPTIMIZER_WORDS,
    master_copies_at_step,
    master_copies_per_layer,
    step_launches_and_words,
)
from simulator.scenario import WorkloadSpec
from simulator.validation.run import optimizer_for_text, optimizer_kernels_for_text, workload_for_text
from simulator.zoo import get_model
from simulator.zoo.core import Layer
from simulator.zoo.model_file import layer_to_data, model_from_data

GPU = get_gpu("V100-SXM2-16GB")
MEM_EFF, OVERHEAD = 0.8, 20e-6
BANDWIDTH = GPU.memory_bandwidth_gbytes_s * 1e9 * MEM_EFF


def _optimizer_s(model, optimizer: str, kernels: str, compiled: bool = False, precision: str = "fp32") -> float:
    return compute.roofline_costs(model, GPU, precision=precision, batch=2, compute_efficiency=0.5,
                                  memory_efficiency=MEM_EFF, layer_overhead_s=OVERHEAD, optimizer=optimizer,
                                  optimizer_kernels=kernels, optimizer_compiled=compiled).optimizer_s


@pytest.mark.parametrize(("model", "tensors"), [
    # len(list(model.parameters())) of torchvision's and Hugging Face's same networks (Inception-v3
    # without its auxiliary head, BertModel with its pooler)
    ("resnet50", 161), ("vgg16", 32), ("alexnet", 16), ("inception_v3", 284), ("resnet152", 467),
    ("bert_base", 199), ("bert_large", 391), ("gpt2", 148),
])
def test_parameter_tensors_are_counted_as_frameworks_hold_them(model, tensors):
    assert get_model(model).parameter_tensors == tensors


def test_the_optimizer_step_in_closed_form_for_each_way_of_writing_it():
    model = get_model("bert_large")
    params, tensors = model.total_params, model.parameter_tensors
    fused_bytes = params * 4 * OPTIMIZER_WORDS["adam"]
    assert _optimizer_s(model, "adam", "multi_tensor") == pytest.approx(OVERHEAD + fused_bytes / BANDWIDTH)
    assert _optimizer_s(model, "adam", "per_tensor") == pytest.approx(tensors * OVERHEAD + fused_bytes / BANDWIDTH)
    # Google's AdamWeightDecay as TensorFlow ops: 17 kernels and 39 words per tensor
    assert ELEMENTWISE_STEPS["adam"] == (17, 39)
    assert _optimizer_s(model, "adam", "elementwise") == pytest.approx(
        17 * tensors * OVERHEAD + params * 4 * 39 / BANDWIDTH)
    # under XLA: one fused kernel reading g, m, v, p and writing p, m, v, then three Assign copies
    assert _optimizer_s(model, "adam", "elementwise", compiled=True) == pytest.approx(
        4 * tensors * OVERHEAD + params * 4 * (7 + 6) / BANDWIDTH)
    # on BERT-large (391 tensors, 335M parameters) the element-wise step under XLA costs the
    # V100 about 42 ms more than one fused kernel, most of it the 1,564 launches
    extra = _optimizer_s(model, "adam", "elementwise", compiled=True) - _optimizer_s(model, "adam", "multi_tensor")
    assert 0.040 < extra < 0.044


def _costs(model, kernels: str, precision: str):
    return compute.roofline_costs(model, GPU, precision=precision, batch=2, compute_efficiency=0.5,
                                  memory_efficiency=MEM_EFF, layer_overhead_s=OVERHEAD, optimizer="adam",
                                  optimizer_kernels=kernels)


def test_amp_converts_every_parameter_twice_per_step_in_closed_form():
    """fp32 master weight -> fp16 copy (read 4 B, write 2 B) and fp16 gradient -> fp32
    gradient (read 2 B, write 4 B): 12 bytes per parameter. Beside a multi-tensor optimizer
    (apex's O2) two multi-tensor passes at the step; else a cast per parameter tensor of each
    dense layer, in its forward and in its backward."""
    model = get_model("bert_large")
    params = model.total_params
    assert AMP_MASTER_COPY_WORDS * 4 == 12
    step = _costs(model, "multi_tensor", "amp").optimizer_s - _costs(model, "multi_tensor", "fp32").optimizer_s
    assert step == pytest.approx(2 * OVERHEAD + params * 12 / BANDWIDTH)
    # BERT-large's 335M parameters: 4.0 GB at 0.8 x 900 GB/s, 5.6 ms a step on the V100
    assert 0.0055 < step < 0.0057
    assert master_copies_at_step(model, "amp", "multi_tensor") == (2, 3.0)
    amp, fused = _costs(model, "per_tensor", "amp"), _costs(model, "multi_tensor", "amp")
    assert amp.optimizer_s == pytest.approx(_costs(model, "per_tensor", "fp32").optimizer_s)  # nothing at the step
    qkv = next(i for i, layer in enumerate(model.layers) if layer.name == "encoder.layer.0.attention.self.qkv")
    layer = model.layers[qkv]
    assert (layer.params, layer.parameter_tensor_count) == (1024 * 3072 + 3072, 6)  # q, k, v weights and biases
    cast_s = 6 * OVERHEAD + layer.params * 6 / BANDWIDTH
    assert amp.forward_s[qkv] - fused.forward_s[qkv] == pytest.approx(cast_s)
    assert amp.backward_s[qkv] - fused.backward_s[qkv] == pytest.approx(cast_s)
    assert master_copies_per_layer(layer, "amp", "per_tensor") == (6, layer.params * 6)
    # norms and embeddings keep their fp32 parameters: nothing cast
    for kind in ("layernorm", "embedding"):
        i = next(i for i, layer in enumerate(model.layers) if layer.kind == kind)
        assert (amp.forward_s[i], amp.backward_s[i]) == (fused.forward_s[i], fused.backward_s[i])
    # in all: 12 bytes per parameter of the dense layers, one launch per tensor each way
    dense = [i for i, layer in enumerate(model.layers) if layer.gemm is not None and layer.params]
    tensors = sum(model.layers[i].parameter_tensor_count for i in dense)
    assert (amp.forward_s + amp.backward_s - fused.forward_s - fused.backward_s).sum() == pytest.approx(
        2 * tensors * OVERHEAD + sum(model.layers[i].params for i in dense) * 12 / BANDWIDTH)
    # no master weights, nothing to convert: pure fp16, bf16 and fp32 pay none
    for precision in ("fp16", "bf16", "fp32"):
        assert master_copies_at_step(model, precision, "multi_tensor") == (0, 0.0)
        assert master_copies_per_layer(layer, precision, "per_tensor") == (0, 0.0)


def test_plain_sgd_written_per_tensor_moves_no_more_bytes():
    model = get_model("resnet50")
    assert step_launches_and_words(model, "sgd", "elementwise", compiled=False) == (161, 3)
    assert step_launches_and_words(model, "momentum", "elementwise", compiled=False) == (3 * 161, 8)
    assert step_launches_and_words(model, "momentum", "per_tensor", compiled=True) == (161, 5)  # nothing to fuse
    with pytest.raises(ValueError, match="optimizer_kernels"):
        step_launches_and_words(model, "sgd", "per_layer", compiled=False)


def _scenario(**workload):
    return load_scenario({"name": "opt", "cluster": {"nodes": 1, "gpus_per_node": 1, "gpu": "V100-SXM2-16GB"},
                          "workload": {"model": "bert_base", "batch_per_gpu": 4, "optimizer": "adam", **workload},
                          "simulation": {"iterations": 1, "warmup_iterations": 0}})


def test_the_scenario_field_reaches_the_costs_and_rejects_unknown_values():
    fused = build(_scenario()).costs
    tf = build(_scenario(optimizer_kernels="elementwise")).costs
    xla = build(_scenario(optimizer_kernels="elementwise", graph_compiler="xla")).costs
    assert fused.optimizer_s < xla.optimizer_s < tf.optimizer_s
    assert (tf.forward_s == fused.forward_s).all()  # the layers are not touched
    with pytest.raises(ScenarioError, match="workload.optimizer_kernels"):
        _scenario(optimizer_kernels="per_layer")
    assert set(typing.get_args(WorkloadSpec.model_fields["optimizer_kernels"].annotation)) == set(OPTIMIZER_KERNELS)


def test_framework_text_names_tensorflow_per_tensor_and_its_bert_elementwise():
    assert optimizer_kernels_for_text("TensorFlow tf_cnn_benchmarks, replicated variables", "resnet50") == "per_tensor"
    assert optimizer_kernels_for_text("TensorFlow 19.03 NGC, Horovod (NCCL); run_squad.sh", "bert_large") \
        == "elementwise"
    assert optimizer_kernels_for_text("PyTorch 19.07 NGC, DDP/apex (NCCL), LAMB optimizer", "bert_large") is None
    assert optimizer_kernels_for_text("MXNet 1.5.0 (NGC 19.07), DALI, AMP", "resnet50") is None


def test_framework_text_names_mxnet_outside_nvidia_containers_per_tensor():
    # Module._update_params: one sgd_mom_update per weight
    assert optimizer_kernels_for_text("MXNet 1.2.0.rc1 train_imagenet.py --benchmark 1", "resnet50") == "per_tensor"
    assert optimizer_kernels_for_text("MXNet (late 2016) train_imagenet.py, kvstore device", "inception_v3") \
        == "per_tensor"
    assert optimizer_kernels_for_text("MXNet 20.12 NGC, Horovod", "resnet50") is None


def test_framework_text_and_model_name_the_optimizer_of_a_row():
    assert optimizer_for_text("PyTorch 19.07 NGC, DDP/apex (NCCL), LAMB optimizer, FP32", "bert_large") == "adam"
    assert optimizer_for_text("TensorFlow 19.03 NGC, Horovod (NCCL)", "bert_large") == "adam"  # every BERT here
    assert optimizer_for_text("TensorFlow tf_cnn_benchmarks", "resnet50") is None  # momentum, the default
    assert optimizer_for_text("Lambda Labs tf_cnn_benchmarks", "resnet50") is None  # "lambda" is not LAMB


def test_one_helper_gives_every_workload_field_a_rows_text_implies():
    text = "TensorFlow 19.03 NGC, Horovod (NCCL); run_squad.sh (XLA enabled by default per README), FP16"
    assert workload_for_text(text, "bert_large", "amp") == {
        "kernel_fusion": "norm_activation", "graph_compiler": "xla", "fork_gradients": "fused", "optimizer": "adam",
        "optimizer_kernels": "elementwise"}
    assert workload_for_text("PyTorch 21.03 NGC, DDP (NCCL)", "resnet50", "amp") == {}  # every default kept


def test_a_model_file_states_parameter_tensors_and_an_export_keeps_them():
    bert = get_model("bert_base", sequence_length=128)
    exported = model_from_data({"name": "b", "sample_unit": "sequences", "input_shape": [128],
                                "layers": [layer_to_data(layer) for layer in bert.layers]})
    assert exported.layers == bert.layers and exported.parameter_tensors == 199
    assert sum("parameter_tensors" in layer_to_data(layer) for layer in bert.layers) == 12  # the fused q, k, v
    with pytest.raises(ValueError, match="parameter_tensors"):
        Layer("x", "relu", 0, 0, 1, 1, parameter_tensors=2)  # no parameters, no tensors

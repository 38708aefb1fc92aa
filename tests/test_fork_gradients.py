"""``workload.fork_gradients``: summing the gradients of a tensor several layers read.

The zoo marks forks where they are (a residual block's input, an Inception module's
input); the summing is memory-bound work on the fork's producer, in closed form per
framework style: one kernel reading every gradient and writing the sum (autograd,
AddN), a copy and an in-place add per extra branch (Lua Torch's ``nn.ConcatTable``), or
only the extra reads inside the consuming kernel (XLA)."""

from __future__ import annotations

import pytest
import yaml

from simulator import compute, load_scenario
from simulator import kernel_efficiency as ke
from simulator.catalog import get_gpu
from simulator.engine import build
from simulator.errors import ScenarioError
from simulator.validation.run import fork_gradients_for_text
from simulator.zoo import get_model
from simulator.zoo.core import Layer
from simulator.zoo.model_file import layer_to_data, model_from_data

GPU = get_gpu("V100-SXM2-16GB")
BATCH, MEM_EFF, OVERHEAD = 32, 0.8, 12e-6
BANDWIDTH = GPU.memory_bandwidth_gbytes_s * 1e9 * MEM_EFF


def _costs(model, fork_gradients, precision="fp32") -> compute.ComputeCosts:
    return compute.roofline_costs(model, GPU, precision=precision, batch=BATCH, compute_efficiency=0.7,
                                  memory_efficiency=MEM_EFF, layer_overhead_s=OVERHEAD, optimizer="sgd",
                                  fork_gradients=fork_gradients)


def _forks(model) -> dict[str, tuple[int, int]]:
    return {layer.name: (layer.output_consumers, layer.output_elements)
            for layer in model.layers if layer.output_consumers > 1}


def test_the_zoo_marks_every_residual_and_inception_fork_at_its_producer():
    resnet = _forks(get_model("resnet50"))
    # one fork per bottleneck (16), at the block's input: the stem's pool, then each block's last ReLU
    assert len(resnet) == 16 and set(c for c, _ in resnet.values()) == {2}
    assert resnet["maxpool"] == (2, 64 * 56 * 56)
    assert resnet["layer1.2.relu3"] == (2, 256 * 56 * 56)  # read by layer2.0's conv1 and its downsample
    assert "layer4.2.relu3" not in resnet  # the last block's output goes to the pool alone
    inception = _forks(get_model("inception_v3"))
    assert inception["maxpool2"][0] == 4 and inception["Mixed_5b.concat"][0] == 4  # four branches
    assert _forks(get_model("vgg16")) == {}
    bert = _forks(get_model("bert_large", sequence_length=128))
    assert len(bert) == 2 * 24 and set(c for c, _ in bert.values()) == {2}  # two residuals per layer


@pytest.mark.parametrize("style, passes, kernels", [
    ("sum", 3, 1),  # read two gradients, write their sum
    ("copy_add", 5, 2),  # copy one (read, write), add the other in place (read two, write)
    ("fused", 1, 0),  # the consuming kernel reads the second gradient
])
def test_a_two_way_fork_costs_its_style_in_closed_form(style, passes, kernels):
    model = get_model("resnet18")
    names = [layer.name for layer in model.layers]
    free, costed = _costs(model, None), _costs(model, style)
    fork = names.index("layer1.0.relu2")
    elements = model.layers[fork].output_elements
    assert model.layers[fork].output_consumers == 2
    extra = costed.backward_s[fork] - free.backward_s[fork]
    assert extra == pytest.approx(kernels * OVERHEAD + passes * elements * BATCH * 4 / BANDWIDTH, rel=1e-12)
    # nothing else moves: the forward pass, and every layer that is not a fork's producer
    assert (costed.forward_s == free.forward_s).all()
    others = [i for i, layer in enumerate(model.layers) if layer.output_consumers == 1]
    assert (costed.backward_s[others] == free.backward_s[others]).all()


def test_a_four_way_fork_reads_every_gradient_once_per_style():
    layer = get_model("inception_v3").layers[0]
    four = Layer("fork", "relu", 0, 0, 10, 10, output_consumers=4)
    assert ke.fork_gradient_traffic(four, "sum") == (5 * 10, 1)  # read 4, write 1
    assert ke.fork_gradient_traffic(four, "copy_add") == (11 * 10, 4)  # copy (2) + 3 adds (3 each)
    assert ke.fork_gradient_traffic(four, "fused") == (3 * 10, 0)
    assert ke.fork_gradient_traffic(layer, "sum") == (0.0, 0)  # read by one layer: nothing to sum
    with pytest.raises(ValueError, match="fork_gradients"):
        ke.fork_gradient_traffic(four, "tree")


def test_activation_gradients_move_in_the_activation_precision():
    model = get_model("resnet18")
    fork = [layer.name for layer in model.layers].index("layer2.1.relu2")
    elements = model.layers[fork].output_elements
    free, costed = _costs(model, None, "amp"), _costs(model, "sum", "amp")
    assert costed.backward_s[fork] - free.backward_s[fork] == pytest.approx(
        OVERHEAD + 3 * elements * BATCH * 2 / BANDWIDTH, rel=1e-12)


def _scenario(**workload):
    return load_scenario({"name": "fork", "cluster": {"nodes": 1, "gpus_per_node": 1, "gpu": "V100-SXM2-16GB"},
                          "workload": {"model": "resnet50", "batch_per_gpu": 32, **workload}})


def test_the_default_is_fused_under_xla_and_a_sum_otherwise():
    assert _scenario().workload.fork_gradients_style == "sum"
    assert _scenario(graph_compiler="xla").workload.fork_gradients_style == "fused"
    assert _scenario(graph_compiler="xla", fork_gradients="sum").workload.fork_gradients_style == "sum"
    summed = build(_scenario()).costs.backward_s.sum()
    copied = build(_scenario(fork_gradients="copy_add")).costs.backward_s.sum()
    fused = build(_scenario(fork_gradients="fused")).costs.backward_s.sum()
    assert fused < summed < copied


def test_an_unknown_style_is_refused_naming_the_field():
    with pytest.raises(ScenarioError, match="workload.fork_gradients"):
        _scenario(fork_gradients="tree")


@pytest.mark.parametrize("text, style", [
    ("Torch7, cuDNN 5.1", "copy_add"),
    ("Lua Torch (fb.resnet.torch)", "copy_add"),
    ("TensorFlow 1.15 (NGC 20.06-tf1), Horovod/NCCL, XLA on, FP32", "fused"),
    ("MXNet 20.12 NGC, Horovod, DALI data, FP32", "fused"),  # the runner sets MXNET_EXEC_ENABLE_ADDTO=1
    ("PyTorch 21.03 NGC, DDP (NCCL)", None),
    ("TensorFlow 1.x tf_cnn_benchmarks", None),
])
def test_the_framework_text_names_its_style(text, style):
    assert fork_gradients_for_text(text) == style


def test_a_model_file_counts_its_forks_from_the_inputs_it_names(tmp_path):
    data = {"name": "two_blocks", "sample_unit": "images", "input_shape": [8, 16, 16], "layers": [
        {"name": "conv", "kind": "conv", "out_channels": 8, "kernel": 3, "padding": 1},
        {"name": "relu", "kind": "relu"},
        {"name": "branch", "kind": "conv", "out_channels": 8, "kernel": 3, "padding": 1},
        {"name": "flat_view", "kind": "reshape", "shape": [8, 16, 16], "input": "relu"},
        {"name": "add", "kind": "add", "inputs": ["branch", "flat_view"]},
    ]}
    model = model_from_data(data)
    assert _forks(model) == {"relu": (2, 8 * 16 * 16)}  # read by branch, and by add through a view
    # a layer given by numbers keeps a fork it states, so an exported zoo model is the same model
    resnet = get_model("resnet18")
    exported = model_from_data({"name": "r18", "sample_unit": "images", "input_shape": [3, 224, 224],
                                "layers": [layer_to_data(layer) for layer in resnet.layers]})
    assert exported.layers == resnet.layers
    assert yaml.safe_dump(layer_to_data(resnet.layers[3])).count("output_consumers") == 1  # the stem's pool


def test_a_layer_needs_at_least_one_consumer():
    with pytest.raises(ValueError, match="output_consumers"):
        Layer("x", "relu", 0, 0, 1, 1, output_consumers=0)

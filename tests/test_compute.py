"""Roofline compute costs and gradient buckets."""

from __future__ import annotations

import numpy as np
import pytest

from simulator import catalog, zoo
from simulator.compute import gradient_buckets, roofline_costs


def costs(model="vgg16", gpu="V100-SXM2-16GB", precision="fp32", batch=32, **kw):
    args = dict(compute_efficiency=0.5, memory_efficiency=0.8, layer_overhead_s=0.0, optimizer="momentum")
    args.update(kw)
    return roofline_costs(zoo.get_model(model), catalog.get_gpu(gpu), precision=precision, batch=batch, **args)


def test_compute_bound_layer_takes_flops_over_effective_peak():
    model = zoo.get_model("vgg16")
    i = next(i for i, layer in enumerate(model.layers) if layer.name.endswith("features.2"))
    layer = model.layers[i]
    assert layer.kind == "conv"
    c = costs()
    # 32 x 3.7 GFLOP on 15.7 TFLOP/s at 50% (this conv is far from memory bound).
    assert c.forward_s[i] == pytest.approx(32 * layer.forward_flops / (15.7e12 * 0.5), rel=1e-9)
    assert c.backward_s[i] == pytest.approx(2 * c.forward_s[i], rel=1e-9)


def test_memory_bound_layer_takes_bytes_over_effective_bandwidth():
    model = zoo.get_model("resnet50")
    i = next(i for i, layer in enumerate(model.layers) if layer.kind == "relu")
    layer = model.layers[i]
    c = costs(model="resnet50")
    expected = 32 * (layer.input_elements + layer.output_elements) * 4 / (900e9 * 0.8)
    assert c.forward_s[i] == pytest.approx(expected, rel=1e-9)


def test_tensor_cores_speed_up_matrix_layers_by_the_peak_ratio():
    fp32, amp = costs(precision="fp32"), costs(precision="amp")
    model = zoo.get_model("vgg16")
    i = next(i for i, layer in enumerate(model.layers) if layer.name.endswith("features.2"))
    assert fp32.forward_s[i] / amp.forward_s[i] == pytest.approx(125 / 15.7, rel=1e-6)
    # amp keeps fp32 gradients; fp16 halves them.
    assert amp.gradient_bytes.sum() == 4 * model.total_params
    assert costs(precision="fp16").gradient_bytes.sum() == 2 * model.total_params


def test_first_weighted_layer_skips_input_gradient():
    # VGG-16's first conv: backward computes only the weight gradient (1x forward
    # FLOPs) and is memory bound: 2 x (input + output) activations + read W, write dW.
    layer = zoo.get_model("vgg16").layers[0]
    flops_time = 32 * layer.forward_flops / (15.7e12 * 0.5)
    bytes_time = (2 * 32 * (layer.input_elements + layer.output_elements) * 4 + 2 * layer.params * 4) / (900e9 * 0.8)
    assert bytes_time > flops_time
    assert costs().backward_s[0] == pytest.approx(bytes_time, rel=1e-9)
    # ... while the second conv, with an input gradient, costs 2x its forward FLOPs.
    assert costs(batch=1, memory_efficiency=1.0).backward_s[2] == pytest.approx(
        2 * zoo.get_model("vgg16").layers[2].forward_flops / (15.7e12 * 0.5), rel=1e-9
    )


def test_optimizer_step_moves_five_words_per_parameter_for_momentum():
    params = zoo.get_model("vgg16").total_params
    assert costs().optimizer_s == pytest.approx(params * 4 * 5 / (900e9 * 0.8), rel=1e-9)
    assert costs(optimizer="adam").optimizer_s == pytest.approx(params * 4 * 7 / (900e9 * 0.8), rel=1e-9)


def test_overhead_is_added_per_layer_and_pass():
    base, slow = costs(), costs(layer_overhead_s=1e-5)
    n = len(base.forward_s)
    assert slow.forward_s.sum() - base.forward_s.sum() == pytest.approx(n * 1e-5, rel=1e-9)


def test_buckets_fill_in_reverse_order_and_close_at_the_cap():
    grads = np.array([10.0, 0.0, 30.0, 5.0, 20.0])
    # Reverse: 20 -> bucket (4, 20)? cap 25: 20 < 25, +5 = 25 >= 25 closes at layer 3;
    # then 30 >= 25 closes at layer 2; the remaining 10 closes with layer 0.
    assert gradient_buckets(grads, 25.0) == [(3, 25.0), (2, 30.0), (0, 10.0)]
    assert gradient_buckets(grads, 0.0) == [(4, 20.0), (3, 5.0), (2, 30.0), (0, 10.0)]
    assert sum(b for _, b in gradient_buckets(grads, 1e9)) == grads.sum()


def test_horovod_fusion_packs_what_is_ready_at_each_cycle():
    # Forward order grads [10, 20, 30, 40] bytes, 1 s of backward each: ready (reverse)
    # at 1, 2, 3, 4 s. Cycle 2.5 s: tick 2.5 takes layers 3 and 2, tick 5 layers 1 and 0;
    # a 50-byte cap splits the first tick's 40 + 30.
    from simulator.compute import fusion_buckets

    grads, backward = np.array([10.0, 20.0, 30.0, 40.0]), np.ones(4)
    assert fusion_buckets(grads, backward, 2.5, 1e9) == [(2.5, 70.0), (5.0, 30.0)]
    assert fusion_buckets(grads, backward, 2.5, 50.0) == [(2.5, 40.0), (2.5, 30.0), (5.0, 30.0)]
    # A cycle shorter than any layer sends each gradient at the first tick after it is ready.
    assert fusion_buckets(grads, backward, 0.4, 1e9) == [(pytest.approx(1.2), 40.0), (pytest.approx(2.0), 30.0),
                                                         (pytest.approx(3.2), 20.0), (pytest.approx(4.0), 10.0)]

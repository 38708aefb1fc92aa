"""Specifies the per-layer compute costs (closed forms of the shape-aware roofline:
arithmetic at the quantized GEMM rate, bytes at the achievable bandwidth, launches per
kernel, the optimizer step's traffic) and the gradient bucketing of DDP and Horovod."""

from __future__ import annotations

import numpy as np
import pytest

from simulator import catalog, compute, zoo
from simulator import kernel_efficiency as ke
from simulator.compute import gradient_buckets, roofline_costs


def costs(model="vgg16", gpu="V100-SXM2-16GB", precision="fp32", batch=32, **kw):
    args = dict(compute_efficiency=0.5, memory_efficiency=0.8, layer_overhead_s=0.0, optimizer="momentum")
    args.update(kw)
    return roofline_costs(zoo.get_model(model), catalog.get_gpu(gpu), precision=precision, batch=batch, **args)


@pytest.fixture
def plain_roofline(monkeypatch):
    """No overlap loss: a layer takes the longer of its arithmetic and memory time."""
    monkeypatch.setattr(ke, "OVERLAP_LOSS", 0.0)


def _quantized(gemm: ke.Gemm) -> float:
    return ke.gemm_efficiency(gemm, catalog.get_gpu("V100-SXM2-16GB").sm_count)


def _vgg_conv2():
    model = zoo.get_model("vgg16")
    i = next(i for i, layer in enumerate(model.layers) if layer.name.endswith("features.2"))
    return i, model.layers[i]


def test_compute_bound_layer_takes_flops_over_effective_peak_and_its_shape(plain_roofline):
    i, layer = _vgg_conv2()
    assert layer.kind == "conv"
    c = costs()
    # 32 x 3.7 GFLOP on 15.7 TFLOP/s at 50%, at the efficiency of its GEMM shape (this
    # conv is far from memory bound)
    fwd = ke.forward_gemm(layer.gemm, 32)
    assert fwd.flops == pytest.approx(32 * layer.forward_flops, rel=1e-3)  # all but the bias adds
    assert c.forward_s[i] == pytest.approx(fwd.flops / (15.7e12 * 0.5 * _quantized(fwd)), rel=1e-9)
    dgrad, wgrad = ke.backward_gemms(layer.gemm, 32, input_gradient=True)
    # the weight-gradient kernel runs WGRAD_FACTOR slower than a forward product
    assert c.backward_s[i] == pytest.approx(
        dgrad.flops / (15.7e12 * 0.5 * _quantized(dgrad))
        + ke.WGRAD_FACTOR * wgrad.flops / (15.7e12 * 0.5 * _quantized(wgrad)), rel=1e-9)
    # both gradients cost one forward's arithmetic each
    assert dgrad.flops == wgrad.flops == fwd.flops


def test_memory_bound_layer_takes_bytes_over_effective_bandwidth():
    model = zoo.get_model("resnet50")
    i = next(i for i, layer in enumerate(model.layers) if layer.kind == "relu")
    layer = model.layers[i]
    c = costs(model="resnet50")
    expected = 32 * (layer.input_elements + layer.output_elements) * 4 / (900e9 * 0.8)
    assert c.forward_s[i] == pytest.approx(expected, rel=1e-9)


def test_tensor_cores_speed_up_matrix_layers_by_the_peak_ratio(plain_roofline):
    fp32, amp = costs(precision="fp32"), costs(precision="amp")
    model = zoo.get_model("vgg16")
    i, _ = _vgg_conv2()
    assert fp32.forward_s[i] / amp.forward_s[i] == pytest.approx(125 / 15.7, rel=1e-6)
    # amp keeps fp32 gradients; fp16 halves them.
    assert amp.gradient_bytes.sum() == 4 * model.total_params
    assert costs(precision="fp16").gradient_bytes.sum() == 2 * model.total_params


def test_first_weighted_layer_skips_input_gradient(plain_roofline):
    # VGG-16's first conv: backward computes only the weight gradient (1x forward
    # FLOPs); its bytes: 2 x (input + output) activations + read W, write dW.
    layer = zoo.get_model("vgg16").layers[0]
    (wgrad,) = ke.backward_gemms(layer.gemm, 32, input_gradient=False)
    flops_time = ke.WGRAD_FACTOR * wgrad.flops / (15.7e12 * 0.5 * _quantized(wgrad))
    bytes_time = (2 * 32 * (layer.input_elements + layer.output_elements) * 4 + 2 * layer.params * 4) / (900e9 * 0.8)
    # a 27 x 64 weight gradient fills few tiles: its reduction over the batch's pixels
    # is split across the SMs, and the layer is bound by whichever term is longer
    assert costs().backward_s[0] == pytest.approx(max(bytes_time, flops_time), rel=1e-9)
    # ... while the second conv, with an input gradient, runs two products
    second = zoo.get_model("vgg16").layers[2]
    assert len(ke.backward_gemms(second.gemm, 1, input_gradient=True)) == 2
    assert costs(batch=1, memory_efficiency=1.0).backward_s[2] == pytest.approx(
        sum(g.flops / (15.7e12 * 0.5 * _quantized(g)) * (ke.WGRAD_FACTOR if j else 1.0)
            for j, g in enumerate(ke.backward_gemms(second.gemm, 1, True))), rel=1e-9
    )


def test_optimizer_step_moves_five_words_per_parameter_for_momentum():
    params = zoo.get_model("vgg16").total_params
    assert costs().optimizer_s == pytest.approx(params * 4 * 5 / (900e9 * 0.8), rel=1e-9)
    assert costs(optimizer="adam").optimizer_s == pytest.approx(params * 4 * 7 / (900e9 * 0.8), rel=1e-9)


def test_overhead_is_added_per_kernel_launched():
    model = zoo.get_model("resnet50")
    base, slow = costs(model="resnet50"), costs(model="resnet50", layer_overhead_s=1e-5)
    n = len(model.layers)
    # one kernel per layer forward
    assert slow.forward_s.sum() - base.forward_s.sum() == pytest.approx(n * 1e-5, rel=1e-9)
    # backward: data + weight gradient per matrix layer (weight only for the first),
    # a residual add's backward launches nothing, each of the 16 blocks' input gradients
    # is summed by one kernel (workload.fork_gradients: sum)
    matrix = sum(1 for layer in model.layers if layer.gemm is not None)
    adds = sum(1 for layer in model.layers if layer.kind == "add")
    forks = sum(1 for layer in model.layers if layer.output_consumers > 1)
    assert forks == 16
    others = n - matrix - adds
    kernels = 2 * matrix - 1 + others + forks
    assert slow.backward_s.sum() - base.backward_s.sum() == pytest.approx(kernels * 1e-5, rel=1e-9)


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


def test_fp16_on_a_card_without_tensor_cores_defaults_to_the_cuda_core_efficiency():
    """A P100's fp16 runs as half2 arithmetic on its CUDA cores: the default share of
    peak is the CUDA cores' 0.85, not the tensor cores' 0.5 (which a V100 gets)."""
    from simulator.compute import DEFAULT_EFFICIENCY, default_compute_efficiency, device_rates
    from simulator.loading import load_scenario
    from simulator.resolved import resolve

    assert DEFAULT_EFFICIENCY == {"cuda_cores": 0.85, "tensor_cores": 0.5}
    assert default_compute_efficiency("fp16", "Pascal") == 0.85
    assert default_compute_efficiency("amp", "Volta") == 0.5
    assert default_compute_efficiency("fp16") == 0.5  # a profiled device: by precision alone
    assert default_compute_efficiency("fp32", "Volta") == 0.85
    for gpu, expected in (("P100-SXM2-16GB", 0.85), ("V100-SXM2-16GB", 0.5)):
        scenario = load_scenario({"cluster": {"gpu": gpu}, "workload": {"model": "resnet50", "precision": "fp16"}})
        assert resolve(scenario).compute_efficiency == expected
    p100 = catalog.get_gpu("P100-SXM2-16GB")
    rates = device_rates(p100, "fp16", 0.75, 1.0, 0.0)
    # 21.2 TFLOP/s of half2 peak x 0.75 x the issue share of a 32-lane scheduler (1 - 0.3) = 11.1,
    # twice its fp32 GEMM rate
    share = compute.fma_issue_share(p100)
    assert share == pytest.approx(1 - compute.NON_FMA_ISSUE_SHARE)
    assert rates.matrix_flops_s == pytest.approx(p100.peak_flops("fp16") * 0.75 * share)
    assert rates.matrix_flops_s / 1e12 == pytest.approx(21.2 * 0.75 * share, abs=0.05)

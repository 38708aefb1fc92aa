"""Specifies the shape-aware layer-time model (``simulator/kernel_efficiency.py``):
GEMM tile, wave and k quantization against closed forms, memory-bound layers as bytes
over achievable bandwidth plus launch overhead, where Winograd applies, the
latency-bound regime of small batches, and the catalog data the model reads."""

from __future__ import annotations

import math

import pytest

from simulator import algorithms, compute, load_scenario, memory
from simulator import kernel_efficiency as ke
from simulator.catalog import GPUS, get_gpu
from simulator.engine import build
from simulator.zoo import GemmShape, Layer, get_model


@pytest.fixture
def one_tile(monkeypatch):
    """Only the 128x128 tile, so quantization has one closed form."""
    monkeypatch.setattr(ke, "TILES", ((128, 128, 1.0),))


def test_gemm_that_fills_whole_waves_of_whole_tiles_runs_at_the_large_gemm_rate(one_tile):
    # 80 SMs, 160 tiles of 128x128 = exactly two waves; k a multiple of K_STEP: the
    # only loss is the tile's prologue/epilogue, k / (k + K_OVERHEAD).
    k = 4096
    gemm = ke.Gemm(1, 128 * 16, 128 * 10, k)
    assert ke.gemm_efficiency(gemm, 80) == pytest.approx(k / (k + ke.K_OVERHEAD), rel=1e-12)
    assert ke.gemm_efficiency(gemm, 80) == pytest.approx(ke.large_gemm_k_efficiency(k), rel=1e-12)


def test_one_row_past_a_tile_boundary_pays_a_whole_extra_tile_and_wave(one_tile):
    k = 4096
    exact = ke.Gemm(1, 128 * 80, 128, k)  # 80 tiles on 80 SMs: one wave
    above = ke.Gemm(1, 128 * 80 + 1, 128, k)  # 81 tiles: a second, nearly empty wave
    t_exact = exact.flops / ke.gemm_efficiency(exact, 80)
    t_above = above.flops / ke.gemm_efficiency(above, 80)
    assert t_above / t_exact == pytest.approx(2.0, rel=1e-12)


def test_k_quantization_charges_whole_k_steps(one_tile):
    full = ke.Gemm(1, 128 * 80, 128, 64)
    ragged = ke.Gemm(1, 128 * 80, 128, 65)  # 65 reduction elements take three 32-wide steps
    assert ke.gemm_efficiency(full, 80) == pytest.approx(64 / (64 + 32), rel=1e-12)
    assert ke.gemm_efficiency(ragged, 80) == pytest.approx(65 / (96 + 32), rel=1e-12)


def test_small_products_split_k_to_fill_the_gpu(one_tile):
    # a weight gradient: 4 output tiles, a long reduction over the batch's pixels
    gemm = ke.Gemm(1, 256, 256, 80 * 1024)
    split = min(80 // 4, gemm.k // ke.MIN_K_PER_SPLIT)
    k_per = math.ceil(gemm.k / split)
    waves = math.ceil(4 * split / 80)
    expected = (gemm.flops / 80) / (waves * 2 * 128 * 128 * (k_per + ke.K_OVERHEAD))
    assert ke.gemm_efficiency(gemm, 80) == pytest.approx(expected, rel=1e-12)
    assert ke.gemm_efficiency(gemm, 80) > 0.9


def test_the_library_picks_the_tile_that_minimizes_time():
    # n = 64: a 128-wide tile would waste half its columns; the 128x64 tile wins
    gemm = ke.Gemm(1, 128 * 160, 64, 1024)
    eff = ke.gemm_efficiency(gemm, 80)
    half_tile = 0.9 * 1024 / (1024 + ke.K_OVERHEAD)
    assert eff == pytest.approx(half_tile, rel=1e-12)


def test_no_sm_count_means_no_quantization():
    assert ke.gemm_efficiency(ke.Gemm(1, 3, 5, 7), None) == 1.0


def _rates(**kw) -> ke.DeviceRates:
    base = dict(matrix_flops_s=100e12, scalar_flops_s=10e12, bytes_s=1e12, sm_count=80,
                overhead_s=7e-6, act_bytes=4, overlap_loss=0.0)
    return ke.DeviceRates(**{**base, **kw})


def test_memory_bound_layer_takes_bytes_over_achievable_bandwidth_plus_launch():
    gpu = get_gpu("V100-SXM2-16GB")
    model = get_model("resnet50")
    batch, mem_eff, overhead = 64, 0.8, 12e-6
    costs = compute.roofline_costs(model, gpu, precision="fp32", batch=batch, compute_efficiency=0.85,
                                   memory_efficiency=mem_eff, layer_overhead_s=overhead, optimizer="sgd")
    i = next(i for i, layer in enumerate(model.layers) if layer.kind == "relu")
    relu = model.layers[i]
    bandwidth = gpu.memory_bandwidth_gbytes_s * 1e9 * mem_eff
    # forward reads x and writes y; backward reads y and dy and writes dx
    fwd_bytes = (relu.input_elements + relu.output_elements) * batch * 4
    bwd_bytes = (relu.input_elements + 2 * relu.output_elements) * batch * 4
    assert costs.forward_s[i] == pytest.approx(overhead + fwd_bytes / bandwidth, rel=1e-12)
    assert costs.backward_s[i] == pytest.approx(overhead + bwd_bytes / bandwidth, rel=1e-12)
    # a residual add's backward hands dy to both branches: no kernel, no time
    j = next(j for j, layer in enumerate(model.layers) if layer.kind == "add")
    assert costs.backward_s[j] == 0.0


def test_overlap_loss_adds_the_unhidden_share_of_the_shorter_term():
    assert _rates(overlap_loss=0.0).roofline(3.0, 1.0) == 3.0
    assert _rates(overlap_loss=0.5).roofline(3.0, 1.0) == 3.5
    assert _rates(overlap_loss=0.5).roofline(1.0, 3.0) == 3.5


def _conv(kernel: int, stride: int, cin: int = 256, cout: int = 256, side: int = 56) -> Layer:
    out = side // stride
    return Layer(f"conv{kernel}s{stride}", "conv", cin * cout * kernel * kernel,
                 2 * cin * kernel * kernel * cout * out * out, cin * side * side, cout * out * out,
                 GemmShape(1, out * out, cout, cin * kernel * kernel, (kernel, kernel), (stride, stride)))


def _auto_choice(layer: Layer, precision: str, gpu: str = "TitanX-Pascal", batch: int = 32) -> str:
    rates = compute.device_rates(get_gpu(gpu), precision, 0.85, 0.8, 20e-6)
    options = [a for a in ("implicit_gemm", "precomputed_gemm", "winograd", "fft")
               if compute.algorithms.eligible(layer, a)]
    return min(options, key=lambda a: sum(compute.layer_times(layer, batch, rates, 0.0, a, input_gradient=True)))


def test_winograd_is_chosen_only_where_it_exists():
    assert _auto_choice(_conv(3, 1), "fp32") == "winograd"
    assert _auto_choice(_conv(3, 2), "fp32") != "winograd"
    assert _auto_choice(_conv(1, 1), "fp32") not in ("winograd", "fft")
    # on tensor cores the Winograd products would run on CUDA cores: implicit GEMM wins
    assert _auto_choice(_conv(3, 1), "amp", gpu="V100-SXM2-16GB") in ("implicit_gemm", "precomputed_gemm")


def test_winograd_does_a_quarter_of_the_multiplies_of_direct_convolution():
    layer = _conv(3, 1, side=56)
    (product, moved), _, (wgrad, _) = ke.winograd_products(layer.gemm, batch=8, input_gradient=True)
    direct = ke.forward_gemm(layer.gemm, 8)
    assert product.flops / direct.flops == pytest.approx(36 * 14 * 14 / (9 * 56 * 56), rel=1e-12)
    assert product.flops / direct.flops == pytest.approx(0.25, rel=1e-12)
    assert wgrad.flops == product.flops  # the weight gradient's products reduce over the tiles
    assert moved > 0


def _scenario(batch: int, gpu: str = "H100-SXM5-80GB", precision: str = "amp"):
    return load_scenario({"name": "t", "cluster": {"nodes": 1, "gpus_per_node": 1, "gpu": gpu},
                          "workload": {"model": "resnet50", "batch_per_gpu": batch, "precision": precision}}, [])


def test_small_batches_are_latency_bound_and_large_ones_throughput_bound():
    t = {b: build(_scenario(b)).costs.total_s for b in (1, 2, 256, 512)}
    assert t[2] / t[1] < 1.1  # launches dominate: doubling the batch costs little
    assert t[512] / t[256] > 1.8  # arithmetic and bytes dominate: nearly proportional


def test_auto_picks_only_algorithms_whose_workspace_fits():
    sc = load_scenario({"name": "t", "cluster": {"nodes": 1, "gpus_per_node": 1, "gpu": "GTX-1080Ti"},
                        "workload": {"model": "vgg16", "batch_per_gpu": 32, "precision": "fp32"}}, [])
    est = memory.estimate_scenario(sc)
    assert est.fits
    chosen = memory.scenario_algorithms(sc)
    assert "winograd" in chosen  # VGG's 3x3 stride-1 layers
    model = get_model("vgg16")
    for layer, algorithm in zip(model.layers, chosen):
        assert (algorithm is None) == (layer.kind != "conv")


def test_every_catalog_gpu_has_an_sm_count_and_sourced_clock():
    for name, spec in GPUS.items():
        assert isinstance(spec.sm_count, int) and spec.sm_count >= 10, name
        if spec.sustained_clock_ratio != 1.0:
            assert spec.clock_source, name
    assert get_gpu("V100-SXM2-16GB").sm_count == 80
    assert get_gpu("A100-SXM4-80GB").sm_count == 108
    assert get_gpu("RTX-2080Ti").sustained_clock_ratio == pytest.approx(1824 / 1545, abs=0.005)


def test_every_zoo_matrix_layer_carries_a_gemm_with_its_flops():
    from simulator.zoo import list_models

    for name in list_models():
        for layer in get_model(name).layers:
            if layer.kind in ("conv", "linear", "attention"):
                g = layer.gemm
                assert g is not None, (name, layer.name)
                direct = 2 * g.groups * g.m * g.n * g.k
                # bias adds at most one FLOP per output element
                assert 0 <= layer.forward_flops - direct <= layer.output_elements, (name, layer.name)
            else:
                assert layer.gemm is None, (name, layer.name)


def _plain_rates(gpu: str = "V100-SXM2-16GB", precision: str = "fp32") -> ke.DeviceRates:
    """No launch cost, no overlap loss and a memory system too fast to matter."""
    import dataclasses

    rates = compute.device_rates(get_gpu(gpu), precision, 0.5, 1.0, 0.0)
    return dataclasses.replace(rates, bytes_s=1e30, overlap_loss=0.0)


def test_weight_gradient_kernels_take_wgrad_factor_times_a_forward_product(monkeypatch):
    monkeypatch.setattr(ke, "WGRAD_FACTOR", 1.3)
    layer = _conv(3, 2)  # stride 2: implicit GEMM only
    rates = _plain_rates()
    dgrad, wgrad = ke.backward_gemms(layer.gemm, 32, input_gradient=True)
    fwd_s, bwd_s = ke.matrix_layer_times(layer, 32, rates, weight_bytes=0.0, algorithm=None, input_gradient=True)
    assert fwd_s == pytest.approx(rates.gemm_s(ke.forward_gemm(layer.gemm, 32), rates.matrix_flops_s), rel=1e-12)
    # the data gradient at a forward product's speed, the weight gradient 1.3x slower
    assert bwd_s == pytest.approx(rates.gemm_s(dgrad, rates.matrix_flops_s)
                                  + 1.3 * rates.gemm_s(wgrad, rates.matrix_flops_s), rel=1e-12)
    # the first layer computes only its weight gradient
    _, first = ke.matrix_layer_times(layer, 32, rates, weight_bytes=0.0, algorithm=None, input_gradient=False)
    assert first == pytest.approx(1.3 * rates.gemm_s(wgrad, rates.matrix_flops_s), rel=1e-12)


def test_winograd_weight_gradient_pass_pays_the_same_factor(monkeypatch):
    layer = _conv(3, 1)
    rates = _plain_rates()
    times = {}
    for factor in (1.0, 2.0):
        monkeypatch.setattr(ke, "WGRAD_FACTOR", factor)
        times[factor] = ke.matrix_layer_times(layer, 32, rates, weight_bytes=0.0, algorithm="winograd",
                                              input_gradient=True)
    product, moved = ke.winograd_products(layer.gemm, 32, True)[-1]  # the weight-gradient pass
    wgrad_pass = (3 * rates.overhead_s + rates.gemm_s(product, rates.scalar_flops_s)
                  + moved * rates.act_bytes / rates.bytes_s)
    assert times[2.0][0] == times[1.0][0]  # forward untouched
    assert times[2.0][1] - times[1.0][1] == pytest.approx(wgrad_pass, rel=1e-9)


def test_tf32_tensor_cores_reach_their_share_of_the_fp16_efficiency(monkeypatch):
    monkeypatch.setattr(ke, "TF32_EFFICIENCY", 0.7)
    a100 = get_gpu("A100-SXM4-80GB")
    assert compute.device_rates(a100, "tf32", 0.5, 0.8, 0.0).matrix_flops_s == pytest.approx(156e12 * 0.5 * 0.7)
    assert compute.device_rates(a100, "amp", 0.5, 0.8, 0.0).matrix_flops_s == pytest.approx(312e12 * 0.5)
    assert compute.device_rates(a100, "fp32", 0.5, 0.8, 0.0).matrix_flops_s == pytest.approx(19.5e12 * 0.5)
    # never slower than CUDA cores: an RTX 3090's tf32 peak equals its fp32 peak
    rtx = compute.device_rates(get_gpu("RTX-3090"), "tf32", 0.5, 0.8, 0.0)
    assert rtx.matrix_flops_s == pytest.approx(rtx.scalar_flops_s)


def test_kepler_cuda_cores_run_at_the_share_its_schedulers_can_issue():
    # GK210: 4 schedulers x 32 lanes feed 192 cores per SMX without dual issue
    k80 = get_gpu("K80")
    assert k80.cuda_core_issue_share == pytest.approx(128 / 192, abs=0.001)
    assert "Lai & Seznec" in k80.issue_source
    rates = compute.device_rates(k80, "fp32", 0.8, 0.8, 0.0)
    # and, feeding more than 32 lanes per scheduler, loses the non-FMA share of its issue slots too
    assert compute.fma_issue_share(k80) == pytest.approx(
        k80.cuda_core_issue_share * (1 - compute.NON_FMA_ISSUE_SHARE), rel=1e-12)
    # at the 823.5 MHz CUDA reports for a K80 die, not the datasheet's 875
    assert k80.sustained_clock_ratio == pytest.approx(823.5 / 875, abs=0.001)
    assert "823.5 MHz" in k80.clock_source
    assert rates.scalar_flops_s == pytest.approx(
        4.37e12 * 0.941 * 0.8 * compute.fma_issue_share(k80), rel=1e-12)
    assert rates.matrix_flops_s == pytest.approx(rates.scalar_flops_s, rel=1e-12)
    # memory-bound work is not issue-limited
    assert rates.bytes_s == pytest.approx(240e9 * 0.8, rel=1e-12)
    # the Titan Black's GK110B has the same SMX
    assert get_gpu("GTX-Titan-Black").cuda_core_issue_share == k80.cuda_core_issue_share
    # from Maxwell on every scheduler has its own 32 lanes (no dual-issue share): the datasheet
    # rate, less the non-FMA share where 32 lanes need an FMA every clock (Maxwell), not where
    # 16 lanes leave every other clock free (Volta)
    for name, share in (("TitanX-Maxwell", 1 - compute.NON_FMA_ISSUE_SHARE), ("V100-SXM2-16GB", 1.0)):
        spec = get_gpu(name)
        assert spec.cuda_core_issue_share == 1.0
        assert compute.device_rates(spec, "fp32", 0.8, 0.8, 0.0).scalar_flops_s == pytest.approx(
            spec.peak_flops("fp32") * 0.8 * spec.sustained_clock_ratio * share, rel=1e-12)


def test_an_issue_share_needs_a_source_and_a_sane_value():
    import dataclasses

    from simulator.catalog.gpus import GPUSpec

    m40 = get_gpu("M40")
    base = {f.name: getattr(m40, f.name) for f in dataclasses.fields(m40)}
    base["peak_tflops"] = dict(m40.peak_tflops)
    with pytest.raises(ValueError, match="needs an issue_source"):
        GPUSpec(**{**base, "cuda_core_issue_share": 0.667})
    with pytest.raises(ValueError, match=r"must be in \[0.3, 1\]"):
        GPUSpec(**{**base, "cuda_core_issue_share": 1.5, "issue_source": "x"})


def test_kepler_runs_no_winograd_auto_or_named():
    """cuDNN has no Winograd kernels for Kepler (algorithms.NO_WINOGRAD_ARCHITECTURES): the
    autotuner picks among the other algorithms there, a named Winograd falls back to
    implicit GEMM, and a Maxwell card of the same era still runs it."""
    layer = {lay.name: lay for lay in get_model("resnet50").layers}["layer1.0.conv2"]  # 3x3, stride 1
    assert algorithms.eligible(layer, "winograd", "Maxwell")
    assert algorithms.eligible(layer, "winograd", None)  # a profiled stand-in device: no architecture
    assert not algorithms.eligible(layer, "winograd", "Kepler")
    assert algorithms.eligible(layer, "fft", "Kepler")

    def chosen(gpu: str, algorithm: str) -> list[str | None]:
        sc = load_scenario({"name": "t", "cluster": {"nodes": 1, "gpus_per_node": 1, "gpu": gpu},
                            "workload": {"model": "vgg16", "batch_per_gpu": 32, "precision": "fp32",
                                         "conv_algorithm": algorithm}}, [])
        return memory.scenario_algorithms(sc)

    assert "winograd" in chosen("M40", "auto")
    on_k80 = chosen("K80", "auto")
    assert "winograd" not in on_k80 and {"fft", "precomputed_gemm"} & set(on_k80)
    named = chosen("K80", "winograd")
    assert set(named) == {None, "implicit_gemm"}


def test_per_kernel_overhead_is_counted_in_sm_cycles():
    """workload.layer_overhead_us is stated at 1530 MHz (a V100 SXM2's boost); each catalog
    GPU's is scaled by 1530 / its sustained clock, a GPU without a clock keeps it."""
    import dataclasses

    from simulator.catalog.gpus import GPUSpec
    from simulator.resolved import OVERHEAD_REFERENCE_CLOCK_MHZ, per_kernel_overhead_s, resolve

    assert OVERHEAD_REFERENCE_CLOCK_MHZ == 1530.0
    assert per_kernel_overhead_s(get_gpu("V100-SXM2-16GB"), 20.0) == pytest.approx(20e-6, rel=1e-12)
    assert per_kernel_overhead_s(get_gpu("K80"), 20.0) == pytest.approx(20e-6 * 1530 / (875 * 0.941))  # 37.2 us
    assert per_kernel_overhead_s(get_gpu("A100-SXM4-80GB"), 20.0) == pytest.approx(20e-6 * 1530 / 1410)
    assert per_kernel_overhead_s(get_gpu("RTX-2080Ti"), 20.0) == pytest.approx(20e-6 * 1530 / (1545 * 1824 / 1545),
                                                                                rel=0.01)
    base = {f.name: getattr(get_gpu("V100-SXM2-16GB"), f.name) for f in dataclasses.fields(GPUSpec)}
    assert per_kernel_overhead_s(GPUSpec(**{**base, "peak_clock_mhz": None}), 20.0) == pytest.approx(20e-6)
    sc = load_scenario({"name": "t", "cluster": {"nodes": 1, "gpus_per_node": 1, "gpu": "K80"},
                        "workload": {"model": "resnet50", "batch_per_gpu": 8, "layer_overhead_us": 10.0}}, [])
    assert resolve(sc).layer_overhead_s == pytest.approx(10e-6 * 1530 / (875 * 0.941))


def test_a_clock_does_not_make_pascal_a_16_lane_partition():
    """GP100 does 128 fp32 FLOP per SM per clock like Volta, but in 2 x 32 lanes: it keeps
    the non-FMA issue loss; Volta, Turing and GA100 (4 x 16 lanes) do not pay it."""
    assert get_gpu("P100-SXM2-16GB").flops_per_sm_clock("fp32") == 128.0
    assert compute.fma_issue_share(get_gpu("P100-SXM2-16GB")) == pytest.approx(1 - compute.NON_FMA_ISSUE_SHARE)
    assert compute.fma_issue_share(get_gpu("V100-SXM2-16GB")) == 1.0
    assert compute.fma_issue_share(get_gpu("A100-SXM4-80GB")) == 1.0
    assert compute.fma_issue_share(get_gpu("RTX-3090")) == pytest.approx(1 - compute.NON_FMA_ISSUE_SHARE)

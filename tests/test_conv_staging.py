"""Specifies how tensor-core width per SM sets a convolution's share of the peak
(``kernel_efficiency.conv_staging_factor``): the closed form, the layers and GPUs it
applies to, and the catalog clocks it reads."""

from __future__ import annotations

import dataclasses

import pytest

from simulator import compute
from simulator import kernel_efficiency as ke
from simulator.catalog import GPUS, get_gpu
from simulator.catalog.gpus import GPUSpec
from simulator.zoo import GemmShape, Layer


@pytest.fixture
def q1024(monkeypatch):
    monkeypatch.setattr(ke, "CONV_STAGING_FLOPS_PER_SM_CLOCK", 1024.0)
    monkeypatch.setattr(ke, "REFERENCE_MMA_WIDTH", 1024.0)


def test_staging_factor_is_the_ratio_of_per_flop_sm_cycles(q1024):
    # time per FLOP in SM-clocks is 1/W + 1/Q: with Q = 1024, a 1024-wide SM spends
    # 2/1024, a 2048-wide one 1.5/1024, a 512-wide one 3/1024 of which the MMAs 1, 0.5, 2
    assert ke.conv_staging_factor(1024.0) == 1.0
    assert ke.conv_staging_factor(2048.0) == pytest.approx(2 / 3)
    assert ke.conv_staging_factor(4096.0) == pytest.approx(2 / 5)
    assert ke.conv_staging_factor(512.0) == pytest.approx(4 / 3)
    assert ke.conv_staging_factor(None) == 1.0


def test_no_staging_rate_leaves_every_width_at_the_fitted_efficiency(monkeypatch):
    monkeypatch.setattr(ke, "CONV_STAGING_FLOPS_PER_SM_CLOCK", None)
    assert ke.conv_staging_factor(4096.0) == 1.0
    a100 = compute.device_rates(get_gpu("A100-SXM4-80GB"), "amp", 0.5, 0.8, 0.0)
    assert a100.conv_flops_s == a100.matrix_flops_s


def test_convolutions_on_tensor_cores_get_the_factor_and_gemms_do_not(q1024):
    a100 = compute.device_rates(get_gpu("A100-SXM4-80GB"), "amp", 0.5, 0.8, 0.0)
    assert a100.matrix_flops_s == pytest.approx(312e12 * 0.5)
    assert a100.conv_flops_s == pytest.approx(312e12 * 0.5 * 2 / 3)  # 2048 FLOP per SM per clock
    # a GeForce card's half-width fp32-accumulate MMAs lose less to staging
    rtx = compute.device_rates(get_gpu("RTX-3090"), "amp", 0.5, 0.8, 0.0)
    assert rtx.conv_flops_s / rtx.matrix_flops_s == pytest.approx(4 / 3)
    # TF32 convolutions stage 4-byte operands at half the FLOP rate: 2 / (1 + 1024 x 2 / 1024)
    # of the tensor-core efficiency, with no separate TF32 share; dense TF32 products keep it
    tf32 = compute.device_rates(get_gpu("A100-SXM4-80GB"), "tf32", 0.5, 0.8, 0.0)
    assert ke.conv_staging_factor(1024.0, 4) == pytest.approx(2 / 3)
    assert tf32.conv_flops_s == pytest.approx(156e12 * 0.5 * 2 / 3)
    assert tf32.matrix_flops_s == pytest.approx(156e12 * 0.5 * ke.TF32_EFFICIENCY)
    # CUDA-core precisions and GPUs without tensor cores are untouched
    for gpu, precision in (("A100-SXM4-80GB", "fp32"), ("P100-SXM2-16GB", "fp16"), ("K80", "fp32")):
        r = compute.device_rates(get_gpu(gpu), precision, 0.5, 0.8, 0.0)
        assert r.conv_flops_s == r.matrix_flops_s, (gpu, precision)


def test_a_conv_layer_runs_at_the_conv_rate_and_a_linear_layer_at_the_gemm_rate(q1024):
    rates = dataclasses.replace(compute.device_rates(get_gpu("A100-SXM4-80GB"), "amp", 0.5, 1.0, 0.0),
                                bytes_s=1e30, overlap_loss=0.0)
    out = 28  # a 3x3 stride-2 convolution (implicit GEMM only), 256 -> 256 channels
    shape = GemmShape(1, out * out, 256, 256 * 9, (3, 3), (2, 2))
    conv = Layer("c", "conv", 256 * 256 * 9, 2 * 256 * 9 * 256 * out * out, 256 * 56 * 56, 256 * out * out, shape)
    linear = dataclasses.replace(conv, kind="linear", gemm=dataclasses.replace(shape, kernel=(1, 1), stride=(1, 1)))
    fwd_conv, _ = ke.matrix_layer_times(conv, 64, rates, weight_bytes=0.0, algorithm=None, input_gradient=True)
    fwd_linear, _ = ke.matrix_layer_times(linear, 64, rates, weight_bytes=0.0, algorithm=None, input_gradient=True)
    assert fwd_conv / fwd_linear == pytest.approx(rates.matrix_flops_s / rates.conv_flops_s, rel=1e-12)
    assert fwd_conv / fwd_linear == pytest.approx(1.5, rel=1e-12)


def test_every_tensor_core_gpu_has_a_peak_clock_that_gives_a_whole_mma_width():
    widths = (512, 1024, 2048, 4096)
    for name, spec in GPUS.items():
        if spec.architecture not in compute.TENSOR_CORE_ARCHITECTURES:
            continue
        assert spec.peak_clock_mhz is not None, name
        width = spec.flops_per_sm_clock("fp16")
        ratio = spec.peak_flops("fp16") / (spec.sm_count * spec.peak_clock_mhz * 1e6)
        assert width in widths and abs(ratio / width - 1) < 0.015, (name, ratio)
    assert get_gpu("A100-SXM4-80GB").flops_per_sm_clock("tf32") == 1024
    assert get_gpu("RTX-3090").flops_per_sm_clock("amp") == 512  # fp32 accumulate at half rate


def test_a_peak_clock_out_of_range_is_refused():
    v100 = get_gpu("V100-SXM2-16GB")
    base = {f.name: getattr(v100, f.name) for f in dataclasses.fields(v100)}
    base["peak_tflops"] = dict(v100.peak_tflops)
    assert GPUSpec(**base).peak_clock_mhz == 1530
    with pytest.raises(ValueError, match="peak_clock_mhz"):
        GPUSpec(**{**base, "peak_clock_mhz": 15.0})

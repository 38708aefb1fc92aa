"""Fits recover known parameters from synthetic data (numpy only, no torch)."""

from __future__ import annotations

import numpy as np
import pytest

from calibration.fit import (
    fit_alpha_beta,
    fit_alpha_beta_pieces,
    fit_linear,
    fit_throughput,
    nccl_bandwidths,
    refit,
)

from . import synthetic


@pytest.mark.parametrize("alpha,beta", [(25e-6, 10e9), (2e-3, 1.2e9), (5e-6, 100e9)])
def test_alpha_beta_recovers_alpha_and_beta_within_2_percent_under_1_percent_noise(alpha, beta):
    sizes = np.array([4096 * 2**k for k in range(17)], dtype=float)  # 4 KB .. 256 MB
    times = synthetic.noisy(alpha + sizes / beta, 0.01)
    fit = fit_alpha_beta(sizes, times)
    assert fit.alpha_s == pytest.approx(alpha, rel=0.02)
    assert fit.beta_bytes_per_s == pytest.approx(beta, rel=0.02)
    assert fit.max_rel_error < 0.03


def test_alpha_beta_is_exact_on_exact_data():
    sizes = np.array([1e3, 1e5, 1e7])
    fit = fit_alpha_beta(sizes, 1e-5 + sizes / 4e9)
    assert fit.alpha_s == pytest.approx(1e-5, rel=1e-9)
    assert fit.beta_bytes_per_s == pytest.approx(4e9, rel=1e-9)
    assert fit(1e6) == pytest.approx(1e-5 + 1e6 / 4e9)


def test_alpha_beta_needs_two_sizes():
    with pytest.raises(ValueError, match="two message sizes"):
        fit_alpha_beta([4096, 4096], [1e-4, 1e-4])


def test_pieces_split_where_the_protocol_changes():
    # small messages: 10 us + n / 1 GB/s; large: 1 ms + n / 8 GB/s (a protocol switch at 1 MB)
    sizes = np.array([4096 * 2**k for k in range(17)], dtype=float)
    small = sizes <= 2**20
    times = np.where(small, 10e-6 + sizes / 1e9, 1e-3 + sizes / 8e9)
    pieces = fit_alpha_beta_pieces(sizes, times, tolerance=0.05)
    assert len(pieces) == 2
    assert pieces[0].max_bytes == 2**20 and pieces[1].min_bytes == 2**21
    assert pieces[0].alpha_s == pytest.approx(10e-6, rel=1e-6)
    assert pieces[0].beta_bytes_per_s == pytest.approx(1e9, rel=1e-6)
    assert pieces[1].alpha_s == pytest.approx(1e-3, rel=1e-6)
    assert pieces[1].beta_bytes_per_s == pytest.approx(8e9, rel=1e-6)
    # one line over both regimes misses by far more than the pieces do
    assert fit_alpha_beta(sizes, times).max_rel_error > 0.3


def test_linear_fit_recovers_intercept_and_slope_within_2_percent():
    batches = np.array([1, 2, 4, 8, 16, 32], dtype=float)
    fit = fit_linear(batches, synthetic.noisy(3e-4 + 1.5e-3 * batches, 0.005, seed=1))
    assert fit.slope_s == pytest.approx(1.5e-3, rel=0.02)
    assert fit.intercept_s == pytest.approx(3e-4, rel=0.1)  # small next to 32 x slope; looser
    assert fit(8) == pytest.approx(3e-4 + 8 * 1.5e-3, rel=0.01)


def test_throughput_fit_gives_peak_and_falling_efficiency():
    flops = np.array([2 * n**3 for n in (64, 128, 256, 512, 1024, 2048)], dtype=float)
    fit = fit_throughput("matmul", flops, 20e-6 + flops / 5e11)
    assert fit.peak_flops_per_s == pytest.approx(5e11, rel=1e-6)
    assert fit.overhead_s == pytest.approx(20e-6, rel=1e-6)
    # half the peak where the work equals overhead x peak = 1e7 FLOPs
    assert fit.efficiency(1e7) == pytest.approx(0.5)
    assert fit.efficiency(2 * 64**3) < 0.05 < 0.99 < fit.efficiency(2 * 2048**3)


@pytest.mark.parametrize("collective,world,factor", [
    ("allreduce", 2, 1.0), ("allreduce", 8, 1.75), ("all_gather", 4, 0.75), ("reduce_scatter", 4, 0.75),
    ("broadcast", 8, 1.0), ("sendrecv", 2, 1.0),
])
def test_bus_bandwidth_uses_the_nccl_tests_factors(collective, world, factor):
    algbw, busbw = nccl_bandwidths(collective, world, 1e8, 0.01)
    assert algbw == pytest.approx(1e10)
    assert busbw == pytest.approx(1e10 * factor)


def test_refit_recovers_the_synthetic_profile_parameters():
    fitted = refit(synthetic.profile())
    table = fitted.models[0].fit_table()
    af, bf, ab, bb = synthetic.layer_params(3)
    layer = fitted.models[0].samples[3 * 2 * 4].layer  # layer index 3 (2 phases x 4 batches each)
    assert table[layer, "forward"].intercept_s == pytest.approx(af, rel=1e-6)
    assert table[layer, "forward"].slope_s == pytest.approx(bf, rel=1e-6)
    assert table[layer, "backward"].slope_s == pytest.approx(bb, rel=1e-6)
    ar = fitted.collectives.fit("allreduce", 2)
    assert ar.fit.alpha_s == pytest.approx(synthetic.ALPHA_S, rel=1e-6)
    assert ar.fit.beta_bytes_per_s == pytest.approx(synthetic.BETA, rel=1e-6)
    assert fitted.efficiency.fit("matmul").peak_flops_per_s == pytest.approx(1e11, rel=1e-6)
    assert fitted.efficiency.memory_bandwidth_bytes_per_s == pytest.approx(2 * 2**26 / 0.01)

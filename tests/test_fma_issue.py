"""CUDA-core FMA issue by SM partition (``compute.fma_issue_share``): schedulers feeding 32 or
more FP32 lanes lose ``NON_FMA_ISSUE_SHARE`` of their FMA issue slots to the kernel's other
instructions; 16-lane partitions (Volta, Turing, GA100) issue those in between."""

from __future__ import annotations

import pytest

from simulator import compute
from simulator.catalog import get_gpu

SHARE = 0.15


@pytest.fixture
def non_fma_share(monkeypatch):
    monkeypatch.setattr(compute, "NON_FMA_ISSUE_SHARE", SHARE)


@pytest.mark.parametrize("name", ["V100-SXM2-16GB", "RTX-2080Ti", "T4", "A100-SXM4-80GB", "Quadro-RTX-8000"])
def test_sixteen_lane_partitions_lose_nothing(non_fma_share, name):
    gpu = get_gpu(name)
    assert gpu.flops_per_sm_clock("fp32") == 128.0  # 4 partitions x 16 lanes x 2 FLOP
    assert compute.fma_issue_share(gpu) == 1.0


@pytest.mark.parametrize("name", ["GTX-1080", "TitanX-Maxwell", "M40", "P100-SXM2-16GB", "RTX-3090", "A10",
                                  "H100-SXM5-80GB", "RTX-4090"])
def test_full_rate_partitions_lose_the_non_fma_share(non_fma_share, name):
    assert compute.fma_issue_share(get_gpu(name)) == pytest.approx(1 - SHARE)


def test_kepler_loses_it_on_top_of_its_dual_issue_share(non_fma_share):
    k80 = get_gpu("K80")
    assert compute.fma_issue_share(k80) == pytest.approx(k80.cuda_core_issue_share * (1 - SHARE))


def test_the_cuda_core_rate_is_peak_times_efficiency_times_the_issue_share(non_fma_share):
    for name, share in (("GTX-1080", 1 - SHARE), ("V100-SXM2-16GB", 1.0)):
        gpu = get_gpu(name)
        rates = compute.device_rates(gpu, "fp32", 0.8, 0.8, 20e-6)
        assert rates.scalar_flops_s == pytest.approx(gpu.peak_flops("fp32") * 0.8 * share, rel=1e-12)
        assert rates.matrix_flops_s == rates.conv_flops_s == rates.scalar_flops_s
    # tensor-core products are fed by their own MMA instructions: untouched
    v100_amp = compute.device_rates(get_gpu("V100-SXM2-16GB"), "amp", 0.5, 0.8, 20e-6)
    h100_amp = compute.device_rates(get_gpu("H100-SXM5-80GB"), "amp", 0.5, 0.8, 20e-6)
    assert h100_amp.matrix_flops_s == pytest.approx(get_gpu("H100-SXM5-80GB").peak_flops("amp") * 0.5, rel=1e-12)
    assert v100_amp.matrix_flops_s == pytest.approx(get_gpu("V100-SXM2-16GB").peak_flops("amp") * 0.5, rel=1e-12)


def test_a_profiled_stand_in_device_has_no_partitions():
    class StandIn:
        pass
    assert compute.fma_issue_share(StandIn()) == 1.0

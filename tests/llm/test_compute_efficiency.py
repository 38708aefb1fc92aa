"""The transformer step's matrix-product rate: a fitted share of each card's measured
maximum achievable matmul rate (the catalog's matmul_efficiency), unless the scenario
sets workload.compute_efficiency."""

from __future__ import annotations

import pytest

from simulator import load_scenario, simulate
from simulator.catalog import get_gpu
from simulator.llm.run import MEASURED_MATMUL_MEAN, TRANSFORMER_MATMUL_SHARE, llm_compute_efficiency


def test_each_card_runs_at_the_share_of_its_own_measured_ceiling():
    a100, h100 = get_gpu("A100-SXM4-80GB"), get_gpu("H100-SXM5-80GB")
    # MAMF table: A100 SXM 271.2 of 312 TFLOPS, H100 SXM 794.5 of 989
    assert a100.matmul_efficiency == pytest.approx(271.2 / 312, abs=5e-4)
    assert h100.matmul_efficiency == pytest.approx(794.5 / 989, abs=5e-4)
    assert llm_compute_efficiency(a100, None) == pytest.approx(TRANSFORMER_MATMUL_SHARE * 0.869, rel=1e-12)
    assert llm_compute_efficiency(h100, None) == pytest.approx(TRANSFORMER_MATMUL_SHARE * 0.803, rel=1e-12)
    # a card without a measurement gets the measured cards' mean
    assert get_gpu("V100-SXM2-32GB").matmul_efficiency is None
    assert MEASURED_MATMUL_MEAN == pytest.approx((0.869 + 0.836 + 0.811 + 0.803) / 4, abs=5e-4)
    assert llm_compute_efficiency(get_gpu("V100-SXM2-32GB"), None) == pytest.approx(
        TRANSFORMER_MATMUL_SHARE * MEASURED_MATMUL_MEAN, rel=1e-12)
    # an explicit scenario value is the share of the dense peak, whatever the card
    assert llm_compute_efficiency(h100, 0.6) == 0.6


def _step(gpu: str, **workload) -> float:
    return simulate(load_scenario({
        "cluster": {"nodes": 1, "gpus_per_node": 8, "gpu": gpu, "server": {"layout": "nvswitch"}},
        "workload": {"model": "llama2_7b", "precision": "bf16", "sequence_length": 2048, **workload},
        "training": {"parallelism": {"global_batch": 8, "tensor": 8}},
    })).iteration_time_s


def test_the_default_is_the_explicit_value_it_stands_for():
    implied = TRANSFORMER_MATMUL_SHARE * get_gpu("A100-SXM4-80GB").matmul_efficiency
    assert _step("A100-SXM4-80GB") == pytest.approx(_step("A100-SXM4-80GB", compute_efficiency=implied), rel=1e-12)
    assert _step("A100-SXM4-80GB") != pytest.approx(_step("A100-SXM4-80GB", compute_efficiency=0.7), rel=1e-3)

"""Specifies the per-layer report of ``clustersim simulate`` (JSON ``layers`` and the
``--layers`` table) and the layer-time model's parameters in ``clustersim list gpus``."""

from __future__ import annotations

import json

import pytest

from simulator import kernel_efficiency as ke
from simulator import load_scenario
from simulator.engine import build
from simulator.layer_report import by_kind, layer_rows

from .test_cli import run_main


def test_layer_rows_are_the_engines_costs_and_add_up_to_the_rank_compute():
    scenario = load_scenario(None, ["workload.model=resnet50"])
    rows = layer_rows(scenario)
    costs = build(scenario).costs
    assert len(rows) == len(costs.forward_s) + 1  # every layer, then the optimizer step
    assert sum(r["forward_ms"] for r in rows) == pytest.approx(costs.forward_s.sum() * 1e3, rel=1e-12)
    assert sum(r["backward_ms"] for r in rows) == pytest.approx(
        (costs.backward_s.sum() + costs.optimizer_s) * 1e3, rel=1e-12)
    assert sum(r["share"] for r in rows) == pytest.approx(1.0, rel=1e-12)
    convs = [r for r in rows if r["kind"] == "conv"]
    assert len(convs) == 53 and all(r["algorithm"] for r in convs)
    assert all(r["algorithm"] is None for r in rows if r["kind"] != "conv")
    kinds = by_kind(rows)
    assert kinds[0][0] == "conv"  # ResNet-50's time is in its convolutions
    assert sum(k[1] for k in kinds) == len(rows)
    # the 16 blocks' inputs: their producers' backward includes summing two gradients
    assert [r["layer"] for r in rows if r["readers"] == 2][:2] == ["maxpool", "layer1.0.relu3"]
    assert sum(r["readers"] == 2 for r in rows) == 16


def test_the_layers_table_says_which_backward_sums_gradients(capsys):
    code, out, _ = run_main(capsys, "simulate", "--set", "workload.model=resnet50", "--layers", "175")
    assert code == 0
    assert out.count("sum x2") == 16


def test_simulate_json_carries_the_layers_and_the_table_shows_the_top_ones(capsys):
    code, out, _ = run_main(capsys, "simulate", "--set", "workload.model=vgg16", "--json", "-")
    assert code == 0
    data = json.loads(out)
    assert len(data["layers"]) == 40  # VGG-16's 39 layers and the optimizer step
    top = max(data["layers"], key=lambda r: r["forward_ms"] + r["backward_ms"])
    assert top["kind"] == "conv" and top["algorithm"] == "winograd"
    code, out, _ = run_main(capsys, "simulate", "--set", "workload.model=vgg16", "--layers", "5")
    assert code == 0
    assert "the 5 most expensive of 40 layers" in out and "per layer kind" in out and "winograd" in out


def test_list_gpus_shows_sms_clocks_and_the_fitted_rates(capsys):
    code, out, _ = run_main(capsys, "list", "gpus")
    assert code == 0
    assert "SMs" in out and "GEMM" in out and "conv" in out and "eff." in out
    assert "clock x 1.18 for RTX-2080Ti: TechPowerUp" in out
    lines = [line for line in out.splitlines() if line.strip().startswith("V100-SXM2-16GB")]
    assert len(lines) == 3  # datasheet table, the model's rates, the transformer step's
    # 80 SMs; a large fp32 GEMM at 15.7 x 0.85 = 13.3 TFLOP/s (16 FP32 lanes per scheduler: the
    # whole issue share); 900 GB/s x 0.8 = 720
    assert " 80 " in lines[0] and "13.3" in lines[1] and " 720" in lines[1]
    # 1530 MHz; 125 TF / (80 SMs x 1530 MHz) = 1024 FLOP per SM per clock, where the
    # convolutions' staging factor is 1: conv = GEMM = 125 x 0.5
    assert " 1530 " in lines[0] and lines[1].split()[1:4] == ["1", "1", "1024"]
    assert lines[1].split()[5:7] == ["62.5", "62.5"]
    # no measured matmul ceiling: 125 x 0.78 x the measured cards' mean 0.83 = 81
    assert lines[2].split()[1:] == ["-", "81"]
    a100s = [line for line in out.splitlines() if line.strip().startswith("A100-SXM4-80GB")]
    assert a100s[2].split()[1:] == ["0.869", "211"]  # 312 x 0.78 x 0.869
    # 2048 wide: convolutions at 312 x 0.5 x (1 + 1024/Q) / (1 + 2048/Q)
    q = ke.CONV_STAGING_FLOPS_PER_SM_CLOCK
    conv = 312 * 0.5 * (1 + 1024 / q) / (1 + 2048 / q)
    # fp32 GEMM: 19.5 x 0.85 = 16.6 (GA100: 16 FP32 lanes per scheduler, the whole issue share)
    assert a100s[1].split()[3:7] == ["2048", "16.6", "156.0", f"{conv:.1f}"] and conv < 156 * 0.7
    assert "matmul max 0.869 for A100-SXM4-80GB: Stas Bekman" in out


def test_list_gpus_shows_the_fp16_rate_the_simulator_runs_on_cards_without_tensor_cores(capsys):
    code, out, _ = run_main(capsys, "list", "gpus")
    assert code == 0
    p100 = [line for line in out.splitlines() if line.strip().startswith("P100-SXM2-16GB")]
    # no tensor cores: fp16 (half2) at the CUDA cores' 0.85 times the issue share of a 32-lane
    # scheduler, 1 - 0.3: 21.2 x 0.85 x 0.7 = 12.6, fp32 10.6 x 0.85 x 0.7 = 6.3
    assert p100[1].split()[1:7] == ["1", "0.7", "-", "6.3", "12.6", "12.6"]
    # Kepler: two thirds of the CUDA cores issue without dual issue, times 0.7, at the 823.5
    # of 875 MHz CUDA reports: 4.37 x 0.941 x 0.85 x 0.667 x 0.7 = 1.6
    k80 = [line for line in out.splitlines() if line.strip().startswith("K80")]
    assert k80[1].split()[1:5] == ["0.941", "0.467", "-", "1.6"]
    assert "issue x 0.667 for K80: NVIDIA Kepler" in out

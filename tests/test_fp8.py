"""fp8 training (Transformer Engine's recipe): the dense layers' GEMMs at the fp8 peak,
everything else as bf16; Hopper only; MFU against the bf16 peak."""

from __future__ import annotations

import pytest

from simulator import catalog, load_scenario, simulate
from simulator.compute import roofline_costs
from simulator.errors import ScenarioError
from simulator.llm.spec import get_spec
from simulator.llm.stage import stage_model


def test_hopper_fp8_peaks_are_the_datasheets_sparse_figures_halved():
    assert catalog.get_gpu("H100-SXM5-80GB").peak_flops("fp8") == pytest.approx(3958e12 / 2, rel=1e-4)
    assert catalog.get_gpu("H100-PCIe-80GB").peak_flops("fp8") == pytest.approx(3026e12 / 2, rel=1e-4)
    assert not catalog.get_gpu("A100-SXM4-80GB").supports("fp8")


def test_fp8_on_a_gpu_without_fp8_is_refused_naming_the_field():
    with pytest.raises(ScenarioError, match="workload.precision"):
        load_scenario({"cluster": {"gpu": "A100-SXM4-80GB", "nodes": 1, "gpus_per_node": 1},
                       "workload": {"model": "resnet50", "precision": "fp8"}})


def _costs(precision):
    model = stage_model(get_spec("gpt3_13b"), seq_len=2048, tp=1, first_layer=0, layers=1, embedding=False,
                        head=True, sequence_parallel=False, flash_attention=True)
    costs = roofline_costs(model, catalog.get_gpu("H100-SXM5-80GB"), precision=precision, batch=4,
                           compute_efficiency=0.7, memory_efficiency=0.8, layer_overhead_s=0.0, optimizer="adam")
    return model, costs


def test_only_the_blocks_dense_gemms_run_at_the_fp8_peak():
    model, bf16 = _costs("bf16")
    _, fp8 = _costs("fp8")
    for i, layer in enumerate(model.layers):
        if layer.kind == "linear" and layer.name.startswith("layers."):  # qkv, dense, fc1, fc2
            # compute-bound GEMMs of a 13B block: twice the rate, at least 1.6x faster
            assert fp8.forward_s[i] < bf16.forward_s[i] / 1.6, layer.name
            assert fp8.backward_s[i] < bf16.backward_s[i] / 1.6, layer.name
        else:  # attention, norms, the LM head: as in bf16
            assert fp8.forward_s[i] == bf16.forward_s[i], layer.name
            assert fp8.backward_s[i] == bf16.backward_s[i], layer.name
    assert fp8.gradient_bytes.tolist() == bf16.gradient_bytes.tolist()  # bf16 gradients


def test_fp8_mfu_is_counted_against_the_bf16_peak():
    scenario = load_scenario({
        "cluster": {"nodes": 1, "gpus_per_node": 8, "gpu": "H100-SXM5-80GB", "server": {"layout": "nvswitch"}},
        "workload": {"model": "gpt3_1.3b", "precision": "fp8", "sequence_length": 2048},
        "training": {"parallelism": {"tensor": 1, "global_batch": 8}},
    })
    llm = simulate(scenario).extra["llm"]
    bf16_peak = catalog.get_gpu("H100-SXM5-80GB").peak_flops("bf16")
    assert llm["mfu"] == pytest.approx(llm["model_tflops_per_gpu"] * 1e12 / bf16_peak, rel=1e-9)
    assert "dense bf16 peak" in llm["mfu_definition"]

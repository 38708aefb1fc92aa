"""Transformer shapes against published parameter counts and FLOP closed forms."""

from __future__ import annotations

import pytest

from simulator import zoo
from simulator.llm.spec import (
    PRESETS,
    active_parameter_count,
    megatron_flops_per_iteration,
    model_flops_per_token,
    parameter_count,
)
from simulator.llm.stage import full_model, stage_model

# Parameter counts of the released checkpoints (config.json / model cards), exact.
PUBLISHED = {
    "llama2_7b": 6_738_415_616,
    "llama2_13b": 13_015_864_320,
    "llama2_70b": 68_976_648_192,
    "llama3_8b": 8_030_261_248,
    "llama3_70b": 70_553_706_496,
    "llama3_405b": 405_853_388_800,
    "mixtral_8x7b": 46_702_792_704,
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parameter_count_is_the_released_checkpoints(name):
    assert parameter_count(PRESETS[name]) == PUBLISHED[name]
    # the layers the kernel model costs hold the same weights
    assert full_model(PRESETS[name], 1024).total_params == PUBLISHED[name]


def test_gpt3_sizes_are_brown_et_al_table_2_1():
    # "175.0B", "13.0B", "6.7B", "2.7B", "1.3B" (rounded in the paper)
    for name, billions in (("gpt3_175b", 175.0), ("gpt3_13b", 13.0), ("gpt3_6.7b", 6.7), ("gpt3_2.7b", 2.7),
                           ("gpt3_1.3b", 1.3)):
        assert parameter_count(PRESETS[name]) / 1e9 == pytest.approx(billions, rel=0.03)


def test_mixtral_active_parameters_are_12_9_billion():
    # Jiang et al. 2024: "each token has access to 47B parameters, but only uses 13B active parameters"
    assert active_parameter_count(PRESETS["mixtral_8x7b"]) == pytest.approx(12.88e9, rel=0.01)


@pytest.mark.parametrize("name", ["gpt3_1.3b", "gpt3_175b"])
@pytest.mark.parametrize("seq", [1024, 2048])
def test_model_flops_match_megatron_closed_form(name, seq):
    # 72 B s l h^2 (1 + s/6h + V/12lh): biases and norms are not in it
    spec = PRESETS[name]
    ours = model_flops_per_token(spec, seq) * seq
    assert ours == pytest.approx(megatron_flops_per_iteration(spec, 1, seq), rel=1e-12)


def test_dense_flops_are_6n_plus_attention():
    # PaLM's MFU numerator: 6 N + 12 L h s per token, N the non-embedding weights + LM head
    spec, seq = PRESETS["llama2_7b"], 4096
    n = parameter_count(spec) - spec.vocab * spec.hidden - spec.layers * 2 * spec.hidden - spec.hidden
    assert model_flops_per_token(spec, seq) == pytest.approx(6 * n + 12 * spec.layers * spec.hidden * seq,
                                                             rel=1e-12)


def test_layer_flops_add_up_to_the_closed_form_with_the_full_attention():
    # the kernel model's layers (non-fused attention: the full s x s product) carry the
    # matrix FLOPs of the closed form plus small element-wise work (< 1%)
    spec, seq = PRESETS["gpt3_1.3b"], 2048
    model = stage_model(spec, seq_len=seq, tp=1, first_layer=0, layers=spec.layers, embedding=True, head=True,
                        sequence_parallel=False, flash_attention=False)
    matrix = sum(layer.forward_flops for layer in model.layers if layer.kind in ("linear", "attention"))
    assert 3 * matrix / seq == pytest.approx(model_flops_per_token(spec, seq), rel=2e-3)
    # causal flash attention runs half of the attention products
    flash = stage_model(spec, seq_len=seq, tp=1, first_layer=0, layers=1, embedding=False, head=False,
                        sequence_parallel=False, flash_attention=True)
    full = stage_model(spec, seq_len=seq, tp=1, first_layer=0, layers=1, embedding=False, head=False,
                       sequence_parallel=False, flash_attention=False)

    def attention(m):
        return sum(layer.forward_flops for layer in m.layers if layer.kind == "attention")
    assert attention(flash) * 2 == attention(full) == 4 * seq * seq * spec.hidden


@pytest.mark.parametrize("tp", [1, 2, 4, 8])
def test_tensor_parallel_split_divides_the_block_weights(tp):
    # column/row split: every matrix on 1/tp of its weights; norms replicated
    spec = PRESETS["llama2_7b"]
    one = stage_model(spec, seq_len=512, tp=tp, first_layer=0, layers=1, embedding=False, head=False,
                      sequence_parallel=True, flash_attention=True)
    norms = 2 * spec.hidden
    assert one.total_params - norms == (parameter_count(spec) - 2 * spec.vocab * spec.hidden - spec.hidden
                                        ) // spec.layers // tp - norms // tp


def test_presets_are_zoo_models():
    assert "llama2_70b" in zoo.list_models()
    assert zoo.get_model("llama3_8b").input_shape == (8192,)
    with pytest.raises(ValueError, match="positions"):
        zoo.get_model("gpt3_1.3b", sequence_length=4096)


def test_moe_tokens_are_permuted_into_expert_order_and_back_at_memory_speed():
    from simulator.catalog import get_gpu
    from simulator.compute import device_rates, roofline_costs
    from simulator.kernel_efficiency import elementwise_traffic

    spec, seq = PRESETS["mixtral_8x7b"], 4096
    model = stage_model(spec, seq_len=seq, tp=1, first_layer=0, layers=1, embedding=False, head=False,
                        sequence_parallel=False, flash_attention=True, expert=8)
    layers = {layer.name: layer for layer in model.layers}
    permute, unpermute = layers["layers.0.mlp.permute"], layers["layers.0.mlp.unpermute"]
    h, k = spec.hidden, spec.top_k
    # gather each token's row once per chosen expert, then scatter the top_k outputs back
    assert (permute.input_elements, permute.output_elements) == (seq * h, seq * k * h)
    assert (unpermute.input_elements, unpermute.output_elements) == (seq * k * h, seq * h)
    assert permute.forward_flops == unpermute.forward_flops == 0
    # forward and backward each read one side and write the other: (1 + top_k) rows per token, one kernel
    for layer in (permute, unpermute):
        for backward in (False, True):
            assert elementwise_traffic(layer, backward) == (seq * h * (1 + k), 1)
    # its time: one launch plus the bytes at the achievable memory bandwidth
    gpu = get_gpu("H100-SXM5-80GB")
    costs = roofline_costs(model, gpu, precision="bf16", batch=1, compute_efficiency=0.5, memory_efficiency=0.8,
                           layer_overhead_s=20e-6, optimizer="adam")
    rates = device_rates(gpu, "bf16", 0.5, 0.8, 20e-6)
    index = model.layers.index(permute)
    assert costs.forward_s[index] == pytest.approx(20e-6 + seq * h * (1 + k) * 2 / rates.bytes_s, rel=1e-9)

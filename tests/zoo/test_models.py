"""Checks of the model zoo against published reference numbers.

Parameter counts are compared with torchvision / Hugging Face: the architectures are
rebuilt module for module, so the counts must match to the parameter (and the
published rounded figure to 0.5%). Forward compute is compared with torchvision's
published "GFLOPS" column, which counts conv/linear multiply-accumulates (GMACs).
"""

from __future__ import annotations

import pytest

# name -> (exact reference count, published rounded figure in millions, where from)
from simulator.llm.spec import PRESETS as LLM_PRESETS
from simulator.zoo import LAYER_KINDS, Layer, Model, get_model, list_models, model_summary

REFERENCE_PARAMS = {
    "alexnet": (61_100_840, 61.10),  # torchvision AlexNet_Weights.IMAGENET1K_V1
    "vgg16": (138_357_544, 138.36),  # torchvision VGG16_Weights.IMAGENET1K_V1
    "vgg19": (143_667_240, 143.67),  # torchvision VGG19_Weights.IMAGENET1K_V1
    "googlenet": (6_624_904, 6.62),  # torchvision GoogLeNet_Weights (no aux classifiers)
    # torchvision lists 27,161,264 with the aux head (conv0 98,560 + conv1 2,459,136 + fc 769,000)
    "inception_v3": (27_161_264 - 3_326_696, 23.83),
    "resnet18": (11_689_512, 11.69),
    "resnet34": (21_797_672, 21.80),
    "resnet50": (25_557_032, 25.56),
    "resnet101": (44_549_160, 44.55),
    "resnet152": (60_192_808, 60.19),
    "bert_base": (109_482_240, 109.48),  # HF bert-base-uncased BertModel (with pooler)
    "bert_large": (335_141_888, 335.14),  # HF bert-large-uncased BertModel (with pooler)
    "gpt2": (124_439_808, 124.44),  # HF gpt2, tied LM head
    "gpt2_medium": (354_823_168, 354.82),  # HF gpt2-medium, tied LM head
}

# torchvision's published "GFLOPS" (really GMACs of conv + linear layers)
TORCHVISION_GMACS = {
    "alexnet": 0.71,
    "vgg16": 15.47,
    "vgg19": 19.63,
    "googlenet": 1.50,
    "inception_v3": 5.71,
    "resnet18": 1.81,
    "resnet34": 3.66,
    "resnet50": 4.09,
    "resnet101": 7.80,
    "resnet152": 11.51,
}


def _macs(model: Model, kinds: tuple[str, ...] = ("conv", "linear")) -> float:
    return sum(layer.forward_flops for layer in model.layers if layer.kind in kinds) / 2


def _layer(model: Model, name: str) -> Layer:
    (layer,) = [layer for layer in model.layers if layer.name == name]
    return layer


def test_required_models_are_listed() -> None:
    required = {"alexnet", "vgg16", "googlenet", "inception_v3", "resnet50", "resnet101", "resnet152",
                "bert_base", "bert_large", "gpt2"}
    names = list_models()
    assert required <= set(names)
    assert names == sorted(names)
    # the transformer presets of simulator.llm are checked in tests/llm/test_spec.py
    assert set(names) == set(REFERENCE_PARAMS) | set(LLM_PRESETS)


@pytest.mark.parametrize("name", sorted(REFERENCE_PARAMS))
def test_total_params_match_reference(name: str) -> None:
    exact, published_millions = REFERENCE_PARAMS[name]
    total = get_model(name).total_params
    assert total / 1e6 == pytest.approx(published_millions, rel=0.005)
    assert total == exact


def test_headline_param_counts() -> None:
    assert get_model("resnet50").total_params / 1e6 == pytest.approx(25.56, rel=0.005)
    assert get_model("vgg16").total_params / 1e6 == pytest.approx(138.36, rel=0.005)
    assert get_model("bert_base").total_params / 1e6 == pytest.approx(110, rel=0.02)


@pytest.mark.parametrize("name", sorted(TORCHVISION_GMACS))
def test_conv_linear_macs_match_torchvision(name: str) -> None:
    # published to two decimals (abs 0.005); torchvision's count leaves out the bias
    # additions we include, worth +0.05% on VGG (rel 0.001)
    assert _macs(get_model(name)) / 1e9 == pytest.approx(TORCHVISION_GMACS[name], rel=0.001, abs=0.005)


@pytest.mark.parametrize(("name", "gmacs"), [("resnet50", 4.1), ("vgg16", 15.5), ("alexnet", 0.71)])
def test_total_forward_flops_within_5_percent(name: str, gmacs: float) -> None:
    # all layers included (norms, activations, pools): still within 5% of 2 * MACs
    assert get_model(name).total_forward_flops == pytest.approx(2 * gmacs * 1e9, rel=0.05)


def test_resnet50_first_and_last_conv_shapes() -> None:
    model = get_model("resnet50")
    convs = [layer for layer in model.layers if layer.kind == "conv"]
    assert convs[0].name == "conv1"
    assert convs[0].output_elements == 64 * 112 * 112
    assert convs[-1].output_elements == 2048 * 7 * 7
    # 53 convs: stem + 16 blocks * 3 + 4 projection shortcuts
    assert len(convs) == 53
    assert _layer(model, "layer4.2.add").input_elements == 2 * 2048 * 7 * 7
    assert _layer(model, "fc").params == 2048 * 1000 + 1000


def test_vgg16_is_a_sequential_chain() -> None:
    model = get_model("vgg16")
    assert model.layers[0].input_elements == 3 * 224 * 224
    for previous, layer in zip(model.layers, model.layers[1:]):
        assert layer.input_elements == previous.output_elements, layer.name
    assert len([layer for layer in model.layers if layer.kind == "conv"]) == 13
    assert len([layer for layer in model.layers if layer.kind == "linear"]) == 3
    assert _layer(model, "classifier.0").params == 512 * 7 * 7 * 4096 + 4096


def test_branching_cnn_shapes() -> None:
    inception = get_model("inception_v3")
    assert _layer(inception, "Mixed_5b.concat").output_elements == 256 * 35 * 35
    assert _layer(inception, "Mixed_6a.concat").output_elements == 768 * 17 * 17
    assert _layer(inception, "Mixed_7c.concat").output_elements == 2048 * 8 * 8
    # the inner 1x3 / 3x1 concat of an InceptionE block
    assert _layer(inception, "Mixed_7b.branch3x3_2_concat").output_elements == 768 * 8 * 8
    googlenet = get_model("googlenet")
    assert _layer(googlenet, "maxpool1").output_elements == 64 * 56 * 56  # ceil_mode
    assert _layer(googlenet, "inception3a.concat").output_elements == 256 * 28 * 28
    assert _layer(googlenet, "inception5b.concat").output_elements == 1024 * 7 * 7
    concat = _layer(googlenet, "inception3a.concat")
    assert concat.input_elements == concat.output_elements  # a concat copies, adds nothing


def test_alexnet_layout() -> None:
    model = get_model("alexnet")
    assert _layer(model, "features.0").output_elements == 64 * 55 * 55
    assert _layer(model, "features.12").output_elements == 256 * 6 * 6
    assert _layer(model, "classifier.1").params == 9216 * 4096 + 4096


def test_unknown_model_raises_key_error() -> None:
    with pytest.raises(KeyError, match="'nope'"):
        get_model("nope")


def test_sequence_length_rejected_for_cnn() -> None:
    with pytest.raises(ValueError, match="model 'resnet50' takes images; sequence_length does not apply"):
        get_model("resnet50", sequence_length=128)


@pytest.mark.parametrize(("name", "bad", "message"), [
    ("bert_base", 513, "sequence_length 513 exceeds the model's 512 positions"),
    ("gpt2", 1025, "sequence_length 1025 exceeds the model's 1024 positions"),
    ("bert_base", 0, "sequence_length must be a positive int, got 0"),
])
def test_sequence_length_out_of_range(name: str, bad: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        get_model(name, sequence_length=bad)


def test_default_sequence_lengths_and_cache() -> None:
    assert get_model("bert_base").input_shape == (128,)
    assert get_model("gpt2").input_shape == (1024,)
    assert get_model("bert_base") is get_model("bert_base", sequence_length=128)
    assert get_model("resnet50") is get_model("resnet50")


@pytest.mark.parametrize("name", ["bert_base", "bert_large", "gpt2"])
def test_transformer_flops_scale_with_sequence_length(name: str) -> None:
    short, long = get_model(name, sequence_length=128), get_model(name, sequence_length=512)
    hidden, n_layers = {"bert_base": (768, 12), "bert_large": (1024, 24), "gpt2": (768, 12)}[name]

    def attention(model: Model) -> int:
        return sum(layer.forward_flops for layer in model.layers if layer.kind == "attention")

    def quadratic(model: Model) -> int:
        return sum(layer.forward_flops for layer in model.layers if layer.kind in ("attention", "softmax")
                   or layer.name.endswith((".attention.self.dropout", ".attn.attn_dropout")))

    # attention core: QK^T and AV, 2*seq^2*hidden each, in every layer
    assert attention(short) == 4 * 128**2 * hidden * n_layers
    assert attention(long) - attention(short) == 4 * (512**2 - 128**2) * hidden * n_layers
    # everything over heads*seq*seq grows 16x, everything per token exactly 4x
    assert quadratic(long) == 16 * quadratic(short)
    # BERT's pooler reads one token whatever the length
    pooler = [layer.forward_flops for layer in short.layers if layer.name.startswith("pooler.")]
    per_token_long = long.total_forward_flops - quadratic(long) - sum(pooler)
    per_token_short = short.total_forward_flops - quadratic(short) - sum(pooler)
    assert per_token_long == 4 * per_token_short
    assert long.total_forward_flops > 4 * short.total_forward_flops
    # parameters do not depend on the sequence length
    assert long.total_params == short.total_params


def test_bert_base_flops_closed_form() -> None:
    seq, hidden, n_layers = 128, 768, 12
    model = get_model("bert_base", sequence_length=seq)
    block_weights = n_layers * (4 * hidden * hidden + 2 * hidden * 3072)
    # projections + MLP: 2 FLOPs per weight per token
    matmul_weights = 2 * seq * block_weights + 2 * hidden * hidden  # + pooler, one token
    linear = sum(layer.forward_flops for layer in model.layers if layer.kind == "linear")
    biases = seq * n_layers * (3 * hidden + hidden + 3072 + hidden) + hidden
    assert linear == matmul_weights + biases
    assert model.total_forward_flops / 1e9 == pytest.approx(22.4, rel=0.02)  # ~11 GMACs at seq 128


def test_gpt2_lm_head_is_tied() -> None:
    model = get_model("gpt2", sequence_length=1024)
    head = _layer(model, "lm_head")
    assert head.params == 0
    assert head.forward_flops == 2 * 1024 * 768 * 50257
    assert head.output_elements == 1024 * 50257
    assert _layer(model, "transformer.wte").params == 50257 * 768
    assert head not in model.parameter_layers


@pytest.mark.parametrize("name", sorted(REFERENCE_PARAMS))
def test_every_model_is_well_formed(name: str) -> None:
    model = get_model(name)
    assert model.name == name
    names = [layer.name for layer in model.layers]
    assert len(names) == len(set(names))
    assert model.total_params > 0 and model.total_forward_flops > 0
    assert model.sample_unit in ("images", "sequences")
    assert all(layer.kind in LAYER_KINDS for layer in model.layers)
    assert all(layer.input_elements > 0 and layer.output_elements > 0 for layer in model.layers)
    assert model.parameter_layers and all(layer.params > 0 for layer in model.parameter_layers)
    assert sum(layer.params for layer in model.parameter_layers) == model.total_params
    assert model.description and "\n" not in model.description
    assert model.source


def test_model_summary() -> None:
    summary = model_summary("resnet50")
    assert summary["name"] == "resnet50"
    assert summary["params"] == 25_557_032
    assert summary["forward_gflops"] == pytest.approx(8.2, rel=0.05)
    assert summary["sample_unit"] == "images"
    assert summary["layers"] == len(get_model("resnet50").layers)
    assert set(summary) == {"name", "description", "params", "forward_gflops", "sample_unit", "layers"}


def test_layer_validates_kind() -> None:
    with pytest.raises(ValueError, match="layer 'x': unknown kind 'tanh'"):
        Layer("x", "tanh", 0, 0, 1, 1)
    with pytest.raises(ValueError, match="layer 'x': params must be a non-negative int, got -1"):
        Layer("x", "relu", -1, 0, 1, 1)

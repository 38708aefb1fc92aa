"""Decoder (and encoder) transformers described by their shapes, as LLM trainers do.

A :class:`TransformerSpec` is what a Megatron-LM / Hugging Face config states: layers,
hidden size, attention heads and key/value heads (GQA), FFN size and activation (GeLU
or SwiGLU), vocabulary, sequence length, and optionally mixture-of-experts MLPs.
Everything else is derived from the shapes:

* :func:`parameter_count` — weights as the reference implementations hold them (tested
  against the published counts: Llama-2-7B 6,738,415,616, Llama-3-8B 8,030,261,248);
* :func:`model_flops_per_token` — the model FLOPs one token costs in training
  (forward + backward = 3 x forward), counting the attention's sequence-length terms in
  full, as Megatron-LM's formula (Narayanan et al., SC'21, eq. 3 without recompute) and
  PaLM's MFU do: ``6 N + 12 L h s`` per token for a dense model (N = non-embedding
  matmul weights incl. the LM head);
* the layers of one pipeline stage at a tensor-parallel degree (:mod:`simulator.llm.stage`),
  costed by the same kernel model as every other network.

The presets (:data:`PRESETS`) are the configurations published with each model.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

Activation = Literal["gelu", "swiglu"]


@dataclass(frozen=True)
class TransformerSpec:
    """Shapes of a transformer language model (all counts, no derived figures)."""

    name: str
    layers: int
    hidden: int
    heads: int
    ffn_hidden: int
    vocab: int
    kv_heads: int | None = None  # None: as many as heads (multi-head attention)
    activation: Activation = "swiglu"
    norm: Literal["layernorm", "rmsnorm"] = "rmsnorm"
    positions: Literal["rope", "learned"] = "rope"
    max_positions: int = 0  # learned position table rows (positions: learned)
    bias: bool = False  # biases on the linear layers (GPT-2/3 yes, Llama no)
    tied_embeddings: bool = False  # LM head shares the token embedding
    experts: int = 0  # MoE experts per MLP (0: dense)
    top_k: int = 0  # experts each token is routed to
    source: str = ""
    notes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        for name in ("layers", "hidden", "heads", "ffn_hidden", "vocab"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.hidden % self.heads:
            raise ValueError(f"hidden ({self.hidden}) must be a multiple of heads ({self.heads})")
        if self.heads % self.query_groups:
            raise ValueError(f"heads ({self.heads}) must be a multiple of kv_heads ({self.query_groups})")
        if self.experts and not 1 <= self.top_k <= self.experts:
            raise ValueError(f"top_k must be between 1 and experts ({self.experts}), got {self.top_k}")
        if self.positions == "learned" and self.max_positions < 1:
            raise ValueError("learned positions need max_positions >= 1")

    @property
    def query_groups(self) -> int:
        return self.kv_heads or self.heads

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    @property
    def qkv_out(self) -> int:
        """Output features of the fused Q/K/V projection (GQA: fewer K/V heads)."""
        return self.hidden + 2 * self.query_groups * self.head_dim

    @property
    def mlp_in_out(self) -> int:
        """Output features of the MLP's first projection (SwiGLU: gate and up fused)."""
        return (2 if self.activation == "swiglu" else 1) * self.ffn_hidden

    @property
    def moe(self) -> bool:
        return self.experts > 1


def _norm_params(spec: TransformerSpec) -> int:
    return (2 if spec.norm == "layernorm" else 1) * spec.hidden


def attention_params(spec: TransformerSpec) -> int:
    h = spec.hidden
    bias = (spec.qkv_out + h) if spec.bias else 0
    return h * spec.qkv_out + h * h + bias


def expert_params(spec: TransformerSpec) -> int:
    """One MLP (one expert of a MoE layer)."""
    h, f = spec.hidden, spec.ffn_hidden
    bias = (spec.mlp_in_out + h) if spec.bias else 0
    return h * spec.mlp_in_out + f * h + bias


def block_params(spec: TransformerSpec) -> int:
    """One transformer block: attention, MLP (every expert and the router), two norms."""
    mlp = expert_params(spec) * spec.experts + spec.hidden * spec.experts if spec.moe else expert_params(spec)
    return attention_params(spec) + mlp + 2 * _norm_params(spec)


def block_tensors(spec: TransformerSpec) -> list[int]:
    """The elements of each parameter tensor of one block, as a framework that holds
    them separately sees them: per norm its weight (and bias), per dense layer its
    weight (and bias); a MoE layer's router and each expert's MLP. Sums to
    :func:`block_params`."""
    h, f = spec.hidden, spec.ffn_hidden
    norm = [h, h] if spec.norm == "layernorm" else [h]
    attention = [h * spec.qkv_out, h * h] + ([spec.qkv_out, h] if spec.bias else [])
    mlp = [h * spec.mlp_in_out, f * h] + ([spec.mlp_in_out, h] if spec.bias else [])
    if spec.moe:
        mlp = [h * spec.experts] + mlp * spec.experts
    return norm + attention + norm + mlp


def embedding_params(spec: TransformerSpec) -> int:
    positions = spec.max_positions * spec.hidden if spec.positions == "learned" else 0
    return spec.vocab * spec.hidden + positions


def head_params(spec: TransformerSpec) -> int:
    """Final norm and the LM head (no weight of its own when tied)."""
    return _norm_params(spec) + (0 if spec.tied_embeddings else spec.vocab * spec.hidden)


def parameter_count(spec: TransformerSpec) -> int:
    """Every trainable weight (tied weights once)."""
    return embedding_params(spec) + spec.layers * block_params(spec) + head_params(spec)


def active_parameter_count(spec: TransformerSpec) -> int:
    """Weights one token passes through (MoE: only its ``top_k`` experts)."""
    if not spec.moe:
        return parameter_count(spec)
    inactive = (spec.experts - spec.top_k) * expert_params(spec)
    return parameter_count(spec) - spec.layers * inactive


def model_flops_per_token(spec: TransformerSpec, seq_len: int) -> float:
    """Training FLOPs per token (forward + backward, no recomputation), the numerator of
    MFU: 2 FLOPs per multiply-add of every matrix weight a token meets (3x for forward
    and backward), plus the attention scores and context, ``2 x 2 s h`` per layer
    forward over the full (not causally halved) sequence, as Megatron-LM and PaLM count."""
    h = spec.hidden
    matmul_per_layer = spec.hidden * spec.qkv_out + h * h
    mlp = h * spec.mlp_in_out + spec.ffn_hidden * h
    matmul_per_layer += mlp * (spec.top_k if spec.moe else 1) + (h * spec.experts if spec.moe else 0)
    head = spec.vocab * h
    forward = 2 * (spec.layers * matmul_per_layer + head) + spec.layers * 4 * seq_len * h
    return 3.0 * forward


def megatron_flops_per_iteration(spec: TransformerSpec, batch: int, seq_len: int) -> float:
    """Megatron-LM's closed form for a GPT model (Narayanan et al., SC'21, eq. 3 with the
    recomputation pass removed): ``72 B s l h^2 (1 + s/(6h) + V/(12 l h))``. Exact for
    multi-head attention with a 4h GeLU MLP; a check on :func:`model_flops_per_token`."""
    s, layers, h, v = seq_len, spec.layers, spec.hidden, spec.vocab
    return 72.0 * batch * s * layers * h * h * (1 + s / (6 * h) + v / (12 * layers * h))


def _gpt3(name: str, layers: int, hidden: int, heads: int) -> TransformerSpec:
    return TransformerSpec(
        name=name, layers=layers, hidden=hidden, heads=heads, ffn_hidden=4 * hidden, vocab=50257,
        activation="gelu", norm="layernorm", positions="learned", max_positions=2048, bias=True,
        tied_embeddings=True,
        source="Brown et al., 'Language Models are Few-Shot Learners' (2020), Table 2.1; GPT-2 vocabulary",
    )


def _llama(name: str, layers: int, hidden: int, heads: int, kv_heads: int, ffn: int, vocab: int,
           source: str) -> TransformerSpec:
    return TransformerSpec(name=name, layers=layers, hidden=hidden, heads=heads, kv_heads=kv_heads,
                           ffn_hidden=ffn, vocab=vocab, source=source)


_LLAMA2 = "Touvron et al., 'Llama 2' (2023), and the released config.json"
_LLAMA3 = "Llama Team, 'The Llama 3 Herd of Models' (2024), Table 3, and the released config.json"

PRESETS: dict[str, TransformerSpec] = {
    spec.name: spec
    for spec in (
        _gpt3("gpt3_1.3b", 24, 2048, 16),
        _gpt3("gpt3_2.7b", 32, 2560, 32),
        _gpt3("gpt3_6.7b", 32, 4096, 32),
        _gpt3("gpt3_13b", 40, 5120, 40),
        _gpt3("gpt3_175b", 96, 12288, 96),
        _llama("llama2_7b", 32, 4096, 32, 32, 11008, 32000, _LLAMA2),
        _llama("llama2_13b", 40, 5120, 40, 40, 13824, 32000, _LLAMA2),
        _llama("llama2_70b", 80, 8192, 64, 8, 28672, 32000, _LLAMA2),
        _llama("llama3_8b", 32, 4096, 32, 8, 14336, 128256, _LLAMA3),
        _llama("llama3_70b", 80, 8192, 64, 8, 28672, 128256, _LLAMA3),
        _llama("llama3_405b", 126, 16384, 128, 8, 53248, 128256, _LLAMA3),
        replace(_llama("mixtral_8x7b", 32, 4096, 32, 8, 14336, 32000,
                       "Jiang et al., 'Mixtral of Experts' (2024), and the released config.json"),
                experts=8, top_k=2),
    )
}


_REGISTERED: dict[str, TransformerSpec] = {}


def register_spec(spec: TransformerSpec) -> None:
    """Make a transformer known by its name (a measured-runs row's shapes, a user's
    model): :func:`simulator.zoo.register_transformer` calls this and adds the zoo entry.
    Registering the same shapes again is a no-op; other shapes under a preset's or an
    earlier model's name are refused."""
    known = PRESETS.get(spec.name) or _REGISTERED.get(spec.name)
    if known is not None and known != spec:
        raise ValueError(f"transformer {spec.name!r} is already known with other shapes")
    if spec.name not in PRESETS:
        _REGISTERED[spec.name] = spec


def get_spec(name: str) -> TransformerSpec:
    """A preset or a registered transformer by name (KeyError if neither)."""
    spec = PRESETS.get(name) or _REGISTERED.get(name)
    if spec is None:
        raise KeyError(name)
    return spec


def known_specs() -> list[str]:
    return sorted({*PRESETS, *_REGISTERED})

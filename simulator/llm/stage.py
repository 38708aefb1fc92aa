"""The layers one GPU runs for one pipeline stage, at a tensor-parallel degree.

Megatron-LM's tensor parallelism (Shoeybi et al., 2019) splits each block's matrices:
the fused Q/K/V projection and the MLP's first projection by columns (each of the
``tp`` GPUs holds ``1/tp`` of the output features and of the heads), the attention
output projection and the MLP's second projection by rows (``1/tp`` of the input
features). The vocabulary of the embedding and of the LM head is split the same way.
Norms, dropouts and residual adds run on the whole hidden size, on every token — or,
with sequence parallelism (Korthikanti et al., 2022), on ``1/tp`` of the tokens.

The result is an ordinary zoo :class:`~simulator.zoo.core.Model` for ONE sequence of
``seq_len`` tokens, so the same kernel model (:func:`simulator.compute.roofline_costs`)
times it as every other network. With flash attention (the default of today's
trainers) the attention core is one fused kernel whose score matrix never reaches
memory, and a causal mask lets it skip the upper triangle: half of the
``4 s^2 h / tp`` FLOPs of the full product (FlashAttention-2, Dao 2023). Without it the
scores, softmax, dropout and context run as separate kernels over the full matrix.

The collectives tensor parallelism adds per block are counted by :func:`tp_collectives`.
"""

from __future__ import annotations

from simulator.zoo.builder import NORM_FLOPS_PER_ELEMENT, NetBuilder
from simulator.zoo.core import GemmShape, Model

from .spec import TransformerSpec


def _attention_core(b: NetBuilder, prefix: str, spec: TransformerSpec, seq: int, tp: int, flash: bool,
                    kv_seq: int | None = None) -> None:
    """``seq`` local queries against ``kv_seq`` keys (context parallelism: a rank's
    chunk of the sequence against all of it, causal work balanced over the ranks)."""
    kv_seq = kv_seq or seq
    heads = spec.heads // tp
    d = spec.head_dim
    width = heads * d
    kv_width = spec.query_groups // tp * d
    if flash:
        # Q K^T and P V in one kernel, causal: (s x s_kv / 2) x d multiply-adds per head, twice.
        b.emit(f"{prefix}.flash_attention", "attention", output_shape=(seq, width),
               flops=2 * seq * kv_seq * width, input_elements=seq * width + 2 * kv_seq * kv_width,
               gemm=GemmShape(heads, seq, kv_seq, d, batch_in_m=False))
        return
    b.emit(f"{prefix}.scores", "attention", output_shape=(heads, seq, seq), flops=2 * seq * seq * width,
           input_elements=seq * (width + kv_width), gemm=GemmShape(heads, seq, seq, d, batch_in_m=False))
    b.softmax(f"{prefix}.softmax")
    b.dropout(f"{prefix}.attention_dropout")
    b.emit(f"{prefix}.context", "attention", output_shape=(seq, width), flops=2 * seq * seq * width,
           input_elements=heads * seq * seq + seq * kv_width, gemm=GemmShape(heads, seq, d, seq, batch_in_m=False))


def _norm(b: NetBuilder, name: str, spec: TransformerSpec, tokens: int) -> None:
    """LayerNorm or RMSNorm over ``tokens`` rows: one pass over memory either way; the
    weights are replicated on every GPU of the group."""
    h = spec.hidden
    b.shape = (tokens, h)
    b.emit(name, "layernorm", output_shape=(tokens, h), flops=NORM_FLOPS_PER_ELEMENT * tokens * h,
           params=(2 if spec.norm == "layernorm" else 1) * h)


def _linear(b: NetBuilder, name: str, out_features: int, *, bias: bool, copies: int = 1) -> None:
    """A dense layer on the current tokens; ``copies`` sets of its weights live on this
    GPU (a MoE layer: the FLOPs are the ``top_k`` experts each token meets, with routing
    balanced; the weights those of the experts this GPU holds)."""
    rows, in_features = b.shape
    params = (in_features * out_features + (out_features if bias else 0)) * copies
    b.emit(name, "linear", output_shape=(rows, out_features), params=params,
           flops=rows * (2 * in_features * out_features + (out_features if bias else 0)),
           gemm=GemmShape(1, rows, out_features, in_features))


def _block(b: NetBuilder, i: int, spec: TransformerSpec, seq: int, tp: int, sp: bool, flash: bool,
           kv_seq: int, expert_copies: int) -> None:
    h = spec.hidden
    tokens = seq // tp if sp else seq  # the tokens norms, dropouts and adds run on
    p = f"layers.{i}"
    _norm(b, f"{p}.input_norm", spec, tokens)
    b.shape = (seq, h)
    b.linear(f"{p}.attention.qkv", spec.qkv_out // tp, bias=spec.bias)
    _attention_core(b, f"{p}.attention", spec, seq, tp, flash, kv_seq)
    b.shape = (seq, h // tp)
    b.linear(f"{p}.attention.dense", h, bias=spec.bias)
    b.shape = (tokens, h)
    b.dropout(f"{p}.attention.dropout")
    b.add(f"{p}.attention.residual", [(tokens, h), (tokens, h)])
    _norm(b, f"{p}.mlp_norm", spec, tokens)
    b.shape = (seq, h)
    if spec.moe:
        b.linear(f"{p}.mlp.router", spec.experts, bias=False)
        # each token's top_k experts: top_k MLPs' work per token on this GPU's share, its
        # rows first gathered into expert order (Megatron-core's token permutation)
        b.shape = (seq, h)
        b.emit(f"{p}.mlp.permute", "permute", output_shape=(seq * spec.top_k, h), flops=0)
    copies = expert_copies if spec.moe else 1
    _linear(b, f"{p}.mlp.fc1", spec.mlp_in_out // tp, bias=spec.bias, copies=copies)
    if spec.activation == "swiglu":
        b.emit(f"{p}.mlp.swiglu", "gelu", output_shape=(b.shape[0], spec.ffn_hidden // tp),
               flops=4 * b.shape[0] * spec.ffn_hidden // tp)  # silu(gate) * up
    else:
        b.gelu(f"{p}.mlp.gelu")
    _linear(b, f"{p}.mlp.fc2", h, bias=spec.bias, copies=copies)
    if spec.moe:  # and scattered back to token order, the top_k outputs summed by the router's weights
        b.emit(f"{p}.mlp.unpermute", "permute", output_shape=(seq, h), flops=0)
    b.shape = (tokens, h)
    b.dropout(f"{p}.mlp.dropout")
    b.add(f"{p}.mlp.residual", [(tokens, h), (tokens, h)])


def stage_model(spec: TransformerSpec, *, seq_len: int, tp: int, first_layer: int, layers: int,
                embedding: bool, head: bool, sequence_parallel: bool, flash_attention: bool,
                context: int = 1, expert: int = 1) -> Model:
    """The layers of blocks ``first_layer .. first_layer + layers - 1`` on one GPU of a
    ``tp``-way tensor-parallel group, with the embedding (first stage) and the final
    norm, LM head and loss (last stage), for one sequence. ``seq_len`` is the tokens
    this GPU holds (the whole sequence over ``context``); its attention runs against
    all ``seq_len x context`` keys. A MoE layer holds ``experts / expert`` experts."""
    if tp < 1 or spec.heads % tp or spec.hidden % tp or spec.ffn_hidden % tp:
        raise ValueError(f"tensor parallel degree {tp} must divide heads, hidden and ffn_hidden")
    seq, h = seq_len, spec.hidden
    tokens = seq // tp if sequence_parallel else seq
    b = NetBuilder((seq,))
    if embedding:
        b.embedding("embedding.tokens", spec.vocab // tp, h)
        if spec.positions == "learned":
            b.shape = (seq,)
            b.embedding("embedding.positions", spec.max_positions, h)
        b.shape = (tokens, h)
        b.dropout("embedding.dropout")
    copies = spec.experts // expert if spec.moe else 1
    for i in range(first_layer, first_layer + layers):
        _block(b, i, spec, seq, tp, sequence_parallel, flash_attention, seq * context, copies)
    if head:
        _norm(b, "final_norm", spec, tokens)
        b.shape = (seq, h)
        b.linear("lm_head", spec.vocab // tp, bias=False, tied=spec.tied_embeddings and embedding)
        b.softmax("loss.cross_entropy")
    if not b.layers():
        raise ValueError("a pipeline stage without layers")
    return Model(name=f"{spec.name}.stage{first_layer}+{layers}",
                 description=f"{spec.name}: {layers} blocks at tp={tp}", source=spec.source or spec.name,
                 sample_unit="sequences", input_shape=(seq,), layers=b.layers())


def tp_collectives(layers: int, *, embedding: bool, head: bool, sequence_parallel: bool) -> dict[str, int]:
    """Collectives one forward pass of a stage runs in its tensor-parallel group (the
    backward pass runs as many, of the same size ``micro_batch x seq x hidden``
    elements): two per block (after attention and after the MLP) — all-reduces, or with
    sequence parallelism an all-gather before and a reduce-scatter after each of the two
    parallel regions — plus one for the vocabulary-parallel embedding and one before
    the LM head."""
    regions = 2 * layers + int(embedding) + int(head)
    if sequence_parallel:
        return {"allgather": regions, "reduce_scatter": regions}
    return {"allreduce": regions}


def full_model(spec: TransformerSpec, seq_len: int) -> Model:
    """The whole model on one GPU (no tensor or pipeline parallelism): the zoo entry a
    data-parallel scenario trains."""
    if spec.positions == "learned" and seq_len > spec.max_positions:
        raise ValueError(f"sequence_length {seq_len} exceeds the model's {spec.max_positions} positions")
    if seq_len < 1:
        raise ValueError(f"sequence_length must be a positive int, got {seq_len!r}")
    model = stage_model(spec, seq_len=seq_len, tp=1, first_layer=0, layers=spec.layers, embedding=True, head=True,
                        sequence_parallel=False, flash_attention=True)
    return Model(name=spec.name, description=f"{spec.name} ({spec.layers} layers, {spec.hidden} hidden), "
                 f"{seq_len}-token sequences", source=spec.source or spec.name, sample_unit="sequences",
                 input_shape=(seq_len,), layers=model.layers)

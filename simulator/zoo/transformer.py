"""Transformer models of the zoo (BERT encoders, GPT-2 decoders).

One sample is one sequence of ``sequence_length`` tokens, so every per-token layer
(projections, MLP, norms) costs ``sequence_length`` times its per-token work, while
the attention core grows with ``sequence_length**2``. Each block is decomposed into
the layers a framework actually runs:

* a fused Q/K/V projection (``linear``, hidden -> 3*hidden; same parameters as the
  three separate projections of the reference code);
* ``scores`` (kind ``attention``): Q @ K^T for all heads, ``2*seq*seq*hidden`` FLOPs;
* scaled softmax and attention-probability dropout over heads*seq*seq elements;
* ``context`` (kind ``attention``): probs @ V, ``2*seq*seq*hidden`` FLOPs;
* output projection, dropout, residual add, layer norm, and the MLP
  (up-projection, GELU, down-projection, dropout, residual add, layer norm).

BERT is post-LN (norm after each residual add), GPT-2 pre-LN plus a final norm.
GPT-2's causal mask is applied to a full seq x seq score matrix, as in the reference
(non-fused) implementation, so its attention costs the same FLOPs as BERT's.
"""

from __future__ import annotations

from dataclasses import dataclass

from simulator.zoo.builder import NetBuilder
from simulator.zoo.core import GemmShape, Model


@dataclass(frozen=True)
class TransformerConfig:
    vocab_size: int
    max_positions: int
    hidden: int
    layers: int
    heads: int
    intermediate: int
    type_vocab_size: int = 0  # BERT segment embeddings; 0 = none


BERT_BASE = TransformerConfig(vocab_size=30522, max_positions=512, hidden=768, layers=12, heads=12,
                              intermediate=3072, type_vocab_size=2)
BERT_LARGE = TransformerConfig(vocab_size=30522, max_positions=512, hidden=1024, layers=24, heads=16,
                               intermediate=4096, type_vocab_size=2)
GPT2_SMALL = TransformerConfig(vocab_size=50257, max_positions=1024, hidden=768, layers=12, heads=12,
                               intermediate=3072)
GPT2_MEDIUM = TransformerConfig(vocab_size=50257, max_positions=1024, hidden=1024, layers=24, heads=16,
                                intermediate=4096)


def _check_sequence_length(config: TransformerConfig, sequence_length: int) -> None:
    if isinstance(sequence_length, bool) or not isinstance(sequence_length, int) or sequence_length < 1:
        raise ValueError(f"sequence_length must be a positive int, got {sequence_length!r}")
    if sequence_length > config.max_positions:
        # the learned position table has only max_positions rows
        raise ValueError(f"sequence_length {sequence_length} exceeds the model's {config.max_positions} positions")


def _attention_core(b: NetBuilder, prefix: str, config: TransformerConfig, seq: int, dropout_name: str) -> None:
    """Scores, softmax, probability dropout and context; expects the fused QKV output."""
    hidden, heads = config.hidden, config.heads
    head_dim = hidden // heads
    b.emit(
        f"{prefix}.scores",
        "attention",
        output_shape=(heads, seq, seq),
        flops=2 * seq * seq * hidden,  # per head 2*seq*seq*head_dim
        input_elements=2 * seq * hidden,  # Q and K
        gemm=GemmShape(heads, seq, seq, head_dim, batch_in_m=False),
    )
    b.softmax(f"{prefix}.softmax")  # includes the 1/sqrt(head_dim) scaling
    b.dropout(f"{prefix}.{dropout_name}")
    b.emit(
        f"{prefix}.context",
        "attention",
        output_shape=(seq, hidden),
        flops=2 * seq * seq * hidden,
        input_elements=heads * seq * seq + seq * hidden,  # probabilities and V
        gemm=GemmShape(heads, seq, head_dim, seq, batch_in_m=False),
    )


def _bert(name: str, config: TransformerConfig, sequence_length: int, label: str, reference: str) -> Model:
    _check_sequence_length(config, sequence_length)
    seq, hidden = sequence_length, config.hidden
    b = NetBuilder((seq,))
    # token, position and segment ids all have seq elements; their lookups are summed
    b.embedding("embeddings.word_embeddings", config.vocab_size, hidden)
    b.shape = (seq,)
    b.embedding("embeddings.position_embeddings", config.max_positions, hidden)
    b.shape = (seq,)
    b.embedding("embeddings.token_type_embeddings", config.type_vocab_size, hidden)
    b.add("embeddings.add", [(seq, hidden)] * 3)
    b.layernorm("embeddings.LayerNorm")
    b.dropout("embeddings.dropout")
    for i in range(config.layers):
        p = f"encoder.layer.{i}"

        def attention(p: str = p) -> None:
            # one product for the three projections; BERT's reference implementations
            # (Google's TensorFlow code, Hugging Face) hold query, key and value as three
            # dense layers: six tensors
            b.linear(f"{p}.attention.self.qkv", 3 * hidden, parameter_tensors=6)
            _attention_core(b, f"{p}.attention.self", config, seq, "dropout")
            b.linear(f"{p}.attention.output.dense", hidden)
            b.dropout(f"{p}.attention.output.dropout")

        def mlp(p: str = p) -> None:
            b.linear(f"{p}.intermediate.dense", config.intermediate)
            b.gelu(f"{p}.intermediate.gelu")
            b.linear(f"{p}.output.dense", hidden)
            b.dropout(f"{p}.output.dropout")

        b.residual(f"{p}.attention.output.add", attention)
        b.layernorm(f"{p}.attention.output.LayerNorm")
        b.residual(f"{p}.output.add", mlp)
        b.layernorm(f"{p}.output.LayerNorm")
    # the pooler reads only the first ([CLS]) token; its tanh (hidden FLOPs) is not a
    # separate layer kind and is left out
    b.shape = (hidden,)
    b.linear("pooler.dense", hidden)
    return Model(
        name=name,
        description=f"{label} encoder with pooler (no MLM/NSP heads), {seq}-token sequences",
        source=(
            "Devlin et al., 'BERT: Pre-training of Deep Bidirectional Transformers for Language "
            f"Understanding', arXiv:1810.04805; as Hugging Face BertModel ({reference}) with the "
            "pooler and without pre-training heads"
        ),
        sample_unit="sequences",
        input_shape=(seq,),
        layers=b.layers(),
    )


def _gpt2(name: str, config: TransformerConfig, sequence_length: int, label: str, reference: str) -> Model:
    _check_sequence_length(config, sequence_length)
    seq, hidden = sequence_length, config.hidden
    b = NetBuilder((seq,))
    b.embedding("transformer.wte", config.vocab_size, hidden)
    b.shape = (seq,)
    b.embedding("transformer.wpe", config.max_positions, hidden)
    b.add("transformer.embed_add", [(seq, hidden)] * 2)
    b.dropout("transformer.drop")
    for i in range(config.layers):
        p = f"transformer.h.{i}"

        def attention(p: str = p) -> None:
            b.layernorm(f"{p}.ln_1")
            b.linear(f"{p}.attn.c_attn", 3 * hidden)
            _attention_core(b, f"{p}.attn", config, seq, "attn_dropout")
            b.linear(f"{p}.attn.c_proj", hidden)
            b.dropout(f"{p}.attn.resid_dropout")

        def mlp(p: str = p) -> None:
            b.layernorm(f"{p}.ln_2")
            b.linear(f"{p}.mlp.c_fc", config.intermediate)
            b.gelu(f"{p}.mlp.gelu")
            b.linear(f"{p}.mlp.c_proj", hidden)
            b.dropout(f"{p}.mlp.dropout")

        b.residual(f"{p}.attn_add", attention)
        b.residual(f"{p}.mlp_add", mlp)
    b.layernorm("transformer.ln_f")
    # the LM head shares its weight with wte: no parameters (or gradient) of its own,
    # but the vocabulary projection is real work and its logits are real activations
    b.linear("lm_head", config.vocab_size, bias=False, tied=True)
    return Model(
        name=name,
        description=f"{label} decoder with tied LM head, {seq}-token sequences",
        source=(
            "Radford et al., 'Language Models are Unsupervised Multitask Learners' (OpenAI, 2019); "
            f"as Hugging Face GPT2LMHeadModel ({reference}, LM head tied to the token embedding)"
        ),
        sample_unit="sequences",
        input_shape=(seq,),
        layers=b.layers(),
    )


def bert_base(sequence_length: int) -> Model:
    return _bert("bert_base", BERT_BASE, sequence_length, "BERT-base (12 layers, 768 hidden)",
                 "bert-base-uncased, reference 109,482,240 params")


def bert_large(sequence_length: int) -> Model:
    return _bert("bert_large", BERT_LARGE, sequence_length, "BERT-large (24 layers, 1024 hidden)",
                 "bert-large-uncased, reference 335,141,888 params")


def gpt2(sequence_length: int) -> Model:
    return _gpt2("gpt2", GPT2_SMALL, sequence_length, "GPT-2 124M (12 layers, 768 hidden)",
                 "gpt2, reference 124,439,808 params")


def gpt2_medium(sequence_length: int) -> Model:
    return _gpt2("gpt2_medium", GPT2_MEDIUM, sequence_length, "GPT-2 medium 355M (24 layers, 1024 hidden)",
                 "gpt2-medium, reference 354,823,168 params")

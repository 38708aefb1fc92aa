"""Memory one GPU of a transformer job needs, and the refusal when it does not fit.

Model states (Rajbhandari et al., "ZeRO", SC'20, section 3.1): with mixed precision a
parameter costs 2 bytes of half-precision weight, 2 of gradient and K of optimizer
state (Adam: fp32 master weight, momentum and variance, K = 12). With ``Psi``
parameters on a GPU (its share after tensor and pipeline parallelism) and ``N_d``
data-parallel ranks sharding them:

=====  ==========================  ==========================
stage  shards                      bytes
=====  ==========================  ==========================
0      nothing                     (2 + 2 + K) Psi
1      optimizer states            4 Psi + K Psi / N_d
2      + gradients                 2 Psi + (2 + K) Psi / N_d
3      + parameters                (2 + 2 + K) Psi / N_d
=====  ==========================  ==========================

Activations (Korthikanti et al., "Reducing Activation Recomputation in Large Transformer
Models", 2022, Table 2) per block and micro-batch of ``b`` sequences of ``s`` tokens,
hidden ``h``, ``a`` heads, tensor parallel ``t``: ``s b h (34/t + 5 a s/(h t))`` bytes
with sequence parallelism, ``s b h (10 + 24/t + 5 a s / (h t))`` without; selective
recomputation (or flash attention, which never stores the score matrix) drops the
``5 a s / h`` term; full recomputation keeps only each block's input, ``2 s b h / t``
(sequence parallel) or ``2 s b h``. A stage keeps the activations of as many
micro-batches as its schedule has in flight (1F1B: ``p - s`` on stage ``s``), and the
last stage the fp32 logits of one micro-batch (``4 s b V / t``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .parallel import Layout
from .spec import TransformerSpec

GIB = 2**30
OPTIMIZER_STATE_BYTES = {"adam": 12, "momentum": 8, "sgd": 4}  # K: fp32 master (+ moments)
WORKSPACE_BYTES = 1 * GIB  # CUDA context, cuBLAS / NCCL buffers: an assumption, not a measurement


def model_state_bytes(params: float, *, zero_stage: int, shards: int, optimizer: str = "adam") -> float:
    """Weights, gradients and optimizer states of ``params`` parameters (ZeRO table)."""
    k = OPTIMIZER_STATE_BYTES[optimizer]
    n = shards
    if zero_stage == 0:
        return (2 + 2 + k) * params
    if zero_stage == 1:
        return 4 * params + k * params / n
    if zero_stage == 2:
        return 2 * params + (2 + k) * params / n
    if zero_stage == 3:
        return (2 + 2 + k) * params / n
    raise ValueError(f"zero_stage must be 0-3, got {zero_stage}")


def block_activation_bytes(spec: TransformerSpec, layout: Layout, *, recompute: str, flash_attention: bool) -> float:
    """Activations one block keeps for one micro-batch on one GPU (Korthikanti et al.)."""
    s, b, h, a, t = layout.chunk_seq, layout.micro_batch, spec.hidden, spec.heads, layout.tensor
    sp = layout.sequence_parallel
    if recompute == "full":
        return 2 * s * b * h / (t if sp else 1)
    scores = 0.0 if (recompute == "selective" or flash_attention) else 5 * a * s / (h * t)
    per_token = (34 / t if sp else 10 + 24 / t) + scores
    return s * b * h * per_token


@dataclass(frozen=True)
class MemoryUse:
    """Bytes on the busiest GPU (stage 0, or the last stage with its logits)."""

    parameters: float  # on this GPU before data-parallel sharding
    model_states: float
    activations: float
    logits: float
    workspace: float

    @property
    def total(self) -> float:
        return self.model_states + self.activations + self.logits + self.workspace

    def to_dict(self) -> dict[str, float]:
        gib = {k: v / GIB for k, v in asdict(self).items() if k != "parameters"}
        return {"parameters": self.parameters, **gib, "total": self.total / GIB}


def stage_memory(spec: TransformerSpec, layout: Layout, *, params: float, in_flight_chunks: int, blocks: int,
                 last: bool, zero_stage: int, recompute: str, flash_attention: bool, optimizer: str = "adam",
                 shards: int | None = None, expert_params: float = 0.0) -> MemoryUse:
    """Memory of one GPU holding ``params`` parameters and ``in_flight_chunks``
    micro-batch chunks of (at most) ``blocks`` blocks each. ``expert_params`` of the
    ``params`` are MoE experts, sharded over their own data-parallel group (the
    ``expert`` ranks holding different experts share none of them: ``shards / expert``
    ranks, Megatron-LM's expert-data-parallel group)."""
    if shards is None:  # the data-parallel group (context-parallel ranks hold the same weights)
        shards = layout.data * layout.context
    expert_shards = max(1, shards // layout.expert)
    per_block = block_activation_bytes(spec, layout, recompute=recompute, flash_attention=flash_attention)
    logits = 4 * layout.chunk_seq * layout.micro_batch * spec.vocab / layout.tensor if last else 0.0
    states = model_state_bytes(params - expert_params, zero_stage=zero_stage, shards=shards, optimizer=optimizer)
    if expert_params:
        states += model_state_bytes(expert_params, zero_stage=zero_stage, shards=expert_shards, optimizer=optimizer)
    return MemoryUse(
        parameters=params,
        model_states=states,
        activations=per_block * blocks * in_flight_chunks,
        logits=logits,
        workspace=WORKSPACE_BYTES,
    )

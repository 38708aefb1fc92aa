"""What one GPU's pieces of a transformer step cost, before they are put on the clock.

Per model chunk (a pipeline stage, or one of its virtual stages): the forward and
backward compute of one micro-batch from the kernel model
(:func:`simulator.compute.roofline_costs` on :func:`simulator.llm.stage.stage_model`),
recomputation, and the tensor-parallel collectives timed once each on an idle copy of
the cluster by the collective library (they run on NVLink inside a node and do not meet
the traffic between nodes). Pipeline transfers and data-parallel collectives are not
here: they run live in :mod:`simulator.llm.step`, on the shared network.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..catalog import GPUSpec
from ..compute import ACTIVATION_BYTES, ComputeCosts, roofline_costs
from ..zoo import Model
from .parallel import Layout
from .spec import TransformerSpec
from .stage import stage_model, tp_collectives


@dataclass(frozen=True)
class ChunkCosts:
    """One model chunk on one GPU, for one micro-batch."""

    forward_compute_s: float
    backward_compute_s: float  # recomputation included
    recompute_s: float  # of which recomputation
    tp_forward_s: float  # communication on the critical path: tensor-parallel, exposed ring attention, all-to-all
    tp_backward_s: float
    params: int  # parameters this GPU holds for the chunk
    blocks: int  # transformer blocks in the chunk
    optimizer_s: float  # the optimizer step over this chunk's (unsharded) parameters
    expert_params: int = 0  # of which MoE experts' weights
    # tp_forward_s and tp_backward_s by kind: "tp", "cp" (ring attention), "ep" (all-to-all) -> (forward, backward)
    comm_parts: dict[str, tuple[float, float]] = dataclasses.field(default_factory=dict)

    @property
    def forward_s(self) -> float:
        return self.forward_compute_s + self.tp_forward_s

    @property
    def backward_s(self) -> float:
        return self.backward_compute_s + self.tp_backward_s


def _is_expert(name: str) -> bool:
    """An expert MLP's weights (a MoE block's fc1 and fc2 hold one set per local expert)."""
    return name.endswith((".mlp.fc1", ".mlp.fc2"))


def _attention_indices(model: Model) -> list[int]:
    return [i for i, layer in enumerate(model.layers) if layer.kind in ("attention", "softmax")
            or layer.name.endswith("attention_dropout")]


def chunk_costs(spec: TransformerSpec, layout: Layout, gpu: GPUSpec, *, chunk_index: int, precision: str,
                recompute: str, flash_attention: bool, optimizer: str, memory_efficiency: float,
                layer_overhead_s: float, compute_efficiency: float,
                tp_time: dict[str, float]) -> ChunkCosts:
    """Costs of virtual stage ``chunk_index`` (``0 .. pipeline x virtual_stages - 1``).
    ``tp_time`` maps a tensor-parallel collective name to its time for one micro-batch's
    activation (``micro_batch x seq x hidden`` elements), ``"ring_attention"`` to one
    block's key/value exchange around the context-parallel ring and ``"all_to_all"`` to
    one MoE dispatch (or combine) over the expert-parallel group.

    Ring attention overlaps its exchange with the attention kernel (Liu et al., 2023;
    Megatron-core's context parallelism): only what the kernel does not cover is
    exposed, twice in backward (keys/values and their gradients). MoE dispatch and
    combine are on the critical path: two all-to-alls per MoE block forward, two
    backward. (Before 2026-12-02 backward also repeated forward's ring-attention and
    all-to-all time, counting them three and four times.)"""
    chunks = layout.pipeline * layout.virtual_stages
    first, last = chunk_index == 0, chunk_index == chunks - 1
    model = stage_model(spec, seq_len=layout.chunk_seq, tp=layout.tensor,
                        first_layer=layout.first_layer(chunk_index), layers=layout.chunk_layers[chunk_index],
                        embedding=first, head=last, sequence_parallel=layout.sequence_parallel,
                        flash_attention=flash_attention, context=layout.context, expert=layout.expert)
    costs = roofline_costs(model, gpu, precision=precision, batch=layout.micro_batch,
                           compute_efficiency=compute_efficiency,
                           memory_efficiency=memory_efficiency, layer_overhead_s=layer_overhead_s,
                           optimizer=optimizer)
    forward = float(costs.forward_s.sum())
    blocks = layout.chunk_layers[chunk_index]
    collectives = tp_collectives(blocks, embedding=first, head=last,
                                 sequence_parallel=layout.sequence_parallel) if layout.tensor > 1 else {}
    tp_forward = sum(count * tp_time[name] for name, count in collectives.items())
    tp_backward = tp_forward  # backward's collectives mirror forward's (all-reduce <-> identity, AG <-> RS)
    if layout.tp_comm_overlap and collectives:
        tp_forward, tp_backward = _overlapped_tp(model, costs, tp_time, layout.tensor, int(first) + int(last))
    cp_forward = cp_backward = ep_forward = ep_backward = 0.0
    if layout.context > 1:
        attention = [float(costs.forward_s[i]) for i in _attention_indices(model)]
        per_block = sum(attention) / blocks
        cp_forward = blocks * max(0.0, tp_time["ring_attention"] - per_block)
        cp_backward = blocks * max(0.0, 2 * tp_time["ring_attention"] - 2 * per_block)
    if spec.moe and layout.expert > 1:
        ep_forward = ep_backward = blocks * 2 * tp_time["all_to_all"]
    comm_forward = tp_forward + cp_forward + ep_forward
    parts = {"tp": (tp_forward, tp_backward), "cp": (cp_forward, cp_backward), "ep": (ep_forward, ep_backward)}
    if recompute == "full":  # every block's forward again, its collectives included
        recompute_s = forward
        comm_backward = comm_forward + tp_backward + cp_backward + ep_backward
        parts = {kind: (f, f + b) for kind, (f, b) in parts.items()}
    elif recompute == "selective" and not flash_attention:  # the attention core again
        recompute_s = float(costs.forward_s[_attention_indices(model)].sum())
        comm_backward = tp_backward + cp_backward + ep_backward
    else:  # nothing stored is recomputed (flash attention recomputes its own scores inside its kernel)
        recompute_s, comm_backward = 0.0, tp_backward + cp_backward + ep_backward
    return ChunkCosts(
        forward_compute_s=forward,
        backward_compute_s=float(costs.backward_s.sum()) + recompute_s,
        recompute_s=recompute_s,
        tp_forward_s=comm_forward,
        tp_backward_s=comm_backward,
        params=model.total_params,
        expert_params=sum(layer.params for layer in model.layers if spec.moe and _is_expert(layer.name)),
        blocks=blocks,
        optimizer_s=costs.optimizer_s,
        comm_parts=parts,
    )


# Each sequence-parallel collective of a block and the GEMM it overlaps with under
# --tp-comm-overlap: the all-gather feeds the column-parallel GEMM after it, the
# reduce-scatter takes the row-parallel GEMM's output before it.
_TP_OVERLAP_PAIRS = (("allgather", ".attention.qkv"), ("reduce_scatter", ".attention.dense"),
                     ("allgather", ".mlp.fc1"), ("reduce_scatter", ".mlp.fc2"))


def exposed_overlapped(comm_s: float, gemm_s: float, pieces: int) -> float:
    """What a collective split into ``pieces`` pipelined with a GEMM split the same way
    leaves exposed: piece i of the GEMM runs while piece i+1 moves, so the pair takes
    ``max(gemm, comm + gemm / pieces)`` and the collective shows beyond the GEMM by
    ``max(0, comm + gemm / pieces - gemm)`` (Transformer Engine's userbuffers split both
    into tensor-many pieces, a ring exchange for the all-gather)."""
    return max(0.0, comm_s + gemm_s / pieces - gemm_s)


def _overlapped_tp(model: Model, costs: ComputeCosts, tp_time: dict[str, float], tensor: int,
                   unpaired_regions: int) -> tuple[float, float]:
    """(forward, backward) tensor-parallel time left exposed with --tp-comm-overlap: every
    block's four collectives against their GEMMs' forward and backward times; the
    embedding's and the LM head's collectives stay exposed."""
    forward = backward = unpaired_regions * (tp_time["allgather"] + tp_time["reduce_scatter"])
    for i, layer in enumerate(model.layers):
        for collective, suffix in _TP_OVERLAP_PAIRS:
            if layer.kind == "linear" and layer.name.endswith(suffix):
                forward += exposed_overlapped(tp_time[collective], float(costs.forward_s[i]), tensor)
                backward += exposed_overlapped(tp_time[collective], float(costs.backward_s[i]), tensor)
    return forward, backward


def activation_bytes(spec: TransformerSpec, layout: Layout, precision: str) -> float:
    """Bytes one GPU sends to the next pipeline stage per micro-batch: its 1/tensor share
    of the ``micro_batch x seq x hidden`` activation (Megatron-LM's scatter-gather
    optimization; with sequence parallelism the share is all it has)."""
    return layout.micro_batch * layout.chunk_seq * spec.hidden * ACTIVATION_BYTES[precision] / layout.tensor


def kv_ring_bytes(spec: TransformerSpec, layout: Layout, precision: str) -> float:
    """Keys and values of the whole sequence for one block and micro-batch on one
    tensor rank: what ring attention passes around the context-parallel group."""
    kv_width = spec.query_groups // layout.tensor * spec.head_dim
    return 2 * layout.micro_batch * layout.seq_len * kv_width * ACTIVATION_BYTES[precision]


def all_to_all_bytes(spec: TransformerSpec, layout: Layout, precision: str) -> float:
    """Tokens one GPU sends to the other experts' GPUs in one MoE dispatch (each token
    to its ``top_k`` experts, balanced; the share staying local not counted)."""
    tokens = layout.micro_batch * layout.chunk_seq
    return tokens * spec.top_k * spec.hidden * ACTIVATION_BYTES[precision] * (layout.expert - 1) / layout.expert


def tp_message_bytes(spec: TransformerSpec, layout: Layout, precision: str) -> float:
    """The buffer of one tensor-parallel collective: a micro-batch's activation."""
    return layout.micro_batch * layout.chunk_seq * spec.hidden * ACTIVATION_BYTES[precision]

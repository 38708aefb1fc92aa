"""How a transformer job is split over the GPUs: the ``training.parallelism`` section.

The degrees multiply to the GPU count: ``tensor x pipeline x context x data`` (expert
parallelism reuses the data and context ranks for the MoE layers, as Megatron-LM's
``tp-cp-ep-dp-pp`` order does). Ranks are numbered as Megatron-LM numbers them:
tensor-parallel peers are consecutive (inside one node, on its NVLink), then context,
then data, and pipeline stages outermost (across nodes).

Checks (exit 2 naming the field): the degrees divide what they split — heads and key/value
heads by ``tensor``, layers by ``pipeline x virtual_stages``, the GPU count by
``tensor x pipeline x context``, the global batch by ``micro_batch x data``, the sequence
by ``tensor`` (sequence parallelism) and ``2 x context`` (ring attention's load-balanced
halves), the experts by ``expert``; the interleaved schedule needs the micro-batches in
whole multiples of ``pipeline`` (Megatron-LM's own requirement).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from pydantic import Field, field_validator, model_validator

from ..schema_base import _Strict
from .spec import TransformerSpec

#: Megatron-LM's rank order (its ``--order tp-cp-ep-dp-pp`` without the expert ranks,
#: which reuse the data and context ranks): tensor fastest, pipeline slowest.
DEFAULT_ORDER = ("tp", "cp", "dp", "pp")


class ParallelismSpec(_Strict):
    """Tensor, pipeline, data, context and expert parallelism of a transformer job."""

    _section = "training.parallelism"
    _limited = ("tensor", "pipeline", "context", "expert", "virtual_stages", "micro_batch", "global_batch")

    tensor: int = Field(1, ge=1, description="Tensor-parallel degree (Megatron column/row split of every block).")
    pipeline: int = Field(1, ge=1, description="Pipeline stages (the blocks split evenly over them).")
    data: int | None = Field(
        None, ge=1, description="Data-parallel replicas; default: GPUs / (tensor x pipeline x context)."
    )
    context: int = Field(1, ge=1, description="Context-parallel degree (ring attention over sequence chunks).")
    expert: int = Field(1, ge=1, description="Expert-parallel degree of MoE layers.")
    micro_batch: int = Field(1, ge=1, description="Sequences per micro-batch on one pipeline.")
    global_batch: int = Field(
        ..., ge=1, description="Sequences per optimizer step over all data-parallel replicas."
    )
    schedule: Literal["1f1b", "gpipe", "interleaved"] = Field(
        "1f1b", description="Pipeline schedule: 1F1B (PipeDream-flush), GPipe (all forwards, then all backwards), "
        "or Megatron-LM's interleaved 1F1B over virtual_stages model chunks per GPU.",
    )
    virtual_stages: int = Field(1, ge=1, description="Model chunks per GPU (interleaved schedule).")
    sequence_parallel: bool | None = Field(
        None, description="Megatron sequence parallelism (norms and dropouts on 1/tensor of the tokens; "
        "all-gather + reduce-scatter instead of all-reduce). Default: on when tensor > 1.",
    )
    recompute: Literal["none", "selective", "full"] = Field(
        "selective", description="Activation recomputation: none; selective (the attention core, Korthikanti "
        "et al. 2022); full (every block's forward again during backward).",
    )
    flash_attention: bool = Field(True, description="Fused attention kernel (no score matrix in memory, causal skip).")
    zero_stage: Literal[0, 1, 2, 3] = Field(
        1, description="Sharding over the data-parallel group: 0 none (all-reduce gradients); 1 optimizer states "
        "(Megatron's distributed optimizer: reduce-scatter gradients, all-gather parameters); 2 + gradients; "
        "3 + parameters (FSDP FULL_SHARD: all-gather each block's parameters before forward and backward).",
    )
    zero3_gather: Literal["block", "parameter"] = Field(
        "block", description="How ZeRO-3 gathers parameters: block = flattened, a model chunk's at once before "
        "each forward and backward, prefetched during the previous operation (PyTorch FSDP's flat parameters, "
        "DeepSpeed >= 0.6's coalesced fetch); parameter = one all-gather per parameter tensor, block by block, "
        "each after a device synchronize, so none overlaps compute (DeepSpeed 0.3-0.5, 2021: "
        "partition_parameters._allgather_param), and one reduce-scatter per tensor after each block's backward.",
    )
    # What DeepSpeed 0.3-0.5's per-tensor gather costs the host per rank of the group
    # (benchmarks/zero3_gather_host_cost.py measures the Python and dispatch parts).
    zero3_gather_view_us: float = Field(
        2.5, ge=0, le=1000, description="zero3_gather: parameter only. Host time per rank of the group before "
        "each tensor's all-gather, the GPU idle (it was synchronized): DeepSpeed's _allgather_param builds the "
        "output as one narrow() view per rank in a Python loop that also calls get_rank() "
        "(benchmarks/zero3_gather_host_cost.py: 2.4-3.6 us per rank with torch 2.13 on an AMD EPYC host).",
    )
    zero3_gather_copy_us: float = Field(
        5.0, ge=0, le=1000, description="zero3_gather: parameter only. Host time per rank to launch the copies of "
        "the list form of torch.distributed.all_gather, which copies each rank's piece out of a flat buffer one "
        "copy_ at a time after the NCCL kernel; the launches run while the collective does, the GPU resumes when "
        "both are done. About 1 us of dispatch (0.9-1.4 us measured by the same script) + 4 us per CUDA launch "
        "(3.3 us per kernel in CUDA.jl's graphs documentation, 4-6 us in a 2026 RTX 5070 Ti measurement).",
    )
    shard_group: Literal["data", "node"] = Field(
        "data", description="Where ZeRO shards: over the whole data-parallel group, or over its ranks in one node "
        "with the replicas in other nodes all-reducing their gradient shards (PyTorch FSDP HYBRID_SHARD).",
    )
    overlap_grad_reduce: bool = Field(
        True, description="Reduce gradients in buckets during the last micro-batch's backward."
    )
    overlap_param_gather: bool = Field(
        False, description="ZeRO-1/2: all-gather the updated parameters during the next step's forward (Megatron "
        "--overlap-param-gather), each chunk's first forward waiting for its own; off: after the optimizer step.",
    )
    tp_comm_overlap: bool = Field(
        False, description="Overlap the sequence-parallel all-gathers and reduce-scatters with the GEMMs next "
        "to them, each split into tensor-many pipelined pieces (Megatron --tp-comm-overlap, Transformer Engine "
        "userbuffers); needs sequence_parallel.",
    )
    optimizer: Literal["adam", "sgd", "momentum"] = Field("adam", description="Optimizer (state bytes and step time).")
    order: str = Field(
        "-".join(DEFAULT_ORDER), description="How ranks are numbered, hence where each group sits: the four "
        "group kinds tp, cp, dp, pp, fastest-varying first (consecutive ranks share a node). Megatron-LM's "
        "default, tp-cp-dp-pp, keeps tensor (then context) groups inside a node and puts pipeline stages "
        "outermost, across nodes; tp-cp-pp-dp keeps a replica's stages together and spreads data parallelism "
        "across nodes instead. Expert-parallel groups are carved from the data ranks.",
    )

    @field_validator("order")
    @classmethod
    def _order(cls, value: str) -> str:
        if sorted(value.split("-")) != sorted(DEFAULT_ORDER):
            raise ValueError("not an order of tp, cp, dp and pp joined by '-' (e.g. tp-cp-dp-pp)")
        return value

    @model_validator(mode="after")
    def _schedule(self) -> ParallelismSpec:
        if self.schedule == "interleaved" and self.virtual_stages < 2:
            raise ValueError("training.parallelism.virtual_stages: the interleaved schedule needs 2 or more")
        if self.schedule != "interleaved" and self.virtual_stages != 1:
            raise ValueError("training.parallelism.virtual_stages: only the interleaved schedule uses model chunks")
        if self.shard_group == "node" and self.zero_stage == 0:
            raise ValueError("training.parallelism.shard_group: sharding within a node needs zero_stage 1-3")
        if self.zero3_gather != "block" and self.zero_stage != 3:
            raise ValueError("training.parallelism.zero3_gather: says how ZeRO stage 3 gathers parameters; "
                             "set zero_stage: 3")
        # (compared with the defaults, not the fields set: layouts are rebuilt from full dumps)
        changed = [name for name in ("zero3_gather_view_us", "zero3_gather_copy_us")
                   if getattr(self, name) != type(self).model_fields[name].default]
        if changed and self.zero3_gather != "parameter":
            raise ValueError(f"training.parallelism.{changed[0]}: a host cost of the per-tensor gather; "
                             "set zero3_gather: parameter")
        if self.overlap_param_gather and self.zero_stage not in (1, 2):
            raise ValueError("training.parallelism.overlap_param_gather: only ZeRO stages 1 and 2 gather "
                             "parameters once per step (stage 3 gathers them before every use)")
        return self

    @property
    def sp(self) -> bool:
        return self.tensor > 1 if self.sequence_parallel is None else self.sequence_parallel


@dataclass(frozen=True)
class Layout:
    """The checked split of one job: degrees, micro-batches and layers per stage."""

    tensor: int
    pipeline: int
    data: int
    context: int
    expert: int
    micro_batch: int
    micro_batches: int  # per pipeline per optimizer step
    virtual_stages: int
    chunk_layers: tuple[int, ...]  # blocks of each virtual stage (chunk c p + s is stage s's c-th)
    seq_len: int  # tokens of one sequence
    sequence_parallel: bool
    tp_comm_overlap: bool = False
    order: tuple[str, ...] = DEFAULT_ORDER  # rank coordinates, fastest-varying first

    @property
    def gpus(self) -> int:
        return self.tensor * self.pipeline * self.context * self.data

    @property
    def layers_per_chunk(self) -> int:
        """The most blocks a chunk holds (all of them when the split is even)."""
        return max(self.chunk_layers)

    def first_layer(self, chunk: int) -> int:
        return sum(self.chunk_layers[:chunk])

    @property
    def chunk_seq(self) -> int:
        """Tokens of one sequence one context-parallel rank holds."""
        return self.seq_len // self.context


def _fail(field: str, message: str) -> None:
    raise ValueError(f"training.parallelism.{field}: {message}")


def check_layout(p: ParallelismSpec, spec: TransformerSpec, *, total_gpus: int, seq_len: int) -> Layout:
    """The layout of ``p`` for ``spec`` on ``total_gpus`` GPUs, or a ValueError naming
    the field that does not divide what it splits."""
    t, pp, c, v = p.tensor, p.pipeline, p.context, p.virtual_stages
    if spec.heads % t:
        _fail("tensor", f"{t} does not divide the {spec.heads} attention heads")
    if spec.query_groups % t:
        _fail("tensor", f"{t} does not divide the {spec.query_groups} key/value heads")
    if spec.ffn_hidden % t:
        _fail("tensor", f"{t} does not divide ffn_hidden {spec.ffn_hidden}")
    if spec.layers < pp * v:
        _fail("pipeline", f"{pp} stages x {v} virtual stages are more than the {spec.layers} layers")
    if total_gpus % (t * pp * c):
        _fail("tensor", f"tensor x pipeline x context = {t * pp * c} does not divide the {total_gpus} GPUs")
    data = total_gpus // (t * pp * c)
    if p.data is not None and p.data != data:
        _fail("data", f"{p.data} x tensor {t} x pipeline {pp} x context {c} is not the {total_gpus} GPUs")
    if p.global_batch % (p.micro_batch * data):
        _fail("global_batch", f"{p.global_batch} is not a multiple of micro_batch {p.micro_batch} x data {data}")
    micro_batches = p.global_batch // (p.micro_batch * data)
    if p.schedule == "interleaved" and micro_batches % pp:
        _fail("global_batch", f"the interleaved schedule needs micro-batches ({micro_batches}) in multiples of "
              f"the {pp} pipeline stages")
    if p.sp and seq_len % (t * c):
        _fail("sequence_parallel", f"the sequence ({seq_len} tokens) does not split over tensor x context = {t * c}")
    if p.tp_comm_overlap and not (t > 1 and p.sp):
        _fail("tp_comm_overlap", "overlaps the all-gathers and reduce-scatters of sequence parallelism: it needs "
              "tensor > 1 and sequence_parallel")
    if c > 1 and seq_len % (2 * c):
        _fail("context", f"the sequence ({seq_len} tokens) does not split into 2 x {c} chunks")
    if c > 1 and not p.flash_attention:
        _fail("context", "ring attention runs on fused (flash) attention kernels; set flash_attention: true")
    if p.expert > 1:
        if not spec.moe:
            _fail("expert", f"{p.expert} expert-parallel ranks, but {spec.name} has no experts")
        if spec.experts % p.expert:
            _fail("expert", f"{p.expert} does not divide the {spec.experts} experts")
        if (data * c) % p.expert:
            _fail("expert", f"{p.expert} does not divide data x context = {data * c}")
    return Layout(tensor=t, pipeline=pp, data=data, context=c, expert=p.expert, micro_batch=p.micro_batch,
                  micro_batches=micro_batches, virtual_stages=v, chunk_layers=split_layers(spec.layers, pp * v),
                  seq_len=seq_len, sequence_parallel=p.sp, tp_comm_overlap=p.tp_comm_overlap,
                  order=tuple(p.order.split("-")))


def split_layers(layers: int, chunks: int) -> tuple[int, ...]:
    """Blocks per chunk: even when ``chunks`` divides ``layers``; otherwise every chunk
    gets the rounded-up share and the deficit is taken one block at a time from the
    ends inwards (first, last, second, second to last, ...), whose stages also carry the
    embedding and the LM head — Llama 3 405B's 126 layers on 16 stages: 7 on the first
    and last, 8 elsewhere (Llama Team 2024, section 3.3.2); BLOOM's 70 on 12: 5 and 6,
    as DeepSpeed's partition counting the two embeddings as blocks gives."""
    share = -(-layers // chunks)
    split = [share] * chunks
    ends = [i for pair in zip(range(chunks), range(chunks - 1, -1, -1)) for i in pair]
    seen: list[int] = []
    for i in ends:
        if i not in seen:
            seen.append(i)
    for i in seen[: share * chunks - layers]:
        split[i] -= 1
    return tuple(split)


def rank(layout: Layout, *, tp: int = 0, cp: int = 0, dp: int = 0, stage: int = 0) -> int:
    """Global rank of a GPU by its coordinates, in the layout's order (Megatron's by
    default: tp fastest, pp slowest)."""
    if layout.order == DEFAULT_ORDER:
        return tp + layout.tensor * (cp + layout.context * (dp + layout.data * stage))
    coordinate = {"tp": tp, "cp": cp, "dp": dp, "pp": stage}
    size = {"tp": layout.tensor, "cp": layout.context, "dp": layout.data, "pp": layout.pipeline}
    out, stride = 0, 1
    for name in layout.order:
        out += coordinate[name] * stride
        stride *= size[name]
    return out


def bubble_fraction(schedule: str, stages: int, micro_batches: int, virtual_stages: int = 1) -> float:
    """Idle share of a pipeline's step with equal stages and free transfers: 1F1B and
    GPipe ``(p-1)/(m+p-1)``; interleaved ``(p-1)/(v m + p - 1)`` (Narayanan et al.,
    SC'21: the bubble shrinks by v)."""
    p, m, v = stages, micro_batches, (virtual_stages if schedule == "interleaved" else 1)
    return (p - 1) / (v * m + p - 1) if p > 1 else 0.0


def ceil_div(a: int, b: int) -> int:
    return math.ceil(a / b)

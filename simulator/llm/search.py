"""``clustersim advise parallelism``: the fastest transformer-parallel layout that fits.

Searched: tensor parallel degree (powers of two dividing the heads, inside one node),
pipeline stages (every count the GPUs allow, up to the layers), context parallel degree
(powers of two up to 16 whose 2 x c chunks split the sequence; flash attention only),
expert parallel degree (MoE models: powers of two dividing the experts), micro-batch
(1, 2, 4, 8), recomputation (none, selective — the same as none with flash attention —,
full), ZeRO stage (1, 3), and for pipelines of more than one stage the interleaved
schedule with 2 virtual stages beside 1F1B. The global batch, sequence, cluster and
model are the scenario's.

Two steps, so a 1,024-GPU search takes seconds, not hours:

1. **Prune in closed form**: the memory of the busiest stage (:mod:`.memory`: ZeRO
   model states for the stage's share of the parameters, Korthikanti activations times
   the micro-batches the schedule holds) must fit; the survivors are ranked by a lower
   bound on the step, the model's FLOPs (with the recomputed forward) at the fitted
   compute efficiency over all GPUs, stretched by the schedule's ideal bubble.
2. **Simulate** the best ``simulate`` of them by that bound on the engine, and rank them
   by their simulated step; each comes with what limits it (the largest share of its
   step after compute).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from .. import catalog
from ..errors import ScenarioError
from ..scenario import Scenario
from .memory import GIB, stage_memory
from .parallel import Layout, ParallelismSpec, bubble_fraction, check_layout
from .run import llm_compute_efficiency, simulate_llm, transformer_of
from .schedule import in_flight, stage_ops
from .spec import (
    TransformerSpec,
    block_params,
    embedding_params,
    expert_params,
    head_params,
    model_flops_per_token,
)

LIMIT_LABELS = {
    "tp_communication_s": "tensor-parallel collectives",
    "cp_communication_s": "ring attention",
    "ep_communication_s": "expert all-to-all",
    "pipeline_wait_s": "pipeline bubble and transfers",
    "fsdp_gather_wait_s": "ZeRO-3 parameter gathers",
    "dp_exposed_s": "data-parallel reduce",
    "recompute_s": "recomputation",
    "param_gather_s": "parameter all-gather",
    "optimizer_s": "optimizer step",
}


@dataclass(frozen=True)
class Candidate:
    parallelism: dict[str, Any]
    bound_s: float
    memory_gib: float
    step_s: float | None = None
    mfu: float | None = None
    limit: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"parallelism": self.parallelism, "bound_s": self.bound_s, "memory_gib": self.memory_gib,
                "step_s": self.step_s, "mfu": self.mfu, "limit": self.limit}


@dataclass(frozen=True)
class ParallelismAdvice:
    best: Candidate
    simulated: list[Candidate]
    considered: int
    fit: int

    def to_dict(self) -> dict[str, Any]:
        return {"best": self.best.to_dict(), "simulated": [c.to_dict() for c in self.simulated],
                "considered": self.considered, "fit": self.fit}

    def lines(self) -> list[str]:
        out = [f"searched {self.considered} layouts, {self.fit} fit in memory; simulated the "
               f"{len(self.simulated)} with the smallest bound:"]
        for rank_, c in enumerate(self.simulated, 1):
            p = c.parallelism
            out.append(f"{rank_:2d}. tensor {p['tensor']} x pipeline {p['pipeline']} ({p['schedule']}"
                       + (f", v={p['virtual_stages']}" if p["virtual_stages"] > 1 else "")
                       + f"){_context_expert(p)}, micro-batch {p['micro_batch']}, recompute {p['recompute']}, "
                       f"ZeRO {p['zero_stage']}:"
                       f" step {c.step_s:.3f} s, MFU {c.mfu:.1%}, {c.memory_gib:.0f} GiB; limited by {c.limit}")
        return out


def _context_expert(p: dict[str, Any]) -> str:
    parts = [f"context {p['context']}"] * (p["context"] > 1) + [f"expert {p['expert']}"] * (p["expert"] > 1)
    return "".join(f" x {part}" for part in parts)


def _stage_memory_gib(spec: TransformerSpec, p: ParallelismSpec, layout: Layout) -> float:
    """The busiest stage's memory in closed form (:func:`.memory.stage_memory` from
    parameter counts instead of built layers): the most of the first stage (with the
    embedding), the last (with the LM head and the logits; with one stage, the same
    GPU) and the middle stage with the most blocks, counted as holding as many
    micro-batches as the first. A MoE block holds ``experts / expert`` of its experts."""
    pp, v = layout.pipeline, layout.virtual_stages
    block = float(block_params(spec))
    experts = expert_params(spec) * spec.experts / layout.expert if spec.moe else 0.0  # one block's, this GPU's
    if spec.moe:
        block -= expert_params(spec) * spec.experts - experts

    def blocks_of(s: int) -> list[int]:
        return [layout.chunk_layers[k * pp + s] for k in range(v)]

    def held(s: int) -> int:
        return in_flight(stage_ops(p.schedule, s, pp, layout.micro_batches, v))

    stages = {0: held(0)}
    if pp > 1:
        stages[pp - 1] = held(pp - 1)
    if pp > 2:
        stages[max(range(1, pp - 1), key=lambda s: sum(blocks_of(s)))] = stages[0]
    # a last stage apart from the embedding holds its own copy of a tied LM head (Megatron)
    head = head_params(spec) + (spec.vocab * spec.hidden if spec.tied_embeddings and pp > 1 else 0)
    most = 0.0
    for s, in_flight_chunks in stages.items():
        params = sum(blocks_of(s)) * block + (embedding_params(spec) if s == 0 else 0) + (head if s == pp - 1 else 0)
        use = stage_memory(spec, layout, params=params / layout.tensor, in_flight_chunks=in_flight_chunks,
                           expert_params=sum(blocks_of(s)) * experts / layout.tensor,
                           blocks=max(blocks_of(s)), last=s == pp - 1, zero_stage=p.zero_stage,
                           recompute=p.recompute, flash_attention=p.flash_attention, optimizer=p.optimizer)
        most = max(most, use.total / GIB)
    return most


def candidates(scenario: Scenario) -> tuple[list[Candidate], int]:
    """Every layout that fits, with its bound (sorted), and how many were considered."""
    spec = transformer_of(scenario)
    base = scenario.training.parallelism
    assert base is not None
    c, w = scenario.cluster, scenario.workload
    gpu = catalog.get_gpu(c.gpu)
    seq = w.sequence_length or 2048
    peak = gpu.peak_flops(w.precision) * llm_compute_efficiency(gpu, w.compute_efficiency)
    flops = model_flops_per_token(spec, seq) * base.global_batch * seq
    tensors = [t for t in (1, 2, 4, 8, 16) if t <= c.gpus_per_node and spec.heads % t == 0
               and spec.query_groups % t == 0]
    pipes = [p for p in range(1, spec.layers + 1) if c.total_gpus % p == 0]
    # ring attention needs fused attention and 2 x c chunks of the sequence
    contexts = [1] + [cp for cp in (2, 4, 8, 16) if base.flash_attention and seq % (2 * cp) == 0]
    experts = [1] + [ep for ep in (2, 4, 8, 16, 32, 64) if spec.moe and spec.experts % ep == 0]
    out, considered = [], 0
    # with flash attention selective recomputation stores and costs what none does
    recomputes = ("none", "full") if base.flash_attention else ("none", "selective", "full")
    for t, pp, cp, ep, mb, recompute, zero in itertools.product(tensors, pipes, contexts, experts, (1, 2, 4, 8),
                                                                 recomputes, (1, 3)):
        if c.total_gpus % (t * pp * cp) or (c.total_gpus // (t * pp * cp)) % ep:
            continue  # the groups do not tile the GPUs (not counted as a layout)
        for schedule, v in (("1f1b", 1), ("interleaved", 2)) if pp > 1 else (("1f1b", 1),):
            considered += 1
            data = {**base.model_dump(exclude={"data"}), "tensor": t, "pipeline": pp, "context": cp, "expert": ep,
                    "micro_batch": mb, "recompute": recompute, "zero_stage": zero, "schedule": schedule,
                    "virtual_stages": v, "sequence_parallel": None, "shard_group": "data"}
            try:
                p = ParallelismSpec.model_validate(data)
                layout = check_layout(p, spec, total_gpus=c.total_gpus, seq_len=seq)
            except ValueError:
                continue
            memory = _stage_memory_gib(spec, p, layout)
            if memory > gpu.memory_gib:
                continue
            recompute_factor = {"none": 1.0, "selective": 1.0, "full": 4 / 3}[recompute]
            bubble = bubble_fraction(schedule, pp, layout.micro_batches, v)
            bound = flops * recompute_factor / (c.total_gpus * peak) / (1 - bubble)
            out.append(Candidate(parallelism=p.model_dump(), bound_s=bound, memory_gib=memory))
    # Among equal bounds, the one that communicates least first: less tensor parallelism,
    # less sharding, fewer pipeline stages, no ring attention or expert all-to-all, larger
    # micro-batches.
    return sorted(out, key=lambda x: (round(x.bound_s, 9), x.parallelism["tensor"], x.parallelism["zero_stage"],
                                      x.parallelism["pipeline"], x.parallelism["context"], x.parallelism["expert"],
                                      -x.parallelism["micro_batch"])), considered


def advise_parallelism(scenario: Scenario, simulate: int = 6) -> ParallelismAdvice:
    """The fastest layout of the ``simulate`` best by bound, after simulating them."""
    if scenario.training.parallelism is None:
        raise ScenarioError("training.parallelism: advise parallelism needs a transformer-parallel scenario "
                            "(its global_batch at least)")
    found, considered = candidates(scenario)
    if not found:
        raise ScenarioError("training.parallelism: no layout fits the GPUs' memory at this global batch "
                            "and sequence; add GPUs or lower the sequence")
    simulated = []
    for cand in found[:simulate]:
        data = scenario.model_dump()
        data["training"]["parallelism"] = cand.parallelism
        data["workload"]["check_memory"] = False  # the closed form decided what fits
        result = simulate_llm(Scenario.model_validate(data))
        shares = {k: v for k, v in result.breakdown.items() if k in LIMIT_LABELS}
        limit = LIMIT_LABELS[max(shares, key=lambda k: shares[k])] if any(shares.values()) else "compute"
        simulated.append(Candidate(parallelism=cand.parallelism, bound_s=cand.bound_s, memory_gib=cand.memory_gib,
                                   step_s=result.iteration_time_s, mfu=result.extra["llm"]["mfu"], limit=limit))
    simulated.sort(key=lambda x: (x.step_s, x.memory_gib))
    return ParallelismAdvice(best=simulated[0], simulated=simulated, considered=considered, fit=len(found))

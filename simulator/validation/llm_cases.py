"""Measured transformer-parallel rows (LLM training) -> scenario -> prediction.

A row gives the model by its shapes and the job by its parallelism
(:mod:`simulator.validation.cases`). Mapping:

* the model: a :class:`~simulator.llm.spec.TransformerSpec` from ``layers``, ``hidden``,
  ``heads``, ``kv_heads``, ``ffn_hidden``, ``vocab``, registered under the row's
  ``model`` name (two rows naming one model with different shapes get the case id as
  name). Family conventions from the name: Llama / Mixtral (SwiGLU, RMSNorm, no biases,
  untied head) when ``ffn_hidden`` is not 4 x ``hidden``, else GPT-style (GeLU,
  LayerNorm, biases, tied head);
* the servers: ``nvswitch`` (and ``nvlink`` on A100/H100, whose 8-GPU boards are NVSwitch
  systems; empty: the same) -> ``nvswitch``; ``nvlink`` on V100 -> the DGX-1 mesh (16
  GPUs per node: a DGX-2, NVSwitch); the catalog's nearest GPU for one it lacks
  (V100-SXM3-32GB, the DGX-2's, -> V100-SXM2-32GB);
* the network: ``network_gbps`` per node over one NIC per GPU; empty: 200 Gb/s per GPU
  (HDR, the DGX A100 design) on A100, 400 (NDR) on H100, 100 on V100, and the note
  says so;
* parallelism: ``tp``, ``pp``, ``cp``, ``ep``, ``virtual_stages`` (> 1: interleaved
  1F1B), ``micro_batch``, ``global_batch``, ``sequence_parallel``, ``recompute``,
  ``zero_stage`` (FSDP ``full_shard`` = 3, ``shard_grad_op`` = 2, ``hybrid_shard`` = 3
  sharded within a node, the nodes' replicas all-reducing their gradient shards);
* precision: empty -> bf16 on A100/H100, fp16 on V100; ``fp8`` (Transformer Engine) on
  GPUs with an fp8 peak. LoRA fine-tuning and CPU offloading (``cpu_offload``) are not
  modelled (such rows are reported as not simulated, with the reason).

Metrics: ``tokens_per_s``, ``tokens_per_s_per_gpu``, ``iteration_time_s`` (a step),
``throughput_samples_per_s`` (sequences/s), ``mfu`` (model FLOPs over dense peak) and
``tflops_per_gpu``: model FLOPs per second per GPU, plus the recomputed forward when
``tflops_counting`` is ``with_recompute`` (Megatron-LM's 2021 formula).

Reference (``../shared/measured/README.md``: always the trivial predictor beside): 6 N
FLOPs per token (N the parameters) at a constant 40% MFU, in the row's metric.
"""

from __future__ import annotations

import math
import re
from typing import Any

from .. import zoo
from ..catalog import get_gpu
from ..llm.run import mfu_peak_flops, simulate_llm
from ..llm.spec import PRESETS, TransformerSpec, get_spec
from ..loading import load_scenario
from .cases import NETWORK_KINDS, MeasuredCase

REFERENCE_MFU = 0.40
GPU_NAMES = {"V100-SXM3-32GB": "V100-SXM2-32GB"}
PER_GPU_GBPS = {"Ampere": 200.0, "Hopper": 400.0}


def _family(case: MeasuredCase) -> dict[str, Any]:
    assert case.hidden is not None and case.ffn_hidden is not None
    if case.ffn_hidden == 4 * case.hidden:  # GPT-style: GeLU MLP of 4 h, learned positions dropped (no cost)
        return {"activation": "gelu", "norm": "layernorm", "bias": True, "tied_embeddings": True}
    return {"activation": "swiglu", "norm": "rmsnorm", "bias": False, "tied_embeddings": False}


def transformer_of(case: MeasuredCase) -> TransformerSpec:
    """The row's model: the preset it names when the shapes agree (Mixtral's experts are
    not columns), else one made from the shapes and registered with the zoo (under the
    case id if its name is taken by other shapes)."""
    preset = PRESETS.get((case.model or "").lower().replace("-", "_"))
    if preset is not None and (preset.layers, preset.hidden, preset.heads) == (case.layers, case.hidden, case.heads):
        return preset
    fields: dict[str, Any] = {
        "layers": case.layers, "hidden": case.hidden, "heads": case.heads, "ffn_hidden": case.ffn_hidden,
        "vocab": case.vocab, "kv_heads": case.kv_heads, **_family(case),
        "experts": 0, "top_k": 0, "source": case.citation or case.source,
    }
    name = f"row:{case.model}"
    spec = TransformerSpec(name=name, **fields)
    try:
        known = get_spec(name)
    except KeyError:
        known = spec
    if known != spec:
        spec = TransformerSpec(name=f"row:{case.case_id}", **fields)
    zoo.register_transformer(spec, default_sequence_length=case.seq_len or 2048)
    return spec


def _precision(case: MeasuredCase, architecture: str) -> str:
    if case.precision in ("bf16", "fp16", "amp", "fp8"):
        return "fp16" if case.precision == "amp" else case.precision
    return "fp16" if architecture == "Volta" else "bf16"


#: A DeepSpeed version named in a row's framework text ("DeepSpeed 0.3", "DeepSpeed 0.6.2").
_DEEPSPEED_VERSION = re.compile(r"deepspeed\s+v?0\.(\d+)", re.IGNORECASE)


def zero3_gather(case: MeasuredCase) -> str:
    """``training.parallelism.zero3_gather`` of a ZeRO-3 row: ``parameter`` for DeepSpeed
    before 0.6, whose ZeRO-3 gathered every parameter tensor on its own after a device
    synchronize (``partition_parameters._allgather_param``, 0.3.12-0.5.x; 0.6.0 brought
    the coalesced, overlapped fetch); ``block`` otherwise (PyTorch FSDP, later DeepSpeed)."""
    found = _DEEPSPEED_VERSION.search(case.framework or "")
    return "parameter" if found and int(found.group(1)) < 6 else "block"


def llm_case_scenario(case: MeasuredCase, overrides: list[str] | tuple[str, ...] = ()) -> tuple[Any, str]:
    """The scenario a transformer-parallel row describes, and its note."""
    if case.cpu_offload:
        raise ValueError("CPU offloading of parameters or optimizer states is not modelled")
    if "lora" in (case.model or "").lower():
        raise ValueError("LoRA fine-tuning is not modelled (adapters trained, base weights frozen)")
    if case.tp is None and case.pp is None and case.dp is None and case.fsdp is None and case.zero_stage is None:
        raise ValueError("the parallel layout (tp, pp, dp, ZeRO/FSDP) is not stated: the step cannot be simulated")
    notes = []
    spec = transformer_of(case)
    gpu_name = GPU_NAMES.get(case.gpu or "", case.gpu or "")
    if gpu_name != case.gpu:
        notes.append(f"{case.gpu} simulated as {gpu_name}")
    gpu = get_gpu(gpu_name)
    layout = "dgx1" if case.intra_node == "nvlink" and gpu.architecture in ("Volta", "Pascal") \
        and case.gpus_per_node == 8 else "nvswitch"
    gbps = case.network_gbps
    if gbps is None and case.nodes > 1:
        gbps = PER_GPU_GBPS.get(gpu.architecture, 100.0) * case.gpus_per_node
        notes.append(f"network not given: {gbps:g} Gb/s per node")
    nics = 4 if layout == "dgx1" else case.gpus_per_node
    zero = case.zero_stage if case.zero_stage is not None else {
        "full_shard": 3, "hybrid_shard": 3, "shard_grad_op": 2, None: 0}[case.fsdp]
    parallelism: dict[str, Any] = {
        "tensor": case.tp or 1, "pipeline": case.pp or 1, "context": case.cp or 1, "expert": case.ep or 1,
        "micro_batch": case.micro_batch or 1, "global_batch": case.global_batch, "zero_stage": zero,
        "recompute": case.recompute or "none",
    }
    if case.fsdp == "hybrid_shard":
        parallelism["shard_group"] = "node"
    gather = zero3_gather(case) if zero == 3 else "block"
    if gather != "block":
        parallelism["zero3_gather"] = gather
    if case.dp is not None:
        parallelism["data"] = case.dp
    if (case.virtual_stages or 1) > 1:
        parallelism.update(schedule="interleaved", virtual_stages=case.virtual_stages)
    if case.sequence_parallel is not None:
        parallelism["sequence_parallel"] = case.sequence_parallel
    if case.flash_attention is not None:
        parallelism["flash_attention"] = case.flash_attention
    for flag in ("tp_comm_overlap", "overlap_param_gather"):
        if getattr(case, flag) is not None:
            parallelism[flag] = getattr(case, flag)
    if case.global_batch is None:
        raise ValueError("global_batch not given: the step cannot be simulated")
    network = NETWORK_KINDS[case.network or "infiniband"]
    data = {
        "name": case.case_id,
        "cluster": {"nodes": case.nodes, "gpus_per_node": case.gpus_per_node, "gpu": gpu_name,
                    "server": {"layout": layout},
                    "nic": {"bandwidth_gbps": (gbps or 1600.0) / nics, "latency_us": network.latency_us,
                            "transport": network.transport}},
        # the row ran, so it fit: the memory estimate is reported, not enforced
        "workload": {"model": spec.name, "precision": _precision(case, gpu.architecture),
                     "sequence_length": case.seq_len, "check_memory": False},
        "training": {"parallelism": parallelism},
    }
    return load_scenario(data, list(overrides)), "; ".join(notes)


def predict_llm_case(case: MeasuredCase, overrides: list[str] | tuple[str, ...] = ()
                     ) -> tuple[float, float, str]:
    """(predicted, reference, note) of a transformer-parallel row, in its metric."""
    scenario, note = llm_case_scenario(case, overrides)
    result = simulate_llm(scenario)
    llm = result.extra["llm"]
    gpus = scenario.cluster.total_gpus
    step = llm["step_time_s"]
    tokens = llm["tokens_per_s"] * step
    peak = mfu_peak_flops(get_gpu(scenario.cluster.gpu), scenario.workload.precision)
    params = llm["parameters"]
    reference_tokens_s = REFERENCE_MFU * peak * gpus / (6 * params)
    model_flops = llm["model_tflops_per_gpu"] * 1e12 * step * gpus
    hardware = case.tflops_counting == "with_recompute" and scenario.training.parallelism.recompute == "full"
    factor = 4 / 3 if hardware else 1.0  # the forward again: 4 passes counted instead of 3
    values = {
        "tokens_per_s": (llm["tokens_per_s"], reference_tokens_s),
        "tokens_per_s_per_gpu": (llm["tokens_per_s_per_gpu"], reference_tokens_s / gpus),
        "iteration_time_s": (step, tokens / reference_tokens_s),
        "throughput_samples_per_s": (result.throughput_samples_per_s,
                                     reference_tokens_s / scenario.workload.sequence_length),
        "mfu": (llm["mfu"], REFERENCE_MFU * model_flops / (6 * params * tokens)),
        "tflops_per_gpu": (llm["model_tflops_per_gpu"] * factor,
                           REFERENCE_MFU * peak / 1e12 * model_flops / (6 * params * tokens) * factor),
    }
    if case.metric not in values:
        raise ValueError(f"metric {case.metric} does not apply to a transformer row")
    predicted, reference = values[case.metric]
    notes = [note] if note else []
    if hardware:
        notes.append("TFLOP/s with the recomputed forward counted")
    estimate = max(stage["total"] for stage in llm["memory_gib_per_stage"])
    capacity = get_gpu(scenario.cluster.gpu).memory_gib
    if estimate > capacity:
        notes.append(f"memory estimate {estimate:.0f} GiB per GPU is over the {capacity:g} GiB it ran in")
    note = "; ".join(notes)
    return predicted, reference if math.isfinite(reference) else math.nan, note

"""Simulate a scenario with ``training.parallelism``: build the step, run it, report it
in the terms LLM trainers use (step time, tokens/s, tokens/s per GPU, MFU, and where
the time went)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .._version import __version__
from ..build import cluster_network
from ..built import CountingEnvironment
from ..catalog import GPUSpec
from ..collectives.backend import Backend
from ..collectives.fabric import Fabric, concurrent_flows
from ..collectives.library import CollectiveLibrary
from ..errors import ScenarioError
from ..network import Network
from ..resolved import resolve
from ..results import SimResult, Utilization
from ..run_budget import check_pipeline_work
from ..scenario import Scenario
from ..timeline import link_capacities, record_flows
from .costs import ChunkCosts, activation_bytes, all_to_all_bytes, chunk_costs, kv_ring_bytes, tp_message_bytes
from .memory import GIB, MemoryUse, stage_memory
from .parallel import Layout, bubble_fraction, check_layout, rank
from .schedule import in_flight, stage_ops
from .spec import TransformerSpec, block_tensors, get_spec, model_flops_per_token, parameter_count
from .step import Node, Program, StepPlan, StepSimulation, groups_by_node, library_for

PARAM_GATHER_BYTES = 2  # bf16/fp16 parameters all-gathered after the step (ZeRO >= 1)
GRAD_REDUCE_BYTES = 2  # gradients reduced in the compute precision (Megatron-core's default)
# The share of a GPU's measured maximum achievable matmul rate (the catalog's
# matmul_efficiency x its dense peak) a transformer step's large products sustain when
# workload.compute_efficiency is not set. Fitted on the LLM dev set
# (benchmarks/accuracy_llm.py, which prints the leave-one-source-out folds' choices).
# The card's own ceiling comes first because it differs by card: an A100 SXM reaches
# 87% of its peak, an H100 SXM 80% (power-limited clocks), and one share of the peak
# for both left the A100 rows too slow and the H100 rows too fast.
TRANSFORMER_MATMUL_SHARE = 0.78
# matmul_efficiency for a card without a measurement: the mean of the measured NVIDIA
# cards of the catalog's source table (A100 SXM 0.869, GH200 0.836, A100 PCIe 0.811,
# H100 SXM 0.803).
MEASURED_MATMUL_MEAN = 0.83


def llm_compute_efficiency(gpu: GPUSpec, explicit: float | None) -> float:
    """The share of ``gpu``'s dense peak the step's matrix products run at: the
    scenario's ``workload.compute_efficiency`` when given, else the fitted share of the
    card's measured matmul ceiling. (The data-parallel default, 0.5, comes from the
    one-GPU CNN set: convolutions and small products; cuBLAS reaches a larger share on
    a transformer's large ones.)"""
    if explicit is not None:
        return explicit
    ceiling = gpu.matmul_efficiency if gpu.matmul_efficiency is not None else MEASURED_MATMUL_MEAN
    return TRANSFORMER_MATMUL_SHARE * ceiling


def transformer_of(scenario: Scenario) -> TransformerSpec:
    try:
        return get_spec(scenario.workload.model)
    except KeyError:
        raise ScenarioError(f"workload.model: {scenario.workload.model!r} is not a transformer the parallelism "
                            "model knows (clustersim list models)") from None


@dataclass(frozen=True)
class LLMStep:
    """Everything about one step besides the SimResult's headline figures."""

    layout: Layout
    step_s: float
    tokens_per_step: int
    model_flops_per_step: float
    memory: list[MemoryUse]  # per stage
    chunks: list[ChunkCosts]  # per virtual stage
    tp_collective_s: dict[str, float]


def _comm_times(scenario: Scenario, network: Network, gpus: list[Node], node_of: dict[Node, int], backend: Backend,
                layout: Layout, spec: TransformerSpec, architecture: str) -> dict[str, float]:
    """Each in-layer communication of one micro-batch, alone on an idle copy of the
    network (the groups of stage 0, replica 0: all are alike): the tensor-parallel
    collectives, ring attention's key/value exchange around the context-parallel group,
    and one MoE all-to-all over the expert-parallel group."""
    precision = scenario.workload.precision
    env = CountingEnvironment()
    scratch = Network(env, network.structure, network.links.scale)
    times: dict[str, float] = {}

    def timed(key: str, program: Program) -> None:
        start = env.now
        env.process(program)
        env.run()
        times[key] = env.now - start

    if layout.tensor > 1:
        group = [gpus[rank(layout, tp=i)] for i in range(layout.tensor)]
        library = library_for(env, scratch, group, node_of, backend, architecture)
        for collective in ("allreduce", "allgather", "reduce_scatter"):
            timed(collective, library.run(collective, tp_message_bytes(spec, layout, precision)))
    if layout.context > 1:
        group = [gpus[rank(layout, cp=j)] for j in range(layout.context)]
        library = library_for(env, scratch, group, node_of, backend, architecture)
        timed("ring_attention", library.run("allgather", kv_ring_bytes(spec, layout, precision)))
    if spec.moe and layout.expert > 1:
        group = [gpus[rank(layout, dp=d)] for d in range(layout.expert)]
        pairs = [(a, b) for a in group for b in group if a != b]
        fabric = Fabric(env, scratch, groups_by_node(group, node_of), detailed=False)
        timed("all_to_all", concurrent_flows(fabric, pairs, all_to_all_bytes(spec, layout, precision)
                                             / (layout.expert - 1)))
    return times


def _pipeline_pairs(layout: Layout, gpus: list[Node], node_of: dict[Node, int],
                    every: bool = False) -> dict[tuple[int, int], tuple[tuple[Node, Node], ...]]:
    """Per (stage, neighbour stage): the GPU pairs one bundled transfer stands for. Every
    replica's transfer is alike; those that leave the same nodes as replica 0's share
    their NICs and are kept, the others (other nodes, other NICs) are left out — exact
    on a non-blocking fabric, optimistic where the fabric's core is oversubscribed."""
    out: dict[tuple[int, int], tuple[tuple[Node, Node], ...]] = {}
    for s in range(layout.pipeline):
        home = {node_of[gpus[rank(layout, tp=i, cp=cc, stage=s)]] for i in range(layout.tensor)
                for cc in range(layout.context)}
        for t in ((s + 1) % layout.pipeline, (s - 1) % layout.pipeline):
            if t == s:
                continue
            out[(s, t)] = tuple((gpus[rank(layout, tp=i, cp=cc, dp=d, stage=s)],
                                 gpus[rank(layout, tp=i, cp=cc, dp=d, stage=t)])
                                for d in range(layout.data) for cc in range(layout.context)
                                for i in range(layout.tensor)
                                if every or node_of[gpus[rank(layout, tp=i, cp=cc, dp=d, stage=s)]] in home)
    return out


def _in_first_node(group: list[Node], node_of: dict[Node, int]) -> list[Node]:
    """The members of a data-parallel group in its first member's node: a hybrid shard group."""
    return [g for g in group if node_of[g] == node_of[group[0]]]


def _across_nodes(group: list[Node], node_of: dict[Node, int]) -> list[Node]:
    """One member per node, each at the first member's place in its node: the replicas of
    one hybrid shard that all-reduce its gradients."""
    by_node: dict[int, list[Node]] = {}
    for g in group:
        by_node.setdefault(node_of[g], []).append(g)
    return [members[0] for members in by_node.values()]


def _own_rails(groups: list[list[Node]], rails: dict[Node, Node]) -> bool:
    """Whether the tensor ranks' data-parallel groups leave their nodes by different NICs
    (rail-aligned servers): then one group's collectives stand for all of them."""
    first = [g[0] for g in groups]
    return len(first) > 1 and all(g in rails for g in first) and len({rails[g] for g in first}) == len(first)


def simulate_llm(scenario: Scenario, *, representative: bool = True, record_timeline: bool = False) -> SimResult:
    """One step of ``scenario`` (with ``training.parallelism``). ``representative``
    (the default) lets the transfers of replicas that share nothing with replica 0
    and, on rail-aligned servers, one tensor rank's data-parallel group stand for the
    others; False moves every one of them (a check at small scale: same answer on a
    non-blocking fabric). ``record_timeline`` adds ``extra["timeline"]``: each pipeline
    stage's operations by micro-batch and chunk, its step tail, and every flow
    (:func:`step_timeline`)."""
    p = scenario.training.parallelism
    assert p is not None
    spec = transformer_of(scenario)
    w, c = scenario.workload, scenario.cluster
    seq_len = w.sequence_length or 2048
    try:
        layout = check_layout(p, spec, total_gpus=c.total_gpus, seq_len=seq_len)
    except ValueError as exc:
        raise ScenarioError(str(exc)) from None
    per_op = 0  # DeepSpeed 0.3-0.5's ZeRO-3: all-gathers (two in a recomputed backward) and a reduce-scatter
    if p.zero_stage == 3 and p.zero3_gather == "parameter":
        per_tensor = 3 if p.recompute == "full" else 2
        per_op = per_tensor * len(block_tensors(spec)) * -(-spec.layers // (layout.pipeline * layout.virtual_stages))
    check_pipeline_work(layout.pipeline, layout.micro_batches, layout.virtual_stages, collectives_per_op=per_op)
    view = resolve(scenario)
    gpu = view.gpu
    env = CountingEnvironment()
    cluster, network, backend = cluster_network(view, env)
    flows = record_flows(network) if record_timeline else None
    gpus: list[Node] = list(cluster.gpus)
    node_of: dict[Node, int] = {g: i // c.gpus_per_node for i, g in enumerate(gpus)}
    tp_time = _comm_times(scenario, network, gpus, node_of, backend, layout, spec, gpu.architecture)
    stages, v = layout.pipeline, layout.virtual_stages
    chunk_list = [chunk_costs(spec, layout, gpu, chunk_index=k, precision=w.precision, recompute=p.recompute,
                              flash_attention=p.flash_attention, optimizer=p.optimizer,
                              memory_efficiency=w.memory_efficiency, layer_overhead_s=view.layer_overhead_s,
                              compute_efficiency=llm_compute_efficiency(gpu, w.compute_efficiency), tp_time=tp_time)
                  for k in range(stages * v)]
    # GPU of stage s holds virtual stages s, s + p, s + 2p, ...
    held = [[chunk_list[k * stages + s] for k in range(v)] for s in range(stages)]
    ops = [stage_ops(p.schedule, s, stages, layout.micro_batches, v) for s in range(stages)]
    dp_groups = [[[gpus[rank(layout, tp=i, cp=cc, dp=d, stage=s)] for d in range(layout.data)
                   for cc in range(layout.context)] for i in range(layout.tensor)] for s in range(stages)]
    hybrid = p.shard_group == "node"
    shard_of = [[_in_first_node(group, node_of) for group in groups] for groups in dp_groups] if hybrid else dp_groups
    shards = len(shard_of[0][0])
    memory = [stage_memory(spec, layout, params=sum(ch.params for ch in held[s]), in_flight_chunks=in_flight(ops[s]),
                           expert_params=sum(ch.expert_params for ch in held[s]),
                           blocks=max(ch.blocks for ch in held[s]), last=s == stages - 1, zero_stage=p.zero_stage,
                           recompute=p.recompute, flash_attention=p.flash_attention, optimizer=p.optimizer,
                           shards=shards)
              for s in range(stages)]
    busiest = max(range(stages), key=lambda s: memory[s].total)
    if w.check_memory and memory[busiest].total > gpu.memory_gib * GIB:
        m = memory[busiest].to_dict()
        raise ScenarioError(
            f"training.parallelism: stage {busiest} needs {m['total']:.1f} GiB per GPU, the {gpu.name} has "
            f"{gpu.memory_gib:g} GiB (model states {m['model_states']:.1f}, activations {m['activations']:.1f}, "
            f"logits {m['logits']:.1f}, workspace {m['workspace']:.1f}); raise tensor/pipeline parallelism, the "
            "ZeRO stage or recomputation, or lower the micro-batch")
    pairs = _pipeline_pairs(layout, gpus, node_of, every=not representative)
    rails = network.router.rail_nics

    def libraries_of(groups: list[list[list[Node]]]) -> dict[tuple[int, int], CollectiveLibrary]:
        return {(s, i): library_for(env, network, group, node_of, backend, gpu.architecture)
                for s in range(stages) for i, group in enumerate(groups[s])
                if len(group) > 1 and (i == 0 or not representative or not _own_rails(groups[s], rails))}
    libraries = libraries_of(shard_of)
    replicas = libraries_of([[_across_nodes(group, node_of) for group in groups] for groups in dp_groups]) \
        if hybrid else {}
    plan = StepPlan(
        stages=stages, chunks=v, micro_batches=layout.micro_batches, ops=ops,
        forward_s=[[ch.forward_s for ch in held[s]] for s in range(stages)],
        backward_s=[[ch.backward_s for ch in held[s]] for s in range(stages)],
        compute_s=[[(ch.forward_compute_s, ch.backward_compute_s, ch.recompute_s) for ch in held[s]]
                   for s in range(stages)],
        tp_s=[[(ch.tp_forward_s, ch.tp_backward_s) for ch in held[s]] for s in range(stages)],
        comm_parts=[[ch.comm_parts for ch in held[s]] for s in range(stages)],
        activation_bytes=activation_bytes(spec, layout, w.precision),
        p2p_pairs=pairs,
        dp_groups=shard_of,
        replica_size=len(dp_groups[0][0]) // shards,
        grad_bytes=[[ch.params * GRAD_REDUCE_BYTES for ch in held[s]] for s in range(stages)],
        param_bytes=[[ch.params * PARAM_GATHER_BYTES for ch in held[s]] for s in range(stages)],
        optimizer_s=[sum(ch.optimizer_s for ch in held[s]) / (shards if p.zero_stage >= 1 else 1)
                     for s in range(stages)],
        blocks_per_chunk=[[ch.blocks for ch in held[s]] for s in range(stages)],
        zero_stage=p.zero_stage,
        overlap_grad_reduce=p.overlap_grad_reduce,
        overlap_param_gather=p.overlap_param_gather,
        tensor_shares=_tensor_shares(spec) if p.zero_stage == 3 and p.zero3_gather == "parameter" else (),
        regather_for_recompute=p.zero_stage == 3 and p.zero3_gather == "parameter" and p.recompute == "full",
        gather_view_s=p.zero3_gather_view_us * 1e-6 if p.zero3_gather == "parameter" else 0.0,
        gather_copy_s=p.zero3_gather_copy_us * 1e-6 if p.zero3_gather == "parameter" else 0.0,
    )
    sim = StepSimulation(env, network, libraries, plan, replicas)
    step_s = sim.run()
    tokens = p.global_batch * seq_len
    flops = model_flops_per_token(spec, seq_len) * tokens
    step = LLMStep(layout=layout, step_s=step_s, tokens_per_step=tokens, model_flops_per_step=flops, memory=memory,
                   chunks=chunk_list, tp_collective_s=tp_time)
    result = _result(scenario, spec, step, sim, gpu, env.events_processed, network.flows_started)
    if flows is not None:
        stage_gpus = [str(gpus[rank(layout, stage=s)]) for s in range(stages)]
        timeline = step_timeline(sim, stage_gpus, flows, link_capacities(network), scenario.name)
        result = dataclasses.replace(result, extra={**result.extra, "timeline": timeline})
    return result


def step_timeline(sim: StepSimulation, stage_gpus: list[str], flows: list[dict[str, Any]],
                  links: dict[str, float], name: str) -> dict[str, Any]:
    """The step as the data-parallel timeline describes an iteration (one iteration, no
    warm-up): one "rank" per pipeline stage (its first GPU; the others of the stage do
    the same), whose intervals are its forward and backward operations with their
    ``micro_batch`` and ``chunk``, then its exposed gradient reduce (``sync wait``), its
    optimizer and its parameter gather; and every flow of the step."""
    ranks = []
    for s, rec in enumerate(sim.records):
        intervals: list[dict[str, Any]] = [
            {"kind": "forward" if kind == "F" else "backward", "iteration": 0, "micro_batch": mb, "chunk": chunk,
             "start": float(start), "end": float(end)}
            for kind, chunk, mb, start, end in rec.ops]
        at = rec.ops_end
        for kind, seconds in (("sync wait", rec.dp_exposed_s), ("optimizer", rec.optimizer_s),
                              ("parameter gather", rec.gather_s)):
            if seconds > 0:
                intervals.append({"kind": kind, "iteration": 0, "start": float(at), "end": float(at + seconds)})
            at += seconds
        ranks.append({"rank": s, "gpu": f"stage {s} ({stage_gpus[s]})", "intervals": intervals})
    return {
        "scenario": name, "version": __version__, "strategy": "transformer parallel", "mode": "llm",
        "links": links, "buckets": [], "iterations": [[0.0, float(max(rec.end for rec in sim.records))]],
        "warmup_iterations": 0, "ranks": ranks, "flows": flows, "servers": [],
    }


#: MFU of an fp8 run is counted against the bf16 peak, as MLPerf and Megatron reports
#: quote it (the fp8 peak would halve it while only the dense GEMMs run in fp8).
MFU_PEAK_PRECISION = {"fp8": "bf16"}


def _tensor_shares(spec: TransformerSpec) -> tuple[float, ...]:
    """Each parameter tensor's share of a block's parameters (:func:`block_tensors`)."""
    tensors = block_tensors(spec)
    total = sum(tensors)
    return tuple(t / total for t in tensors)


def mfu_peak_flops(gpu: GPUSpec, precision: str) -> float:
    """The dense peak an MFU of ``precision`` is counted against."""
    return float(gpu.peak_flops(MFU_PEAK_PRECISION.get(precision, precision)))


def _result(scenario: Scenario, spec: TransformerSpec, step: LLMStep, sim: StepSimulation, gpu: GPUSpec,
            events: int, flows: int) -> SimResult:
    p, c, layout = scenario.training.parallelism, scenario.cluster, step.layout
    assert p is not None
    peak = mfu_peak_flops(gpu, scenario.workload.precision)
    mfu = step.model_flops_per_step / (step.step_s * c.total_gpus * peak)
    rec = sim.records[0]
    breakdown = {key: float(value) for key, value in {
        "compute_s": rec.compute_s,
        "recompute_s": rec.recompute_s,
        "tp_communication_s": rec.comm["tp"],
        "cp_communication_s": rec.comm["cp"],
        "ep_communication_s": rec.comm["ep"],
        "pipeline_wait_s": rec.wait_s,
        "fsdp_gather_wait_s": rec.fsdp_wait_s,
        "dp_exposed_s": max(r.dp_exposed_s for r in sim.records),
        "optimizer_s": rec.optimizer_s,
        "param_gather_s": rec.gather_s,
    }.items()}
    tokens_per_s = step.tokens_per_step / step.step_s
    llm = {
        "layout": {"tensor": layout.tensor, "pipeline": layout.pipeline, "data": layout.data,
                   "context": layout.context, "expert": layout.expert, "virtual_stages": layout.virtual_stages,
                   "micro_batch": layout.micro_batch, "micro_batches": layout.micro_batches,
                   "global_batch": p.global_batch, "sequence_length": layout.seq_len,
                   "schedule": p.schedule, "zero_stage": p.zero_stage, "recompute": p.recompute,
                   "sequence_parallel": layout.sequence_parallel},
        "step_time_s": step.step_s,
        "tokens_per_s": tokens_per_s,
        "tokens_per_s_per_gpu": tokens_per_s / c.total_gpus,
        "mfu": mfu,
        "mfu_definition": "model FLOPs (6N + 12 L h s per token, recomputation not counted) / (step x GPUs x "
                          f"dense {MFU_PEAK_PRECISION.get(scenario.workload.precision, scenario.workload.precision)} "
                          "peak)",
        "model_tflops_per_gpu": step.model_flops_per_step / step.step_s / c.total_gpus / 1e12,
        "ideal_bubble_fraction": bubble_fraction(p.schedule, layout.pipeline, layout.micro_batches,
                                                 layout.virtual_stages),
        "memory_gib_per_stage": [m.to_dict() for m in step.memory],
        "tp_collective_s": step.tp_collective_s,
        "parameters": parameter_count(spec),
        "data_parallel_bytes_per_gpu": sim.dp_bytes_per_gpu,
    }
    busy = rec.compute_s + rec.recompute_s + rec.tp_s
    # Against a job with no communication, bubble or recomputation: the share of the
    # step a GPU spends on the model's own compute (speedup = that x GPUs).
    efficiency = rec.compute_s / step.step_s
    return SimResult(
        scenario=scenario.name, version=__version__, seed=scenario.simulation.seed, mode="llm",
        strategy=f"tp{layout.tensor}-pp{layout.pipeline}-dp{layout.data}" + (
            f"-cp{layout.context}" if layout.context > 1 else ""),
        model=spec.name, gpu=c.gpu, nodes=c.nodes, gpus_per_node=c.gpus_per_node, total_gpus=c.total_gpus,
        batch_per_gpu=layout.micro_batch, global_batch=p.global_batch, sample_unit="sequences",
        iteration_time_s=step.step_s, throughput_samples_per_s=p.global_batch / step.step_s,
        speedup=efficiency * c.total_gpus, scaling_efficiency=efficiency, breakdown=breakdown,
        bottleneck=Utilization(resource="gpu compute (stage 0)", kind="gpu", utilization=busy / step.step_s),
        utilization=[], iteration_times_s=[step.step_s], simulated_events=events, flows=flows,
        extra={"llm": llm},
    )

"""One optimizer step of a transformer job with tensor, pipeline and data parallelism,
on the SimPy engine and the cluster's own network.

What is simulated, and how (``simulator.llm`` package docstring for the whole model):

* **One representative pipeline.** Every data-parallel replica and every GPU of a
  tensor-parallel group does the same work at the same time, so one process per
  pipeline stage runs its schedule (:mod:`simulator.llm.schedule`) for all of them —
  as the data-parallel fast path follows one rank. What they share is not lost: each
  pipeline transfer is one bundled flow standing for every replica's and every tensor
  rank's transfer between the two stages, so stages on different nodes share the NICs
  and the fabric as the whole job would.
* **Compute and tensor parallelism.** An operation takes its chunk's compute time and
  its tensor-parallel collectives (:mod:`simulator.llm.costs`), on the critical path as
  Megatron-LM runs them.
* **Pipeline transfers** start when a forward (backward) finishes and release the next
  (previous) stage's operation when they arrive.
* **Data parallelism.** The gradients of a stage's chunks are reduced over its
  data-parallel group by the collective library (NCCL's algorithms and costs on the
  real topology), one collective per tensor rank, concurrently: all-reduce (ZeRO 0) or
  reduce-scatter (ZeRO 1-2, Megatron's distributed optimizer) — during the last
  micro-batch's backward in one bucket per block (``overlap_grad_reduce``), or after
  it. Then the optimizer steps over the stage's shard and (ZeRO >= 1) the updated
  parameters are all-gathered. ZeRO 3 (FSDP FULL_SHARD) all-gathers a chunk's
  parameters before each forward and backward (prefetched during the previous
  operation) and reduce-scatters its gradients after each backward; as DeepSpeed 0.3-0.5
  ran it (``zero3_gather: parameter``), one parameter tensor at a time, block by block,
  with no gather overlapping compute, and with full recomputation once more for the
  recomputed forward inside backward (three gathers of every tensor per step); each
  gather also costs the host a view per rank before it and a copy launch per rank during
  it (the list form of ``all_gather``), so the step grows with the group at a fixed batch.

The step ends when the last stage has finished its optimizer step and parameter gather.
"""

from __future__ import annotations

from collections.abc import Generator, Hashable, Sequence
from dataclasses import dataclass, field

import simpy

from ..collectives.backend import Backend
from ..collectives.fabric import Fabric
from ..collectives.library import CollectiveLibrary
from ..network import Network

Node = Hashable
Program = Generator[simpy.Event, object, None]


def groups_by_node(gpus: Sequence[Node], node_of: dict[Node, int]) -> list[list[Node]]:
    """``gpus`` in order, grouped by the node they sit in (the collective library's view)."""
    nodes: dict[int, list[Node]] = {}
    for g in gpus:
        nodes.setdefault(node_of[g], []).append(g)
    return list(nodes.values())


@dataclass
class StageRecord:
    """What one pipeline stage's GPU did, for the breakdown."""

    compute_s: float = 0.0
    recompute_s: float = 0.0
    tp_s: float = 0.0  # all communication on the critical path; by kind in comm
    comm: dict[str, float] = field(default_factory=lambda: {"tp": 0.0, "cp": 0.0, "ep": 0.0})
    wait_s: float = 0.0  # idle before an operation: bubble and pipeline transfers
    fsdp_wait_s: float = 0.0  # idle for a ZeRO-3 parameter gather
    ops_end: float = 0.0
    dp_exposed_s: float = 0.0
    optimizer_s: float = 0.0
    gather_s: float = 0.0
    end: float = 0.0
    ops: list[tuple[str, int, int, float, float]] = field(default_factory=list)  # kind, chunk, mb, start, end


@dataclass(frozen=True)
class StepPlan:
    """Everything the step's processes need (costs, sizes, groups), made by the caller."""

    stages: int
    chunks: int  # virtual stages per GPU
    micro_batches: int
    ops: list[list[tuple[str, int, int]]]  # per stage
    forward_s: list[list[float]]  # [stage][chunk]: compute + TP collectives
    backward_s: list[list[float]]
    compute_s: list[list[tuple[float, float, float]]]  # forward, backward, recompute compute only
    tp_s: list[list[tuple[float, float]]]  # [stage][chunk] (forward, backward) communication on the critical path
    activation_bytes: float
    p2p_pairs: dict[tuple[int, int], tuple[tuple[Node, Node], ...]]  # (from stage, to stage) -> pairs
    dp_groups: list[list[list[Node]]]  # [stage][tensor rank] -> the GPUs ZeRO shards over (rank order)
    grad_bytes: list[list[float]]  # [stage][chunk] gradient bytes one GPU reduces
    param_bytes: list[list[float]]  # [stage][chunk] parameter bytes one GPU gathers (bf16)
    optimizer_s: list[float]  # per stage: the optimizer over its shard
    blocks_per_chunk: list[list[int]]  # [stage][chunk]
    zero_stage: int
    overlap_grad_reduce: bool
    replica_size: int = 1  # hybrid sharding: replicas of a shard (in other nodes) all-reducing its gradients
    overlap_param_gather: bool = False  # ZeRO-1/2: the parameter all-gather runs under the next step's forward
    # ZeRO-3 gathering one parameter tensor at a time, none overlapping compute (DeepSpeed < 0.6):
    # each tensor's share of a block's parameters; empty: a chunk's gather, prefetched
    tensor_shares: tuple[float, ...] = ()
    # ...and with full recomputation, the recomputed forward inside backward fetches each tensor
    # again and releases it (DeepSpeed's forward hooks fire again), before backward fetches it anew
    regather_for_recompute: bool = False
    # ...and per rank of the group, the host's time before each tensor's gather (the GPU idle)
    # and to launch the copies of its pieces (during the collective)
    gather_view_s: float = 0.0
    gather_copy_s: float = 0.0
    # [stage][chunk] tp_s by kind: "tp", "cp" (ring attention), "ep" (all-to-all) -> (forward, backward)
    comm_parts: list[list[dict[str, tuple[float, float]]]] = field(default_factory=list)


class StepSimulation:
    """The processes of one step; run :meth:`run` once."""

    def __init__(self, env: simpy.Environment, network: Network, libraries: dict[tuple[int, int], CollectiveLibrary],
                 plan: StepPlan, replicas: dict[tuple[int, int], CollectiveLibrary] | None = None):
        self.env, self.network, self.plan = env, network, plan
        self.libraries = libraries  # (stage, tensor rank) -> the library of the group ZeRO shards over
        self.replicas = replicas or {}  # hybrid sharding: the library of a shard's replicas
        self.records = [StageRecord() for _ in range(plan.stages)]
        self._arrived: dict[tuple[str, int, int, int], simpy.Event] = {}
        # per stage: its data-parallel collectives in flight (waited for before its optimizer step)
        self._pending: dict[int, list[simpy.Process]] = {s: [] for s in range(plan.stages)}
        self.dp_bytes_per_gpu = [0.0] * plan.stages  # data-parallel bytes one GPU of each stage sent

    # -- pipeline ------------------------------------------------------------------

    def _event(self, kind: str, stage: int, chunk: int, mb: int) -> simpy.Event:
        key = (kind, stage, chunk, mb)
        if key not in self._arrived:
            self._arrived[key] = self.env.event()
        return self._arrived[key]

    def _next(self, stage: int, chunk: int) -> tuple[int, int] | None:
        p = self.plan.stages
        if stage < p - 1:
            return stage + 1, chunk
        return (0, chunk + 1) if chunk < self.plan.chunks - 1 else None

    def _previous(self, stage: int, chunk: int) -> tuple[int, int] | None:
        p = self.plan.stages
        if stage > 0:
            return stage - 1, chunk
        return (p - 1, chunk - 1) if chunk > 0 else None

    def _send(self, kind: str, src: int, dst: tuple[int, int], mb: int) -> Program:
        stage, chunk = dst
        pairs = self.plan.p2p_pairs.get((src, stage), ())
        if pairs:
            usage, latency = self.network.bundle(pairs)
            yield self.network.start_flow(usage, self.plan.activation_bytes, latency, label=f"pp {kind}")
        self._event(kind, stage, chunk, mb).succeed()

    def _stage(self, s: int) -> Program:
        plan, rec = self.plan, self.records[s]
        prefetch: dict[int, simpy.Process] = {}
        ops = plan.ops[s]
        buckets = self._param_buckets(s) if plan.overlap_param_gather and plan.zero_stage in (1, 2) else {}
        for index, (kind, chunk, mb) in enumerate(ops):
            waited = self.env.now
            if kind == "F" and (s, chunk) != (0, 0):
                yield self._event("act", s, chunk, mb)
            if kind == "B" and self._next(s, chunk) is not None:
                yield self._event("grad", s, chunk, mb)
            rec.wait_s += self.env.now - waited
            per_tensor = plan.zero_stage == 3 and bool(plan.tensor_shares)  # gathers inside, block by block
            if plan.zero_stage == 3 and not per_tensor:
                waited = self.env.now
                yield prefetch.pop(index) if index in prefetch else self.env.process(self._gather(s, chunk))
                rec.fsdp_wait_s += self.env.now - waited
                if index + 1 < len(ops):  # the next operation's parameters, during this one
                    prefetch[index + 1] = self.env.process(self._gather(s, ops[index + 1][1]))
            start = self.env.now
            forward, backward, recompute = plan.compute_s[s][chunk]
            tp_forward, tp_backward = plan.tp_s[s][chunk]
            if kind == "F" and chunk in buckets:  # the chunk's first forward, block by block behind its gather
                for arrived in buckets.pop(chunk):
                    waited = self.env.now
                    yield arrived
                    rec.gather_s += self.env.now - waited
                    yield self.env.timeout(plan.forward_s[s][chunk] / plan.blocks_per_chunk[s][chunk])
            elif kind == "F" and per_tensor:
                yield from self._per_tensor(s, kind, chunk, plan.forward_s[s][chunk])
            elif kind == "F":
                yield self.env.timeout(plan.forward_s[s][chunk])
            if kind == "F":
                rec.compute_s += forward
                rec.tp_s += tp_forward
                self._count_comm(s, chunk, 0)
                target = self._next(s, chunk)
                if target is None:  # the loss: this micro-batch's backward may start
                    self._event("grad", s, chunk, mb).succeed()
                else:
                    self.env.process(self._send("act", s, target, mb))
            else:
                if plan.overlap_grad_reduce and plan.zero_stage < 3 and mb == plan.micro_batches - 1:
                    self.env.process(self._reduce_during_backward(s, chunk, plan.backward_s[s][chunk]))
                if per_tensor:
                    yield from self._per_tensor(s, kind, chunk, plan.backward_s[s][chunk])
                else:
                    yield self.env.timeout(plan.backward_s[s][chunk])
                rec.compute_s += backward - recompute
                rec.recompute_s += recompute
                rec.tp_s += tp_backward
                self._count_comm(s, chunk, 1)
                target = self._previous(s, chunk)
                if target is not None:
                    self.env.process(self._send("grad", s, target, mb))
                if plan.zero_stage == 3 and not per_tensor:
                    self._pending[s].append(self.env.process(self._dp(s, "reduce_scatter", plan.grad_bytes[s][chunk])))
            rec.ops.append((kind, chunk, mb, start, self.env.now))
        rec.ops_end = self.env.now

    def _count_comm(self, s: int, chunk: int, backward: int) -> None:
        if self.plan.comm_parts:
            comm = self.records[s].comm
            for kind, times in self.plan.comm_parts[s][chunk].items():
                comm[kind] += times[backward]

    # -- data parallelism ----------------------------------------------------------

    def _dp(self, s: int, collective: str, nbytes: float) -> Program:
        """One collective over stage ``s``'s data-parallel groups, every tensor rank's at once."""
        n = len(self.plan.dp_groups[s][0])
        if n > 1:  # what one GPU sends: (n-1)/n of the buffer, twice for an all-reduce
            self.dp_bytes_per_gpu[s] += nbytes * (n - 1) / n * (2 if collective == "allreduce" else 1)
        # every tensor rank's group, or one standing for all on rail-aligned servers
        runs = [self.env.process(lib.run(collective, nbytes)) for (stage, _), lib in self.libraries.items()
                if stage == s]
        if runs:
            yield simpy.AllOf(self.env, runs)
        r = self.plan.replica_size
        if collective == "reduce_scatter" and r > 1:  # hybrid: the shard's replicas all-reduce it
            self.dp_bytes_per_gpu[s] += nbytes / n * (r - 1) / r * 2
            runs = [self.env.process(lib.run("allreduce", nbytes / n)) for (stage, _), lib in self.replicas.items()
                    if stage == s]
            if runs:
                yield simpy.AllOf(self.env, runs)

    def _per_tensor(self, s: int, kind: str, chunk: int, duration: float) -> Program:
        """ZeRO-3 as DeepSpeed 0.3-0.5 ran it: before a block computes, each parameter
        tensor is all-gathered on its own, one after another, the GPU idle meanwhile
        (``torch.cuda.synchronize()`` before every gather); after its backward, one
        reduce-scatter per tensor, in flight while the next block computes."""
        plan, rec = self.plan, self.records[s]
        blocks = plan.blocks_per_chunk[s][chunk]
        params, grads = plan.param_bytes[s][chunk] / blocks, plan.grad_bytes[s][chunk] / blocks
        # each part of the operation's time gathers the block's tensors first: the
        # recomputed forward, then backward proper (one part without recomputation)
        _, backward, recompute = plan.compute_s[s][chunk]
        parts = [1.0]
        if kind == "B" and plan.regather_for_recompute and 0 < recompute < backward:
            parts = [recompute / backward, 1 - recompute / backward]
        for _ in range(blocks):
            for fraction in parts:
                waited = self.env.now
                for share in plan.tensor_shares:
                    yield from self._gather_tensor(s, params * share)
                rec.fsdp_wait_s += self.env.now - waited
                yield self.env.timeout(duration * fraction / blocks)
            if kind == "B":
                for share in plan.tensor_shares:
                    self._pending[s].append(self.env.process(self._dp(s, "reduce_scatter", grads * share)))

    def _gather_tensor(self, s: int, nbytes: float) -> Program:
        """One tensor's gather as DeepSpeed 0.3-0.5 ran it: a Python loop makes one view
        per rank of the output (the GPU idle), then the list form of all_gather launches
        the NCCL kernel and, one per rank, the copies of the pieces out of its flat buffer;
        the GPU goes on once the collective is done and the last copy launched."""
        plan = self.plan
        ranks = len(plan.dp_groups[s][0])
        if plan.gather_view_s:
            yield self.env.timeout(ranks * plan.gather_view_s)
        gather = self.env.process(self._dp(s, "allgather", nbytes))
        if plan.gather_copy_s:
            yield simpy.AllOf(self.env, [gather, self.env.timeout(ranks * plan.gather_copy_s)])
        else:
            yield gather

    def _gather(self, s: int, chunk: int) -> Program:
        yield from self._dp(s, "allgather", self.plan.param_bytes[s][chunk])

    def _param_buckets(self, s: int) -> dict[int, list[simpy.Event]]:
        """Megatron's --overlap-param-gather in steady state: the previous step's updated
        parameters are all-gathered one bucket per block, in forward order, while this
        step's forwards run; each block's first forward waits for its own bucket.
        Returns chunk -> the events of its buckets' arrival."""
        plan = self.plan
        arrivals = {chunk: [self.env.event() for _ in range(plan.blocks_per_chunk[s][chunk])]
                    for chunk in range(plan.chunks)}

        def gather_all(order: list[tuple[int, list[simpy.Event]]]) -> Program:
            for chunk, events in order:
                size = plan.param_bytes[s][chunk] / len(events)
                for arrived in events:
                    yield from self._dp(s, "allgather", size)
                    arrived.succeed()

        self.env.process(gather_all(list(arrivals.items())))  # the caller pops what it waited for
        return arrivals

    def _reduce_during_backward(self, s: int, chunk: int, backward_s: float) -> Program:
        """One bucket per block, each released as the last backward passes it."""
        buckets = self.plan.blocks_per_chunk[s][chunk]
        collective = "allreduce" if self.plan.zero_stage == 0 else "reduce_scatter"
        size = self.plan.grad_bytes[s][chunk] / buckets
        for _ in range(buckets):
            yield self.env.timeout(backward_s / buckets)
            self._pending[s].append(self.env.process(self._dp(s, collective, size)))

    def _finish(self, s: int, stage_done: simpy.Process) -> Program:
        plan, rec = self.plan, self.records[s]
        yield stage_done
        if not plan.overlap_grad_reduce and plan.zero_stage < 3:
            collective = "allreduce" if plan.zero_stage == 0 else "reduce_scatter"
            for chunk in range(plan.chunks):
                self._pending[s].append(self.env.process(self._dp(s, collective, plan.grad_bytes[s][chunk])))
        waited = self.env.now
        if self._pending[s]:  # its gradients reduced (collectives still in flight)
            yield simpy.AllOf(self.env, self._pending[s])
        rec.dp_exposed_s = self.env.now - waited
        start = self.env.now
        yield self.env.timeout(plan.optimizer_s[s])
        rec.optimizer_s = self.env.now - start
        if plan.zero_stage in (1, 2) and not plan.overlap_param_gather:
            start = self.env.now
            for chunk in range(plan.chunks):
                yield from self._dp(s, "allgather", plan.param_bytes[s][chunk])
            rec.gather_s = self.env.now - start
        rec.end = self.env.now

    def run(self) -> float:
        """Run the step; returns its duration."""
        for s in range(self.plan.stages):
            done = self.env.process(self._stage(s))
            self.env.process(self._finish(s, done))
        self.env.run()
        return max(rec.end for rec in self.records)


def library_for(env: simpy.Environment, network: Network, gpus: Sequence[Node], node_of: dict[Node, int],
                backend: Backend, architecture: str) -> CollectiveLibrary:
    """The collective library of one group of GPUs on the shared network."""
    fabric = Fabric(env, network, groups_by_node(gpus, node_of), detailed=False)
    return CollectiveLibrary(fabric, backend, architecture)

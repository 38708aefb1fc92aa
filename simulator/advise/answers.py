"""The advisors' answers and their printed reports.

Each answer is a dataclass with ``.to_dict()`` (what ``--json`` writes) and ``.lines()``
(the printed report: the formula with the scenario's numbers, the simulated
confirmation, the next bottleneck). The advisors that compute them are
:mod:`.batch`, :mod:`.ps` and :mod:`.gpus`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .. import memory


@dataclass
class BatchChoice:
    """One batch with its algorithm choice, memory and simulated throughput."""

    batch: int
    workspace_mode: str
    throughput_samples_per_s: float
    iteration_time_s: float
    memory_gib: float
    workspace_gib: float
    algorithm_counts: dict[str, int]
    conv_algorithms: dict[str, str]  # layer -> algorithm, implicit_gemm layers left out
    bottleneck: str = ""


@dataclass
class BatchAdvice:
    scenario: str
    model: str
    gpu: str
    precision: str
    memory_gib: float
    usable_gib: float
    fixed_gib: float  # parameters + gradients + optimizer state
    per_sample_gib: float  # activations + input + backward transient, per sample
    max_batch: int  # largest batch that fits with implicit GEMM (no workspace)
    best: BatchChoice
    runners_up: list[BatchChoice]
    per_mode: dict[str, BatchChoice]  # the best for shared and for per-layer workspaces
    limit: str
    searched: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def scenario_overrides(self) -> list[str]:
        """``--set`` overrides that reproduce the best choice."""
        out = [f"workload.batch_per_gpu={self.best.batch}", f"workload.workspace={self.best.workspace_mode}",
               "workload.conv_algorithm=implicit_gemm"]
        return out

    def lines(self) -> list[str]:
        b = self.best
        out = [
            f"memory: {self.fixed_gib:.2f} GiB fixed (parameters + gradients + optimizer state) + "
            f"{self.per_sample_gib * 1024:.1f} MiB per sample (activations, input, backward transient)",
            f"max batch (implicit GEMM, no workspace) = floor(({self.usable_gib:.2f} usable - {self.fixed_gib:.2f}) / "
            f"{self.per_sample_gib:.5f}) = {self.max_batch}   [{self.gpu}: {self.memory_gib:.0f} GiB - "
            f"{memory.CONTEXT_RESERVE_GIB} GiB CUDA context]",
            f"best: batch {b.batch}, {b.workspace_mode} workspace {b.workspace_gib:.2f} GiB, "
            f"{b.throughput_samples_per_s:.1f} samples/s simulated ({b.iteration_time_s * 1e3:.1f} ms/iteration), "
            f"memory {b.memory_gib:.2f} of {self.usable_gib:.2f} GiB; conv algorithms {_counts(b.algorithm_counts)}",
        ]
        for mode, choice in self.per_mode.items():
            out.append(f"  {mode} workspace: batch {choice.batch}, {choice.throughput_samples_per_s:.1f} samples/s, "
                       f"workspace {choice.workspace_gib:.2f} GiB, {_counts(choice.algorithm_counts)}")
        out.append("runners-up:")
        for c in self.runners_up:
            out.append(f"  batch {c.batch} ({c.workspace_mode}): {c.throughput_samples_per_s:.1f} samples/s, "
                       f"memory {c.memory_gib:.2f} GiB, workspace {c.workspace_gib:.2f} GiB")
        out.append(f"larger batch: {self.limit}")
        out.append(f"next bottleneck at the best batch: {b.bottleneck}")
        return out


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} x{n}" for name, n in counts.items() if n) or "none"


@dataclass
class PSAdvice:
    scenario: str
    workers: int  # N: endpoints pushing to the servers (GPUs, or nodes with local aggregation)
    gradient_bytes: float  # S
    server_bandwidth_bytes_s: float  # B_ps
    worker_nic_bytes_s: float
    backward_s: float  # compute the pushes can overlap with
    worker_nic_s: float  # time a worker node's own NIC needs for its pushes
    window_s: float  # T = max(backward, worker NIC time)
    k_closed_form: int
    simulated: dict[int, dict[str, Any]]  # k -> throughput, iteration time, bottleneck
    k_simulated_knee: int
    compute_bound: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        gb = 1e9
        out = [
            "each server moves N*S/k bytes each way per iteration; it must fit in the time it can overlap with:",
            f"  N*S/(k*B_ps) <= T = max(T_backward, T_worker_nic) = max({self.backward_s * 1e3:.1f} ms, "
            f"{self.worker_nic_s * 1e3:.1f} ms) = {self.window_s * 1e3:.1f} ms",
            f"  k >= N*S/(B_ps*T) = {self.workers} x {self.gradient_bytes / gb:.3f} GB / "
            f"({self.server_bandwidth_bytes_s / gb:.3f} GB/s x {self.window_s:.4f} s) = "
            f"{self.workers * self.gradient_bytes / (self.server_bandwidth_bytes_s * self.window_s):.2f} -> k = "
            f"{self.k_closed_form}",
            "simulated:",
        ]
        for k, r in sorted(self.simulated.items()):
            out.append(f"  k={k}: {r['throughput_samples_per_s']:.1f} samples/s, "
                       f"{r['iteration_time_s'] * 1e3:.1f} ms/it, bottleneck {r['bottleneck']}")
        out.append(f"simulated knee (fewest servers within 2% of the most): k = {self.k_simulated_knee}")
        if self.compute_bound:
            out.append(f"compute-bound: k={self.k_closed_form} -> {self.k_closed_form + 1} servers changes "
                       "throughput by under 1%")
        top = self.simulated[max(self.simulated)]
        out.append(f"next bottleneck beyond the knee: {top['bottleneck']}")
        return out


@dataclass
class GPUAdvice:
    scenario: str
    target_efficiency: float
    gpus_per_node: int
    max_gpus: int  # 0 when even the smallest count misses the target
    max_nodes: int
    efficiency_at_max: float
    first_failing: dict[str, Any] | None  # gpus, nodes, efficiency, breaking component, attribution
    formula: list[str]
    scanned: list[dict[str, Any]]
    what_if: list[dict[str, Any]] = field(default_factory=list)
    capped: bool = False  # the scan reached max_gpus without falling below the target

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        out = list(self.formula)
        out.append("simulated:")
        for row in self.scanned:
            out.append(f"  {row['gpus']:>5} GPUs ({row['nodes']} nodes): efficiency {row['scaling_efficiency']:.3f}, "
                       f"speedup {row['speedup']:.1f}")
        out.append(f"largest GPU count with efficiency >= {self.target_efficiency}: {self.max_gpus} GPUs "
                   f"({self.max_nodes} nodes x {self.gpus_per_node}), efficiency {self.efficiency_at_max:.3f}")
        f = self.first_failing
        if self.capped:
            last = self.scanned[-1]
            out.append("the scan stopped at its cap (max_gpus) still above the target; the most loaded resource "
                       f"there: {last.get('bottleneck', '?')}")
        if f:
            out.append(f"beyond it ({f['gpus']} GPUs: {f['scaling_efficiency']:.3f}) the limit is the "
                       f"{f['component']} ({f['bottleneck']})")
        for w in self.what_if:
            out.append(f"  what would move it: {w['change']} -> {f['gpus'] if f else '?'} GPUs at efficiency "
                       f"{w['scaling_efficiency']:.3f}")
        return out


@dataclass
class AccumulationAdvice:
    scenario: str
    target_efficiency: float
    gpus: int
    batch_per_gpu: int
    micro_batch_s: float  # T: one micro-batch's forward + backward
    optimizer_s: float  # o (0 where parameter servers apply the update)
    slowdown: float  # s: waiting for the slowest rank, on every compute second
    exposed_s: float  # E: communication not hidden behind the last backward
    exposed_one_gpu_s: float  # E1: what the one-GPU baseline waits for (parameter servers; 0 under allreduce)
    efficiency_one: float  # simulated, one micro-batch
    ceiling: float  # 1 / s: what no number of micro-batches passes
    steps_closed_form: int | None  # None when the target is at or above the ceiling
    simulated: dict[int, dict[str, Any]]  # n -> efficiency, throughput, iteration, global batch, bottleneck
    steps: int | None  # fewest simulated n reaching the target
    capped: bool = False  # the closed form asks for more than max_steps

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        t, o, e, s, eta = self.micro_batch_s, self.optimizer_s, self.exposed_s, self.slowdown, self.target_efficiency
        out = [
            f"one micro-batch: efficiency {self.efficiency_one:.3f} on {self.gpus} GPUs; an iteration of n "
            f"micro-batches takes s x (n x T + o) + E",
            f"  T = {t * 1e3:.2f} ms (forward + backward), o = {o * 1e3:.2f} ms (optimizer), s = {s:.3f} (waiting "
            f"for the slowest rank), E = {e * 1e3:.2f} ms (communication not hidden)",
            f"  efficiency(n) = (n x T + o + E1) / (s x (n x T + o) + E), E1 = {self.exposed_one_gpu_s * 1e3:.2f} ms "
            f"(what one GPU waits for alone), at most 1/s = {self.ceiling:.3f}",
        ]
        if self.steps_closed_form is None:
            out.append(f"no number of micro-batches reaches {eta}: the ceiling 1/s = {self.ceiling:.3f} is below it "
                       "(variability.iteration_cv: every rank waits for the slowest)")
            return out
        e1 = self.exposed_one_gpu_s
        out.append(f"  n >= ((target x E - E1) / (1 - target x s) - o) / T = (({eta} x {e * 1e3:.2f} - "
                   f"{e1 * 1e3:.2f}) / (1 - {eta} x {s:.3f}) - {o * 1e3:.2f}) / {t * 1e3:.2f} -> "
                   f"n = {self.steps_closed_form}")
        if self.capped:
            out.append("  (more than --max-steps: not simulated)")
        out.append("simulated:")
        for n, r in sorted(self.simulated.items()):
            out.append(f"  n={n}: efficiency {r['scaling_efficiency']:.3f}, {r['throughput_samples_per_s']:.1f} "
                       f"samples/s, global batch {r['global_batch']}, bottleneck {r['bottleneck']}")
        if self.steps is not None:
            out.append(f"fewest micro-batches reaching {eta}: {self.steps} (training.gradient_accumulation_steps="
                       f"{self.steps}: {self.steps * self.batch_per_gpu} samples per GPU per step; the learning-rate "
                       "schedule must follow the larger batch)")
        return out

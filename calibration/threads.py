"""What a rank gets when ranks share a host: layers at fewer threads, the spread of
iterations, and compute against a collective beside it.

The ranks of a multi-process job on one host share its cores (and memory bandwidth and
caches). On a CPU device each rank runs ``cores // ranks`` torch threads (what
``clustersim measure`` sets; torchrun sets ``OMP_NUM_THREADS=1``), so the probe times
every model again at each such thread count ``T`` **with ``cores // T`` processes timing
at once** (:func:`sweep_threads`): a layer timed alone with the other cores idle is
faster than in the job (resnet18 training step at batch 8, one thread: 1.35 s alone,
1.55-1.9 s beside a second process doing the same, on this project's 2-core machine
with other sessions running: an indication, not a measurement to quote). Every
process's repeats are pooled. In the same processes:

* **iteration spread**: whole training iterations (forward, loss, backward, optimizer
  step) of the first model back to back; their coefficient of variation is one rank's
  compute jitter (``Profile.iteration_spread``);
* **interference** (:func:`interference_worker`): each process times the first
  model's forward + backward at the smallest batch alone, and an allreduce of
  ``INTERFERENCE_BYTES`` alone, then both at once: a second thread runs a fixed number
  of allreduces back to back (the same count on every rank, so the collective calls
  match) while the main thread repeats the model until they are done. A gloo allreduce
  of CPU tensors runs on gloo's own thread and spends CPU time on loopback TCP and the
  reduction; on GPUs NCCL's kernels take SMs and memory bandwidth from compute.
  ``Interference.compute_factor`` = median beside / median alone (and likewise
  ``comm_factor``).

On CUDA only the interference is measured (one process per GPU, NCCL, the allreduce
on a stream of its own, each side timed with events on its own stream).
"""

from __future__ import annotations

import math
import signal
import statistics
import threading
import time
import traceback
from collections import defaultdict
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from simulator.profile import (
    Interference,
    IterationSpread,
    LayerSample,
    ModelProfile,
    ThreadTimings,
    Timing,
    WholeModelSample,
)
from simulator.zoo import get_model

from .layers import probe_model
from .models import IMAGENET_CLASSES, build
from .spawn import spawned_messages

INTERFERENCE_BYTES = 8 * 2**20  # one allreduce beside compute: a third of DDP's 25 MiB bucket
MAX_BESIDE_CALLS = 400


def sweep_thread_counts(cores: int, quick: bool = False) -> list[int]:
    """Threads per rank of every multi-rank job on ``cores`` cores: ``cores // ranks``
    for 2..cores ranks (1..cores for up to 3 cores); quick: the fewest and the most."""
    counts = sorted({max(1, cores // ranks) for ranks in range(2, max(cores, 2) + 1)})
    return sorted({counts[0], counts[-1]}) if quick else counts


@dataclass(frozen=True)
class SweepPlan:
    models: tuple[str, ...]
    batches: tuple[int, ...]
    threads: int
    processes: int
    warmup: int
    repeats: int
    spread_iterations: int  # 0: no spread measurement
    interference: bool
    interference_repeats: int = 5


def _barrier(world: int) -> None:
    if world > 1:
        dist.barrier()


def _training_step(program: nn.Module, x: torch.Tensor, y: torch.Tensor, optimizer) -> Callable[[], None]:
    loss_fn = nn.CrossEntropyLoss()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss_fn(program(x), y).backward()
        optimizer.step()

    return step


def _forward_backward(program: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    params = [p for p in program.parameters()]

    def work() -> None:
        torch.autograd.grad(program(x).sum(), params)

    return work


class _Timer:
    """Times on one device: perf_counter on the CPU; on CUDA, events on the calling
    thread's current stream, waited for by the event alone (not the whole device, which
    would also wait for the other side's stream)."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"

    def __call__(self, fn: Callable[[], object]) -> float:
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1e3
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0


def measure_interference(model: str, batch: int, device: torch.device, world: int, repeats: int,
                         emit: Callable[[tuple], None], rank: int) -> dict:
    """Compute alone, allreduce alone, then both at once (see the module doc)."""
    torch.manual_seed(rank)
    program = build(model).to(device).train()
    x = torch.randn(batch, *get_model(model).input_shape, device=device)
    work = _forward_backward(program, x)
    buf = torch.ones(INTERFERENCE_BYTES // 4, device=device)
    side = torch.cuda.Stream(device) if device.type == "cuda" else None
    timer = _Timer(device)

    def allreduce() -> None:
        if side is None:
            dist.all_reduce(buf)
        else:
            with torch.cuda.stream(side):
                dist.all_reduce(buf)

    def comm_time() -> float:
        if side is None:
            return timer(allreduce)
        with torch.cuda.stream(side):
            return timer(allreduce)

    if rank == 0:
        emit(("progress", f"interference: {model} batch {batch} alone"))
    work()
    _barrier(world)
    compute_alone = [timer(work) for _ in range(repeats)]
    _barrier(world)
    for _ in range(2):
        allreduce()
    comm_alone = [comm_time() for _ in range(max(repeats, 5))]
    # Enough allreduces beside compute to cover `repeats` runs of it, the same number on every rank.
    calls = min(MAX_BESIDE_CALLS, max(3, math.ceil(repeats * statistics.median(compute_alone)
                                                   / max(statistics.median(comm_alone), 1e-6))))
    agreed = torch.tensor([calls], device=device)
    dist.all_reduce(agreed, op=dist.ReduceOp.MAX)
    calls = int(agreed.item())
    if rank == 0:
        emit(("progress", f"interference: beside {calls} allreduces"))
    comm_beside: list[float] = []
    failure: list[BaseException] = []

    def background() -> None:
        try:
            for _ in range(calls):
                comm_beside.append(comm_time())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            failure.append(exc)

    _barrier(world)
    thread = threading.Thread(target=background, daemon=True)
    thread.start()
    compute_beside = []
    while thread.is_alive():
        t = timer(work)
        if thread.is_alive():  # the whole run had the allreduces beside it
            compute_beside.append(t)
    thread.join()
    if failure:
        raise failure[0]
    if not compute_beside:  # the allreduces ended within one run: keep that run
        compute_beside.append(t)
    # Drop the first and last allreduce: they may have started or ended beside no compute.
    comm_kept = comm_beside[1:-1] if len(comm_beside) > 3 else comm_beside
    return {"compute_alone": compute_alone, "compute_beside": compute_beside,
            "comm_alone": comm_alone, "comm_beside": comm_kept}


def sweep_worker(rank: int, world: int, port: int, plan: SweepPlan, out) -> None:
    """One of ``plan.processes`` processes timing at ``plan.threads`` threads (CPU)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    torch.set_num_threads(plan.threads)
    try:
        from .measure import loopback_store

        device = torch.device("cpu")
        if world > 1:
            dist.init_process_group("gloo", store=loopback_store(rank, world, port), rank=rank, world_size=world)
        emit = out.put
        for name in plan.models:
            _barrier(world)
            label = f"{name} at {plan.threads} thread(s) x {world}"

            def step(what: str, label=label) -> None:
                if rank == 0:
                    emit(("progress", f"{label}: {what.split(': ', 1)[-1]}"))

            profile = probe_model(name, list(plan.batches), device=device, warmup=plan.warmup,
                                  repeats=plan.repeats, on_step=step)
            emit(("model", (rank, profile.model_dump())))
        if plan.spread_iterations and plan.models:
            _barrier(world)
            name, batch = plan.models[0], plan.batches[-1]
            if rank == 0:
                emit(("progress", f"spread: {plan.spread_iterations} iterations of {name} batch {batch}"))
            torch.manual_seed(rank)
            program = build(name).train()
            optimizer = torch.optim.SGD(program.parameters(), lr=0.01, momentum=0.9)
            x = torch.randn(batch, *get_model(name).input_shape)
            y = torch.randint(0, IMAGENET_CLASSES, (batch,))
            step_fn = _training_step(program, x, y, optimizer)
            for _ in range(max(plan.warmup, 1)):
                step_fn()
            timer = _Timer(device)
            times = [timer(step_fn) for _ in range(plan.spread_iterations)]
            emit(("spread", (rank, {"model": name, "batch": batch, "times": times})))
        if plan.interference and world > 1 and plan.models:
            _barrier(world)
            result = measure_interference(plan.models[0], plan.batches[0], device, world,
                                          plan.interference_repeats, emit, rank)
            emit(("interference", (rank, result)))
        _barrier(world)
        if world > 1:
            dist.destroy_process_group()
        out.put(("done", rank))
    except Exception:  # noqa: BLE001 - reported to the parent, which raises
        out.put(("error", f"rank {rank}: {traceback.format_exc()}"))


def cuda_interference_worker(rank: int, world: int, port: int, plan: SweepPlan, out) -> None:
    """One process per GPU: the interference of NCCL allreduces with compute."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        from .measure import loopback_store

        device = torch.device("cuda", rank)
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", store=loopback_store(rank, world, port), rank=rank, world_size=world)
        result = measure_interference(plan.models[0], plan.batches[0], device, world, plan.interference_repeats,
                                      out.put, rank)
        out.put(("interference", (rank, result)))
        dist.barrier()
        dist.destroy_process_group()
        out.put(("done", rank))
    except Exception:  # noqa: BLE001
        out.put(("error", f"rank {rank}: {traceback.format_exc()}"))


@dataclass
class SweepResult:
    """What one sweep measured (partial when interrupted: whatever arrived)."""

    plan: SweepPlan
    models: dict[str, list[ModelProfile]]
    spread: list[dict]
    interference: list[dict]

    def thread_timings(self, name: str) -> ThreadTimings | None:
        profiles = self.models.get(name)
        if not profiles:
            return None
        return pool(profiles, self.plan.threads, self.plan.processes)

    def iteration_spread(self) -> IterationSpread | None:
        if not self.spread:
            return None
        first = self.spread[0]
        times = [t for s in self.spread for t in s["times"]]
        return IterationSpread(model=first["model"], batch=first["batch"], threads=self.plan.threads,
                               processes=self.plan.processes, timing=Timing(times_s=times))

    def interference_result(self, device_kind: str, backend: str) -> Interference | None:
        if not self.interference:
            return None
        pooled = defaultdict(list)
        for r in self.interference:
            for key, values in r.items():
                pooled[key].extend(values)
        if not all(pooled[k] for k in ("compute_alone", "compute_beside", "comm_alone", "comm_beside")):
            return None
        p = self.plan
        return Interference(
            backend=backend, device_kind=device_kind, threads=p.threads, processes=p.processes,
            work=f"{p.models[0]} forward+backward, batch {p.batches[0]}", bytes=INTERFERENCE_BYTES,
            **{k: Timing(times_s=v) for k, v in pooled.items()},
        )


def pool(profiles: list[ModelProfile], threads: int, processes: int) -> ThreadTimings:
    """One set of timings from every process's: repeats of the same sample pooled."""
    layer: dict[tuple[str, str, int], list[float]] = defaultdict(list)
    whole: dict[int, list[float]] = defaultdict(list)
    optimizer: list[float] = []
    for p in profiles:
        for s in p.samples:
            layer[s.layer, s.phase, s.batch].extend(s.timing.times_s)
        for w in p.whole_model:
            whole[w.batch].extend(w.timing.times_s)
        if p.optimizer_step is not None:
            optimizer.extend(p.optimizer_step.times_s)
    return ThreadTimings(
        threads=threads, processes=processes,
        samples=[LayerSample(layer=k[0], phase=k[1], batch=k[2], timing=Timing(times_s=v)) for k, v in layer.items()],
        whole_model=[WholeModelSample(batch=b, timing=Timing(times_s=v)) for b, v in sorted(whole.items())],
        optimizer_step=Timing(times_s=optimizer) if optimizer else None,
    )


def run_sweep(plan: SweepPlan, on_progress: Callable[[str], None], result: SweepResult | None = None,
              cuda: bool = False) -> SweepResult:
    """Spawn the plan's processes and collect what they measure into ``result`` (kept
    by the caller when Ctrl-C interrupts)."""
    result = result or SweepResult(plan, {}, [], [])
    done = 0
    target = cuda_interference_worker if cuda else sweep_worker
    with closing(spawned_messages(target, plan.processes, (plan,), what="thread sweep", join_timeout_s=30)) as messages:
        for kind, payload in messages:
            if kind == "progress":
                on_progress(payload)
            elif kind == "model":
                _rank, data = payload
                profile = ModelProfile.model_validate(data)
                result.models.setdefault(profile.model, []).append(profile)
            elif kind == "spread":
                result.spread.append(payload[1])
            elif kind == "interference":
                result.interference.append(payload[1])
            elif kind == "done":
                done += 1
                if done == plan.processes:
                    break
    return result


__all__ = ["INTERFERENCE_BYTES", "SweepPlan", "SweepResult", "pool", "run_sweep", "sweep_thread_counts"]

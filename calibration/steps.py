"""Whole training iterations as a job's rank runs them, in fresh processes.

Layers, the whole model's forward + backward and the optimizer step are timed in the
probe's own long-lived process (or a sweep process that timed other models first).
A training job's process is fresh: it has run nothing but its own iterations. That
matters on the CPU because glibc's allocator raises its mmap and trim thresholds
(``M_MMAP_THRESHOLD``, ``M_TRIM_THRESHOLD``) with every large block freed, up to 32 /
64 MiB: in a fresh process a ResNet's freed activations go back to the OS at the end of
each iteration and are page-faulted in again in the next one; in a process whose earlier
work raised the thresholds they stay in the heap. Counted with ``getrusage`` on this
project's 2-core machine (minor faults per training iteration, 2 threads): resnet50
batch 2 about 30 000 in a fresh process and 0 as the probe's 4th model; resnet34 batch 8
45 000-50 000 against 0; at about 1.8 us per fault (first touch of fresh memory,
measured there) 55-90 ms per iteration that the probe's timings did not hold. A job
with several ranks also runs DDP, which copies every gradient into its bucket and back
each iteration.

So the probe starts, per model and thread count, ``processes`` fresh processes (as the
job's ranks) that run the iteration exactly as :mod:`calibration.measure` does:
``zero_grad(set_to_none=True)``, forward, cross-entropy loss, backward, SGD with
momentum 0.9, on one fixed random batch, every batch size in ascending order (a
larger batch raises the allocator's thresholds to what a fresh job at that batch
reaches anyway), after ``warmup`` untimed iterations. With several processes the model
is wrapped in DistributedDataParallel (gloo) with torch's ``noop_hook`` as its
communication hook: DDP's bucket copies, hooks and buffer broadcast run, the allreduce
does not (the simulator adds it, with its interference). Every process's iterations are
pooled per batch (:class:`simulator.profile.TrainingSteps`).
"""

from __future__ import annotations

import signal
import time
import traceback
from collections import defaultdict
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from simulator.profile import Timing, TrainingSteps, WholeModelSample
from simulator.zoo import get_model

from .models import IMAGENET_CLASSES, build
from .spawn import spawned_messages

METHOD = (
    "fresh process(es), as a job's ranks: zero_grad(set_to_none), forward, cross-entropy loss, backward, "
    "SGD momentum 0.9 step on one fixed random batch; batches ascending, warm-up then repeats; with several "
    "processes DDP (gloo) with the no-op communication hook; every process's iterations pooled"
)


@dataclass(frozen=True)
class StepPlan:
    model: str
    batches: tuple[int, ...]
    threads: int
    processes: int = 1
    warmup: int = 2
    repeats: int = 5

    @property
    def ddp(self) -> bool:
        return self.processes > 1


def step_worker(rank: int, world: int, port: int, plan: StepPlan, out) -> None:
    """One rank: the plan's iterations in this fresh process (see the module doc)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    torch.set_num_threads(plan.threads)
    try:
        if world > 1:
            from torch.distributed.algorithms.ddp_comm_hooks.debugging_hooks import noop_hook
            from torch.nn.parallel import DistributedDataParallel

            from .measure import loopback_store

            dist.init_process_group("gloo", store=loopback_store(rank, world, port), rank=rank, world_size=world)
        torch.manual_seed(rank)
        model: nn.Module = build(plan.model).train()
        if world > 1:
            model = DistributedDataParallel(model)
            model.register_comm_hook(None, noop_hook)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        loss_fn = nn.CrossEntropyLoss()
        shape = get_model(plan.model).input_shape
        for batch in sorted(plan.batches):
            x = torch.randn(batch, *shape)
            y = torch.randint(0, IMAGENET_CLASSES, (batch,))

            def step(x: torch.Tensor = x, y: torch.Tensor = y) -> None:
                optimizer.zero_grad(set_to_none=True)
                loss_fn(model(x), y).backward()
                optimizer.step()

            if world > 1:
                dist.barrier()
            if rank == 0:
                out.put(("progress", f"{plan.model} batch {batch}: iterations x {world}"))
            for _ in range(plan.warmup):
                step()
            times = []
            for _ in range(plan.repeats):
                t0 = time.perf_counter()
                step()
                times.append(time.perf_counter() - t0)
            out.put(("step", (rank, batch, times)))
        if world > 1:
            dist.barrier()
            dist.destroy_process_group()
        out.put(("done", rank))
    except Exception:  # noqa: BLE001 - reported to the parent, which raises
        out.put(("error", f"rank {rank}: {traceback.format_exc()}"))


def pool_steps(plan: StepPlan, results: list[tuple[int, int, list[float]]]) -> TrainingSteps:
    """Every rank's ``(rank, batch, times)`` pooled per batch."""
    by_batch: dict[int, list[float]] = defaultdict(list)
    for _rank, batch, times in results:
        by_batch[batch].extend(times)
    return TrainingSteps(threads=plan.threads, processes=plan.processes, ddp=plan.ddp, method=METHOD,
                         samples=[WholeModelSample(batch=b, timing=Timing(times_s=v))
                                  for b, v in sorted(by_batch.items()) if v])


def run_steps(plan: StepPlan, on_progress: Callable[[str], None],
              collected: list[tuple[int, int, list[float]]] | None = None) -> TrainingSteps:
    """Spawn the plan's processes and pool their iterations (``collected`` keeps what
    arrived when Ctrl-C interrupts)."""
    results = collected if collected is not None else []
    done = 0
    with closing(spawned_messages(step_worker, plan.processes, (plan,), what="training iterations",
                                  join_timeout_s=30)) as messages:
        for kind, payload in messages:
            if kind == "progress":
                on_progress(payload)
            elif kind == "step":
                results.append(payload)
            elif kind == "done":
                done += 1
                if done == plan.processes:
                    break
    return pool_steps(plan, results)


__all__ = ["METHOD", "StepPlan", "pool_steps", "run_steps", "step_worker"]

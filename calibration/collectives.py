"""Collectives with torch.distributed: allreduce, broadcast, reduce-scatter, all-gather
and send/recv, across message sizes and world sizes.

Sizes follow nccl-tests: ``bytes`` is the full buffer (allreduce and broadcast: the
tensor; reduce-scatter: the input, each rank keeps bytes/n; all-gather: the output,
each rank contributes bytes/n; send/recv: what each rank sends to its successor while
receiving from its predecessor). Each repeat starts after a barrier, every rank times
its own run of k back-to-back calls (k set from the warm-up so a repeat lasts about
``TARGET_REPEAT_S``, as nccl-tests averages many iterations: a lone small call would
mostly measure barrier skew), and the repeat's time per call is the slowest rank's
(a MAX allreduce of the times afterwards). Reported as nccl-tests algbw = bytes / time and busbw = algbw x
2(n-1)/n (allreduce), (n-1)/n (all-gather, reduce-scatter) or 1.

World sizes 2..N use the group of the first n ranks. Two launchers:

* **local** (:func:`measure_local`): N processes spawned on this host, rendezvous on
  127.0.0.1; gloo on the CPU, NCCL with one GPU per process when CUDA is present;
* **torchrun** (:func:`measure_distributed`): the process group from the environment
  torchrun sets (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT, LOCAL_WORLD_SIZE), so the
  groups that span hosts measure the links between nodes; torchrun gives consecutive
  ranks to a node, so the first n ranks span ceil(n / LOCAL_WORLD_SIZE) nodes.
"""

from __future__ import annotations

import math
import os
import signal
import time
import traceback
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .spawn import spawned_messages

TARGET_REPEAT_S = 0.01
MAX_CALLS_PER_REPEAT = 200
ALL_COLLECTIVES = ("allreduce", "broadcast", "reduce_scatter", "all_gather", "sendrecv")


@dataclass(frozen=True)
class Plan:
    collectives: tuple[str, ...]
    sizes: tuple[int, ...]
    world_sizes: tuple[int, ...]
    warmup: int
    repeats: int


def _op(name: str, nbytes: int, world: int, rank: int, group, device: torch.device) -> Callable[[], None]:
    count = max(world, nbytes // 4 // world * world)
    if name == "allreduce":
        buf = torch.ones(count, device=device)
        return lambda: dist.all_reduce(buf, group=group)
    if name == "broadcast":
        buf = torch.ones(count, device=device)
        return lambda: dist.broadcast(buf, src=0, group=group)
    if name == "reduce_scatter":
        inp, out = torch.ones(count, device=device), torch.empty(count // world, device=device)
        reduce_scatter = getattr(dist, "reduce_scatter_single", dist.reduce_scatter_tensor)  # torch >= 2.13 name
        return lambda: reduce_scatter(out, inp, group=group)
    if name == "all_gather":
        inp, out = torch.ones(count // world, device=device), torch.empty(count, device=device)
        all_gather = getattr(dist, "all_gather_single", dist.all_gather_into_tensor)
        return lambda: all_gather(out, inp, group=group)
    if name == "sendrecv":
        send, recv = torch.ones(count, device=device), torch.empty(count, device=device)
        nxt, prev = (rank + 1) % world, (rank - 1) % world

        def exchange() -> None:
            ops = [dist.P2POp(dist.isend, send, nxt, group), dist.P2POp(dist.irecv, recv, prev, group)]
            for request in dist.batch_isend_irecv(ops):
                request.wait()

        return exchange
    raise ValueError(f"unknown collective {name!r}")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _calls_per_repeat(op: Callable[[], None], group, device: torch.device) -> int:
    """Calls per timed repeat so a repeat lasts about TARGET_REPEAT_S (same on every rank)."""
    dist.barrier(group=group)
    _sync(device)
    t0 = time.perf_counter()
    op()
    _sync(device)
    one = max(time.perf_counter() - t0, 1e-6)
    calls = torch.tensor([min(MAX_CALLS_PER_REPEAT, max(1, round(TARGET_REPEAT_S / one)))], device=device)
    dist.all_reduce(calls, op=dist.ReduceOp.MAX, group=group)
    return int(calls.item())


def run_plan(plan: Plan, rank: int, local_world: int, device: torch.device, emit: Callable[[tuple], None]) -> None:
    """Measure the plan in an initialized process group; rank 0 emits messages:
    ``("progress", label)``, ``("sample", dict)``, ``("unsupported", name)``."""
    for world in plan.world_sizes:
        group = dist.new_group(list(range(world)))  # every rank must create every group
        nodes = math.ceil(world / local_world)
        if rank < world:
            for name in plan.collectives:
                for nbytes in plan.sizes:
                    if rank == 0:
                        emit(("progress", f"{name} n={world} {nbytes} B"))
                    try:
                        op = _op(name, nbytes, world, rank, group, device)
                        for _ in range(plan.warmup):
                            op()
                    except RuntimeError as exc:  # the backend lacks it
                        if rank == 0:
                            emit(("unsupported", f"{name}: {str(exc).splitlines()[0]}"))
                        break
                    calls = _calls_per_repeat(op, group, device)
                    times = []
                    for _ in range(plan.repeats):
                        dist.barrier(group=group)
                        _sync(device)
                        t0 = time.perf_counter()
                        for _ in range(calls):
                            op()
                        _sync(device)
                        times.append((time.perf_counter() - t0) / calls)
                    slowest = torch.tensor(times, dtype=torch.float64, device=device)
                    dist.all_reduce(slowest, op=dist.ReduceOp.MAX, group=group)
                    if rank == 0:
                        emit(("sample", {"collective": name, "world_size": world, "nodes": nodes,
                                         "bytes": nbytes, "times_s": slowest.cpu().tolist()}))
        dist.barrier()


def _local_worker(rank: int, world: int, port: int, backend: str, plan: Plan, out) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    torch.set_num_threads(1)
    try:
        device = torch.device("cuda", rank) if backend == "nccl" else torch.device("cpu")
        if backend == "nccl":
            torch.cuda.set_device(device)
        dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
        run_plan(plan, rank, world, device, out.put)
        dist.destroy_process_group()
        if rank == 0:
            out.put(("done", None))
    except Exception:  # noqa: BLE001 - reported to the parent, which raises
        out.put(("error", f"rank {rank}: {traceback.format_exc()}"))


def measure_local(plan: Plan, nprocs: int, backend: str, on_message: Callable[[tuple], None]) -> None:
    """Spawn ``nprocs`` processes on this host and measure the plan. Ctrl-C
    (KeyboardInterrupt) stops them; what ``on_message`` received is kept by the caller."""
    with closing(spawned_messages(_local_worker, nprocs, (backend, plan), what="collective probe")) as messages:
        for kind, payload in messages:
            if kind == "done":
                break
            on_message((kind, payload))


def under_torchrun() -> bool:
    return all(key in os.environ for key in ("RANK", "WORLD_SIZE", "MASTER_ADDR"))


def measure_distributed(plan: Plan, on_message: Callable[[tuple], None]) -> tuple[int, int, int, str]:
    """Measure under torchrun; returns (rank, nodes, procs_per_node, backend)."""
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ["WORLD_SIZE"]))
    device = torch.device("cuda", local_rank) if backend == "nccl" else torch.device("cpu")
    if backend == "nccl":
        torch.cuda.set_device(device)
    dist.init_process_group(backend, init_method="env://")
    rank, world = dist.get_rank(), dist.get_world_size()
    run_plan(plan, rank, local_world, device, on_message if rank == 0 else (lambda _msg: None))
    dist.destroy_process_group()
    return rank, math.ceil(world / local_world), local_world, backend

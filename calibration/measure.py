"""``clustersim measure``: a real data-parallel training run, appended as a measured case.

N local processes (spawned, rendezvous on 127.0.0.1 at a free port) train a zoo model
from :mod:`calibration.models` with torch DistributedDataParallel: gloo on the CPU,
NCCL on GPUs (one GPU per process) when present. Synthetic data (one fixed random batch
per process), cross-entropy loss, SGD with momentum 0.9. Every process times every
iteration (forward, backward with DDP's bucketed allreduce overlapped, optimizer step;
CUDA synchronized); after ``warmup`` untimed iterations, ``iterations`` are timed, the
slowest process's time is kept per iteration, and the median of those is the iteration
time. Throughput = N x batch / median iteration time. With one process the model is not
wrapped in DDP (there is nothing to synchronize), so it is the plain one-device loop.

The result is appended to a measured-runs CSV (:mod:`simulator.validation.cases`; the
header is written when the file is new) as a ``throughput_samples_per_s`` row on one
node with ``network = loopback``, ``intra_node = pcie`` and ``strategy =
ring_allreduce``: gloo's allreduce of CPU tensors (torch ``ProcessGroupGloo`` calls
``gloo::allreduce`` without choosing an algorithm, which is the ring) and NCCL's at
these sizes on one node are rings; with two ranks every allreduce algorithm moves the
same bytes anyway. The device is described by a scenario file the command writes in a
folder next to the CSV (``<csv stem>/<case_id>.yaml``), whose ``calibration:`` points at
a profile (``--profile``; on the CPU the shipped ``cpu-amd-epyc-2core.json`` by
default), so the simulator uses the profile's measured layer times, optimizer step and
allreduce fit in place of a catalog GPU. On a GPU without ``--profile`` the row names
the catalog GPU the device matches instead.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import signal
import statistics
import time
import traceback
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.distributed as dist
from torch import nn

from simulator import catalog
from simulator.validation.cases import COLUMNS, MeasuredCase, read_cases

from . import models as torch_models
from .spawn import spawned_messages
from .environment import cpu_model

SHIPPED_CPU_PROFILE = Path(__file__).resolve().parent / "profiles" / "cpu-amd-epyc-2core.json"
INPUT_SHAPE = (3, 224, 224)
LR = 0.01
MOMENTUM = 0.9


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class MeasureConfig:
    model: str
    procs: int = 2
    batch: int = 8
    iterations: int = 10
    warmup: int = 3
    threads: int | None = None  # torch threads per process; None = cores // procs
    device: str | None = None  # "cpu" | "cuda"; None = cuda when present

    def resolved_device(self) -> str:
        if self.device is not None:
            return self.device
        return "cuda" if torch.cuda.is_available() and torch.cuda.device_count() >= self.procs else "cpu"

    def resolved_threads(self) -> int:
        return self.threads or max(1, available_cores() // self.procs)


@dataclass(frozen=True)
class Measurement:
    config: MeasureConfig
    backend: str
    device_name: str
    threads: int
    iteration_times_s: list[float]  # per timed iteration, the slowest process's

    @property
    def median_s(self) -> float:
        return statistics.median(self.iteration_times_s)

    @property
    def throughput_samples_per_s(self) -> float:
        return self.config.procs * self.config.batch / self.median_s


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _train(config: MeasureConfig, rank: int, world: int, device: torch.device, threads: int) -> list[float]:
    torch.manual_seed(rank)
    model: nn.Module = torch_models.build(config.model).to(device)
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    loss_fn = nn.CrossEntropyLoss()
    x = torch.randn(config.batch, *INPUT_SHAPE, device=device)
    y = torch.randint(0, torch_models.IMAGENET_CLASSES, (config.batch,), device=device)
    times = []
    for i in range(config.warmup + config.iterations):
        _sync(device)
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        _sync(device)
        if i >= config.warmup:
            times.append(time.perf_counter() - start)
    return times


def loopback_store(rank: int, world: int, port: int, timeout_s: float = 300.0):
    """The rendezvous store of a local process group, listening on 127.0.0.1 only.

    ``init_method="tcp://127.0.0.1:PORT"`` lets torch's TCPStore server listen on every
    interface; here rank 0 binds the socket to loopback itself and hands it over."""
    import socket

    timeout = dt.timedelta(seconds=timeout_s)
    if rank != 0:
        return dist.TCPStore("127.0.0.1", port, world, is_master=False, timeout=timeout)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(max(world, 8))
    store = dist.TCPStore("127.0.0.1", port, world, is_master=True, timeout=timeout,
                          master_listen_fd=sock.detach(), use_libuv=False)
    return store


def _worker(rank: int, world: int, port: int, config: MeasureConfig, device_kind: str, threads: int, out) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    torch.set_num_threads(threads)
    try:
        device = torch.device("cuda", rank) if device_kind == "cuda" else torch.device("cpu")
        if device.type == "cuda":
            torch.cuda.set_device(device)
        backend = "nccl" if device.type == "cuda" else "gloo"
        if world > 1:
            dist.init_process_group(backend, store=loopback_store(rank, world, port), rank=rank, world_size=world)
        times = _train(config, rank, world, device, threads)
        if world > 1:
            slowest = torch.tensor(times, dtype=torch.float64, device=device)
            dist.all_reduce(slowest, op=dist.ReduceOp.MAX)
            times = slowest.cpu().tolist()
            dist.destroy_process_group()
        if rank == 0:
            name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model()
            out.put(("done", {"times": times, "backend": backend, "device_name": name}))
    except Exception:  # noqa: BLE001 - reported to the parent, which raises
        out.put(("error", f"rank {rank}: {traceback.format_exc()}"))


def run_measurement(config: MeasureConfig) -> Measurement:
    """Spawn ``config.procs`` processes, train, and return the timings."""
    if config.model not in torch_models.MODELS:
        raise ValueError(f"no torch definition of {config.model!r}; measurable: {', '.join(sorted(torch_models.MODELS))}")
    device_kind = config.resolved_device()
    if device_kind == "cuda" and torch.cuda.device_count() < config.procs:
        raise ValueError(f"{config.procs} processes need {config.procs} GPUs; {torch.cuda.device_count()} present")
    threads = config.resolved_threads()
    with closing(
        spawned_messages(_worker, config.procs, (config, device_kind, threads), what="measured run", join_timeout_s=30)
    ) as messages:
        _kind, payload = next(messages)  # rank 0's timings
    return Measurement(config, payload["backend"], payload["device_name"], threads, payload["times"])


def _scenario_yaml(m: Measurement, case_id: str, calibration: str | None, gpu: str | None) -> str:
    c = m.config
    lines = [
        f"# Written by `clustersim measure` for case {case_id}: {c.procs} local process(es) of {m.device_name}",
        f"# ({m.backend}, {m.threads} torch thread(s) each), torch DDP, SGD momentum {MOMENTUM}, fp32.",
        f"name: {case_id}",
    ]
    if calibration is not None:
        lines.append(f"calibration: {calibration}")
    lines += ["cluster:", "  nodes: 1", f"  gpus_per_node: {c.procs}"]
    if gpu is not None:
        lines.append(f"  gpu: {gpu}")
    lines += [
        "workload:", f"  model: {c.model}", f"  batch_per_gpu: {c.batch}", "  precision: fp32", "  optimizer: momentum",
        "training:", "  strategy: ring_allreduce", "  overlap: true",
        "  bucket_size_mib: 25  # DDP's default bucket_cap_mb", "",
    ]
    return "\n".join(lines)


def _unique_id(base: str, taken: set[str]) -> str:
    case_id, k = base, 2
    while case_id in taken:
        case_id, k = f"{base}-{k}", k + 1
    return case_id


def append_case(m: Measurement, csv_path: Path, profile: Path | None, command: str,
                load_before: float | None = None) -> MeasuredCase:
    """Write the scenario file and append the row; returns the validated case."""
    c = m.config
    today = dt.date.today().isoformat()
    taken: set[str] = set()
    header = list(COLUMNS)
    if csv_path.exists() and csv_path.stat().st_size > 0:
        with csv_path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            header = list(reader.fieldnames or COLUMNS)
            taken = {row.get("case_id") or "" for row in reader}
        missing = [col for col in COLUMNS if col not in header]
        if missing:
            raise ValueError(f"{csv_path}: header lacks columns {', '.join(missing)}; write to a new file")
    stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S")
    case_id = _unique_id(f"{c.model}-{m.backend}-p{c.procs}-b{c.batch}-{stamp}", taken)

    gpu = None
    calibration = None
    scenario_dir = csv_path.parent / csv_path.stem
    if profile is not None:
        calibration = os.path.relpath(profile.resolve(), scenario_dir.resolve())
    else:
        gpu = catalog.match_device_name(m.device_name) if m.backend == "nccl" else None
        if gpu is None:
            raise ValueError(f"{m.device_name} is not a catalog GPU: pass --profile (a profile probed on it)")
    scenario_path = scenario_dir / f"{case_id}.yaml"
    times = m.iteration_times_s
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    before = "" if load_before is None else f"load average before {load_before:.2f}, "
    notes = (
        f"median of {len(times)} timed iterations after {c.warmup} warm-up: {m.median_s:.4f} s "
        f"(min {min(times):.4f}, max {max(times):.4f}); {m.threads} torch thread(s) per process; "
        f"device {m.device_name}; synthetic data; {before}load average at the end {load:.2f}; command: {command}"
    )
    row: dict[str, Any] = {
        "case_id": case_id,
        "source": f"measured here {today} (clustersim measure)",
        "model": c.model,
        "gpu": gpu or "",
        "nodes": 1,
        "gpus_per_node": c.procs,
        "intra_node": "pcie",
        "network": "loopback",
        "strategy": "ring_allreduce",
        "batch_per_gpu": c.batch,
        "precision": "fp32",
        "metric": "throughput_samples_per_s",
        "value": f"{m.throughput_samples_per_s:.6g}",
        "scenario": f"{scenario_dir.name}/{scenario_path.name}",
        "framework": f"PyTorch {torch.__version__} DDP {m.backend}" if c.procs > 1 else f"PyTorch {torch.__version__}",
        "notes": notes,
    }
    case = MeasuredCase.model_validate({k: v for k, v in row.items() if v != ""})
    scenario_dir.mkdir(parents=True, exist_ok=True)
    scenario_path.write_text(_scenario_yaml(m, case_id, calibration, gpu))
    new = not (csv_path.exists() and csv_path.stat().st_size > 0)
    with csv_path.open("a", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=header, lineterminator="\n")
        if new:
            writer.writeheader()
        writer.writerow({k: row.get(k, "") for k in header})
    _, errors = read_cases(csv_path)
    if any(e.case_id == case_id for e in errors):
        raise ValueError(f"{csv_path}: the appended row does not read back: {errors}")
    return case


def measure(config: MeasureConfig, output: Path, profile: Path | None, command: str,
            echo: Callable[[str], None] = print) -> tuple[Measurement, MeasuredCase]:
    device_kind = config.resolved_device()
    if profile is None and device_kind == "cpu":
        profile = SHIPPED_CPU_PROFILE
        echo(f"no --profile: using the shipped CPU profile {profile.name}")
    threads = config.resolved_threads()
    echo(f"measuring {config.model}: {config.procs} process(es) x batch {config.batch} on {device_kind}, "
         f"{threads} thread(s) each, {config.warmup} warm-up + {config.iterations} timed iterations")
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    m = run_measurement(config)
    case = append_case(m, output, profile, command, load_before=load_before)
    echo(f"{case.case_id}: median iteration {m.median_s:.4f} s, throughput {m.throughput_samples_per_s:.4g} samples/s"
         f" -> {output}")
    return m, case


__all__ = ["MeasureConfig", "Measurement", "SHIPPED_CPU_PROFILE", "append_case", "measure", "run_measurement"]

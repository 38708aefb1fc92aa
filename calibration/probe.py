"""The probe: measure this machine and write a calibration profile.

Sections: per-layer forward/backward of zoo models at several batch sizes, the whole
model and the optimizer step (:mod:`calibration.layers`); matmul/conv throughput and
device copy bandwidth (:mod:`calibration.kernels`); host<->device copies, pinned and
pageable (CUDA only); collectives across message and world sizes
(:mod:`calibration.collectives`); on a CPU, the layers again at each thread count a rank
of a multi-process job gets, with the host's cores shared by that many processes, the
spread of whole training iterations and the interference of an allreduce with compute
beside it (:mod:`calibration.threads`; on several GPUs only the interference, with
NCCL), and whole training iterations as a job runs them, per model and thread count, in
fresh processes (:mod:`calibration.steps`: what the layers timed in this long-lived
process leave out: the allocator's page faults of a job process, DDP's bucket copies,
the loss). Locally the collectives come last (layer timings
taken right after the spawned processes exit were several times slow on the 2-core
machine); under torchrun they come first, every rank taking part, and rank 0 alone
then does the rest and writes the profile.

A rich progress bar names what is being measured. Ctrl-C stops the probe and keeps
what was measured: the profile is written with ``provenance.complete = false`` and the
section it stopped in.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from simulator import zoo
from simulator.profile import (
    IterationSpread,
    CollectiveSample,
    Collectives,
    CopySample,
    Efficiency,
    LayerSample,
    MemorySample,
    ModelProfile,
    Profile,
    Provenance,
    Timing,
    TrainingSteps,
    WorkSample,
)

from . import collectives as coll
from . import steps as training_steps
from . import threads as thread_sweep
from .environment import fingerprint
from .fit import nccl_bandwidths, refit
from .kernels import probe_host_copies, probe_work
from .layers import METHOD, probe_model

KB, MB = 1024, 1024 * 1024


def _sizes(lo: int, hi: int, factor: int) -> tuple[int, ...]:
    out = [lo]
    while out[-1] * factor <= hi:
        out.append(out[-1] * factor)
    return tuple(out)


@dataclass
class ProbeConfig:
    """What to measure; :data:`QUICK` and :data:`FULL` are the two presets."""

    models: list[str]
    batches: list[int]
    warmup: int
    repeats: int
    matmul_sizes: list[int]
    conv_channels: list[int]
    memory_mib: list[int]
    copy_sizes: tuple[int, ...]
    collectives: tuple[str, ...]
    collective_sizes: tuple[int, ...]
    collective_warmup: int
    collective_repeats: int
    max_procs: int | None = None  # local processes for collectives; None = GPUs, or CPU cores (at least 2)
    quick: bool = False
    notes: str = ""
    catalog_gpu: str | None = None
    device: str | None = None  # "cpu" or "cuda"; None = cuda when present
    sweep_threads: list[int] | None = None  # CPU threads per rank to sweep; None = every cores // ranks (quick: fewest, most)
    spread_iterations: int = 10  # whole training iterations timed for their spread (0: none)
    interference: bool = True  # time compute beside an allreduce (needs 2+ processes)
    training_steps: bool = True  # CPU: whole iterations as a job runs them, in fresh processes


QUICK = ProbeConfig(
    models=["alexnet"], batches=[1, 2], warmup=1, repeats=3,
    matmul_sizes=[64, 128, 256, 512], conv_channels=[16, 32, 64], memory_mib=[1, 16],
    copy_sizes=_sizes(4 * KB, 16 * MB, 16),
    collectives=("allreduce",), collective_sizes=_sizes(4 * KB, 4 * MB, 4), collective_warmup=2,
    collective_repeats=9, max_procs=2, quick=True, spread_iterations=8,
)

FULL = ProbeConfig(
    models=["resnet18", "alexnet", "resnet50"], batches=[1, 2, 4, 8], warmup=2, repeats=5,
    matmul_sizes=[64, 128, 256, 512, 1024, 2048], conv_channels=[16, 32, 64, 128, 256],
    memory_mib=[1, 4, 16, 64, 256], copy_sizes=_sizes(4 * KB, 256 * MB, 4),
    collectives=coll.ALL_COLLECTIVES, collective_sizes=_sizes(4 * KB, 256 * MB, 2), collective_warmup=3,
    collective_repeats=10, spread_iterations=20,
)


def _world_sizes(n: int) -> tuple[int, ...]:
    """2, 4, 8, ... up to n, and n itself."""
    sizes = {n}
    w = 2
    while w < n:
        sizes.add(w)
        w *= 2
    return tuple(sorted(s for s in sizes if s >= 2))


@dataclass
class _Collected:
    """Everything measured so far (kept when the probe is interrupted)."""

    models: list[ModelProfile] = field(default_factory=list)
    partial_model: tuple[str, list[int], list[LayerSample]] | None = None
    work: list[WorkSample] = field(default_factory=list)
    memory: list[MemorySample] = field(default_factory=list)
    copies: list[CopySample] = field(default_factory=list)
    collective_samples: list[CollectiveSample] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)
    collectives_meta: dict = field(default_factory=dict)
    sweeps: list[thread_sweep.SweepResult] = field(default_factory=list)
    steps: dict[tuple[str, int], TrainingSteps] = field(default_factory=dict)  # (model, threads)
    spread: list[IterationSpread] = field(default_factory=list)


class Probe:
    def __init__(self, config: ProbeConfig, command: str, *, show_progress: bool = True):
        self.config = config
        self.command = command
        self.show_progress = show_progress
        want_cuda = config.device != "cpu" and torch.cuda.is_available()
        if config.device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("--device cuda: no CUDA device is visible")
        self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0"))) if want_cuda else torch.device("cpu")
        for name in config.models:
            zoo.get_model(name)  # unknown names fail before anything runs

    def sweep_plans(self, torchrun: bool) -> list[thread_sweep.SweepPlan]:
        """The thread sweeps (CPU) or the NCCL interference run (2+ GPUs); none under torchrun."""
        c = self.config
        if torchrun or not c.models:
            return []
        if self.device.type == "cuda":
            gpus = torch.cuda.device_count()
            if not c.interference or gpus < 2:
                return []
            return [thread_sweep.SweepPlan(tuple(c.models), tuple(c.batches), threads=1, processes=gpus,
                                           warmup=c.warmup, repeats=c.repeats, spread_iterations=0,
                                           interference=True)]
        from .measure import available_cores

        cores = available_cores()
        counts = c.sweep_threads or thread_sweep.sweep_thread_counts(cores, c.quick)
        main = torch.get_num_threads()
        plans = []
        for threads in sorted(set(counts)):
            processes = max(2, cores // threads)
            if threads >= main and processes * threads > cores:
                continue  # one process at the main thread count: the main timings
            plans.append(thread_sweep.SweepPlan(
                tuple(c.models), tuple(c.batches), threads=threads, processes=processes, warmup=c.warmup,
                repeats=c.repeats, spread_iterations=c.spread_iterations,
                interference=c.interference and not plans))  # interference once, at the fewest threads
        return plans

    def step_plans(self, torchrun: bool, sweeps: list[thread_sweep.SweepPlan]) -> list[training_steps.StepPlan]:
        """Training iterations in fresh processes (CPU, not under torchrun): per model, one
        process at the main thread count and each sweep's processes x threads."""
        c = self.config
        if torchrun or self.device.type != "cpu" or not c.training_steps:
            return []
        configs = [(torch.get_num_threads(), 1)] + [(p.threads, p.processes) for p in sweeps]
        return [training_steps.StepPlan(name, tuple(c.batches), threads, processes, warmup=max(c.warmup, 2),
                                        repeats=c.repeats)
                for threads, processes in configs for name in c.models]

    def _total_steps(self, worlds: tuple[int, ...], sweeps: list[thread_sweep.SweepPlan]) -> int:
        c = self.config
        layers = len(c.models) * (len(c.batches) * (c.repeats + 2) + 1)
        work = len(c.matmul_sizes) + len(c.conv_channels) + len(c.memory_mib)
        copies = 4 * len(c.copy_sizes) if self.device.type == "cuda" else 0
        swept = sum((0 if self.device.type == "cuda" else layers) + (1 if p.spread_iterations else 0)
                    + (2 if p.interference else 0) for p in sweeps)
        spread = 1 if c.spread_iterations and c.models else 0
        steps = len(self.step_plans(False, sweeps)) * len(c.batches)
        return (layers + spread + work + copies + swept + steps
                + len(c.collectives) * len(c.collective_sizes) * len(worlds))

    def run(self) -> Profile | None:
        """Measure everything; returns the profile on the writing rank, else None."""
        started = time.perf_counter()
        c = self.config
        got = _Collected()
        torchrun = coll.under_torchrun()
        if torchrun:
            worlds = _world_sizes(int(os.environ["WORLD_SIZE"]))
        else:
            nprocs = c.max_procs or (torch.cuda.device_count() if self.device.type == "cuda" else os.cpu_count() or 2)
            worlds = _world_sizes(max(nprocs, 2))
        plan = coll.Plan(c.collectives, c.collective_sizes, worlds, c.collective_warmup, c.collective_repeats)
        sweeps = self.sweep_plans(torchrun)
        step_plans = self.step_plans(torchrun, sweeps)
        self.load_start = _load_average()
        section = "start"
        interrupted: str | None = None
        with Progress(
            TextColumn("[bold]{task.description:<44}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            disable=not self.show_progress, transient=False,
        ) as bar:
            task = bar.add_task("starting", total=self._total_steps(worlds, sweeps))

            def step(label: str) -> None:
                bar.update(task, description=label[:44], advance=1)

            def announce(name: str) -> str:
                nonlocal section
                section = name  # before the line goes out: a Ctrl-C after it names this section
                if not self.show_progress:  # one line per section instead of the bar
                    print(f"measuring {name}", file=sys.stderr, flush=True)
                return name

            def on_message(message: tuple) -> None:
                kind, payload = message
                if kind == "progress":
                    step(payload)
                elif kind == "unsupported":
                    got.unsupported.append(payload)
                elif kind == "sample":
                    got.collective_samples.append(_collective_sample(payload))

            try:
                if torchrun:  # every rank takes part; the others leave once it is done
                    section = announce("collectives")
                    rank, nodes, per_node, backend = coll.measure_distributed(plan, on_message)
                    if rank != 0:
                        return None
                    got.collectives_meta = dict(backend=backend, nodes=nodes, procs_per_node=per_node,
                                                launcher="torchrun")
                for name in c.models:
                    section = announce(f"layers of {name}")
                    samples: list[LayerSample] = []
                    got.partial_model = (name, c.batches, samples)
                    got.models.append(probe_model(name, c.batches, device=self.device, warmup=c.warmup,
                                                  repeats=c.repeats, on_step=step, collected=samples))
                    got.partial_model = None
                if c.spread_iterations and c.models:
                    section = announce("iteration spread")
                    step(f"spread: {c.models[0]} batch {c.batches[-1]}")
                    got.spread.append(_iteration_spread(c.models[0], c.batches[-1], self.device, c.warmup,
                                                        c.spread_iterations))
                section = announce("compute efficiency")
                probe_work(c.matmul_sizes, c.conv_channels, c.memory_mib, device=self.device, warmup=c.warmup,
                           repeats=c.repeats, on_step=step, work=got.work, memory=got.memory)
                if self.device.type == "cuda":
                    section = announce("host-device copies")
                    probe_host_copies(list(c.copy_sizes), device=self.device, warmup=c.warmup, repeats=c.repeats,
                                      on_step=step, out=got.copies)
                for sweep in sweeps:
                    section = announce("interference (nccl)" if self.device.type == "cuda" else
                                       f"layers at {sweep.threads} thread(s) x {sweep.processes} processes")
                    got.sweeps.append(thread_sweep.SweepResult(sweep, {}, [], []))
                    thread_sweep.run_sweep(sweep, step, got.sweeps[-1], cuda=self.device.type == "cuda")
                for step_plan in step_plans:  # (`plan` is the collectives')
                    section = announce(f"training iterations of {step_plan.model} at {step_plan.threads} thread(s)"
                                       f" x {step_plan.processes} process(es)")
                    got.steps[step_plan.model, step_plan.threads] = training_steps.run_steps(
                        step_plan, lambda label: step(f"iterations: {label}"))
                if not torchrun:  # last: timings taken right after the spawned processes were slow
                    section = announce("collectives")
                    backend = "nccl" if self.device.type == "cuda" else "gloo"
                    got.collectives_meta = dict(backend=backend, nodes=1, procs_per_node=max(worlds),
                                                launcher="spawn")
                    coll.measure_local(plan, max(worlds), backend, on_message)
                bar.update(task, description="done")
            except KeyboardInterrupt:
                interrupted = section
        return self._profile(got, time.perf_counter() - started, interrupted)

    def _profile(self, got: _Collected, wall_s: float, interrupted: str | None) -> Profile:
        c = self.config
        models = list(got.models)
        if got.partial_model is not None and got.partial_model[2]:
            name, batches, samples = got.partial_model
            measured = sorted({s.batch for s in samples})
            models.append(ModelProfile(model=name, method=METHOD, batches=measured, samples=list(samples)))
        main_threads = torch.get_num_threads()
        models = [m.model_copy(update={
            "threads": main_threads,
            "threads_sweep": [t.model_copy(update={"training_step": got.steps.get((m.model, t.threads))})
                              for t in (sweep.thread_timings(m.model) for sweep in got.sweeps
                                        if self.device.type == "cpu") if t is not None and t.samples],
            "training_step": got.steps.get((m.model, main_threads)),
        }) for m in models]
        interference = None
        for sweep in got.sweeps:
            interference = interference or sweep.interference_result(
                self.device.type, "nccl" if self.device.type == "cuda" else "gloo")
        spread = list(got.spread) + [s for s in (sweep.iteration_spread() for sweep in got.sweeps) if s is not None]
        collectives = None
        if got.collectives_meta:
            collectives = Collectives(**got.collectives_meta, unsupported=got.unsupported,
                                      samples=got.collective_samples)
        notes = c.notes or ""
        if self.device.type == "cpu":
            notes = (notes + " " if notes else "") + (
                "Measured on the CPU (no CUDA device visible): per-layer times are CPU times and collectives "
                "ran over gloo on loopback; there are no host-device copy measurements."
            )
        profile = Profile(
            environment=fingerprint(self.device).model_copy(
                update={"catalog_gpu": c.catalog_gpu} if c.catalog_gpu else {}
            ),
            provenance=Provenance(command=self.command, quick=c.quick, wall_s=round(wall_s, 1),
                                  complete=interrupted is None, interrupted_during=interrupted, notes=notes,
                                  load_average_start=self.load_start, load_average_end=_load_average()),
            models=models,
            efficiency=Efficiency(samples=got.work, memory=got.memory),
            copies=got.copies,
            collectives=collectives,
            interference=interference,
            iteration_spread=spread,
        )
        fitted = refit(profile)
        return Profile.model_validate(fitted.model_dump())  # re-validate what the fits produced


def _load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):  # not on this platform
        return None


def _iteration_spread(name: str, batch: int, device: torch.device, warmup: int, iterations: int) -> IterationSpread:
    """Whole training iterations of one process with every thread (see :mod:`calibration.threads`)."""
    from .models import IMAGENET_CLASSES, build

    torch.manual_seed(0)
    program = build(name).to(device).train()
    optimizer = torch.optim.SGD(program.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, *zoo.get_model(name).input_shape, device=device)
    y = torch.randint(0, IMAGENET_CLASSES, (batch,), device=device)
    step = thread_sweep._training_step(program, x, y, optimizer)
    from .timing import Clock

    times = Clock(device).repeat(step, warmup=max(warmup, 1), repeats=iterations)
    return IterationSpread(model=name, batch=batch, threads=torch.get_num_threads(), processes=1,
                           timing=Timing(times_s=times))


def _collective_sample(payload: dict) -> CollectiveSample:
    timing = Timing(times_s=payload.pop("times_s"))
    algbw, busbw = nccl_bandwidths(payload["collective"], payload["world_size"], payload["bytes"], timing.median_s)
    return CollectiveSample(**payload, timing=timing, algbw_bytes_per_s=algbw, busbw_bytes_per_s=busbw)


def run_probe(config: ProbeConfig, output: Path, command: str, *, show_progress: bool = True,
              echo: Callable[[str], None] = print) -> Profile | None:
    """Run the probe and write ``output`` (on the writing rank). Returns the profile."""
    profile = Probe(config, command, show_progress=show_progress).run()
    if profile is None:
        return None
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(profile.to_json())
    state = "complete" if profile.provenance.complete else (
        f"interrupted during {profile.provenance.interrupted_during}; kept what was measured")
    echo(f"wrote {output} ({state}, {profile.provenance.wall_s:.0f} s)")
    return profile


def preset(quick: bool, **overrides) -> ProbeConfig:
    base = QUICK if quick else FULL
    return dataclasses.replace(base, **{k: v for k, v in overrides.items() if v is not None})

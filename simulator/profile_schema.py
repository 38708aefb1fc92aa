"""Calibration profiles: the measurements of a real machine, as the simulator reads them.

A profile is a versioned JSON document written by the torch probe (``calibration``,
``clustersim probe``) and read here, so the simulator never imports torch. It holds the
raw samples and the models fitted to them:

* ``layers`` - per model: every timed layer's forward and backward samples at several
  batch sizes, the optimizer step, and a linear fit ``t = a + b x batch`` per layer and
  pass (:class:`LinearFit`);
* ``efficiency`` - matrix-multiply and convolution throughput against work size, fitted
  as ``t = overhead + flops / peak`` (so efficiency = flops / (flops + overhead x peak)),
  and the device's copy bandwidth;
* ``copies`` - host-to-device and device-to-host bandwidth (GPU only);
* ``collectives`` - allreduce, broadcast, reduce-scatter, all-gather and send/recv per
  world size and message size, with nccl-tests algorithm and bus bandwidth, and an
  alpha-beta fit ``t = alpha + bytes / beta`` per collective and world size;
* ``environment`` - what was measured: device, driver, torch/CUDA/NCCL, CPU, date;
* (version 2) per model, the layers, whole model and optimizer step again at fewer
  torch threads per process with the host's cores shared by several processes
  (``threads_sweep``: what each rank of a multi-process job on a CPU gets); the
  **interference** of a collective running beside compute on the same device; the
  **spread** of whole training iterations; the load average before and after.
* (version 3) per model and thread count, **training iterations as a job runs them**
  (:class:`TrainingSteps`): zero_grad, forward, loss, backward, optimizer step, timed in
  a fresh process that has run nothing else, with several processes wrapped in DDP
  (communication replaced by a no-op hook). They hold what layer timings in a
  long-lived probe process leave out: the memory allocator returning freed activations
  and gradients to the OS and page-faulting them back every iteration (how much depends
  on the process's history), DDP's gradient copies into and out of its buckets, the loss.

Version 1 and 2 profiles (no sweep, interference, spread, load or training steps) still
load; :func:`simulator.profile.estimated_fields` lists what the simulator then estimates instead.

Every model is frozen and rejects unknown keys. :func:`simulator.profile.load_profile` validates a file
and raises :class:`~simulator.errors.CalibrationError` naming the file and the field on
anything wrong: unreadable, corrupt or truncated JSON, another ``schema_version``,
missing or mistyped fields.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION: Final = 3
#: Versions this clustersim reads (older versions lack the fields added since, which are
#: then estimated: see :func:`simulator.profile.estimated_fields`).
READABLE_VERSIONS = (1, 2, 3)
FORMAT_NAME: Final = "clustersim-profile"

Phase = Literal["forward", "backward"]
Collective = Literal["allreduce", "broadcast", "reduce_scatter", "all_gather", "sendrecv"]

#: nccl-tests bus-bandwidth factor per collective, as a function of the world size n.
BUS_FACTORS: dict[str, Callable[[int], float]] = {
    "allreduce": lambda n: 2 * (n - 1) / n,
    "reduce_scatter": lambda n: (n - 1) / n,
    "all_gather": lambda n: (n - 1) / n,
    "broadcast": lambda n: 1.0,
    "sendrecv": lambda n: 1.0,
}


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)  # finite numbers only


# -- samples and fits ------------------------------------------------------------------


class Timing(_Frozen):
    """Repeated timings of one measurement (seconds), after warm-up."""

    # a repeat over 10,000 s is not a layer or collective timing but a broken file
    times_s: list[Annotated[float, Field(ge=0, le=1e4)]] = Field(min_length=1,
                                                                  description="Every timed repeat, in order.")

    @property
    def median_s(self) -> float:
        ordered = sorted(self.times_s)
        mid = len(ordered) // 2
        return ordered[mid] if len(ordered) % 2 else 0.5 * (ordered[mid - 1] + ordered[mid])

    @property
    def spread(self) -> float:
        """(max - min) / median: how noisy the repeats were."""
        med = self.median_s
        return (max(self.times_s) - min(self.times_s)) / med if med > 0 else 0.0

    @property
    def cv(self) -> float:
        """Coefficient of variation (sample standard deviation / mean); 0 for one repeat."""
        n = len(self.times_s)
        mean = sum(self.times_s) / n
        if n < 2 or mean <= 0:
            return 0.0
        var = sum((t - mean) ** 2 for t in self.times_s) / (n - 1)
        std: float = var**0.5
        return std / mean


class LinearFit(_Frozen):
    """``t = intercept_s + slope_s x x`` fitted on relative error with ``intercept_s >= 0``
    and ``slope_s >= 0`` (:func:`calibration.fit.fit_linear`); ``max_rel_error`` is the
    worst relative miss on the points it was fitted to. ``exact``: the line had as many
    free parameters as distinct points (two batches, or one through the origin), so it
    passes through them by construction and ``max_rel_error`` is 0 without validating
    anything. Profiles written before the constraints may hold a negative intercept."""

    intercept_s: float = Field(ge=-1e4, le=1e4)
    slope_s: float = Field(ge=-1e4, le=1e4)
    points: int = Field(ge=1)
    max_rel_error: float = Field(ge=0)
    exact: bool = Field(False, description="Passes through its points by construction (as many parameters as "
                        "points): max_rel_error 0 is no test of the line.")

    def __call__(self, x: float) -> float:
        return self.intercept_s + self.slope_s * x


class AlphaBetaFit(_Frozen):
    """``t = alpha_s + bytes / beta_bytes_per_s``, fitted on relative error over
    ``[min_bytes, max_bytes]`` with ``alpha_s >= 0`` and ``1 / beta >= 0``
    (:func:`simulator.alpha_beta.fit_alpha_beta`). ``beta_bytes_per_s`` null: a latency-only
    fit, the time does not grow measurably with size over the range (``t = alpha_s``).
    A piece of a :class:`CollectiveFit` spans at least 3 measured sizes. ``exact``: two
    sizes, two parameters: ``max_rel_error`` 0 by construction. Profiles written before
    the constraints may hold a negative alpha, 2-point pieces and a 1e18 B/s beta (the
    old stand-in for "no bandwidth term"); they still load."""

    alpha_s: float = Field(ge=-1e4, le=1e4)
    beta_bytes_per_s: Annotated[float, Field(gt=0)] | None = Field(
        description="Bytes per second; null: no measurable bandwidth term (latency-only).")
    min_bytes: int = Field(ge=0)
    max_bytes: int = Field(ge=0)
    points: int = Field(ge=1)
    max_rel_error: float = Field(ge=0)
    exact: bool = Field(False, description="Two sizes, two parameters: passes through both by construction.")

    def __call__(self, nbytes: float) -> float:
        if self.beta_bytes_per_s is None:
            return self.alpha_s
        return self.alpha_s + nbytes / self.beta_bytes_per_s


# -- per-layer timings -----------------------------------------------------------------


class LayerSample(_Frozen):
    layer: str = Field(description="Zoo layer name, e.g. layer1.0.conv1.")
    phase: Phase
    batch: int = Field(ge=1)
    timing: Timing


class LayerFit(_Frozen):
    layer: str
    phase: Phase
    fit: LinearFit = Field(description="Seconds against batch size.")


class WholeModelSample(_Frozen):
    """One forward + backward of the whole model, for comparison with the layer sum."""

    batch: int = Field(ge=1)
    timing: Timing


class TrainingSteps(_Frozen):
    """Whole training iterations as a job's rank runs them (version 3).

    ``processes`` fresh processes (started for this measurement and nothing else, as a
    job's ranks are), ``threads`` torch threads each, run ``zero_grad(set_to_none)``,
    forward, cross-entropy loss, backward into ``.grad`` and an SGD-momentum step, every
    batch in ascending order after a warm-up; with ``ddp`` the model is wrapped in
    DistributedDataParallel with a no-op communication hook (its gradient copies into
    and out of the buckets and its hooks run; the allreduce does not: the simulator
    adds it). Every process's iterations are pooled per batch."""

    threads: int = Field(ge=1)
    processes: int = Field(1, ge=1)
    ddp: bool = Field(False, description="Wrapped in DDP (no-op comm hook): only with processes > 1.")
    method: str = ""
    samples: list[WholeModelSample] = Field(default_factory=list, description="Iteration times per batch.")


class ThreadTimings(_Frozen):
    """One model's layers, whole model and optimizer step timed at ``threads`` torch
    threads per process while ``processes`` such processes time the same work at once
    (the host's cores shared as the ranks of a multi-process job share them)."""

    threads: int = Field(ge=1)
    processes: int = Field(1, ge=1, description="Processes timing at once, each with `threads` threads.")
    samples: list[LayerSample] = Field(default_factory=list, description="Every process's repeats pooled.")
    whole_model: list[WholeModelSample] = Field(default_factory=list)
    optimizer_step: Timing | None = None
    fits: list[LayerFit] = Field(default_factory=list)
    training_step: TrainingSteps | None = Field(None, description="Whole iterations as a job runs them (version 3).")

    def fit_table(self) -> dict[tuple[str, str], LinearFit]:
        return {(f.layer, f.phase): f.fit for f in self.fits}


class ModelProfile(_Frozen):
    """Per-layer timings of one zoo model."""

    model: str
    precision: Literal["fp32"] = "fp32"
    optimizer: Literal["sgd", "momentum", "adam"] = "momentum"
    method: str = Field(description="How layers were timed.")
    batches: list[int] = Field(min_length=1)
    samples: list[LayerSample]
    optimizer_step: Timing | None = None
    whole_model: list[WholeModelSample] = Field(default_factory=list)
    fits: list[LayerFit] = Field(default_factory=list)
    threads: int | None = Field(
        None, ge=1, description="torch threads of the samples above (one process); None (version 1): "
        "environment.torch_threads.")
    threads_sweep: list[ThreadTimings] = Field(
        default_factory=list, description="The same at fewer threads per process, cores shared (CPU; version 2).")
    training_step: TrainingSteps | None = Field(
        None, description="Whole iterations as a job runs them, one process at `threads` (CPU; version 3).")

    def fit_table(self) -> dict[tuple[str, str], LinearFit]:
        return {(f.layer, f.phase): f.fit for f in self.fits}

    def at_threads(self, threads: int, default_threads: int) -> ThreadTimings | None:
        """The timings at ``threads`` threads per process: the main samples when they
        were taken at that count (``default_threads`` when the profile does not say),
        else the sweep's entry; None when neither has it."""
        main = self.threads or default_threads
        if threads == main:
            return ThreadTimings(threads=main, processes=1, samples=self.samples, whole_model=self.whole_model,
                                 optimizer_step=self.optimizer_step, fits=self.fits,
                                 training_step=self.training_step)
        return next((t for t in self.threads_sweep if t.threads == threads), None)

    def measured_threads(self, default_threads: int) -> list[int]:
        return sorted({self.threads or default_threads, *(t.threads for t in self.threads_sweep)})


# -- compute efficiency and copies -----------------------------------------------------


class WorkSample(_Frozen):
    op: Literal["matmul", "conv"]
    shape: str = Field(description="Human-readable operand shape.")
    flops: int = Field(ge=0)
    timing: Timing


class ThroughputFit(_Frozen):
    """``t = overhead_s + flops / peak_flops_per_s``."""

    op: Literal["matmul", "conv"]
    overhead_s: float
    peak_flops_per_s: float = Field(gt=0)
    points: int = Field(ge=1)
    max_rel_error: float = Field(ge=0)

    def efficiency(self, flops: float) -> float:
        """Fraction of the peak reached by work of ``flops``."""
        return flops / (flops + max(self.overhead_s, 0.0) * self.peak_flops_per_s)


class MemorySample(_Frozen):
    bytes: int = Field(ge=1, description="Bytes read (and as many written) by one copy.")
    timing: Timing


class Efficiency(_Frozen):
    samples: list[WorkSample] = Field(default_factory=list)
    memory: list[MemorySample] = Field(default_factory=list)
    fits: list[ThroughputFit] = Field(default_factory=list)
    memory_bandwidth_bytes_per_s: float | None = Field(
        default=None, gt=0, description="Device copy bandwidth (read + write bytes / time) of the largest copy."
    )

    def fit(self, op: str) -> ThroughputFit | None:
        return next((f for f in self.fits if f.op == op), None)


class CopySample(_Frozen):
    direction: Literal["h2d", "d2h"]
    pinned: bool
    bytes: int = Field(ge=1)
    timing: Timing


class CopyFit(_Frozen):
    direction: Literal["h2d", "d2h"]
    pinned: bool
    fit: AlphaBetaFit


# -- collectives -----------------------------------------------------------------------


class CollectiveSample(_Frozen):
    """One collective at one size; times are the slowest rank's, per repeat."""

    collective: Collective
    world_size: int = Field(ge=2)
    nodes: int = Field(1, ge=1)
    bytes: int = Field(ge=1, description="Message size as nccl-tests counts it (the full buffer).")
    timing: Timing
    algbw_bytes_per_s: float = Field(ge=0, description="bytes / median time.")
    busbw_bytes_per_s: float = Field(ge=0, description="algbw x the nccl-tests bus factor.")


class CollectiveFit(_Frozen):
    collective: Collective
    world_size: int = Field(ge=2)
    nodes: int = Field(1, ge=1)
    fit: AlphaBetaFit = Field(description="Over all sizes: t = alpha + bytes / beta.")
    pieces: list[AlphaBetaFit] = Field(
        default_factory=list, description="Piecewise alpha-beta over size ranges (protocol changes), each over "
        ">= 3 measured sizes; empty with fewer than 3 sizes.")

    def time_s(self, nbytes: float) -> float:
        """Time of one collective of ``nbytes``: the piece whose size range holds it;
        below the smallest measured size, the smallest size's time (latency floor);
        above the largest, the last piece's line (bandwidth-bound), or where that piece
        is latency-only, its time at its largest size plus the extra bytes at the
        overall fit's bandwidth."""
        pieces = self.pieces or [self.fit]
        if nbytes < pieces[0].min_bytes:
            return max(pieces[0](pieces[0].min_bytes), 0.0)
        for piece in pieces:
            if nbytes <= piece.max_bytes:
                return max(piece(nbytes), 0.0)
        last = pieces[-1]
        if last.beta_bytes_per_s is None and self.fit.beta_bytes_per_s is not None:
            return max(last(last.max_bytes), 0.0) + (nbytes - last.max_bytes) / self.fit.beta_bytes_per_s
        return max(last(nbytes), 0.0)


class Collectives(_Frozen):
    backend: str = Field(description="torch.distributed backend: nccl or gloo.")
    nodes: int = Field(1, ge=1, description="Hosts that took part.")
    procs_per_node: int = Field(1, ge=1, description="Processes per host.")
    launcher: Literal["spawn", "torchrun"] = "spawn"
    unsupported: list[str] = Field(default_factory=list, description="Collectives the backend could not run.")
    samples: list[CollectiveSample] = Field(default_factory=list)
    fits: list[CollectiveFit] = Field(default_factory=list)

    def fit(self, collective: str, world_size: int, nodes: int | None = None) -> CollectiveFit | None:
        for f in self.fits:
            if f.collective == collective and f.world_size == world_size and (nodes is None or f.nodes == nodes):
                return f
        return None


# -- the document ----------------------------------------------------------------------


class Interference(_Frozen):
    """Compute and a collective on the same device at once, against each alone.

    Every one of ``processes`` processes (``threads`` torch threads each, the host's
    cores shared as by a job's ranks) times ``work`` alone, then with a thread beside it
    running ``backend`` allreduces of ``bytes`` back to back; and the allreduce alone and
    beside the work. ``compute_factor`` = median with / median alone of the work;
    ``comm_factor`` likewise of the allreduce (>= 1: both slow each other down)."""

    backend: str
    device_kind: Literal["cpu", "cuda"]
    threads: int = Field(ge=1)
    processes: int = Field(ge=2)
    work: str = Field(description="What was computed, e.g. 'alexnet forward+backward, batch 1'.")
    bytes: int = Field(ge=1, description="Allreduce message size.")
    compute_alone: Timing
    compute_beside: Timing
    comm_alone: Timing
    comm_beside: Timing

    @property
    def compute_factor(self) -> float:
        return max(1.0, self.compute_beside.median_s / self.compute_alone.median_s)

    @property
    def comm_factor(self) -> float:
        return max(1.0, self.comm_beside.median_s / self.comm_alone.median_s)


class IterationSpread(_Frozen):
    """Whole training iterations (forward, backward, optimizer step) repeated, to read
    their spread: ``timing.cv`` is the jitter of one rank's compute."""

    model: str
    batch: int = Field(ge=1)
    threads: int = Field(ge=1)
    processes: int = Field(1, ge=1)
    timing: Timing

    @property
    def cv(self) -> float:
        return self.timing.cv


class Environment(_Frozen):
    device_kind: Literal["cpu", "cuda"]
    device_name: str
    catalog_gpu: str | None = Field(
        None, description="The catalog GPU this device is (CUDA only); None for CPUs and unknown GPUs."
    )
    driver: str | None = None
    torch: str
    cuda: str | None = None
    nccl: str | None = None
    cpu: str
    cpu_count: int = Field(ge=1)
    torch_threads: int = Field(ge=1)
    hostname: str
    platform: str
    python: str
    date_utc: str


class Provenance(_Frozen):
    command: str
    quick: bool
    wall_s: float = Field(ge=0)
    complete: bool = Field(description="False when the probe was interrupted (Ctrl-C) and kept what it had.")
    interrupted_during: str | None = None
    notes: str = ""
    load_average_start: float | None = Field(None, ge=0, description="1-minute load average as the probe began.")
    load_average_end: float | None = Field(None, ge=0, description="1-minute load average as it ended.")


class Profile(_Frozen):
    """A calibration profile (raw samples + fitted models)."""

    format: Literal["clustersim-profile"] = FORMAT_NAME
    schema_version: Literal[1, 2, 3] = SCHEMA_VERSION
    environment: Environment
    provenance: Provenance
    models: list[ModelProfile] = Field(default_factory=list)
    efficiency: Efficiency = Field(default_factory=Efficiency)
    copies: list[CopySample] = Field(default_factory=list)
    copy_fits: list[CopyFit] = Field(default_factory=list)
    collectives: Collectives | None = None
    interference: Interference | None = None
    iteration_spread: list[IterationSpread] = Field(default_factory=list)

    def model(self, name: str) -> ModelProfile | None:
        return next((m for m in self.models if m.model == name), None)

    @property
    def device_label(self) -> str:
        return f"{self.environment.device_kind} {self.environment.device_name}"

    def to_json(self) -> str:
        return self.model_dump_json(indent=1) + "\n"

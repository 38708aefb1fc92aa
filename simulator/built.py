"""What the build phase hands to the run and collect phases: :class:`BuiltSimulation`.

Its own module, importing only the types it holds (the scenario's resolved view among
them, :class:`~simulator.resolved.Resolved`), so the collect phase
(``results``, ``attribution``, ``timeline``) can name it without importing the phases
that make and run it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import simpy

from topologies import ClusterGraph

from . import zoo
from .compute import ComputeCosts
from .event_loop import CountingEnvironment as CountingEnvironment  # (re-exported: it lived here)
from .network import Network
from .resolved import Resolved
from .rng import RandomStreams
from .scenario import Scenario
from .sync import SyncContext, Synchronizer

if TYPE_CHECKING:  # the calibration machinery (and its profile schema) loads only with a profile
    from .calibrated import Calibration

MIB = 1024 * 1024


@dataclass
class RankTimeline:
    """What one rank did, iteration by iteration."""

    iteration_start: list[float] = field(default_factory=list)
    accumulation_end: list[float] = field(default_factory=list)  # end of the summed-only micro-batches (if any)
    forward_end: list[float] = field(default_factory=list)
    backward_end: list[float] = field(default_factory=list)
    sync_end: list[float] = field(default_factory=list)
    iteration_end: list[float] = field(default_factory=list)
    compute_s: list[float] = field(default_factory=list)  # GPU busy time per iteration
    input_wait_s: list[float] = field(default_factory=list)  # waiting for the input pipeline (data: real)
    input_copy_s: list[float] = field(default_factory=list)  # the batch copied from host (input_copy: exposed)
    # compute slowed by a collective on the same device, per iteration (only when it can be)
    interference_s: list[float] = field(default_factory=list)
    # the GPU copying gradient buckets in and out of flat buffers (training.bucket_copies), per iteration
    copy_s: list[float] = field(default_factory=list)
    copy_intervals: list[tuple[float, float]] = field(default_factory=list)  # when it copied
    waiting_for: str = "not started"


@dataclass
class BuiltSimulation:
    """Everything the run phase needs, wired together. What is derived from the
    scenario (GPUs, batch, iterations, the GPU and model entries, converted units) is
    read from ``resolved``, made once by the build phase."""

    resolved: Resolved
    env: CountingEnvironment
    cluster: ClusterGraph
    network: Network
    costs: ComputeCosts
    buckets: list[tuple[float, float]]  # (launch offset from backward start in s, bytes), in order
    sync: Synchronizer
    context: SyncContext
    detailed: bool
    timelines: list[RankTimeline]
    streams: RandomStreams
    edge_bytes_at_window_start: np.ndarray | None = None
    # Ranks that have finished each iteration, and an event per iteration that fires
    # when all have (the staleness bound of SSP waits on it).
    finished: dict[int, int] = field(default_factory=dict)
    all_finished: dict[int, simpy.Event] = field(default_factory=dict)
    calibration: Calibration | None = None  # the profile in use, and what it calibrates
    # Framework CPU time to launch each bucket (launch overhead + per-tensor negotiation),
    # paid one bucket after another after backward when overlap is off.
    launch_after_backward: list[float] = field(default_factory=list)
    # Where the fast path was asked for (simulation.mode auto or fast) but cannot give
    # the detailed path's answer: why, and what ran instead (None: nothing to say).
    fast_path_note: str | None = None
    # fusion: horovod (synchronous background loop): every gradient as (ready offset from
    # backward start in s, bytes), in readiness order; the run phase fuses them cycle by
    # cycle (``buckets`` then only stands for the static grouping). None: static buckets.
    fusion_tensors: list[tuple[float, float]] | None = None
    # What the loop launched: per iteration, (cycle start, bytes, tensors) per buffer.
    fusion_buffers: dict[int, list[tuple[float, float, int]]] = field(default_factory=dict)
    # training.bucket_copies: seconds per byte of one copy of a packed bucket (into its flat
    # buffer, or back out; 0: nothing is copied).
    copy_s_per_byte: float = 0.0
    # seconds each iteration waits for its batch to be copied from host memory (workload.input_copy)
    input_copy_s: float = 0.0
    input_copy_one_gpu_s: float = 0.0  # the same copy by one GPU alone (the one-GPU job's)

    @property
    def scenario(self) -> Scenario:
        return self.resolved.scenario

    @property
    def model(self) -> zoo.Model:
        return self.resolved.model

    @property
    def strategy_name(self) -> str:
        """The strategy that runs ("none" on one GPU, except under parameter servers)."""
        return self.resolved.strategy_name

    def copy_s(self, nbytes: float, tensors: int) -> float:
        """Seconds one copy of a bucket of ``tensors`` gradients takes (0 for a single
        tensor, reduced in place)."""
        return nbytes * self.copy_s_per_byte if tensors > 1 else 0.0

    @functools.cached_property
    def bucket_copy_s(self) -> list[float]:
        """Each static bucket's one copy, in seconds (:meth:`copy_s`)."""
        return [self.copy_s(nbytes, n) for (_, nbytes), n in zip(self.buckets, self.context.bucket_tensors)]

    @functools.cached_property
    def bucket_copies_out_s(self) -> float:
        """Copying every reduced static bucket back out, in seconds (0: nothing is copied)."""
        return sum(self.bucket_copy_s)

    def iteration_finished(self, it: int) -> simpy.Event:
        if it not in self.all_finished:
            self.all_finished[it] = self.env.event()
        return self.all_finished[it]

    def staleness_bound(self) -> int | None:
        """How far a rank may run ahead of the slowest; None when unbounded or when
        synchronization itself keeps ranks in step."""
        ps = self.scenario.training.parameter_servers
        if self.strategy_name == "parameter_server" and ps.sync == "ssp" and self.detailed:
            return ps.staleness
        return None

    @property
    def sample_unit(self) -> str:
        return self.model.sample_unit

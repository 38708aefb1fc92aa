"""Run phase: advance SimPy time. Each rank runs forward, backward in reverse layer
order (handing each gradient bucket to the strategy as it becomes ready, or all at the
end when overlap is off), waits for its buckets, and steps the optimizer.
"""

from __future__ import annotations

from collections.abc import Generator

import numpy as np
import simpy

from .built import MIB, BuiltSimulation
from .compute import pack_fusion_buffers
from .errors import SimulationError
from .gc_policy import run_phase
from .interference import DeviceSharing
from .scale import HOST_CORES_PER_GPU, IMAGE_INPUT_MS_PER_SAMPLE, slowest_of
from .variation import ComputeVariation


def _synchronous_ranks(sim: BuiltSimulation) -> int:
    """How many ranks a synchronous step waits for (1: nobody waits for others)."""
    ps = sim.scenario.training.parameter_servers
    if sim.strategy_name == "none" or (sim.strategy_name == "parameter_server" and ps.sync != "bsp"):
        return 1
    return sim.resolved.total_gpus


def _slowest_rank_stretch(sim: BuiltSimulation, forward_s: float, backward_s: float) -> float:
    """Fast path: the factor on forward and backward that makes the representative rank
    as late as the slowest of N, whose whole iteration's compute (every accumulated
    micro-batch, and the optimizer step where the GPU runs it) is expected to take
    ``slowest_of(N, cv)`` times the nominal. 1 on the detailed path, which draws every
    rank's factor instead."""
    cv = sim.scenario.variability.iteration_cv
    if cv == 0 or sim.detailed or forward_s + backward_s <= 0:
        return 1.0
    factor = slowest_of(_synchronous_ranks(sim), cv)
    optimizer_s = 0.0 if sim.strategy_name == "parameter_server" else sim.costs.optimizer_s
    passes = (forward_s + backward_s) * sim.scenario.training.gradient_accumulation_steps
    return 1.0 + (factor - 1.0) * (passes + optimizer_s) / passes


def _input_batch_s(sim: BuiltSimulation, rank: int) -> float:
    """Seconds the input pipeline of ``rank`` needs for one iteration's batches (0:
    synthetic data).

    The node's host cores (``cluster.host_cores``, default 5 per GPU) less those taken
    by parameter servers colocated on it (``cores`` each, leaving at least one) are
    shared evenly by the node's ranks."""
    s = sim.scenario
    w, c = s.workload, s.cluster
    if w.data != "real":
        return 0.0
    per_sample_ms = w.input_ms_per_sample
    if per_sample_ms is None:
        per_sample_ms = IMAGE_INPUT_MS_PER_SAMPLE if sim.model.sample_unit == "images" else 0.0
    if per_sample_ms == 0:
        return 0.0
    host = c.host_cores if c.host_cores is not None else HOST_CORES_PER_GPU * c.gpus_per_node
    ps = s.training.parameter_servers
    if c.host_cores is not None and sim.strategy_name == "parameter_server" and ps.placement == "colocated":
        node = rank // c.gpus_per_node if sim.detailed else 0
        servers_here = len(range(node, ps.count, c.nodes))
        host = max(host - servers_here * ps.cores, 1)
    samples = sim.resolved.batch_per_gpu * s.training.gradient_accumulation_steps  # every micro-batch
    return samples * per_sample_ms * 1e-3 * c.gpus_per_node / host


def _computing(sim: BuiltSimulation, rank: int, seconds: float) -> Generator[simpy.Event, object, float]:
    """Process: ``rank`` computes for ``seconds`` (its time alone). Beside a collective
    on its device it runs slower (a calibrated one: :class:`~simulator.calibrated_run.Overlap`;
    the library's, by its ``compute_interference``: :class:`~simulator.interference.DeviceSharing`);
    otherwise exactly ``seconds``."""
    overlap = _sharing(sim)
    if overlap is None:
        yield sim.env.timeout(seconds)
        return 0.0
    start = sim.env.now
    yield from overlap.compute(rank, seconds)
    return max(sim.env.now - start - seconds, 0.0)  # the slowdown


def _copying(sim: BuiltSimulation, rank: int, seconds: float) -> Generator[simpy.Event, object, None]:
    """Process: ``rank``'s GPU copies gradient buckets (training.bucket_copies): ``seconds``
    alone, longer beside a collective (as compute). Booked apart from compute, as it took
    (``copy_s``), with its interval: the breakdown tells it from waiting."""
    timeline, start = sim.timelines[rank], sim.env.now
    yield from _computing(sim, rank, seconds)
    timeline.copy_s[-1] += sim.env.now - start
    timeline.copy_intervals.append((start, sim.env.now))


def _sharing(sim: BuiltSimulation) -> DeviceSharing | None:
    """What slows a rank's compute beside a collective on its device (None: nothing)."""
    if sim.calibration is not None and sim.calibration.overlap is not None:
        return sim.calibration.overlap
    return sim.context.sharing


def _compute_totals(sim: BuiltSimulation) -> tuple[float, float]:
    """Nominal forward and backward seconds of one iteration (the same for every rank)."""
    forward_s = float(sim.costs.forward_s.sum())
    backward_s = float(np.cumsum(sim.costs.backward_s[::-1])[-1])  # summed as the bucket offsets are
    return forward_s, backward_s


def _rank_process(sim: BuiltSimulation, rank: int, loop: _FusionLoop | None = None,
                  variation: ComputeVariation | None = None,
                  totals: tuple[float, float] | None = None) -> Generator[simpy.Event, object, None]:
    """One data-parallel rank: forward, backward emitting buckets (or, under Horovod's
    synchronous loop, telling ``loop`` each gradient it has ready), wait, optimizer.
    ``variation`` and ``totals``: as :class:`ComputeVariation` and :func:`_compute_totals`
    make them (passed when every rank's are made at once)."""
    env, costs, timeline = sim.env, sim.costs, sim.timelines[rank]
    overlap = sim.scenario.training.overlap
    iterations, warmup = sim.resolved.run_iterations, sim.resolved.warmup_iterations
    forward_s, backward_s = totals or _compute_totals(sim)
    variation = variation if variation is not None else ComputeVariation(sim, rank)
    staleness = sim.staleness_bound()
    accumulation = sim.scenario.training.gradient_accumulation_steps
    # Fast path under iteration_cv: the representative rank runs at the pace of the
    # slowest of N (forward and backward stretched so their sum carries the expected
    # extra time of the whole iteration) but books only its own compute; the rest
    # shows as waiting. 1 (nothing changes) otherwise.
    stretch = _slowest_rank_stretch(sim, forward_s, backward_s)
    prepare_s = _input_batch_s(sim, rank)
    batch_ready = prepare_s  # the input pipeline starts with the job
    for it in range(iterations):
        if staleness is not None and it - staleness - 1 >= 0:
            timeline.waiting_for = f"the slowest rank to finish iteration {it - staleness - 1} (ssp)"
            yield sim.iteration_finished(it - staleness - 1)
        if rank == 0 and it == warmup:
            sim.edge_bytes_at_window_start = sim.network.edge_bytes()
        timeline.iteration_start.append(env.now)
        if sim.copy_s_per_byte > 0:
            timeline.copy_s.append(0.0)
        if prepare_s > 0:
            # Prefetch of one batch: batch it+1 is prepared once batch it is taken.
            timeline.waiting_for = f"the input pipeline (batch of iteration {it})"
            waited = max(batch_ready - env.now, 0.0)
            if waited > 0:
                yield env.timeout(waited)
            timeline.input_wait_s.append(waited)
            batch_ready = env.now + prepare_s
        if sim.input_copy_s > 0:  # the batch copied from host memory, nothing to hide it (input_copy)
            timeline.waiting_for = f"the batch of iteration {it} copied from host memory"
            yield env.timeout(sim.input_copy_s)
            timeline.input_copy_s.append(sim.input_copy_s)
        slow = variation.iteration_factor()
        computed = slowed = extra = 0.0

        def compute(seconds: float, slow: float = slow) -> Generator[simpy.Event, object, None]:
            """Compute ``seconds`` of nominal forward or backward work: this iteration's
            factor and a jitter draw on it, the fast path's stretch booked as ``extra``."""
            nonlocal computed, extra, slowed
            segment = seconds * slow * variation.jitter()
            computed += segment
            extra += segment * (stretch - 1)
            slowed += yield from _computing(sim, rank, segment * stretch)

        for micro in range(1, accumulation):  # micro-batches whose gradients are only summed
            timeline.waiting_for = f"micro-batch {micro} of {accumulation} of iteration {it}"
            yield from compute(forward_s)
            yield from compute(backward_s)
        if accumulation > 1:
            timeline.accumulation_end.append(env.now)
        timeline.waiting_for = f"forward of iteration {it}"
        yield from compute(forward_s)
        timeline.forward_end.append(env.now)
        timeline.waiting_for = f"backward of iteration {it}"
        pending: list[simpy.Event] = []
        done_s = 0.0  # how far into the (nominal) backward pass this rank is

        def backward_until(offset: float) -> Generator[simpy.Event, object, None]:
            """Compute backward up to ``offset`` (capped at its end), if not there yet."""
            nonlocal done_s
            compute_to = min(offset, backward_s)
            if compute_to > done_s:
                yield from compute(compute_to - done_s)
                done_s = compute_to

        if loop is not None:
            loop.backward_started(it)
            for offset, _nbytes in sim.fusion_tensors or ():
                yield from backward_until(offset)
                loop.tensor_ready(rank, it)
            pending.append(loop.done(it))
        for b, (offset, nbytes) in enumerate(() if loop is not None else sim.buckets):
            yield from backward_until(offset)
            if done_s == backward_s and len(timeline.backward_end) == it:
                timeline.backward_end.append(env.now - extra)
            if overlap and sim.bucket_copy_s[b] > 0:  # packed into its flat buffer, on the GPU
                yield from _copying(sim, rank, sim.bucket_copy_s[b])
            if overlap and offset > done_s:
                # Horovod: the next fusion cycle ticks after backward has ended. The
                # wait is the fusion machinery's, so it counts as communication.
                start = env.now
                yield env.timeout(offset - done_s)
                sim.context.comm_intervals[rank].append((start, env.now))
                done_s = offset
            if overlap:
                pending.append(sim.sync.ready(rank, (it, b), nbytes))
        yield from backward_until(backward_s)
        if len(timeline.backward_end) == it:
            timeline.backward_end.append(env.now - extra)
        if not overlap:
            pending = []
            for b, (_offset, nbytes) in enumerate(sim.buckets):
                launch = sim.launch_after_backward[b]
                if launch > 0:  # the framework's own launch work, one bucket after another
                    start = env.now
                    yield env.timeout(launch)
                    sim.context.comm_intervals[rank].append((start, env.now))
                if sim.bucket_copy_s[b] > 0:  # packed into its flat buffer, on the GPU
                    yield from _copying(sim, rank, sim.bucket_copy_s[b])
                pending.append(sim.sync.ready(rank, (it, b), nbytes))
        timeline.waiting_for = f"gradient synchronization of iteration {it} ({len(pending)} buckets)"
        yield simpy.AllOf(env, pending)
        timeline.sync_end.append(env.now)
        if loop is None and sim.bucket_copies_out_s > 0:  # the reduced buckets copied back out
            yield from _copying(sim, rank, sim.bucket_copies_out_s)
        if sim.strategy_name != "parameter_server":  # servers apply the update themselves
            timeline.waiting_for = f"optimizer step of iteration {it}"
            segment = costs.optimizer_s * slow * variation.jitter()
            computed += segment
            slowed += yield from _computing(sim, rank, segment)
        timeline.compute_s.append(computed)
        if _sharing(sim) is not None:
            timeline.interference_s.append(slowed)
        timeline.iteration_end.append(env.now)
        sim.finished[it] = sim.finished.get(it, 0) + 1
        if sim.finished[it] == len(sim.timelines):
            sim.iteration_finished(it).succeed()
    timeline.waiting_for = "finished"


class _FusionLoop:
    """Horovod's background loop as it ran when the thread waited for its own GPU
    allreduces (``fusion: horovod``). A cycle starts ``fusion_cycle_ms`` after the
    previous one started, or when the previous cycle's allreduces have finished,
    whichever is later (the first one cycle after the first rank starts backward);
    it takes every gradient that every rank has ready by then (the coordinator waits
    for the slowest rank), packs them in readiness order into buffers of at most the
    fusion threshold (:func:`~simulator.compute.pack_fusion_buffers`), pays the
    framework's launch work per buffer, hands each buffer to the synchronizer for
    every rank and waits for them all. Tensors that become ready while an allreduce
    runs are therefore fused together in the next cycle."""

    def __init__(self, sim: BuiltSimulation):
        t = sim.scenario.training
        self.sim, self.env = sim, sim.env
        self.cycle_s = t.fusion_cycle_ms * 1e-3
        self.cap = t.resolved_bucket_size_mib * MIB
        self.launch_us = (t.launch_overhead_us, t.negotiation_us_per_tensor)
        self.sizes = [nbytes for _, nbytes in sim.fusion_tensors or ()]
        self.ranks = len(sim.timelines)
        self.counts: dict[int, list[int]] = {}
        self.all_ready_at: dict[int, float] = {}
        self._started: dict[int, simpy.Event] = {}
        self._done: dict[int, simpy.Event] = {}

    def _event(self, table: dict[int, simpy.Event], it: int) -> simpy.Event:
        if it not in table:
            table[it] = self.env.event()
        return table[it]

    def backward_started(self, it: int) -> None:
        started = self._event(self._started, it)
        if not started.triggered:
            started.succeed()

    def tensor_ready(self, rank: int, it: int) -> None:
        counts = self.counts.setdefault(it, [0] * self.ranks)
        counts[rank] += 1
        if min(counts) == len(self.sizes):
            self.all_ready_at[it] = self.env.now

    def done(self, it: int) -> simpy.Event:
        """Fires when every gradient of iteration ``it`` is synchronized."""
        return self._event(self._done, it)

    def _fusion_wait(self, it: int, start: float) -> None:
        """After every rank has finished backward, time spent before buffers launch is
        the fusion machinery's: it counts as communication."""
        lo = max(self.all_ready_at.get(it, self.env.now), start)
        if self.env.now > lo:
            for rank in range(self.ranks):
                self.sim.context.comm_intervals[rank].append((lo, self.env.now))

    def _busy(self, it: int, seconds: float) -> Generator[simpy.Event, object, None]:
        """The fusion machinery working for ``seconds`` (communication once backward is over)."""
        start = self.env.now
        yield self.env.timeout(seconds)
        self._fusion_wait(it, start)

    def run(self, iterations: int) -> Generator[simpy.Event, object, None]:
        env, sim = self.env, self.sim
        for it in range(iterations):
            yield self._event(self._started, it)
            launched, b = 0, 0
            next_cycle = env.now + self.cycle_s
            buffers = sim.fusion_buffers.setdefault(it, [])
            while launched < len(self.sizes):
                wait_from = env.now
                if next_cycle > env.now:
                    yield env.timeout(next_cycle - env.now)
                cycle_start = env.now
                counts = self.counts.get(it)
                ready = min(counts) if counts else 0
                if ready > launched:
                    self._fusion_wait(it, wait_from)
                    events: list[simpy.Event] = []
                    for nbytes, tensors in pack_fusion_buffers(self.sizes[launched:ready], self.cap):
                        # The framework's own launch work, one buffer after another; with
                        # training.bucket_copies, the copy into the fusion buffer, its allreduce
                        # and the copy back out run in turn on Horovod's one GPU stream.
                        copy_s = sim.copy_s(nbytes, tensors)
                        launch_s = (self.launch_us[0] + self.launch_us[1] * tensors) * 1e-6 + copy_s
                        if launch_s > 0:
                            yield from self._busy(it, launch_s)
                        buffers.append((cycle_start, nbytes, tensors))
                        events.extend(sim.sync.ready(r, (it, b), nbytes) for r in range(self.ranks))
                        b += 1
                        if copy_s > 0:
                            yield simpy.AllOf(env, events)
                            yield from self._busy(it, copy_s)
                    launched = ready
                    yield simpy.AllOf(env, events)
                next_cycle = cycle_start + self.cycle_s
            self.done(it).succeed()


def run(sim: BuiltSimulation) -> None:
    """Run phase: advance time until every rank has finished every iteration."""
    with run_phase():  # the collector's rhythm for a run (simulator.gc_policy)
        loop = None
        if sim.fusion_tensors is not None:
            loop = _FusionLoop(sim)
            sim.env.process(loop.run(sim.resolved.run_iterations))
        variations, totals = ComputeVariation.of_ranks(sim), _compute_totals(sim)
        processes = [sim.env.process(_rank_process(sim, r, loop, variations[r], totals))
                     for r in range(len(sim.timelines))]
        sim.env.run()
    stuck = [
        f"rank {r} ({sim.cluster.gpus[r]}) waiting for {sim.timelines[r].waiting_for}"
        for r, proc in enumerate(processes)
        if proc.is_alive
    ]
    if stuck:
        flows = sim.network.active_flows
        detail = f"; {len(flows)} flows still active" if flows else ""
        raise SimulationError("simulation ended with work still waiting: " + "; ".join(stuck) + detail)

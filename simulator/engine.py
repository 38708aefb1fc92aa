"""Build, run and collect: the three phases after a scenario is loaded.

* **Build** turns a :class:`Scenario` into a topology graph (from ``topologies``), a
  flow-level :class:`Network`, per-layer compute costs and gradient buckets, and a
  synchronization strategy. Configuration errors surface here, before the clock starts.
* **Run** advances SimPy time: each rank runs forward, backward in reverse layer order
  (handing each gradient bucket to the strategy as it becomes ready, or all at the end
  when overlap is off), waits for its buckets, and steps the optimizer.
* **Collect** turns the recorded timeline into a :class:`SimResult`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import simpy

from topologies import ClusterGraph, build_cluster

from . import catalog, zoo
from .calibrated import Calibration, calibrate_compute
from .collective_cost import achievable_graph, get_backend
from .collectives import CollectiveLibrary, Fabric
from .compute import (
    PARAMETER_BYTES, ComputeCosts, bucket_tensor_counts, default_compute_efficiency, fusion_buckets, gradient_buckets,
    roofline_costs, scaled_to_throughput,
)
from .errors import SimulationError, TopologyError
from .hardware import fabric_params, pcie_link, server_params
from .memory import check_fits
from .network import Network
from .rng import RandomStreams
from .scale import HOST_CORES_PER_GPU, IMAGE_INPUT_MS_PER_SAMPLE, slowest_of
from .results import SimResult, collect, combine_replications
from .scenario import Scenario
from .sync import SYNC_STRATEGIES, SyncContext, Synchronizer
from .timeline import TimelineRecorder

MIB = 1024 * 1024


class CountingEnvironment(simpy.Environment):
    """A SimPy environment that counts the events it processes (for benchmarks)."""

    def __init__(self) -> None:
        super().__init__()
        self.events_processed = 0

    def step(self) -> None:
        self.events_processed += 1
        super().step()


@dataclass
class RankTimeline:
    """What one rank did, iteration by iteration."""

    iteration_start: list[float] = field(default_factory=list)
    forward_end: list[float] = field(default_factory=list)
    backward_end: list[float] = field(default_factory=list)
    sync_end: list[float] = field(default_factory=list)
    iteration_end: list[float] = field(default_factory=list)
    compute_s: list[float] = field(default_factory=list)  # GPU busy time per iteration
    input_wait_s: list[float] = field(default_factory=list)  # waiting for the input pipeline (data: real)
    waiting_for: str = "not started"


@dataclass
class BuiltSimulation:
    """Everything the run phase needs, wired together."""

    scenario: Scenario
    model: zoo.Model
    env: CountingEnvironment
    cluster: ClusterGraph
    network: Network
    costs: ComputeCosts
    buckets: list[tuple[float, float]]  # (launch offset from backward start in s, bytes), in order
    strategy_name: str
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


def rank_compute_costs(scenario: Scenario, model: zoo.Model | None = None, gpu: catalog.GPUSpec | None = None
                       ) -> tuple[ComputeCosts, Calibration | None, list[str | None]]:
    """One rank's per-layer compute: the layer-time model (or the calibration profile,
    or a measured throughput) at the scenario's batch. Returns the costs, the
    calibration report (None without a profile) and each layer's conv algorithm.
    Refuses, with the numbers, a batch that does not fit the GPU."""
    w = scenario.workload
    model = model or zoo.get_model(w.model, sequence_length=w.sequence_length)
    gpu = gpu or catalog.get_gpu(scenario.cluster.gpu)
    chosen = [layer.algorithm for layer in check_fits(scenario).layers]
    costs = roofline_costs(
        model,
        gpu,
        precision=w.precision,
        batch=w.batch_per_gpu,
        compute_efficiency=w.compute_efficiency or default_compute_efficiency(w.precision),
        memory_efficiency=w.memory_efficiency,
        layer_overhead_s=w.layer_overhead_us * 1e-6,
        optimizer=w.optimizer,
        conv_algorithms=chosen,
    )
    calibration = None
    if scenario.calibration is not None:
        costs, calibration = calibrate_compute(scenario, model, costs, scenario.calibration)
    if w.measured_throughput_samples_per_s is not None:
        costs = scaled_to_throughput(costs, w.batch_per_gpu, w.measured_throughput_samples_per_s)
    return costs, calibration, chosen


def build(scenario: Scenario, replication: int = 0) -> BuiltSimulation:
    """Build phase: scenario -> graph -> network, compute costs, strategy."""
    c, w, t = scenario.cluster, scenario.workload, scenario.training
    gpu = catalog.get_gpu(c.gpu)
    model = zoo.get_model(w.model, sequence_length=w.sequence_length)
    pcie_bandwidth, pcie_latency = pcie_link(scenario)

    total_gpus = c.total_gpus
    # One GPU synchronizes nothing, except under parameter servers: there the one-GPU
    # baseline runs the same update path (push, server update, pull) as the N-GPU job,
    # so the servers taking the optimizer step off the GPU is no source of speedup.
    strategy_name = t.strategy if total_gpus > 1 or t.strategy == "parameter_server" else "none"
    ps = t.parameter_servers
    dedicated = ps.count if strategy_name == "parameter_server" and ps.placement == "dedicated" else 0
    try:
        cluster = build_cluster(
            nodes=c.nodes,
            gpus_per_node=c.gpus_per_node,
            server_layout=c.server.layout,
            server_params=server_params(scenario),
            nic_bandwidth=c.nic.resolved_bandwidth_gbps * 1e9 / 8,
            nic_latency=c.nic.resolved_latency_us * 1e-6,
            fabric=c.fabric.topology,
            fabric_params=fabric_params(scenario),
            dedicated_ps=dedicated,
            ps_nic_bandwidth=None if ps.nic_bandwidth_gbps is None else ps.nic_bandwidth_gbps * 1e9 / 8,
            host_pcie_bandwidth=pcie_bandwidth,
            host_pcie_latency=pcie_latency,
        )
    except (KeyError, ValueError) as exc:
        raise TopologyError(f"cluster: cannot build the topology: {exc}") from None

    env = CountingEnvironment()
    backend = get_backend(t.collectives.backend) if strategy_name not in ("none", "parameter_server") else None
    graph = cluster.graph if backend is None else achievable_graph(cluster.graph, backend, gpu.architecture)
    network = Network(env, graph)
    costs, calibration, _ = rank_compute_costs(scenario, model, gpu)
    costs = _on_the_wire(scenario, costs)
    buckets = _buckets(scenario, costs)
    tensors = bucket_tensor_counts(costs.gradient_bytes, [nbytes for _, nbytes in buckets])
    if strategy_name != "none":  # one GPU launches no synchronization: no framework work to wait for
        buckets = _framework_launch_times(scenario, buckets, tensors)

    inexact, unsupported = _fast_path_plan(scenario, strategy_name)
    forced_fast = scenario.simulation.mode == "fast" and not unsupported
    detailed = scenario.detailed or (inexact is not None and not forced_fast)
    if dedicated:
        servers = cluster.ps_hosts
    else:
        servers = tuple(cluster.hosts[j % c.nodes] for j in range(ps.count))
    context = SyncContext(
        env=env,
        network=network,
        gpus=cluster.gpus,
        detailed=detailed,
        nodes=[cluster.gpus[n * c.gpus_per_node : (n + 1) * c.gpus_per_node] for n in range(c.nodes)],
        comm_intervals=[[] for _ in cluster.gpus],
        node_hosts=cluster.hosts,
        bucket_bytes=[nbytes for _, nbytes in buckets],
        server_hosts=servers if strategy_name == "parameter_server" else (),
        ps_sharding=ps.sharding,
        ps_local_aggregation=ps.local_aggregation,
        ps_sync=ps.sync,
        ps_cores=ps.cores,
        ps_request_s=ps.rpc_us * 1e-6,
        ps_tensor_s=ps.tensor_us * 1e-6,
        bucket_tensors=tensors,
        aggregation_bytes_per_s=ps.aggregation_gbytes_per_s * 1e9,
        server_busy=[[] for _ in range(ps.count)],
    )
    if backend is not None:
        fabric = Fabric(env, network, context.nodes, detailed)
        context.collectives = CollectiveLibrary(
            fabric, backend, gpu.architecture, t.collectives.protocol, t.collectives.max_channels
        )
    if calibration is not None:
        sync = calibration.synchronizer(scenario, strategy_name, context)
    else:
        sync = SYNC_STRATEGIES[strategy_name](context)
    ranks = total_gpus if detailed else 1
    return BuiltSimulation(
        scenario, model, env, cluster, network, costs, buckets, strategy_name, sync, context, detailed,
        [RankTimeline() for _ in range(ranks)],
        RandomStreams(scenario.simulation.seed, replication),
        calibration=calibration,
        fast_path_note=None if scenario.detailed or inexact is None else (
            f"approximate: {inexact} (simulation.mode=fast as set; auto runs the detailed path)" if forced_fast
            else f"not taken: {inexact} (ran detailed)"
        ),
        launch_after_backward=[
            0.0 if strategy_name == "none" else (t.launch_overhead_us + t.negotiation_us_per_tensor * n) * 1e-6
            for n in tensors
        ],
    )


def fast_path_inexact(scenario: Scenario, strategy_name: str | None = None) -> str | None:
    """Why one representative rank cannot stand for every rank of ``scenario``, or None.

    The fast path follows one rank and moves each phase as one bundled flow: exact
    only when every rank sees the same thing. Allreduce strategies always do. Under
    parameter servers ranks differ (so ``simulation.mode: auto`` runs the detailed path) when

    * ``sync`` is ``asp`` or ``ssp``: each push is answered on its own, so workers
      drift apart (the fast path would run them as ``bsp``);
    * servers are colocated and do not spread evenly over the nodes (3 servers on 2
      nodes), or a bucket goes to one server (``round_robin``, ``size_balanced``): then
      some workers' shards stay in their own host and others cross the network;
    * requests cost server CPU time (``rpc_us``, ``tensor_us``) and a server has
      fewer cores than workers talk to it: the requests queue, and workers are answered
      one after another.

    With ``simulation.mode: fast`` set explicitly the first two (a different sync
    semantics, servers missing from some nodes) still run the detailed path; the last
    two run the fast path as asked, marked approximate (see :func:`_fast_path_plan`).
    """
    return _fast_path_plan(scenario, strategy_name)[0]


def _fast_path_plan(scenario: Scenario, strategy_name: str | None = None) -> tuple[str | None, bool]:
    """(why the fast path is not exact or None, whether it must not run even when forced)."""
    t = scenario.training
    name = strategy_name or (t.strategy if scenario.cluster.total_gpus > 1 or t.strategy == "parameter_server" else "none")
    if name != "parameter_server":
        return None, False
    ps, c = t.parameter_servers, scenario.cluster
    if ps.sync != "bsp":
        return f"parameter_servers.sync={ps.sync}: workers are answered one by one and drift apart", True
    if ps.placement == "colocated":
        if ps.count % c.nodes:
            return f"{ps.count} colocated parameter servers do not spread evenly over {c.nodes} nodes", True
        if ps.sharding != "even" and c.nodes > 1:
            return (f"colocated parameter servers with sharding={ps.sharding}: a bucket is local to some "
                    "workers only"), False
    if ps.rpc_us > 0 or ps.tensor_us > 0:
        local = ps.local_aggregation and c.gpus_per_node > 1
        workers = c.nodes if local else c.total_gpus
        if ps.cores < workers:
            return (f"parameter-server requests queue on {ps.cores} core(s) for {workers} workers, "
                    "which are answered one after another"), False
    return None, False


def _buckets(scenario: Scenario, costs: ComputeCosts) -> list[tuple[float, float]]:
    """Gradient buckets as (launch offset from the start of backward, bytes)."""
    t = scenario.training
    cap = t.resolved_bucket_size_mib * MIB
    if t.fusion == "horovod" and t.strategy != "parameter_server":
        return fusion_buckets(costs.gradient_bytes, costs.backward_s, t.fusion_cycle_ms * 1e-3, cap)
    done = np.cumsum(costs.backward_s[::-1])  # backward time to finish layers n-1..i
    last = len(costs.backward_s) - 1
    first = None if t.first_bucket_mib is None else t.first_bucket_mib * MIB
    return [
        (float(done[last - trigger]), nbytes) for trigger, nbytes in gradient_buckets(costs.gradient_bytes, cap, first)
    ]


def _on_the_wire(scenario: Scenario, costs: ComputeCosts) -> ComputeCosts:
    """Gradient bytes in ``training.gradient_precision`` (unchanged when not set)."""
    wire = scenario.training.gradient_precision
    if wire is None:
        return costs
    ratio = PARAMETER_BYTES[wire] / PARAMETER_BYTES[scenario.workload.precision]
    return costs if ratio == 1 else dataclasses.replace(costs, gradient_bytes=costs.gradient_bytes * ratio)


def _framework_launch_times(
    scenario: Scenario, buckets: list[tuple[float, float]], tensors: list[int]
) -> list[tuple[float, float]]:
    """Bucket launch offsets after the framework's own CPU work: one thread handles the
    buckets in order, each taking ``launch_overhead_us`` plus ``negotiation_us_per_tensor``
    per tensor, starting when the bucket's gradients are ready (or the previous bucket
    is handled). Unchanged when both are 0."""
    t = scenario.training
    if t.launch_overhead_us == 0 and t.negotiation_us_per_tensor == 0:
        return buckets
    out, free = [], 0.0
    for (offset, nbytes), n in zip(buckets, tensors):
        free = max(offset, free) + (t.launch_overhead_us + t.negotiation_us_per_tensor * n) * 1e-6
        out.append((free, nbytes))
    return out


def _synchronous_ranks(sim: BuiltSimulation) -> int:
    """How many ranks a synchronous step waits for (1: nobody waits for others)."""
    ps = sim.scenario.training.parameter_servers
    if sim.strategy_name == "none" or (sim.strategy_name == "parameter_server" and ps.sync != "bsp"):
        return 1
    return sim.scenario.cluster.total_gpus


def _slowest_rank_stretch(sim: BuiltSimulation, forward_s: float, backward_s: float) -> float:
    """Fast path: the factor on forward and backward that makes the representative rank
    as late as the slowest of N, whose whole iteration's compute (optimizer step
    included where the GPU runs it) is expected to take ``slowest_of(N, cv)`` times the
    nominal. 1 on the detailed path, which draws every rank's factor instead."""
    cv = sim.scenario.variability.iteration_cv
    if cv == 0 or sim.detailed or forward_s + backward_s <= 0:
        return 1.0
    factor = slowest_of(_synchronous_ranks(sim), cv)
    optimizer_s = 0.0 if sim.strategy_name == "parameter_server" else sim.costs.optimizer_s
    return 1.0 + (factor - 1.0) * (forward_s + backward_s + optimizer_s) / (forward_s + backward_s)


def _input_batch_s(sim: BuiltSimulation, rank: int) -> float:
    """Seconds the input pipeline of ``rank`` needs for one batch (0: synthetic data).

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
    return w.batch_per_gpu * per_sample_ms * 1e-3 * c.gpus_per_node / host


def _computing(sim: BuiltSimulation, rank: int, seconds: float):
    """Process: ``rank`` computes for ``seconds`` (its time alone). Beside a calibrated
    collective on its device it runs slower (:class:`~simulator.calibrated.Overlap`);
    otherwise exactly ``seconds``."""
    overlap = sim.calibration.overlap if sim.calibration is not None else None
    if overlap is None:
        yield sim.env.timeout(seconds)
    else:
        yield from overlap.compute(rank, seconds)


def _rank_process(sim: BuiltSimulation, rank: int):
    """One data-parallel rank: forward, backward emitting buckets, wait, optimizer."""
    env, costs, timeline = sim.env, sim.costs, sim.timelines[rank]
    overlap = sim.scenario.training.overlap
    iterations = sim.scenario.simulation.warmup_iterations + sim.scenario.simulation.iterations
    forward_s = float(costs.forward_s.sum())
    backward_s = float(np.cumsum(costs.backward_s[::-1])[-1])  # summed as the bucket offsets are

    variation = ComputeVariation(sim, rank)
    staleness = sim.staleness_bound()
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
        if rank == 0 and it == sim.scenario.simulation.warmup_iterations:
            sim.edge_bytes_at_window_start = sim.network.edge_bytes()
        timeline.iteration_start.append(env.now)
        if prepare_s > 0:
            # Prefetch of one batch: batch it+1 is prepared once batch it is taken.
            timeline.waiting_for = f"the input pipeline (batch of iteration {it})"
            waited = max(batch_ready - env.now, 0.0)
            if waited > 0:
                yield env.timeout(waited)
            timeline.input_wait_s.append(waited)
            batch_ready = env.now + prepare_s
        timeline.waiting_for = f"forward of iteration {it}"
        slow = variation.iteration_factor()
        computed = forward_s * slow * variation.jitter()
        yield from _computing(sim, rank, computed * stretch)
        extra = computed * (stretch - 1)
        timeline.forward_end.append(env.now)
        timeline.waiting_for = f"backward of iteration {it}"
        pending: list[simpy.Event] = []
        done_s = 0.0  # how far into the (nominal) backward pass this rank is
        for b, (offset, nbytes) in enumerate(sim.buckets):
            compute_to = min(offset, backward_s)
            if compute_to > done_s:
                segment = (compute_to - done_s) * slow * variation.jitter()
                computed += segment
                extra += segment * (stretch - 1)
                yield from _computing(sim, rank, segment * stretch)
                done_s = compute_to
            if done_s == backward_s and len(timeline.backward_end) == it:
                timeline.backward_end.append(env.now - extra)
            if overlap and offset > done_s:
                # Horovod: the next fusion cycle ticks after backward has ended. The
                # wait is the fusion machinery's, so it counts as communication.
                start = env.now
                yield env.timeout(offset - done_s)
                sim.context.comm_intervals[rank].append((start, env.now))
                done_s = offset
            if overlap:
                pending.append(sim.sync.ready(rank, (it, b), nbytes))
        if backward_s > done_s:
            segment = (backward_s - done_s) * slow * variation.jitter()
            computed += segment
            extra += segment * (stretch - 1)
            yield from _computing(sim, rank, segment * stretch)
        if len(timeline.backward_end) == it:
            timeline.backward_end.append(env.now - extra)
        if not overlap:
            pending = []
            for b, (offset, nbytes) in enumerate(sim.buckets):
                launch = sim.launch_after_backward[b]
                if launch > 0:  # the framework's own launch work, one bucket after another
                    start = env.now
                    yield env.timeout(launch)
                    sim.context.comm_intervals[rank].append((start, env.now))
                pending.append(sim.sync.ready(rank, (it, b), nbytes))
        timeline.waiting_for = f"gradient synchronization of iteration {it} ({len(pending)} buckets)"
        yield simpy.AllOf(env, pending)
        timeline.sync_end.append(env.now)
        if sim.strategy_name != "parameter_server":  # servers apply the update themselves
            timeline.waiting_for = f"optimizer step of iteration {it}"
            segment = costs.optimizer_s * slow * variation.jitter()
            computed += segment
            yield from _computing(sim, rank, segment)
        timeline.compute_s.append(computed)
        timeline.iteration_end.append(env.now)
        sim.finished[it] = sim.finished.get(it, 0) + 1
        if sim.finished[it] == len(sim.timelines):
            sim.iteration_finished(it).succeed()
    timeline.waiting_for = "finished"


class ComputeVariation:
    """How much slower than nominal one rank computes: a per-iteration factor (its
    speed factor, times the straggler slowdown when it straggles) and a per-segment
    jitter multiplier. Both are exactly 1 without variability, and draw nothing."""

    def __init__(self, sim: BuiltSimulation, rank: int):
        v = sim.scenario.variability
        self.speed = 1.0 / v.gpu_speed_factors.get(rank, 1.0)
        self.stragglers = v.stragglers
        self.rng = sim.streams.stream(f"rank {rank} compute")
        self.draw = _jitter_sampler(v.jitter.distribution, v.jitter.cv)
        # iteration_cv on the detailed path: one normal factor per rank and iteration,
        # from a stream of its own (the fast path uses the expected slowest instead).
        self.iteration_cv = v.iteration_cv if sim.detailed and sim.scenario.cluster.total_gpus > 1 else 0.0
        self.iteration_rng = sim.streams.stream(f"rank {rank} iteration") if self.iteration_cv > 0 else None

    def iteration_factor(self) -> float:
        p = self.stragglers.probability
        straggling = p > 0 and self.rng.random() < p
        factor = self.speed * (self.stragglers.slowdown if straggling else 1.0)
        if self.iteration_rng is not None:
            factor *= max(0.05, 1.0 + self.iteration_cv * self.iteration_rng.standard_normal())
        return factor

    def jitter(self) -> float:
        return self.draw(self.rng)


def _jitter_sampler(distribution: str, cv: float):
    """A function drawing one multiplier with mean 1 and coefficient of variation cv."""
    if distribution == "none" or cv == 0:
        return lambda rng: 1.0
    if distribution == "normal":
        return lambda rng: max(0.05, 1.0 + cv * rng.standard_normal())
    if distribution == "uniform":
        half = cv * np.sqrt(3.0)
        return lambda rng: rng.uniform(1.0 - half, 1.0 + half)
    sigma = np.sqrt(np.log1p(cv * cv))
    return lambda rng: rng.lognormal(-sigma * sigma / 2, sigma)


def run(sim: BuiltSimulation) -> None:
    """Run phase: advance time until every rank has finished every iteration."""
    processes = [sim.env.process(_rank_process(sim, r)) for r in range(len(sim.timelines))]
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


def simulate(scenario: Scenario, *, with_baseline: bool = True, record_timeline: bool = False) -> SimResult:
    """Simulate a scenario and return its result, speedup included.

    Speedup is measured against the same scenario simulated on one GPU (no gradient
    synchronization), with the same per-GPU batch. ``record_timeline`` (off by default,
    free when off) adds per-rank phases and every flow to ``result.extra["timeline"]``
    (of the first replication). With ``simulation.replications`` > 1 the headline
    metrics are means over independent runs and ``result.replications`` holds each
    metric's mean, standard deviation and 95% confidence interval.
    """
    baseline_throughput = None
    if with_baseline and scenario.cluster.total_gpus > 1:
        baseline = simulate(scenario.single_gpu(), with_baseline=False)
        baseline_throughput = baseline.throughput_samples_per_s
    runs = []
    for replication in range(scenario.simulation.replications):
        sim = build(scenario, replication)
        recorder = TimelineRecorder(sim) if record_timeline and replication == 0 else None
        run(sim)
        result = collect(sim, baseline_throughput)
        runs.append(result if recorder is None else recorder.add_to(result))
    result = runs[0] if len(runs) == 1 else combine_replications(runs)
    if sim.context.collectives is not None:  # the rings and the calls the library chose
        result = dataclasses.replace(result, extra={**result.extra, "collectives": sim.context.collectives.describe()})
    if sim.fast_path_note is not None:  # the fast path was asked for and cannot be exact
        result = dataclasses.replace(result, extra={**result.extra, "fast_path": sim.fast_path_note})
    if sim.calibration is not None:  # which numbers are measured and which estimated
        result = dataclasses.replace(result, extra={**result.extra, "calibration": dict(sim.calibration.report)})
    return result

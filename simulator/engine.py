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
from .compute import (
    ComputeCosts, default_compute_efficiency, fusion_buckets, gradient_buckets, roofline_costs, scaled_to_throughput,
)
from .errors import SimulationError, TopologyError
from .hardware import fabric_params, pcie_link, server_params
from .memory import check_fits
from .network import Network
from .rng import RandomStreams
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


def build(scenario: Scenario, replication: int = 0) -> BuiltSimulation:
    """Build phase: scenario -> graph -> network, compute costs, strategy."""
    c, w, t = scenario.cluster, scenario.workload, scenario.training
    gpu = catalog.get_gpu(c.gpu)
    model = zoo.get_model(w.model, sequence_length=w.sequence_length)
    pcie_bandwidth, pcie_latency = pcie_link(scenario)

    total_gpus = c.total_gpus
    strategy_name = t.strategy if total_gpus > 1 else "none"
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
    network = Network(env, cluster.graph)
    efficiency = w.compute_efficiency or default_compute_efficiency(w.precision)
    costs = roofline_costs(
        model,
        gpu,
        precision=w.precision,
        batch=w.batch_per_gpu,
        compute_efficiency=efficiency,
        memory_efficiency=w.memory_efficiency,
        layer_overhead_s=w.layer_overhead_us * 1e-6,
        optimizer=w.optimizer,
        conv_algorithms=[layer.algorithm for layer in check_fits(scenario).layers],  # refuses what does not fit
    )
    calibration = None
    if scenario.calibration is not None:
        costs, calibration = calibrate_compute(scenario, model, costs, scenario.calibration)
    if w.measured_throughput_samples_per_s is not None:
        costs = scaled_to_throughput(costs, w.batch_per_gpu, w.measured_throughput_samples_per_s)
    buckets = _buckets(scenario, costs)

    detailed = scenario.detailed
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
        aggregation_bytes_per_s=ps.aggregation_gbytes_per_s * 1e9,
        server_busy=[[] for _ in range(ps.count)],
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
    )


def _buckets(scenario: Scenario, costs: ComputeCosts) -> list[tuple[float, float]]:
    """Gradient buckets as (launch offset from the start of backward, bytes)."""
    t = scenario.training
    cap = t.resolved_bucket_size_mib * MIB
    if t.fusion == "horovod" and t.strategy != "parameter_server":
        return fusion_buckets(costs.gradient_bytes, costs.backward_s, t.fusion_cycle_ms * 1e-3, cap)
    done = np.cumsum(costs.backward_s[::-1])  # backward time to finish layers n-1..i
    last = len(costs.backward_s) - 1
    return [(float(done[last - trigger]), nbytes) for trigger, nbytes in gradient_buckets(costs.gradient_bytes, cap)]


def _rank_process(sim: BuiltSimulation, rank: int):
    """One data-parallel rank: forward, backward emitting buckets, wait, optimizer."""
    env, costs, timeline = sim.env, sim.costs, sim.timelines[rank]
    overlap = sim.scenario.training.overlap
    iterations = sim.scenario.simulation.warmup_iterations + sim.scenario.simulation.iterations
    forward_s = float(costs.forward_s.sum())
    backward_s = float(np.cumsum(costs.backward_s[::-1])[-1])  # summed as the bucket offsets are

    variation = ComputeVariation(sim, rank)
    staleness = sim.staleness_bound()
    for it in range(iterations):
        if staleness is not None and it - staleness - 1 >= 0:
            timeline.waiting_for = f"the slowest rank to finish iteration {it - staleness - 1} (ssp)"
            yield sim.iteration_finished(it - staleness - 1)
        if rank == 0 and it == sim.scenario.simulation.warmup_iterations:
            sim.edge_bytes_at_window_start = sim.network.edge_bytes()
        timeline.iteration_start.append(env.now)
        timeline.waiting_for = f"forward of iteration {it}"
        slow = variation.iteration_factor()
        computed = forward_s * slow * variation.jitter()
        yield env.timeout(computed)
        timeline.forward_end.append(env.now)
        timeline.waiting_for = f"backward of iteration {it}"
        pending: list[simpy.Event] = []
        done_s = 0.0  # how far into the (nominal) backward pass this rank is
        for b, (offset, nbytes) in enumerate(sim.buckets):
            compute_to = min(offset, backward_s)
            if compute_to > done_s:
                segment = (compute_to - done_s) * slow * variation.jitter()
                computed += segment
                yield env.timeout(segment)
                done_s = compute_to
            if done_s == backward_s and len(timeline.backward_end) == it:
                timeline.backward_end.append(env.now)
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
            yield env.timeout(segment)
        if len(timeline.backward_end) == it:
            timeline.backward_end.append(env.now)
        if not overlap:
            pending = [sim.sync.ready(rank, (it, b), nbytes) for b, (_, nbytes) in enumerate(sim.buckets)]
        timeline.waiting_for = f"gradient synchronization of iteration {it} ({len(pending)} buckets)"
        yield simpy.AllOf(env, pending)
        timeline.sync_end.append(env.now)
        if sim.strategy_name != "parameter_server":  # servers apply the update themselves
            timeline.waiting_for = f"optimizer step of iteration {it}"
            segment = costs.optimizer_s * slow * variation.jitter()
            computed += segment
            yield env.timeout(segment)
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

    def iteration_factor(self) -> float:
        p = self.stragglers.probability
        straggling = p > 0 and self.rng.random() < p
        return self.speed * (self.stragglers.slowdown if straggling else 1.0)

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
    if sim.calibration is not None:  # which numbers are measured and which estimated
        result = dataclasses.replace(result, extra={**result.extra, "calibration": dict(sim.calibration.report)})
    return result

"""Build phase: a :class:`Scenario` -> its resolved view (:mod:`simulator.resolved`:
GPU and model looked up, units converted, made once), topology graph (from
``topologies``), a flow-level :class:`Network`, per-layer compute costs and gradient
buckets, and a synchronization strategy, wired into a :class:`BuiltSimulation`.
Configuration errors surface here, before the clock starts.
"""

from __future__ import annotations

import dataclasses
import math
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import simpy

from topologies import ClusterGraph, build_cluster
from topologies.cluster import ClusterTooLarge

from . import (
    device_reduce,  # noqa: F401 - registers the device_reduce strategy
    parameter_servers,  # noqa: F401 - registers the parameter_server strategy
    zoo,
)
from .built import MIB, BuiltSimulation, CountingEnvironment, RankTimeline
from .collectives.backend import Backend, get_backend, with_measured
from .collectives.channels import achievable_scale
from .collectives.fabric import Fabric
from .collectives.library import CollectiveLibrary
from .compute import (
    PARAMETER_BYTES,
    ComputeCosts,
    bucket_tensor_counts,
    fusion_buckets,
    fusion_tensors,
    gradient_buckets,
    scaled_to_throughput,
)
from .errors import TopologyError
from .fast_path import _collectives_bundled, _fast_path_plan, _fusion_loop, fast_path_inexact  # noqa: F401
from .gc_policy import gc_paused
from .hardware import fabric_params, server_params
from .input_copy import input_copy_times, without_one_gpu_copy
from .interference import DeviceSharing
from .measured_collectives import measured_allreduce
from .memory import check_fits
from .network import Network
from .resolved import Resolved, resolve, resolved
from .rng import RandomStreams
from .run_budget import graph_budget_message, max_graph_edges
from .scenario import Scenario
from .sync import SYNC_STRATEGIES, SyncContext

if TYPE_CHECKING:  # the calibration machinery (and its profile schema) loads only with a profile
    from .calibrated import Calibration


# One rank's compute costs by (workload, GPU), the most recent first out: the one-GPU
# baseline, replications and a sweep's runs of one workload on other clusters reuse
# them (they depend on nothing else; the arrays are made read-only).
_COSTS: dict[tuple[str, str], tuple[ComputeCosts, tuple[str | None, ...]]] = {}
COSTS_KEPT = 64


def cacheable(scenario: Scenario) -> bool:
    """Whether what a scenario computes depends on it alone, so a process may keep it by
    the scenario's JSON: not where it reads a file (a calibration profile, a model file),
    whose contents may change, or names a model registered from Python (which may be
    registered again under its name)."""
    w = scenario.workload
    return scenario.calibration is None and w.model_file is None and w.model not in zoo.registered_models()


def rank_compute_costs(scenario: Scenario | Resolved) -> tuple[ComputeCosts, Calibration | None, list[str | None]]:
    """One rank's per-layer compute: the layer-time model (or the calibration profile,
    or a measured throughput) at the scenario's batch. Returns the costs, the
    calibration report (None without a profile) and each layer's conv algorithm.
    Refuses, with the numbers, a batch that does not fit the GPU."""
    view = resolved(scenario)
    if not cacheable(view.scenario):  # made afresh
        return _rank_compute_costs(view)
    key = (view.scenario.workload.model_dump_json(), view.scenario.cluster.gpu)
    cached = _COSTS.get(key)
    if cached is None:
        costs, _, chosen = _rank_compute_costs(view)
        for array in (costs.forward_s, costs.backward_s, costs.gradient_bytes):
            array.flags.writeable = False
        cached = _COSTS[key] = (costs, tuple(chosen))
        if len(_COSTS) > COSTS_KEPT:
            del _COSTS[next(iter(_COSTS))]
    return cached[0], None, list(cached[1])


def _rank_compute_costs(view: Resolved) -> tuple[ComputeCosts, Calibration | None, list[str | None]]:
    scenario, w = view.scenario, view.scenario.workload
    chosen = [layer.algorithm for layer in check_fits(view).layers]
    costs = roofline = view.roofline(conv_algorithms=chosen)
    calibration = None
    if scenario.calibration is not None:
        from .calibrated import calibrate_compute

        costs, calibration = calibrate_compute(view, costs, scenario.calibration, chosen)
    if w.measured_throughput_samples_per_s is not None:
        batch, measured_batch = view.batch_per_gpu, w.measured_throughput_batch or view.batch_per_gpu
        if measured_batch == batch:
            costs = scaled_to_throughput(costs, batch, w.measured_throughput_samples_per_s)
        else:  # the measured level at the measured batch, the roofline's ratio between the two batches
            at_measured = view.roofline(measured_batch, conv_algorithms=chosen)
            factor = (measured_batch / w.measured_throughput_samples_per_s) / at_measured.total_s
            costs = scaled_to_throughput(costs, batch, batch / (roofline.total_s * factor))
    return costs, calibration, chosen


def build(scenario: Scenario, replication: int = 0) -> BuiltSimulation:
    """Build phase: scenario -> resolved view -> graph -> network, compute costs, strategy."""
    with gc_paused():  # long-lived objects only: collecting on the way finds nothing
        return _build(resolve(scenario), replication)


def _build(view: Resolved, replication: int) -> BuiltSimulation:
    scenario, gpu = view.scenario, view.gpu
    _ = view.model  # looked up before the topology is built: an unknown model is the error reported
    c, t = scenario.cluster, scenario.training
    strategy_name = view.strategy_name
    ps = t.parameter_servers
    dedicated = ps.count if strategy_name == "parameter_server" and ps.placement == "dedicated" else 0
    try:
        cluster = _shared_cluster(
            nodes=c.nodes,
            gpus_per_node=c.gpus_per_node,
            server_layout=c.server.layout,
            server_params=server_params(view),
            nic_bandwidth=view.nic_bandwidth,
            nic_latency=view.nic_latency,
            fabric=c.fabric.topology,
            fabric_params=fabric_params(scenario),
            dedicated_ps=dedicated,
            ps_nic_bandwidth=view.ps_nic_bandwidth,
            host_pcie_bandwidth=view.pcie_bandwidth,
            host_pcie_latency=view.pcie_latency,
        )
    except (KeyError, ValueError) as exc:
        raise TopologyError(f"cluster: cannot build the topology: {exc}") from None

    env = CountingEnvironment()
    backend = None
    if strategy_name not in ("none", "parameter_server"):
        backend = scenario_backend(view)
    network = Network(env, cluster.graph, None if backend is None else achievable_scale(backend, gpu.architecture))
    costs, calibration, _ = rank_compute_costs(view)
    node_gpus = cluster.gpus[: c.gpus_per_node]  # the first node's, copying its batch from its host (input_copy)
    copy_node_s, copy_one_s = input_copy_times(view, network, cluster.hosts[0], node_gpus)
    costs = _on_the_wire(scenario, without_one_gpu_copy(view, costs, copy_one_s))
    buckets = _buckets(scenario, costs)
    tensors = bucket_tensor_counts(costs.gradient_bytes, [nbytes for _, nbytes in buckets])
    if strategy_name != "none":  # one GPU launches no synchronization: no framework work to wait for
        buckets = _framework_launch_times(scenario, buckets, tensors)

    inexact, unsupported = _fast_path_plan(scenario, strategy_name)
    forced_fast = scenario.simulation.mode == "fast" and not unsupported
    detailed = scenario.detailed or (inexact is not None and not forced_fast)
    per_flow = detailed and not _collectives_bundled(scenario, strategy_name)
    if dedicated:
        servers = cluster.ps_hosts
    else:
        servers = tuple(cluster.hosts[j % c.nodes] for j in range(ps.count))
    context = SyncContext(
        env=env,
        network=network,
        gpus=cluster.gpus,
        detailed=detailed,
        per_flow=per_flow,
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
        ps_transport_bytes_per_s=math.inf if ps.transport_gbytes_s is None else ps.transport_gbytes_s * 1e9,
        ps_connection_bytes_per_s=math.inf if ps.connection_gbps is None else ps.connection_gbps * 1e9 / 8,
        bucket_tensors=tensors,
        aggregation_bytes_per_s=ps.aggregation_gbytes_per_s * 1e9,
        server_busy=[[] for _ in range(ps.count)],
        device_sum_bytes_per_s=gpu.memory_bandwidth_gbytes_s * 1e9 * scenario.workload.memory_efficiency,
    )
    if backend is not None:
        fabric = Fabric(env, network, context.nodes, per_flow)
        context.collectives = CollectiveLibrary(
            fabric, backend, gpu.architecture, t.collectives.protocol, t.collectives.max_channels
        )
    ranks = view.total_gpus if detailed else 1
    if backend is not None and backend.compute_interference > 1.0:
        context.sharing = DeviceSharing(env, ranks, backend.compute_interference)
    if t.collectives.measured is not None and strategy_name != "none":  # the user's nccl-tests run
        sync = measured_allreduce(view, strategy_name, context)
        if calibration is not None:
            calibration.report["communication"] = f"measured: {t.collectives.measured} (training.collectives.measured)"
    elif calibration is not None:  # a calibrated allreduce brings its own (measured) sharing
        sync = calibration.synchronizer(view, strategy_name, context)
    else:
        sync = SYNC_STRATEGIES[strategy_name](context)
    return BuiltSimulation(
        view, env, cluster, network, costs, buckets, sync, context, detailed,
        [RankTimeline() for _ in range(ranks)],
        RandomStreams(scenario.simulation.seed, replication),
        calibration=calibration,
        fast_path_note=None if scenario.detailed or inexact is None else (
            f"approximate: {inexact} (simulation.mode=fast as set; auto runs the detailed path)" if forced_fast
            else f"not taken: {inexact} (ran detailed)"
        ),
        fusion_tensors=fusion_tensors(costs.gradient_bytes, costs.backward_s, release_of(scenario, costs))
        if _fusion_loop(scenario, strategy_name) else None,
        launch_after_backward=[
            0.0 if strategy_name == "none" else (t.launch_overhead_us + t.negotiation_us_per_tensor * n) * 1e-6
            for n in tensors
        ],
        copy_s_per_byte=_copy_s_per_byte(scenario, strategy_name, context.device_sum_bytes_per_s),
        input_copy_s=copy_node_s, input_copy_one_gpu_s=copy_one_s,
    )


#: Strategies whose buckets frameworks pack into flat buffers (parameter servers push each
#: tensor, MXNet's device kvstore reduces each key into its own merge buffer).
_PACKING_STRATEGIES = frozenset({"ring_allreduce", "tree_allreduce", "halving_doubling_allreduce",
                                 "hierarchical_allreduce"})


def _copy_s_per_byte(scenario: Scenario, strategy_name: str, memory_bytes_per_s: float) -> float:
    """Seconds one bucket copy (into the flat buffer, or back out) takes per byte: it reads
    and writes every byte at the GPU's achievable memory bandwidth. 0 where nothing is
    copied (training.bucket_copies off, one GPU, a strategy that does not pack)."""
    if not scenario.training.bucket_copies or strategy_name not in _PACKING_STRATEGIES:
        return 0.0
    return 2.0 / memory_bytes_per_s


# Built clusters by their parameters. Replications of a scenario, the candidates of
# `strategy: auto` and a sweep's runs of one cluster reuse one graph, and with it the
# routes, bundles and max-min solutions found on it (cached per graph, see
# simulator.network). Weak: a cluster lives while a simulation holds it, and the few
# most recently used, if small, stay for the next runs: a sweep's run alternates its
# cluster with its one-GPU baseline, so keeping only the last would rebuild both.
_CLUSTERS: weakref.WeakValueDictionary[tuple[Any, ...], ClusterGraph] = weakref.WeakValueDictionary()
_LAST: list[ClusterGraph] = []  # most recently used first
KEEP_LAST_UP_TO_NODES = 20_000  # graph nodes, all kept clusters together (about 2,000 GPUs in 8-GPU PCIe servers)
KEEP_LAST = 4


def cluster_network(scenario: Scenario | Resolved, env: simpy.Environment) -> tuple[ClusterGraph, Network, Backend]:
    """The scenario's cluster (no parameter servers), its collective library's backend
    and the network at the bandwidths that library achieves: what a job other than
    data parallelism (:mod:`simulator.llm`) runs its transfers and collectives on."""
    view = resolved(scenario)
    scenario = view.scenario
    c = scenario.cluster
    try:
        cluster = _shared_cluster(
            nodes=c.nodes, gpus_per_node=c.gpus_per_node, server_layout=c.server.layout,
            server_params=server_params(view), nic_bandwidth=view.nic_bandwidth, nic_latency=view.nic_latency,
            fabric=c.fabric.topology, fabric_params=fabric_params(scenario), dedicated_ps=0, ps_nic_bandwidth=None,
            host_pcie_bandwidth=view.pcie_bandwidth, host_pcie_latency=view.pcie_latency,
        )
    except (KeyError, ValueError) as exc:
        raise TopologyError(f"cluster: cannot build the topology: {exc}") from None
    backend = scenario_backend(view)
    return cluster, Network(env, cluster.graph, achievable_scale(backend, view.gpu.architecture)), backend


def scenario_backend(view: Resolved) -> Backend:
    """The scenario's collective backend with what ``training.collectives`` sets in place
    of the backend file's figures (:func:`with_measured`)."""
    wanted = view.scenario.training.collectives
    return with_measured(get_backend(wanted.backend), wanted.host_staging_gbytes_s, wanted.network_efficiency,
                         wanted.net_connection_gbps, wanted.compute_interference, view.nic_transport,
                         wanted.p2p_level)


def _shared_cluster(**parameters: Any) -> ClusterGraph:
    """``topologies.build_cluster(**parameters)``, shared with earlier builds of the same
    cluster (graphs are not changed once built)."""
    try:
        key = tuple(sorted((k, tuple(sorted(v.items())) if isinstance(v, Mapping) else v)
                           for k, v in parameters.items()))
        hash(key)
    except TypeError:  # a parameter that cannot key a cache: build afresh
        return _build_cluster(parameters)
    cluster = _CLUSTERS.get(key)
    if cluster is None:
        cluster = _CLUSTERS[key] = _build_cluster(parameters)
    _keep_recent(cluster)
    return cluster


def _build_cluster(parameters: Mapping[str, Any]) -> ClusterGraph:
    """``topologies.build_cluster`` within the graph budget of :mod:`simulator.run_budget`."""
    try:
        return build_cluster(**parameters, max_edges=max_graph_edges())
    except ClusterTooLarge as exc:
        raise TopologyError(graph_budget_message(str(exc))) from None


def _keep_recent(cluster: ClusterGraph) -> None:
    """Hold ``cluster`` first among the recently used, within KEEP_LAST and
    KEEP_LAST_UP_TO_NODES (a cluster over the limit alone is not held)."""
    recent = [cluster] + [c for c in _LAST if c is not cluster]
    kept, nodes = [], 0
    for c in recent[:KEEP_LAST]:
        nodes += c.graph.number_of_nodes()
        if nodes > KEEP_LAST_UP_TO_NODES:
            break
        kept.append(c)
    _LAST[:] = kept


def forget_shared_clusters() -> None:
    """Drop the shared clusters and compute costs: the next build starts cold (for
    benchmarks)."""
    _COSTS.clear()
    _CLUSTERS.clear()
    _LAST.clear()


def _buckets(scenario: Scenario, costs: ComputeCosts) -> list[tuple[float, float]]:
    """Gradient buckets as (launch offset from the start of backward, bytes)."""
    t = scenario.training
    cap = t.resolved_bucket_size_mib * MIB
    if t.fusion.startswith("horovod") and t.strategy != "parameter_server":
        return fusion_buckets(costs.gradient_bytes, costs.backward_s, t.fusion_cycle_ms * 1e-3, cap,
                              release_of(scenario, costs))
    done = np.cumsum(costs.backward_s[::-1])  # backward time to finish layers n-1..i
    last = len(costs.backward_s) - 1
    first = None if t.first_bucket_mib is None else t.first_bucket_mib * MIB
    return released(scenario, costs, [
        (float(done[last - trigger]), nbytes) for trigger, nbytes in gradient_buckets(costs.gradient_bytes, cap, first)
    ])


def released(scenario: Scenario, costs: ComputeCosts, ready: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """(offset, bytes) of gradients ready ``offset`` into backward, moved to when they
    leave it (:func:`release_of`)."""
    release = release_of(scenario, costs)
    return ready if release is None else [(release(offset), nbytes) for offset, nbytes in ready]


def release_of(scenario: Scenario, costs: ComputeCosts) -> Callable[[float], float] | None:
    """When a gradient ready ``offset`` into backward leaves it: under XLA
    (``workload.graph_compiler``) at the next of ``training.xla_release_points`` evenly
    spaced points of backward (the end of the compiled cluster that made it); None
    (as soon as it is ready) otherwise."""
    if scenario.workload.graph_compiler != "xla":
        return None
    total = float(np.sum(costs.backward_s))
    if total <= 0:
        return None
    points = scenario.training.xla_release_points
    step = total / points

    def release(offset: float) -> float:
        k = math.ceil(offset / step * (1 - 1e-12))  # (a gradient ready at a point leaves at it)
        return total if k >= points else k * step

    return release


def _on_the_wire(scenario: Scenario, costs: ComputeCosts) -> ComputeCosts:
    """Gradient bytes in ``training.gradient_precision`` (unchanged when not set)."""
    asked = scenario.training.gradient_precision
    if asked is None:
        return costs
    precision = scenario.workload.precision
    wire: str = asked
    if asked == "compute":  # amp keeps fp32 parameters but computes in fp16; the others compute as stored
        wire = "fp16" if precision == "amp" else precision
    ratio = PARAMETER_BYTES[wire] / PARAMETER_BYTES[precision]
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

"""Gradient synchronization strategies: turn ready gradient buckets into network flows.

A training rank calls :meth:`Synchronizer.ready` when a bucket's gradients are ready
and waits on the returned event, which fires when that rank holds the synchronized
result. Buckets are keyed ``(iteration, bucket)``.

Each strategy has two execution paths over the same network:

* **detailed** - every rank calls ``ready`` and every point-to-point flow is
  simulated (ring: 2(N-1) steps of N flows with their data dependencies);
* **fast** - only a representative rank calls ``ready`` (all ranks are identical),
  and each collective phase is one bundled flow covering every rank's edges, so it
  feels the same contention at a cost independent of N.

Strategies are registered by the names scenario files use.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import simpy

from .collectives import ALLREDUCE_ALGORITHMS, CollectiveLibrary, Fabric, fastest_algorithm
from .interference import DeviceSharing
from .network import Network
from .sharding import shard_assignment

Key = tuple[int, int]  # (iteration, bucket)


@dataclass
class SyncContext:
    """What a strategy needs from the built simulation."""

    env: simpy.Environment
    network: Network
    gpus: Sequence[str]  # endpoint of each rank, ring order
    detailed: bool
    nodes: Sequence[Sequence[str]]  # the same endpoints grouped by node
    comm_intervals: list[list[tuple[float, float]]]  # per rank: when its sync was in flight
    node_hosts: Sequence[str] = ()  # host (CPU) of each node
    bucket_bytes: Sequence[float] = ()  # size of each gradient bucket, in ready order
    server_hosts: Sequence[str] = ()
    aggregation_bytes_per_s: float = 0.0
    server_busy: list[list[tuple[float, float]]] = field(default_factory=list)
    ps_sharding: str = "even"
    ps_local_aggregation: bool = False
    ps_sync: str = "bsp"
    ps_cores: int = 1  # CPU cores of each server (requests and aggregation each hold one)
    ps_request_s: float = 0.0  # server CPU time per request (one push or pull of a bucket piece)
    ps_tensor_s: float = 0.0  # server CPU time per tensor in a request
    ps_transport_bytes_per_s: float = math.inf  # payload bytes per second one request handler moves
    ps_connection_bytes_per_s: float = math.inf  # the most one worker-server connection carries
    bucket_tensors: Sequence[int] = ()  # tensors in each bucket
    # The collective library allreduce strategies run on (None: the plain flow programs).
    collectives: CollectiveLibrary | None = None
    # Whether collectives move every point-to-point flow (None: as ``detailed``). False
    # with ``detailed``: every rank computes on its own (jitter, stragglers, a slow GPU),
    # but an allreduce starts only once every rank is ready, on an idle network, so it
    # runs as the fast path's bundled flows and gives the per-flow answer.
    per_flow: bool | None = None
    # Each rank's device shared by its compute and the collectives on it (None: the
    # collective does not slow compute).
    sharing: DeviceSharing | None = None

    @property
    def flows_detailed(self) -> bool:
        """Whether collectives run every point-to-point flow (else bundled phases)."""
        return self.detailed if self.per_flow is None else self.per_flow


class Synchronizer:
    """Base class; subclasses implement :meth:`ready`."""

    def __init__(self, ctx: SyncContext):
        self.ctx = ctx
        self.env = ctx.env
        self.n = len(ctx.gpus)
        self._events: dict[tuple, simpy.Event] = {}

    def ready(self, rank: int, key: Key, nbytes: float) -> simpy.Event:
        raise NotImplementedError

    def _event(self, *key: object) -> simpy.Event:
        """Get or create the event named ``key``."""
        ev = self._events.get(key)
        if ev is None:
            ev = self._events[key] = self.env.event()
        return ev


SYNC_STRATEGIES: dict[str, Callable[[SyncContext], Synchronizer]] = {}


def register_strategy(name: str) -> Callable:
    def decorator(cls: type[Synchronizer]) -> type[Synchronizer]:
        if name in SYNC_STRATEGIES:
            raise ValueError(f"sync strategy {name!r} is already registered")
        SYNC_STRATEGIES[name] = cls
        return cls

    return decorator


@register_strategy("none")
class NoSync(Synchronizer):
    """One GPU: nothing to synchronize."""

    def ready(self, rank: int, key: Key, nbytes: float) -> simpy.Event:
        return self.env.timeout(0)


class Allreduce(Synchronizer):
    """Allreduce of every bucket over all ranks with one algorithm from
    :mod:`simulator.collectives`.

    Buckets run one at a time, in order, as on NCCL's single communication stream, and
    a bucket starts only when every rank has it ready.
    """

    algorithm = "ring"

    def __init__(self, ctx: SyncContext):
        super().__init__(ctx)
        self._arrived: dict[Key, int] = {}
        self._queue: simpy.Store = simpy.Store(self.env)
        self._fabric = Fabric(self.env, ctx.network, ctx.nodes, ctx.flows_detailed)
        self._auto_choice: dict[float, str] = {}
        self.algorithms_used: dict[str, int] = {}
        self.env.process(self._stream())

    def ready(self, rank: int, key: Key, nbytes: float) -> simpy.Event:
        expected = self.n if self.ctx.detailed else 1
        self._arrived[key] = self._arrived.get(key, 0) + 1
        if self._arrived[key] == expected:
            self._queue.put((key, nbytes))
        return self._event("done", key)

    def choose(self, nbytes: float) -> str:
        return self.algorithm

    def _stream(self):
        while True:
            key, nbytes = yield self._queue.get()
            start = self.env.now
            name = self.choose(nbytes)
            self.algorithms_used[name] = self.algorithms_used.get(name, 0) + 1
            ranks = range(self.n if self.ctx.detailed else 1)
            if self.ctx.sharing is not None:
                self.ctx.sharing.begin(ranks)
            if self.ctx.collectives is not None:
                yield from self.ctx.collectives.run("allreduce", nbytes, name)
            else:
                yield from ALLREDUCE_ALGORITHMS[name](self._fabric, nbytes)
            if self.ctx.sharing is not None:
                self.ctx.sharing.end(ranks)
            for rank in ranks:
                self.ctx.comm_intervals[rank].append((start, self.env.now))
            self._event("done", key).succeed()


def _allreduce_strategy(name: str, algorithm: str, doc: str) -> type[Allreduce]:
    cls = type(f"{algorithm.title().replace('_', '')}Allreduce", (Allreduce,), {"algorithm": algorithm, "__doc__": doc})
    return register_strategy(name)(cls)


_allreduce_strategy("ring_allreduce", "ring", "Flat ring allreduce over all GPUs (reduce-scatter, then all-gather).")
_allreduce_strategy("tree_allreduce", "tree", "Double binary tree allreduce (NCCL trees): log-depth latency.")
_allreduce_strategy(
    "halving_doubling_allreduce", "halving_doubling", "Recursive halving-doubling allreduce (Rabenseifner)."
)
_allreduce_strategy(
    "hierarchical_allreduce",
    "hierarchical",
    "Reduce-scatter inside nodes, allreduce across nodes, all-gather inside nodes (Horovod hierarchical).",
)


@register_strategy("auto")
class AutoAllreduce(Allreduce):
    """Allreduce with, per bucket size, the algorithm the collective library picks
    itself (NCCL: from its own cost model); with a backend that has no cost model
    (``ideal``, ``gloo``), the fastest on this topology."""

    def choose(self, nbytes: float) -> str:
        library = self.ctx.collectives
        if library is not None and library.backend.models_steps:
            return "auto"
        return FastestAllreduce.choose(self, nbytes)


@register_strategy("fastest")
class FastestAllreduce(Allreduce):
    """Allreduce with, per bucket size, the algorithm fastest on this topology in the
    simulator's own model (each simulated alone on an idle copy of the cluster)."""

    def choose(self, nbytes: float) -> str:
        if nbytes not in self._auto_choice:
            self._auto_choice[nbytes] = fastest_algorithm(self._fabric, nbytes)
        return self._auto_choice[nbytes]


@register_strategy("parameter_server")
class ParameterServer(Synchronizer):
    """Parameter servers: workers push gradient shards, servers aggregate and update,
    workers pull the new parameters back.

    * Sharding (which server holds which bytes of a bucket): ``even`` splits every
      bucket over all k servers (MXNet's big-array split); ``round_robin`` gives bucket
      b to server b mod k (TensorFlow's default placement); ``size_balanced`` assigns
      buckets largest first to the least-loaded server (TensorFlow's greedy load
      balancer). With one dominant tensor (VGG-16's fc6) the last two leave one server
      hot.
    * Local aggregation: a node's GPUs first send their gradients to host memory and
      the node pushes once (MXNet's ``local``/``device`` kvstore); the result comes back
      to the host and is copied to every GPU.
    * Sync mode: in ``bsp`` a server waits for every worker's shard, aggregates once
      and sends the result to all; in ``asp``/``ssp`` it applies each worker's push on
      arrival and returns the parameters to that worker alone (the staleness bound of
      ``ssp`` is enforced by the training loop).
    * Aggregation runs on the server's CPU at ``aggregation_bytes_per_s`` of incoming
      gradient per core, one piece per core at a time.
    * Request handling (gRPC / ps-lite): every push a server receives and every pull it
      answers costs ``ps_request_s`` plus ``ps_tensor_s`` per tensor in it plus its
      payload at ``ps_transport_bytes_per_s`` (copies and (de)serialization) of one core,
      after the push has arrived and before the pull is sent. A server has ``ps_cores``
      cores, shared by request handling and aggregation. On the fast path the N
      identical requests a server gets at once are dealt out over its cores, as the
      detailed path's separate requests would be.
    """

    def __init__(self, ctx: SyncContext):
        super().__init__(ctx)
        self.k = len(ctx.server_hosts)
        self.local = ctx.ps_local_aggregation and any(len(node) > 1 for node in ctx.nodes)
        # The endpoints that talk to the servers: GPUs, or one host per node.
        self.workers: list[str] = list(ctx.node_hosts) if self.local else list(ctx.gpus)
        self._node_of = [n for n, node in enumerate(ctx.nodes) for _ in node]
        self._shards = shard_assignment(ctx.bucket_bytes, self.k, ctx.ps_sharding)
        self._counts: dict[tuple, int] = {}
        self._cpus = [simpy.Resource(self.env, capacity=ctx.ps_cores) for _ in range(self.k)]
        self._usage: dict[tuple, tuple] = {}
        self._streams: dict[tuple, simpy.Resource] = {}  # worker-server connections (with a connection cap)

    def ready(self, rank: int, key: Key, nbytes: float) -> simpy.Event:
        start = self.env.now
        done = self._event("done", rank, key)
        done.callbacks.append(lambda _ev: self.ctx.comm_intervals[rank].append((start, self.env.now)))
        shards = [(j, fraction * nbytes) for j, fraction in self._shards[key[1]]]
        if self.ctx.detailed:
            self.env.process(self._rank_sync(rank, key, nbytes, shards))
        else:
            self.env.process(self._bundled(key, nbytes, shards))
        return done

    # -- fast path: identical workers move as bundles ----------------------------------

    def _bundled(self, key: Key, nbytes: float, shards: list[tuple[int, float]]):
        if self.local:
            yield self._bundle_flow("gather", nbytes)
        if self.ctx.ps_sharding == "even":  # identical servers: one bundle for all of them
            yield from self._bundled_server(-1, shards[0][1], key[1])
        else:
            yield simpy.AllOf(
                self.env, [self.env.process(self._bundled_server(j, size, key[1])) for j, size in shards]
            )
        if self.local:
            yield self._bundle_flow("scatter", nbytes)
        self._event("done", 0, key).succeed()

    def _bundled_server(self, server: int, size: float, bucket: int = 0):
        """Push to, aggregate on and pull from one server (-1: every server at once)."""
        yield from self._capped(lambda: self._bundle_flow("push", size, server), size, ("push", -1, server))
        represents = range(self.k) if server < 0 else (server,)
        yield from self._requests(max(server, 0), bucket, len(self.workers), represents, size)
        yield from self._aggregate(max(server, 0), len(self.workers) * size, represents)
        yield from self._requests(max(server, 0), bucket, len(self.workers), represents, size)
        yield from self._capped(lambda: self._bundle_flow("pull", size, server), size, ("pull", -1, server))

    def _bundle_flow(self, phase: str, nbytes: float, server: int = -1) -> simpy.Event:
        """One flow standing for every worker's transfer in ``phase`` (usage built once)."""
        key = (phase, server)
        if key not in self._usage:
            net, gpus, hosts = self.ctx.network, self.ctx.gpus, self.ctx.node_hosts
            if phase == "gather":
                self._usage[key] = net.bundle(tuple((g, hosts[self._node_of[r]]) for r, g in enumerate(gpus)))
            elif phase == "scatter":
                self._usage[key] = net.bundle(tuple((hosts[self._node_of[r]], g) for r, g in enumerate(gpus)))
            else:  # every worker with every server: counted end by end, not pair by pair
                servers = self.ctx.server_hosts if server < 0 else [self.ctx.server_hosts[server]]
                ends = (self.workers, servers) if phase == "push" else (servers, self.workers)
                self._usage[key] = net.bundle_product(*ends)
        usage, latency = self._usage[key]
        return self.ctx.network.start_flow(usage, nbytes, latency, label=phase)

    # -- detailed path: every worker's own flows ---------------------------------------

    def _rank_sync(self, rank: int, key: Key, nbytes: float, shards: list[tuple[int, float]]):
        net, gpu = self.ctx.network, self.ctx.gpus[rank]
        if not self.local:
            yield from self._worker_sync(rank, key, shards)
        else:
            node = self._node_of[rank]
            host = self.ctx.node_hosts[node]
            yield net.transfer(gpu, host, nbytes, label="gather")
            if self._count(("gathered", node, key)) == len(self.ctx.nodes[node]):
                self.env.process(self._worker_sync(node, key, shards))
            yield self._event("node_done", node, key)
            yield net.transfer(host, gpu, nbytes, label="scatter")
        self._event("done", rank, key).succeed()

    def _worker_sync(self, worker: int, key: Key, shards: list[tuple[int, float]]):
        """Push every shard, wait for every pull; then the worker's bucket is done."""
        pulls = []
        for server, size in shards:
            pulls.append(self._event("pulled", worker, server, key))
            self.env.process(self._push(worker, server, key, size))
        yield simpy.AllOf(self.env, pulls)
        if self.local:
            self._event("node_done", worker, key).succeed()

    def _push(self, worker: int, server: int, key: Key, size: float):
        net, host = self.ctx.network, self.ctx.server_hosts[server]
        yield from self._capped(lambda: net.transfer(self.workers[worker], host, size, label=f"push to ps{server}"),
                                size, ("push", worker, server))
        yield from self._requests(server, key[1], 1, nbytes=size)
        if self.ctx.ps_sync != "bsp":  # apply this worker's push alone and answer it
            yield from self._aggregate(server, size)
            yield from self._requests(server, key[1], 1, nbytes=size)
            yield from self._capped(lambda: net.transfer(host, self.workers[worker], size,
                                                         label=f"pull from ps{server}"), size, ("pull", worker, server))
            self._event("pulled", worker, server, key).succeed()
            return
        if self._count(("pushed", server, key)) < len(self.workers):
            return
        yield from self._aggregate(server, len(self.workers) * size)
        if self._request_cost(key[1], size) > 0:
            for w in range(len(self.workers)):
                self.env.process(self._answer_pull(w, server, key, size))
            return
        if math.isfinite(self.ctx.ps_connection_bytes_per_s):  # each pull no faster than its connection
            for w in range(len(self.workers)):
                self.env.process(self._pull(w, server, key, size))
            return
        for w, endpoint in enumerate(self.workers):
            pull = net.transfer(host, endpoint, size, label=f"pull from ps{server}")
            pull.callbacks.append(lambda _ev, w=w: self._event("pulled", w, server, key).succeed())

    def _pull(self, worker: int, server: int, key: Key, size: float):
        host = self.ctx.server_hosts[server]
        yield from self._capped(lambda: self.ctx.network.transfer(host, self.workers[worker], size,
                                                                  label=f"pull from ps{server}"),
                                size, ("pull", worker, server))
        self._event("pulled", worker, server, key).succeed()

    def _answer_pull(self, worker: int, server: int, key: Key, size: float):
        """Handle one worker's pull request, then send it the new parameters."""
        yield from self._requests(server, key[1], 1, nbytes=size)
        host = self.ctx.server_hosts[server]
        yield from self._capped(lambda: self.ctx.network.transfer(host, self.workers[worker], size,
                                                                  label=f"pull from ps{server}"),
                                size, ("pull", worker, server))
        self._event("pulled", worker, server, key).succeed()

    # -- shared -------------------------------------------------------------------------

    def _capped(self, start_transfer: Callable[[], simpy.Event], nbytes: float, connection: tuple):
        """A transfer over one worker-server connection (``(direction, worker, server)``;
        worker -1: the bundle standing for every worker's). Without a connection cap it
        is just the transfer. With one, the connection is one stream (a TCP socket of
        ps-lite/ZeroMQ or gRPC): its transfers go one after another, each taking no
        less than its bytes at the cap. (A floor on the completion, not a cap inside
        max-min: while it runs the flow still takes its fair share of the links, a
        little pessimistic for the flows beside it.)"""
        cap = self.ctx.ps_connection_bytes_per_s
        if not math.isfinite(cap):
            yield start_transfer()
            return
        stream = self._streams.get(connection)
        if stream is None:
            stream = self._streams[connection] = simpy.Resource(self.env, capacity=1)
        with stream.request() as turn:
            yield turn
            start = self.env.now
            yield start_transfer()
            rest = nbytes / cap - (self.env.now - start)
            if rest > 0:
                yield self.env.timeout(rest)

    def _count(self, key: tuple) -> int:
        self._counts[key] = self._counts.get(key, 0) + 1
        return self._counts[key]

    def _requests(self, server: int, bucket: int, count: int, represents: Sequence[int] | None = None,
                  nbytes: float = 0.0):
        """Handle ``count`` simultaneous requests for ``bucket``, each carrying
        ``nbytes``, on the server's cores: each costs ``ps_request_s + ps_tensor_s x
        tensors + nbytes / ps_transport_bytes_per_s`` of one core; they are dealt out
        over the cores (recorded as busy time of every server it ``represents``).
        Free (no event at all) when every cost is 0."""
        cost = self._request_cost(bucket, nbytes)
        if cost <= 0 or count <= 0:
            return
        cores = min(self.ctx.ps_cores, count)
        shares = [count // cores + (1 if c < count % cores else 0) for c in range(cores)]
        if cores == 1:
            yield from self._busy(server, shares[0] * cost, represents)
        else:
            yield simpy.AllOf(self.env, [self.env.process(self._busy(server, n * cost, represents)) for n in shares])

    def _request_cost(self, bucket: int, nbytes: float = 0.0) -> float:
        tensors = self.ctx.bucket_tensors[bucket] if bucket < len(self.ctx.bucket_tensors) else 1
        return self.ctx.ps_request_s + self.ctx.ps_tensor_s * tensors + nbytes / self.ctx.ps_transport_bytes_per_s

    def _busy(self, server: int, seconds: float, represents: Sequence[int] | None = None):
        """Hold one core of the server for ``seconds``."""
        with self._cpus[server].request() as turn:
            yield turn
            start = self.env.now
            yield self.env.timeout(seconds)
            for j in (server,) if represents is None else represents:
                self.ctx.server_busy[j].append((start, self.env.now))

    def _aggregate(self, server: int, nbytes: float, represents: Sequence[int] | None = None):
        """Sum ``nbytes`` of incoming gradient and apply the update on the server CPU
        (recorded as busy time of every server it ``represents``)."""
        with self._cpus[server].request() as turn:
            yield turn
            start = self.env.now
            yield self.env.timeout(nbytes / self.ctx.aggregation_bytes_per_s)
            for j in (server,) if represents is None else represents:
                self.ctx.server_busy[j].append((start, self.env.now))

"""The parameter-server strategy (:class:`ParameterServer`): workers push gradient
shards to servers, servers aggregate and update, workers pull the parameters back.
Registered as ``parameter_server`` with the other strategies of :mod:`simulator.sync`."""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Sequence

import simpy

from .maxmin import EdgeUsage
from .sharding import shard_assignment
from .sync import Key, SyncContext, Synchronizer, register_strategy

Program = Generator[simpy.Event, object, None]


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
        self._counts: dict[tuple[object, ...], int] = {}
        self._cpus = [simpy.Resource(self.env, capacity=ctx.ps_cores) for _ in range(self.k)]
        self._usage: dict[tuple[str, int], tuple[EdgeUsage, float]] = {}
        # worker-server connections (with a connection cap)
        self._streams: dict[tuple[str, int, int], simpy.Resource] = {}

    def ready(self, rank: int, key: Key, nbytes: float) -> simpy.Event:
        done = self._booked(rank, "done", rank, key)
        shards = [(j, fraction * nbytes) for j, fraction in self._shards[key[1]]]
        if self.ctx.detailed:
            self.env.process(self._rank_sync(rank, key, nbytes, shards))
        else:
            self.env.process(self._bundled(key, nbytes, shards))
        return done

    # -- fast path: identical workers move as bundles ----------------------------------

    def _bundled(self, key: Key, nbytes: float, shards: list[tuple[int, float]]) -> Program:
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

    def _bundled_server(self, server: int, size: float, bucket: int = 0) -> Program:
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

    def _rank_sync(self, rank: int, key: Key, nbytes: float, shards: list[tuple[int, float]]) -> Program:
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

    def _worker_sync(self, worker: int, key: Key, shards: list[tuple[int, float]]) -> Program:
        """Push every shard, wait for every pull; then the worker's bucket is done."""
        pulls = []
        for server, size in shards:
            pulls.append(self._event("pulled", worker, server, key))
            self.env.process(self._push(worker, server, key, size))
        yield simpy.AllOf(self.env, pulls)
        if self.local:
            self._event("node_done", worker, key).succeed()

    def _push(self, worker: int, server: int, key: Key, size: float) -> Program:
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

            def pulled(_ev: simpy.Event, w: int = w) -> None:
                self._event("pulled", w, server, key).succeed()

            pull.callbacks.append(pulled)

    def _pull(self, worker: int, server: int, key: Key, size: float) -> Program:
        host = self.ctx.server_hosts[server]
        yield from self._capped(lambda: self.ctx.network.transfer(host, self.workers[worker], size,
                                                                  label=f"pull from ps{server}"),
                                size, ("pull", worker, server))
        self._event("pulled", worker, server, key).succeed()

    def _answer_pull(self, worker: int, server: int, key: Key, size: float) -> Program:
        """Handle one worker's pull request, then send it the new parameters."""
        yield from self._requests(server, key[1], 1, nbytes=size)
        host = self.ctx.server_hosts[server]
        yield from self._capped(lambda: self.ctx.network.transfer(host, self.workers[worker], size,
                                                                  label=f"pull from ps{server}"),
                                size, ("pull", worker, server))
        self._event("pulled", worker, server, key).succeed()

    # -- shared -------------------------------------------------------------------------

    def _capped(self, start_transfer: Callable[[], simpy.Event], nbytes: float,
                connection: tuple[str, int, int]) -> Program:
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

    def _count(self, key: tuple[object, ...]) -> int:
        self._counts[key] = self._counts.get(key, 0) + 1
        return self._counts[key]

    def _requests(self, server: int, bucket: int, count: int, represents: Sequence[int] | None = None,
                  nbytes: float = 0.0) -> Program:
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

    def _busy(self, server: int, seconds: float, represents: Sequence[int] | None = None) -> Program:
        """Hold one core of the server for ``seconds``."""
        with self._cpus[server].request() as turn:
            yield turn
            start = self.env.now
            yield self.env.timeout(seconds)
            for j in (server,) if represents is None else represents:
                self.ctx.server_busy[j].append((start, self.env.now))

    def _aggregate(self, server: int, nbytes: float, represents: Sequence[int] | None = None) -> Program:
        """Sum ``nbytes`` of incoming gradient and apply the update on the server CPU
        (recorded as busy time of every server it ``represents``)."""
        with self._cpus[server].request() as turn:
            yield turn
            start = self.env.now
            yield self.env.timeout(nbytes / self.ctx.aggregation_bytes_per_s)
            for j in (server,) if represents is None else represents:
                self.ctx.server_busy[j].append((start, self.env.now))

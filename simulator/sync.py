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

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import simpy

from .collectives import ALLREDUCE_ALGORITHMS, Fabric, fastest_algorithm
from .network import Network

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
    server_hosts: Sequence[str] = ()
    aggregation_bytes_per_s: float = 0.0
    server_busy: list[list[tuple[float, float]]] = field(default_factory=list)


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
        self._fabric = Fabric(self.env, ctx.network, ctx.nodes, ctx.detailed)
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
            yield from ALLREDUCE_ALGORITHMS[name](self._fabric, nbytes)
            for rank in range(self.n if self.ctx.detailed else 1):
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
    """Allreduce with, per bucket size, the algorithm fastest on this topology."""

    def choose(self, nbytes: float) -> str:
        if nbytes not in self._auto_choice:
            self._auto_choice[nbytes] = fastest_algorithm(self._fabric, nbytes)
        return self._auto_choice[nbytes]


@register_strategy("parameter_server")
class ParameterServer(Synchronizer):
    """Sharded parameter servers: every bucket is split evenly over the k servers.

    Each worker pushes its shard to each server; a server waits for all N workers'
    shards, aggregates them and updates the parameters (at ``aggregation_bytes_per_s``
    of incoming gradient, one bucket at a time), then every worker pulls the new
    shard back. A worker's bucket is done when all k pulls have arrived.
    """

    def __init__(self, ctx: SyncContext):
        super().__init__(ctx)
        self.k = len(ctx.server_hosts)
        self._pushed: dict[tuple[int, Key], int] = {}
        self._pulled: dict[tuple[int, Key], int] = {}
        self._cpus = [simpy.Resource(self.env, capacity=1) for _ in range(self.k)]
        self._all_pairs: dict[bool, tuple] = {}

    def ready(self, rank: int, key: Key, nbytes: float) -> simpy.Event:
        shard = nbytes / self.k
        start = self.env.now
        done = self._event("done", rank, key)
        done.callbacks.append(lambda _ev: self.ctx.comm_intervals[rank].append((start, self.env.now)))
        if self.ctx.detailed:
            for server in range(self.k):
                self.env.process(self._push(rank, server, key, shard))
        else:
            self.env.process(self._bundled(key, shard))
        return done

    def _bundled(self, key: Key, shard: float):
        """Fast path: the servers are identical, so all N x k pushes move as one
        bundle, one representative server aggregates, and all pulls move as one."""
        net = self.ctx.network
        push, push_latency = self._all_pairs_usage(to_servers=True)
        yield net.start_flow(push, shard, push_latency, label="push")
        yield from self._aggregate(0, shard, represents=range(self.k))
        pull, pull_latency = self._all_pairs_usage(to_servers=False)
        yield net.start_flow(pull, shard, pull_latency, label="pull")
        self._event("done", 0, key).succeed()

    def _all_pairs_usage(self, *, to_servers: bool):
        """Usage of every worker-server pair in one direction (built once)."""
        if to_servers not in self._all_pairs:
            gpus, hosts = self.ctx.gpus, self.ctx.server_hosts
            pairs = tuple((g, h) if to_servers else (h, g) for h in hosts for g in gpus)
            self._all_pairs[to_servers] = self.ctx.network.bundle(pairs)
        return self._all_pairs[to_servers]

    def _push(self, rank: int, server: int, key: Key, shard: float):
        host = self.ctx.server_hosts[server]
        yield self.ctx.network.transfer(self.ctx.gpus[rank], host, shard, label=f"push to ps{server}")
        count = self._pushed[server, key] = self._pushed.get((server, key), 0) + 1
        if count == self.n:
            self.env.process(self._aggregate_and_send(server, key, shard))

    def _aggregate(self, server: int, shard: float, represents: Sequence[int]):
        """Sum N shards and apply the update, one bucket at a time per server."""
        with self._cpus[server].request() as turn:
            yield turn
            start = self.env.now
            yield self.env.timeout(self.n * shard / self.ctx.aggregation_bytes_per_s)
            for j in represents:
                self.ctx.server_busy[j].append((start, self.env.now))

    def _aggregate_and_send(self, server: int, key: Key, shard: float):
        yield from self._aggregate(server, shard, represents=(server,))
        host = self.ctx.server_hosts[server]
        for r in range(self.n):
            pull = self.ctx.network.transfer(host, self.ctx.gpus[r], shard, label=f"pull from ps{server}")
            pull.callbacks.append(lambda _ev, r=r: self._pulled_one(r, key))

    def _pulled_one(self, rank: int, key: Key) -> None:
        count = self._pulled[rank, key] = self._pulled.get((rank, key), 0) + 1
        if count == self.k:
            self._event("done", rank, key).succeed()

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

Strategies are registered by the names scenario files use; the parameter-server
strategy lives in :mod:`simulator.parameter_servers` (imported by the build phase,
which registers it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import simpy

from .collectives.algorithms import ALLREDUCE_ALGORITHMS, fastest_algorithm
from .collectives.fabric import Fabric
from .collectives.library import CollectiveLibrary
from .interference import DeviceSharing
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
    device_sum_bytes_per_s: float = 0.0  # device_reduce: the owner GPU's memory bandwidth for its sums
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
        self._events: dict[tuple[object, ...], simpy.Event] = {}

    def ready(self, rank: int, key: Key, nbytes: float) -> simpy.Event:
        raise NotImplementedError

    def _event(self, *key: object) -> simpy.Event:
        """Get or create the event named ``key``."""
        ev = self._events.get(key)
        if ev is None:
            ev = self._events[key] = self.env.event()
        return ev

    def _booked(self, rank: int, *key: object) -> simpy.Event:
        """The event named ``key``, booking ``rank``'s communication from now until it fires."""
        start = self.env.now
        done = self._event(*key)
        done.callbacks.append(lambda _ev: self.ctx.comm_intervals[rank].append((start, self.env.now)))
        return done


SYNC_STRATEGIES: dict[str, Callable[[SyncContext], Synchronizer]] = {}

_S = TypeVar("_S", bound=Synchronizer)


def register_strategy(name: str) -> Callable[[type[_S]], type[_S]]:
    def decorator(cls: type[_S]) -> type[_S]:
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

    def _fastest(self, nbytes: float) -> str:
        """The algorithm fastest on this topology for ``nbytes`` (each simulated alone on
        an idle copy of the cluster), remembered per size."""
        if nbytes not in self._auto_choice:
            self._auto_choice[nbytes] = fastest_algorithm(self._fabric, nbytes)
        return self._auto_choice[nbytes]

    def _stream(self) -> Generator[simpy.Event, Any, None]:
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
        return self._fastest(nbytes)


@register_strategy("fastest")
class FastestAllreduce(Allreduce):
    """Allreduce with, per bucket size, the algorithm fastest on this topology in the
    simulator's own model (each simulated alone on an idle copy of the cluster)."""

    def choose(self, nbytes: float) -> str:
        return self._fastest(nbytes)

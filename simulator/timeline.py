"""Opt-in timeline recorder: what each simulated rank and each link did, and when.

``simulate(scenario, record_timeline=True)`` attaches a :class:`TimelineRecorder` to the
built simulation; with the default (off) nothing here runs. It wraps the network's
``start_flow`` on that one instance to note each flow's start, end, bytes and links, and
reads the ranks' compute phases from their per-iteration timestamps afterwards. The
recording goes into ``SimResult.extra["timeline"]`` as plain data:

* ``iterations``: ``[start, end]`` of each iteration of rank 0;
* ``ranks``: per simulated rank (rank 0 only on the fast path, where every rank is
  identical), intervals of ``forward``, ``backward``, ``sync wait`` and ``optimizer``
  plus ``communication`` (its gradient sync in flight) and ``bucket copy`` (its GPU
  copying gradient buckets into their flat buffers or back out: training.bucket_copies,
  inside backward, sync wait or optimizer), with their iteration;
* ``flows``: ``start`` (when issued, so latency included), ``end``, ``bytes`` (per member
  of a bundle), ``label``, the ``links`` it crossed (``"u->v"``) and ``members``, how
  many members of the bundle cross each of those links (1 for a plain flow);
* ``buckets``: per simulated rank, iteration and gradient bucket: ``ready`` (the
  bucket's gradients are computed and handed to synchronization), ``start`` (its
  collective starts: the single stream reaches it; ``ready`` for parameter servers),
  ``end``, ``bytes`` and ``algorithm``;
* ``servers``: each parameter server's aggregation busy intervals;
* ``links``: capacity (bytes/s per direction) of every link, by name;
* ``scenario``, ``version``, ``strategy``, ``mode``: what was simulated, by which
  clustersim.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, cast

if TYPE_CHECKING:
    import simpy

    from .built import BuiltSimulation
    from .maxmin import EdgeUsage
    from .network import Network
    from .results import SimResult
    from .sync import Key


# The methods the recorder wraps on one synchronizer instance: it assigns them, so they
# are attributes here.
class _SyncHooks(Protocol):
    ready: Callable[[int, Key, float], simpy.Event]


class _ChooseHook(Protocol):
    choose: Callable[[float], str]


def record_flows(network: Network) -> list[dict[str, Any]]:
    """Note every flow ``network`` starts (its flow observer): the list it fills, one
    entry per flow as ``flows`` of the timeline describes."""
    flows: list[dict[str, Any]] = []
    env = network.env
    names = [f"{u}->{v}" for u, v in network.edges]

    def record(usage: EdgeUsage, nbytes: float, latency_s: float, label: str, done: Any) -> None:
        mapping = usage.mapping
        entry = {
            "label": label,
            "start": float(env.now),
            "end": None,
            "bytes": float(nbytes),
            "links": [names[e] for e in sorted(mapping)],
            "members": [int(mapping[e]) for e in sorted(mapping)],
        }
        flows.append(entry)
        done.callbacks.append(lambda _ev: entry.__setitem__("end", float(env.now)))

    network.flow_observer = record
    return flows


def link_capacities(network: Network) -> dict[str, float]:
    """Capacity (bytes/s per direction) of every link, by name ``"u->v"``."""
    return {f"{u}->{v}": float(network.capacity[i]) for i, (u, v) in enumerate(network.edges)}


class TimelineRecorder:
    def __init__(self, sim: BuiltSimulation):
        self.sim = sim
        self.flows = record_flows(sim.network)
        self._record_buckets(sim)

    def _record_buckets(self, sim: BuiltSimulation) -> None:
        """Wrap this simulation's synchronizer: when each rank hands each bucket over,
        when its collective starts (allreduce runs buckets one at a time, in the order
        they became ready on every rank: the n-th ``choose`` is the n-th such bucket)
        and when it is done."""
        self.buckets: list[dict[str, Any]] = []
        sync = cast(_SyncHooks, sim.sync)
        env = sim.env
        ready = sync.ready
        expected = len(sim.timelines)
        arrived: dict[Any, list[dict[str, Any]]] = {}
        queued: list[Any] = []
        default = sim.strategy_name

        def recording_ready(rank: int, key: Key, nbytes: float) -> simpy.Event:
            done = ready(rank, key, nbytes)
            it, bucket = key if isinstance(key, tuple) and len(key) == 2 else (None, key)
            entry = {"rank": rank, "iteration": it, "bucket": bucket, "bytes": float(nbytes), "ready": float(env.now),
                     "start": float(env.now), "end": None, "algorithm": default}
            self.buckets.append(entry)
            arrived.setdefault(key, []).append(entry)
            if len(arrived[key]) == expected:
                queued.append(key)
            done.callbacks.append(lambda _ev: entry.__setitem__("end", float(env.now)))
            return done

        sync.ready = recording_ready
        choose: Callable[[float], str] | None = getattr(sync, "choose", None)
        if choose is not None:
            def recording_choose(nbytes: float) -> str:
                name = choose(nbytes)
                if queued:
                    for entry in arrived.get(queued.pop(0), []):
                        entry["start"], entry["algorithm"] = float(env.now), f"{default}: {name}"
                return name

            cast(_ChooseHook, sync).choose = recording_choose

    def timeline(self) -> dict[str, Any]:
        sim = self.sim
        ranks: list[dict[str, Any]] = []
        for rank, tl in enumerate(sim.timelines):
            intervals: list[dict[str, Any]] = []
            for it, (start, forward_end, back_end, sync_end, end) in enumerate(
                zip(tl.iteration_start, tl.forward_end, tl.backward_end, tl.sync_end, tl.iteration_end)
            ):
                # gradient accumulation: the micro-batches before the last, then its forward
                accumulated = tl.accumulation_end[it] if tl.accumulation_end else start
                for kind, lo, hi in (
                    ("accumulation", start, accumulated),
                    ("forward", accumulated, forward_end),
                    ("backward", forward_end, back_end),
                    ("sync wait", back_end, sync_end),
                    ("optimizer", sync_end, end),
                ):
                    if hi > lo:
                        intervals.append({"kind": kind, "iteration": it, "start": float(lo), "end": float(hi)})
            overlays = (("communication", sim.context.comm_intervals[rank]), ("bucket copy", tl.copy_intervals))
            for kind, spans in overlays:
                for lo, hi in spans:
                    it = _iteration_of(lo, tl.iteration_start)
                    intervals.append({"kind": kind, "iteration": it, "start": float(lo), "end": float(hi)})
            ranks.append({"rank": rank, "gpu": str(sim.cluster.gpus[rank]), "intervals": intervals})
        tl0 = sim.timelines[0]
        network = sim.network
        from ._version import __version__

        return {
            "scenario": sim.scenario.name,
            "version": __version__,
            "strategy": sim.strategy_name,
            "mode": "detailed" if sim.detailed else "fast",
            "links": link_capacities(network),
            "buckets": self.buckets,
            "iterations": [[float(a), float(b)] for a, b in zip(tl0.iteration_start, tl0.iteration_end)],
            "warmup_iterations": sim.resolved.warmup_iterations,
            "ranks": ranks,
            "flows": self.flows,
            "servers": [
                {"server": j, "host": _server_host(sim, j), "busy": [[float(a), float(b)] for a, b in busy]}
                for j, busy in enumerate(sim.context.server_busy)
                if busy
            ],
        }

    def add_to(self, result: SimResult) -> SimResult:
        return dataclasses.replace(result, extra={**result.extra, "timeline": self.timeline()})


def _server_host(sim: BuiltSimulation, j: int) -> str:
    hosts = getattr(sim.context, "server_hosts", ())
    return str(hosts[j]) if j < len(hosts) else f"ps{j}"


def _iteration_of(t: float, starts: list[float]) -> int:
    it = 0
    for i, s in enumerate(starts):
        if s <= t:
            it = i
    return it

"""Opt-in timeline recorder: what each simulated rank and each link did, and when.

``simulate(scenario, record_timeline=True)`` attaches a :class:`TimelineRecorder` to the
built simulation; with the default (off) nothing here runs. It wraps the network's
``start_flow`` on that one instance to note each flow's start, end, bytes and links, and
reads the ranks' compute phases from their per-iteration timestamps afterwards. The
recording goes into ``SimResult.extra["timeline"]`` as plain data:

* ``iterations``: ``[start, end]`` of each iteration of rank 0;
* ``ranks``: per simulated rank (rank 0 only on the fast path, where every rank is
  identical), intervals of ``forward``, ``backward``, ``sync wait`` and ``optimizer``
  plus ``communication`` (its gradient sync in flight), with their iteration;
* ``flows``: ``start`` (when issued, so latency included), ``end``, ``bytes`` (per member
  of a bundle), ``label`` and the ``links`` it crossed (``"u->v"``).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .engine import BuiltSimulation
    from .results import SimResult


class TimelineRecorder:
    def __init__(self, sim: BuiltSimulation):
        self.sim = sim
        self.flows: list[dict[str, Any]] = []
        network = sim.network
        start_flow = network.start_flow
        names = [f"{u}->{v}" for u, v in network.edges]

        def recording_start_flow(usage, nbytes, latency_s, label=""):
            done = start_flow(usage, nbytes, latency_s, label)
            mapping = usage.mapping if hasattr(usage, "mapping") else dict(usage)
            entry = {
                "label": label,
                "start": float(sim.env.now),
                "end": None,
                "bytes": float(nbytes),
                "links": [names[e] for e in sorted(mapping)],
            }
            self.flows.append(entry)
            done.callbacks.append(lambda _ev: entry.__setitem__("end", float(sim.env.now)))
            return done

        network.start_flow = recording_start_flow  # this instance only

    def timeline(self) -> dict[str, Any]:
        sim = self.sim
        ranks = []
        for rank, tl in enumerate(sim.timelines):
            intervals = []
            for it, (start, forward_end, back_end, sync_end, end) in enumerate(
                zip(tl.iteration_start, tl.forward_end, tl.backward_end, tl.sync_end, tl.iteration_end)
            ):
                for kind, lo, hi in (
                    ("forward", start, forward_end),
                    ("backward", forward_end, back_end),
                    ("sync wait", back_end, sync_end),
                    ("optimizer", sync_end, end),
                ):
                    if hi > lo:
                        intervals.append({"kind": kind, "iteration": it, "start": float(lo), "end": float(hi)})
            for lo, hi in sim.context.comm_intervals[rank]:
                it = _iteration_of(lo, tl.iteration_start)
                intervals.append({"kind": "communication", "iteration": it, "start": float(lo), "end": float(hi)})
            ranks.append({"rank": rank, "gpu": str(sim.cluster.gpus[rank]), "intervals": intervals})
        tl0 = sim.timelines[0]
        return {
            "iterations": [[float(a), float(b)] for a, b in zip(tl0.iteration_start, tl0.iteration_end)],
            "warmup_iterations": sim.scenario.simulation.warmup_iterations,
            "ranks": ranks,
            "flows": self.flows,
            "servers": [
                {"server": j, "busy": [[float(a), float(b)] for a, b in busy]}
                for j, busy in enumerate(sim.context.server_busy)
                if busy
            ],
        }

    def add_to(self, result: SimResult) -> SimResult:
        return dataclasses.replace(result, extra={**result.extra, "timeline": self.timeline()})


def _iteration_of(t: float, starts: list[float]) -> int:
    it = 0
    for i, s in enumerate(starts):
        if s <= t:
            it = i
    return it

"""One member of a ring on the detailed path (:func:`simulator.collectives.fabric.ring_steps`).

Its own module so that it can be compiled with the rest of the engine core
(:mod:`simulator.compiled`): it runs once for every flow of a detailed ring.
"""

from __future__ import annotations

from typing import Any

import simpy
from simpy.events import URGENT

from ..event_loop import Signal, trigger_now
from ..network import EdgeUsage, Network


class RingMember:
    """One member of a ring on the detailed path: sends step k once its step k-1 has
    arrived and its own step k-1 is through, then tells its successor.

    Callbacks on the flows' events rather than a SimPy process: the same flows started
    in the same order and the same events scheduled in the same order as the process

        for k in range(steps):
            if k > 0:
                yield mine[k - 1]
            yield net.start_flow(usage, chunk, latency, label=labels[k])
            successors[k].succeed()

    would (started by an urgent event as a process is, done with an event as a process
    ends), without resuming a generator for every flow."""

    __slots__ = ("net", "usage", "chunk", "latency", "labels", "mine", "successors", "k", "finished")

    def __init__(self, net: Network, usage: EdgeUsage, chunk: float, latency: float, labels: list[str],
                 mine: list[Signal], successors: list[Signal]):
        self.net, self.usage, self.chunk, self.latency, self.labels = net, usage, chunk, latency, labels
        self.mine, self.successors, self.k = mine, successors, 0
        env = net.env
        self.finished = simpy.Event(env)
        start = simpy.Event(env)  # (as a process's Initialize: urgent, already ok)
        start._ok, start._value, start.callbacks = True, None, [self.start]
        env.schedule(start, URGENT)

    def start(self, _event: Any) -> None:
        k = self.k
        done = self.net.start_signalled_flow(self.usage, self.chunk, self.latency, self.labels[k])
        callbacks = done.callbacks
        assert callbacks is not None  # (just made)
        callbacks.append(self.sent)

    def sent(self, _event: Any) -> None:
        k = self.k
        trigger_now(self.net.env, self.successors[k])  # (triggered here alone: succeed()'s checks left out)
        k = self.k = k + 1
        if k == len(self.labels):
            self.finished.succeed()
            return
        arrived = self.mine[k - 1]
        callbacks = arrived.callbacks
        if callbacks is None:  # (processed already: a process would go on at once)
            self.start(arrived)
        else:
            callbacks.append(self.start)

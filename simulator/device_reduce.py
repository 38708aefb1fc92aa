"""MXNet's single-machine kvstore ``device`` (:class:`DeviceReduce`, strategy
``device_reduce``): every gradient array is summed on one GPU and copied back.

What MXNet's ``CommDevice`` does (src/kvstore/comm.h, 2016-2019): each key (parameter
array) gets a merge buffer on one GPU, its owner, placed when the keys are first
initialised: keys largest first, each onto the GPU with the fewest bytes so far. A push
copies every GPU's gradient of that key into the owner (peer to peer where the GPUs can,
through host memory where not), the owner sums them and applies the update, and a pull
copies the new array back to every GPU. Keys go as soon as their gradients are ready and
run side by side, sharing the links.

So the bytes per GPU link are those of a ring allreduce on average, but one big array
(AlexNet's and VGG's first fully connected layer, 100-400 MB) lands whole on one GPU:
its (N-1) incoming and (N-1) outgoing copies all cross that GPU's own PCIe link. An
NCCL ring spreads the same array over every link. Held against MXNet's own
p2.16xlarge runs (dev set, source ``MXNet-README-P2``: 16-GPU AlexNet at 0.58 scaling
efficiency) it does not by itself reproduce the loss: the owner's copies stay hidden
under backward in the model (docs/accuracy-journal.md, 2026-12-04).

Closed form for one key of S bytes on N GPUs whose owner link moves B bytes/s each way,
alone on the network: 2 (N - 1) S / B plus two flow latencies plus the sum
(N S read and S written at the owner's memory bandwidth).
"""

from __future__ import annotations

from collections.abc import Callable, Generator

import simpy

from .maxmin import EdgeUsage
from .sharding import shard_assignment
from .sync import Key, SyncContext, Synchronizer, register_strategy

Program = Generator[simpy.Event, object, None]


@register_strategy("device_reduce")
class DeviceReduce(Synchronizer):
    """Per bucket: copy every GPU's gradient to the bucket's owner GPU, sum there,
    copy the result back to every GPU (MXNet kvstore ``device``). One node only.

    Owners: buckets largest first onto the GPU with the fewest bytes so far (MXNet's
    merge-buffer placement). The owner's own copy costs nothing. On the fast path the
    N-1 incoming copies are one bundled flow (they advance together into the owner's
    link), as are the outgoing ones; on the per-flow path each rank's copy starts when
    that rank has the gradient and the owner sums once all have arrived."""

    def __init__(self, ctx: SyncContext):
        super().__init__(ctx)
        if len(ctx.nodes) != 1:
            raise ValueError("device_reduce runs inside one node (MXNet kvstore 'device')")
        self._owner = [pieces[0][0] for pieces in shard_assignment(ctx.bucket_bytes, self.n, "size_balanced")]
        self._arrived: dict[Key, int] = {}
        self._usage: dict[tuple[str, int], tuple[EdgeUsage, float]] = {}

    def owner(self, bucket: int) -> int:
        """Rank whose GPU sums ``bucket``."""
        return self._owner[bucket]

    def ready(self, rank: int, key: Key, nbytes: float) -> simpy.Event:
        if self.ctx.detailed and self.ctx.flows_detailed:
            done = self._booked(rank, "done", rank, key)
            self.env.process(self._rank_push(rank, key, nbytes))
            return done
        # fast path, or every rank computing on its own but the copies bundled: go when all are ready
        done = self._booked(rank, "done", key)
        expected = self.n if self.ctx.detailed else 1
        self._arrived[key] = self._arrived.get(key, 0) + 1
        if self._arrived[key] == expected:
            self.env.process(self._bundled(key, nbytes))
        return done

    def _bundled(self, key: Key, nbytes: float) -> Program:
        if self.n > 1:
            yield self._bundle_flow("reduce", key[1], nbytes)
            yield from self._sum(nbytes)
            yield self._bundle_flow("broadcast", key[1], nbytes)
        self._event("done", key).succeed()

    def _bundle_flow(self, phase: str, bucket: int, nbytes: float) -> simpy.Event:
        owner = self.owner(bucket)
        cache = (phase, owner)
        if cache not in self._usage:
            gpus, root = self.ctx.gpus, self.ctx.gpus[owner]
            others = [g for r, g in enumerate(gpus) if r != owner]
            pairs = tuple((g, root) for g in others) if phase == "reduce" else tuple((root, g) for g in others)
            self._usage[cache] = self.ctx.network.bundle(pairs)
        usage, latency = self._usage[cache]
        return self.ctx.network.start_flow(usage, nbytes, latency, label=phase)

    def _sum(self, nbytes: float) -> Program:
        """The owner reads the N copies and writes the sum (its memory bandwidth)."""
        rate = self.ctx.device_sum_bytes_per_s
        if rate > 0:
            yield self.env.timeout((self.n + 1) * nbytes / rate)

    def _rank_push(self, rank: int, key: Key, nbytes: float) -> Program:
        owner = self.owner(key[1])
        gpus = self.ctx.gpus
        if rank != owner:
            yield self.ctx.network.transfer(gpus[rank], gpus[owner], nbytes, label="reduce")
        self._arrived[key] = self._arrived.get(key, 0) + 1
        if self._arrived[key] == self.n:
            self.env.process(self._owner_broadcast(key, nbytes))

    def _owner_broadcast(self, key: Key, nbytes: float) -> Program:
        owner = self.owner(key[1])
        gpus = self.ctx.gpus
        yield from self._sum(nbytes)
        self._event("done", owner, key).succeed()
        for rank in range(self.n):
            if rank == owner:
                continue
            copy = self.ctx.network.transfer(gpus[owner], gpus[rank], nbytes, label="broadcast")
            copy.callbacks.append(self._done_callback(rank, key))

    def _done_callback(self, rank: int, key: Key) -> Callable[[simpy.Event], None]:
        """Fires ``rank``'s done event when its copy of the result has arrived."""

        def arrived(_ev: simpy.Event) -> None:
            self._event("done", rank, key).succeed()

        return arrived

"""The host issuing kernels as a bound of its own (``workload.host_dispatch_us``).

The layer-time model charges every kernel ``layer_overhead_us`` on the GPU and runs them
back to back. When the batch is small the GPU finishes kernels faster than the
framework's host thread can issue them (its dispatcher, shape checks, library calls and
the launch itself), and the host sets the pace: small batches come out latency-bound.

The pipeline: the host issues one kernel every ``host_dispatch`` seconds; the GPU runs the
kernels in order and cannot start one before it is issued. One iteration's layers are
taken in the order they run (forward in layer order, backward in reverse, then the
optimizer step), host and GPU starting together, as they do in a framework that reads the
loss or a metric on the host every iteration (MXNet's ``Module.fit`` metric, PyTorch's
``loss.item()``, a TensorFlow ``session.run``). A layer of ``k`` kernels whose GPU time is
``w`` (its work plus ``k`` launch overheads) ends at

    max(end of the previous layer + w, host issue of its last kernel + w / k)

so each layer's time is the gap between its end and the previous one's: with the host
ahead it is ``w``, and the costs are those of the shipped model; with the host behind, the
iteration takes its issue time plus the last kernel's. Layers with no kernel of their own
(fused into a neighbour) add their time on the GPU. This is the pipeline a queue of
asynchronous launches makes; nothing here is fitted (``benchmarks/small_batch_dispatch.py``
holds it against MXNet's batch-1-to-128 tables).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .compute import ComputeCosts

#: The overhead step that counts each layer's kernels: the layer-time model charges the
#: per-kernel overhead linearly (kernels x overhead), so costs one microsecond apart in
#: that overhead differ by one microsecond per kernel.
COUNTING_STEP_S = 1e-6


def kernel_counts(costs: ComputeCosts, one_us_more: ComputeCosts) -> tuple[np.ndarray, np.ndarray, int]:
    """(forward, backward, optimizer) kernels per layer, from the same costs computed with
    the per-kernel overhead one microsecond higher."""
    forward = np.rint((one_us_more.forward_s - costs.forward_s) / COUNTING_STEP_S)
    backward = np.rint((one_us_more.backward_s - costs.backward_s) / COUNTING_STEP_S)
    optimizer = int(round((one_us_more.optimizer_s - costs.optimizer_s) / COUNTING_STEP_S))
    return forward, backward, optimizer


def pipelined(costs: ComputeCosts, kernels: tuple[np.ndarray, np.ndarray, int], host_dispatch_s: float) -> ComputeCosts:
    """``costs`` with the host issuing a kernel every ``host_dispatch_s`` (module docstring):
    each layer's time becomes the gap between its end and the previous layer's."""
    forward_k, backward_k, optimizer_k = kernels
    forward = costs.forward_s.copy()
    backward = costs.backward_s.copy()
    host = gpu_end = 0.0

    def advance(seconds: float, count: float) -> float:
        nonlocal host, gpu_end
        start = gpu_end
        if count > 0:
            host += count * host_dispatch_s
            gpu_end = max(gpu_end + seconds, host + seconds / count)
        else:
            gpu_end += seconds
        return gpu_end - start

    for i in range(len(forward)):
        forward[i] = advance(float(costs.forward_s[i]), float(forward_k[i]))
    for i in reversed(range(len(backward))):
        backward[i] = advance(float(costs.backward_s[i]), float(backward_k[i]))
    optimizer = advance(costs.optimizer_s, optimizer_k)
    return dataclasses.replace(costs, forward_s=forward, backward_s=backward, optimizer_s=optimizer)

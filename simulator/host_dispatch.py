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
ahead it is ``w`` (only the first kernel waits for its issue), as without a host bound;
with the host behind, the iteration takes its issue time plus the last kernel's. Layers
with no kernel of their own (fused into a neighbour) add their time on the GPU. This is the
pipeline a queue of asynchronous launches makes; the default cost per kernel (50 us,
``workload.host_dispatch_us``) and what it was held against are in the README, "Small
batches" (``benchmarks/small_batch_dispatch.py``).
"""

from __future__ import annotations

import numpy as np

#: The overhead step that counts each layer's kernels: the layer-time model charges the
#: per-kernel overhead linearly (kernels x overhead), so costs one microsecond apart in
#: that overhead differ by one microsecond per kernel.
COUNTING_STEP_S = 1e-6

#: One iteration's costs as (forward per layer, backward per layer, optimizer step), seconds.
StepCosts = tuple[np.ndarray, np.ndarray, float]
#: Kernels launched: (forward per layer, backward per layer, optimizer step).
KernelCounts = tuple[np.ndarray, np.ndarray, int]


def kernel_counts(costs: StepCosts, one_us_more: StepCosts) -> KernelCounts:
    """Kernels per layer and in the optimizer step, from the same costs computed with the
    per-kernel overhead one microsecond higher."""
    forward = np.rint((one_us_more[0] - costs[0]) / COUNTING_STEP_S)
    backward = np.rint((one_us_more[1] - costs[1]) / COUNTING_STEP_S)
    optimizer = int(round((one_us_more[2] - costs[2]) / COUNTING_STEP_S))
    return forward, backward, optimizer


def pipelined(costs: StepCosts, kernels: KernelCounts, host_dispatch_s: float) -> StepCosts:
    """``costs`` with the host issuing a kernel every ``host_dispatch_s`` (module docstring):
    each layer's time becomes the gap between its end and the previous layer's."""
    forward_s, backward_s, optimizer_s = costs
    forward_k, backward_k, optimizer_k = kernels
    forward = forward_s.copy()
    backward = backward_s.copy()
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
        forward[i] = advance(float(forward_s[i]), float(forward_k[i]))
    for i in reversed(range(len(backward))):
        backward[i] = advance(float(backward_s[i]), float(backward_k[i]))
    return forward, backward, advance(optimizer_s, optimizer_k)

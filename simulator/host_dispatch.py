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

**An engine that waits** (``workload.host_sync_layers`` N > 0): MXNet's engine runs each
operator, or each bulk segment of operators, as one task that ends by waiting for the GPU
to finish (``stream->Wait()`` after the segment's launches), so the host cannot issue the
next segment's kernels while the GPU still runs the last one's. After every N layers of
the forward and backward pass (those that launch kernels) the host's clock jumps to the
GPU's (host = max(host, GPU end)); the optimizer step's kernels are separate operators
(per-weight updates pushed one by one), each waited on, so each costs its issue plus its
GPU time: the step ends at ``max(host, GPU end) + kernels x host_dispatch + its GPU
time``. With N = 1 and one kernel per layer every layer costs ``host_dispatch + w``: host
and GPU add up instead of overlapping.
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


def pipelined(costs: StepCosts, kernels: KernelCounts, host_dispatch_s: float, sync_layers: int = 0) -> StepCosts:
    """``costs`` with the host issuing a kernel every ``host_dispatch_s`` (module docstring):
    each layer's time becomes the gap between its end and the previous layer's.
    ``sync_layers`` > 0: the host waits for the GPU after every that many layers (those
    that launch kernels) and after each kernel of the optimizer step."""
    forward_s, backward_s, optimizer_s = costs
    forward_k, backward_k, optimizer_k = kernels
    forward = forward_s.copy()
    backward = backward_s.copy()
    host = gpu_end = 0.0
    since_sync = 0

    def advance(seconds: float, count: float) -> float:
        nonlocal host, gpu_end, since_sync
        start = gpu_end
        if count > 0:
            host += count * host_dispatch_s
            gpu_end = max(gpu_end + seconds, host + seconds / count)
            since_sync += 1
            if sync_layers and since_sync == sync_layers:
                host, since_sync = max(host, gpu_end), 0
        else:
            gpu_end += seconds
        return gpu_end - start

    for i in range(len(forward)):
        forward[i] = advance(float(forward_s[i]), float(forward_k[i]))
    for i in reversed(range(len(backward))):
        backward[i] = advance(float(backward_s[i]), float(backward_k[i]))
    if sync_layers and optimizer_k > 0:
        start = gpu_end
        gpu_end = max(host, gpu_end) + optimizer_k * host_dispatch_s + optimizer_s
        return forward, backward, gpu_end - start
    return forward, backward, advance(optimizer_s, optimizer_k)

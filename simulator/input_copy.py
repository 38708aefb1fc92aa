"""The batch's trip from host memory to the GPUs when nothing hides it
(``workload.input_copy: exposed``).

Some stacks keep the batch in host memory and copy it into each GPU's input buffer at
the start of every step, into the same buffer the previous step read: the first layer's
backward reads that buffer (its weight gradient needs the input), so the next batch
cannot land before backward has ended, and forward cannot start before it has landed.
MXNet's Module API of 2016-17 did this (``DataParallelExecutorGroup`` copies each GPU's
slice of the CPU batch into the executor's data array; the engine orders the copy after
every reader of the array). Stacks that make the batch on the GPU (synthetic data in
tf_cnn_benchmarks and NVIDIA's examples) or prefetch it into a second buffer while the
GPU computes (``tf.data`` ``prefetch_to_device``, PyTorch's pinned ``DataLoader``, DALI)
hide it: ``hidden``, the default.

All GPUs of a node copy at once from their node's host memory (the socket-0 CPU node,
where the process that made the batch allocated it), over the server's PCIe tree and,
for GPUs of another socket, the socket link: the copy takes as long as its most shared
link allows (the links' achievable bandwidths), the same closed form as a collective's
bundle. It runs while the links are otherwise idle (after the previous step's
synchronization), so it is charged as its own time, not as a flow among others.
"""

from __future__ import annotations

from collections.abc import Sequence

from .compute import ComputeCosts, scaled_to_throughput
from .errors import ScenarioError
from .memory import input_bytes_per_sample
from .network import Network
from .resolved import Resolved
from .route import Node


def bundle_seconds(network: Network, host: Node, gpus: Sequence[Node], nbytes: float) -> float:
    """Seconds to copy ``nbytes`` from ``host`` to every one of ``gpus`` at once: the
    bytes at the rate of the most loaded link (its bulk-transfer bandwidth, the
    catalog's, over the copies crossing it), plus the slowest route's latency. A copy
    engine's memcpy, not a collective: the collective library's achievable fractions
    (the network's scaled capacities) do not apply."""
    usage, latency = network.bundle(tuple((host, gpu) for gpu in gpus))
    if not usage.edges:
        return 0.0
    pairs, graph = network.links.edges, network.structure
    rate = min(float(graph.edges[pairs[e]]["bandwidth"]) / m for e, m in zip(usage.edges, usage.weights))
    return nbytes / rate + latency


def input_copy_seconds(view: Resolved, network: Network, host: Node, gpus: Sequence[Node]) -> float:
    """Exposed seconds per iteration (every micro-batch's copy) on each GPU of a node
    whose ``gpus`` copy from ``host``; 0 unless ``workload.input_copy`` is ``exposed``."""
    s = view.scenario
    if s.workload.input_copy != "exposed":
        return 0.0
    nbytes = view.batch_per_gpu * input_bytes_per_sample(view.model, s.workload.precision)
    return s.training.gradient_accumulation_steps * bundle_seconds(network, host, gpus, nbytes)


def input_copy_times(view: Resolved, network: Network, host: Node, gpus: Sequence[Node]) -> tuple[float, float]:
    """(a node's GPUs copying at once, one GPU alone as the one-GPU job copies: what
    scaling does not lose), exposed seconds per iteration."""
    return input_copy_seconds(view, network, host, gpus), input_copy_seconds(view, network, host, gpus[:1])


def without_one_gpu_copy(view: Resolved, costs: ComputeCosts, one_gpu_copy_s: float) -> ComputeCosts:
    """Compute costs scaled to a measured one-GPU throughput that included one GPU's
    exposed copy (``one_gpu_copy_s`` per iteration, :func:`input_copy_times`;
    ``workload.measured_throughput_samples_per_s``): the compute is the measured step
    less that copy, so the simulated one-GPU job still runs at the measured rate."""
    w = view.scenario.workload
    if one_gpu_copy_s == 0 or w.measured_throughput_samples_per_s is None:
        return costs
    one_gpu = one_gpu_copy_s / view.scenario.training.gradient_accumulation_steps  # one micro-batch's
    compute_s = costs.total_s - one_gpu
    if compute_s <= 0:
        raise ScenarioError(
            f"workload.input_copy: exposed: copying one GPU's batch takes {one_gpu:.3g} s, as long as or longer "
            f"than the measured one-GPU step ({costs.total_s:.3g} s at "
            f"workload.measured_throughput_samples_per_s); the copy cannot have been exposed")
    return scaled_to_throughput(costs, view.batch_per_gpu, view.batch_per_gpu / compute_s)

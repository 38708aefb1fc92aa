"""Compute model: per-layer forward and backward time on one GPU (roofline).

Without a calibration profile a layer's time is

    overhead + max(flops / (peak x compute_efficiency), bytes / (bandwidth x memory_efficiency))

with ``peak`` the GPU's dense peak for the precision on matrix layers (conv, linear,
attention; tensor cores where the precision uses them) and the fp32 peak on
elementwise layers, whose arithmetic does not run on tensor cores.

Backward costs twice the forward arithmetic on layers with weights (gradient with
respect to the input and to the weights) except the first such layer, whose input
gradient nobody needs; one forward's worth on the rest. It reads and writes about
twice the forward's activations, and reads weights and writes their gradients.

The default compute efficiency is 0.70 on CUDA cores (fp32) and 0.40 on tensor cores
(tf32, fp16, bf16, amp). These minimize the median error over the 92 one-GPU points of
the published measurements (``benchmarks/accuracy_single_gpu.py``; see
``benchmarks/README.md`` for the figures and the scatter behind them). Matrix layers
never run slower than they would on CUDA cores, so a card whose tensor-core peak is
low (tf32 on an RTX 3090 equals its fp32 peak) is not penalized for using them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from . import algorithms
from .catalog import GPUSpec
from .zoo import Model

MATRIX_KINDS = frozenset({"conv", "linear", "attention"})
TENSOR_CORE_PRECISIONS = frozenset({"tf32", "fp16", "bf16", "amp"})
DEFAULT_EFFICIENCY = {"cuda_cores": 0.70, "tensor_cores": 0.40}

# Bytes per activation element and per weight/gradient element, by precision.
# amp keeps fp32 master weights and fp32 gradients (PyTorch autocast + GradScaler).
ACTIVATION_BYTES = {"fp32": 4, "tf32": 4, "fp16": 2, "bf16": 2, "amp": 2}
PARAMETER_BYTES = {"fp32": 4, "tf32": 4, "fp16": 2, "bf16": 2, "amp": 4}

# Bytes of optimizer-state traffic per parameter and fp32 word: (reads + writes).
# sgd: read w, g; write w. momentum: + read/write m. adam: + read/write m and v.
OPTIMIZER_WORDS = {"sgd": 3, "momentum": 5, "adam": 7}


def default_compute_efficiency(precision: str) -> float:
    key = "tensor_cores" if precision in TENSOR_CORE_PRECISIONS else "cuda_cores"
    return DEFAULT_EFFICIENCY[key]


@dataclass(frozen=True)
class ComputeCosts:
    """Per-layer times (seconds) for one iteration of one rank, forward order."""

    forward_s: np.ndarray
    backward_s: np.ndarray
    optimizer_s: float
    gradient_bytes: np.ndarray  # bytes of gradient each layer produces (0 if no params)

    @property
    def total_s(self) -> float:
        return float(self.forward_s.sum() + self.backward_s.sum() + self.optimizer_s)


def roofline_costs(
    model: Model,
    gpu: GPUSpec,
    *,
    precision: str,
    batch: int,
    compute_efficiency: float,
    memory_efficiency: float,
    layer_overhead_s: float,
    optimizer: str,
    conv_algorithms: Sequence[str | None] | None = None,
) -> ComputeCosts:
    """Roofline estimate of every layer's forward and backward time.

    ``conv_algorithms`` names, per layer in forward order, the convolution algorithm
    of each conv layer (:mod:`simulator.algorithms`); its time factor scales the
    layer's arithmetic time, and FFT/Winograd run at the fp32 (CUDA-core) peak. None,
    or implicit GEMM everywhere, is the plain roofline."""
    scalar_flops_s = gpu.peak_flops("fp32") * compute_efficiency
    matrix_flops_s = max(gpu.peak_flops(precision) * compute_efficiency, scalar_flops_s)
    bytes_s = gpu.memory_bandwidth_gbytes_s * 1e9 * memory_efficiency
    act_bytes = ACTIVATION_BYTES[precision]
    par_bytes = PARAMETER_BYTES[precision]

    n = len(model.layers)
    forward = np.empty(n)
    backward = np.empty(n)
    grads = np.zeros(n)
    first_weighted = next((i for i, layer in enumerate(model.layers) if layer.params > 0), -1)
    for i, layer in enumerate(model.layers):
        flops_s = matrix_flops_s if layer.kind in MATRIX_KINDS else scalar_flops_s
        algorithm = conv_algorithms[i] if conv_algorithms is not None else None
        if algorithm is not None and algorithm != "implicit_gemm" and layer.kind == "conv":
            if algorithm in algorithms.CUDA_CORE_ONLY:
                flops_s = scalar_flops_s
            flops_s = flops_s / algorithms.time_factor(layer, algorithm)
        activations = (layer.input_elements + layer.output_elements) * batch * act_bytes
        weights = layer.params * par_bytes
        fwd_flops = layer.forward_flops * batch
        forward[i] = layer_overhead_s + max(fwd_flops / flops_s, (activations + weights) / bytes_s)

        if layer.params > 0 and i != first_weighted:
            bwd_flops = 2 * fwd_flops
        elif layer.kind == "attention":
            bwd_flops = 2 * fwd_flops  # gradients with respect to both operands
        else:
            bwd_flops = fwd_flops
        bwd_bytes = 2 * activations + 2 * weights
        backward[i] = layer_overhead_s + max(bwd_flops / flops_s, bwd_bytes / bytes_s)
        grads[i] = layer.params * PARAMETER_BYTES[precision]

    optimizer_bytes = model.total_params * 4 * OPTIMIZER_WORDS[optimizer]
    optimizer_s = layer_overhead_s + optimizer_bytes / bytes_s
    return ComputeCosts(forward, backward, optimizer_s, grads)


def scaled_to_throughput(costs: ComputeCosts, batch: int, samples_per_s: float) -> ComputeCosts:
    """The same costs with every compute time multiplied by one factor, chosen so one
    GPU computes an iteration (forward + backward + optimizer) at ``samples_per_s``.

    Applied where costs are made, before gradient buckets are timed, so every consumer
    (bucket launch offsets, the training loop, the one-GPU baseline) sees one set of
    costs."""
    scale = (batch / samples_per_s) / costs.total_s
    return dataclasses.replace(
        costs, forward_s=costs.forward_s * scale, backward_s=costs.backward_s * scale,
        optimizer_s=costs.optimizer_s * scale,
    )


def gradient_buckets(
    gradient_bytes: np.ndarray, cap_bytes: float, first_cap_bytes: float | None = None
) -> list[tuple[int, float]]:
    """Group layers into gradient buckets in reverse layer order, as PyTorch DDP does.

    Returns ``(trigger_layer, bytes)`` per bucket in the order they become ready: the
    bucket is ready once backward has finished ``trigger_layer`` (its lowest-index
    layer). A bucket closes as soon as it holds at least ``cap_bytes`` (the first one
    at ``first_cap_bytes`` when given, DDP's small first bucket); a cap of 0 gives one
    bucket per layer with parameters.
    """
    buckets: list[tuple[int, float]] = []
    filled = 0.0
    for i in range(len(gradient_bytes) - 1, -1, -1):
        if gradient_bytes[i] <= 0:
            continue
        filled += float(gradient_bytes[i])
        if filled >= (cap_bytes if first_cap_bytes is None or buckets else first_cap_bytes):
            buckets.append((i, filled))
            filled = 0.0
    if filled > 0:
        # The remainder closes when the last layer with parameters is done.
        first = int(np.flatnonzero(gradient_bytes > 0)[0])
        buckets.append((first, filled))
    return buckets


def bucket_tensor_counts(gradient_bytes: np.ndarray, bucket_bytes: list[float]) -> list[int]:
    """How many tensors (layers with parameters) each bucket holds. Buckets take the
    layers in reverse order, consecutively, as both groupings above do."""
    sizes = [float(g) for g in gradient_bytes[::-1] if g > 0]
    counts, i = [], 0
    for nbytes in bucket_bytes:
        filled, n = 0.0, 0
        while i < len(sizes) and (n == 0 or filled < nbytes * (1 - 1e-9)):
            filled += sizes[i]
            n, i = n + 1, i + 1
        counts.append(n)
    return counts


def fusion_buckets(
    gradient_bytes: np.ndarray, backward_s: np.ndarray, cycle_s: float, cap_bytes: float
) -> list[tuple[float, float]]:
    """Horovod tensor fusion: every ``cycle_s`` from the start of backward, the
    gradients that became ready since the last cycle are packed, in the order they
    became ready, into fusion buffers of at most ``cap_bytes`` (a larger tensor goes
    alone) and each buffer is allreduced.

    Returns ``(ready offset from the start of backward in seconds, bytes)`` per buffer,
    in launch order; the offset is the cycle tick at which the buffer is launched.
    """
    buckets: list[tuple[float, float]] = []
    ready = 0.0
    tick = None
    filled = 0.0
    for i in range(len(gradient_bytes) - 1, -1, -1):
        ready += float(backward_s[i])
        if gradient_bytes[i] <= 0:
            continue
        this_tick = max(math.ceil(ready / cycle_s - 1e-9), 1) * cycle_s
        size = float(gradient_bytes[i])
        if tick is not None and (this_tick != tick or filled + size > cap_bytes):
            buckets.append((tick, filled))
            filled = 0.0
        tick = this_tick
        filled += size
    if filled > 0:
        buckets.append((tick, filled))
    return buckets

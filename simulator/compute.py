"""Compute model: per-layer forward and backward time on one GPU.

Without a calibration profile each layer is timed from its shape
(:mod:`simulator.kernel_efficiency`):

* matrix layers (convolutions, dense layers, attention's products) run their GEMMs
  at ``peak x sustained clock x compute_efficiency`` times the shape's tile, wave and
  k quantization on the GPU's SMs; convolutions run the algorithm the scenario names,
  by default the one cuDNN's autotuner would pick (Winograd for 3x3 stride-1 layers
  on CUDA cores, where its 4x fewer multiplies beat its memory-bound transforms);
  their time is the roofline of that arithmetic and the bytes they move, plus the
  unhidden share (``kernel_efficiency.OVERLAP_LOSS``) of the shorter of the two;
* memory-bound layers move the bytes their kernels really read and write, at
  ``bandwidth x memory_efficiency``;
* every kernel costs ``layer_overhead`` (launch and framework dispatch) on the GPU, and the
  host issues one no faster than every ``host_dispatch`` (:mod:`simulator.host_dispatch`:
  the GPU cannot run ahead of it, so small batches come out latency-bound);
* with ``workload.kernel_fusion: norm_activation`` a residual add and a ReLU that follow a
  batch norm run inside the norm's kernels: no launch of their own, and only the
  traffic the fused kernel still needs (:func:`kernel_efficiency.fused_traffic`);
* under XLA (``workload.graph_compiler: xla``) a ReLU right after a convolution or dense
  layer runs in that layer's epilogue: its forward pass costs nothing of its own;
* a layer whose output several layers read (a residual block's input, an Inception
  module's input) receives one gradient from each in the backward pass, and summing
  them is memory-bound work of its own (``workload.fork_gradients``:
  :func:`kernel_efficiency.fork_gradient_traffic`).

``peak`` is the GPU's dense peak for the precision on matrix layers (tensor cores
where the precision uses them) and the fp32 peak elsewhere; matrix layers never run
slower than they would on CUDA cores, so a card whose tensor-core peak is low (tf32
on an RTX 3090 equals its fp32 peak) is not penalized for using them.

``fp8`` is Transformer Engine's recipe: the dense layers' GEMMs (``linear`` layers, but
not an LM head or an MoE router, which Megatron keeps in bf16) run at the fp8 peak;
attention, the other matrix layers and every memory-bound layer run as in bf16, and
activations, weights and gradients are counted in bf16 (the fp8 copies and their
scaling are not costed: a known optimism).

The backward pass runs the data-gradient and weight-gradient products of each matrix
layer (the first layer with weights needs no data gradient).

TF32 dense and attention layers reach ``kernel_efficiency.TF32_EFFICIENCY`` (0.7) of the
tensor-core efficiency (4-byte operands); weight-gradient products take
``kernel_efficiency.WGRAD_FACTOR`` times a forward product's time. Convolutions on
tensor cores run at ``kernel_efficiency.conv_staging_factor`` of that rate, by the
tensor cores' width per SM and their operands' bytes (at the fitted 512 FLOP per SM per
clock: the A100's fp16 at 0.6 of a V100's share of peak, GeForce Turing/Ampere's
half-width fp32-accumulate MMAs at 1.5, an A100's TF32 convolutions, whose 4-byte operands
stage at half the rate, at 0.6).

Defaults (compute efficiency 0.75 on CUDA cores, 0.50 on tensor cores; memory
efficiency 0.8; 20 us per kernel; overlap loss 0.5; TF32 share 0.7; weight-gradient
factor 1.0; convolution staging 512 FLOP per SM per clock, chosen by 12 of 15
leave-one-GPU-out folds on the 115 points of 2026-12-03) come from the grid of
``benchmarks/accuracy_single_gpu.py --cv`` over the 92 one-GPU points of the published
measurements; its in-sample best differs only in 0.85 on CUDA cores with a
weight-gradient factor of 1.25 (and, on the 115 points, 0.55 on tensor cores), kept out
of the defaults because they move the multi-GPU dev set's figures the wrong way (see
``benchmarks/README.md``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from . import algorithms, host_dispatch, kernel_efficiency, optimizer_step
from .catalog import GPUSpec
from .zoo import Layer, Model

MATRIX_KINDS = frozenset({"conv", "linear", "attention"})
TENSOR_CORE_PRECISIONS = frozenset({"tf32", "fp16", "bf16", "amp", "fp8"})
#: GPUs whose matrix layers run on tensor cores (conv_staging_factor applies to them).
TENSOR_CORE_ARCHITECTURES = frozenset({"Volta", "Turing", "Ampere", "Ada", "Hopper"})
DEFAULT_EFFICIENCY = {"cuda_cores": 0.85, "tensor_cores": 0.50}
#: Share of a CUDA-core matrix kernel's issue slots its other instructions take (address
#: arithmetic, shared-memory loads) on SMs whose schedulers must issue an FMA every clock
#: to keep their FP32 lanes busy: 32 or more lanes per scheduler (Kepler, Maxwell, Pascal,
#: GA10x, Ada, Hopper). Volta, Turing and GA100 give each scheduler 16 FP32 lanes, so an
#: FMA warp instruction holds them two clocks and the other instructions issue in between
#: (a separate INT32 datapath): no loss there. Fitted with the fp32 compute efficiency
#: (``benchmarks/accuracy_single_gpu.py --cv``).
NON_FMA_ISSUE_SHARE = 0.3

# Bytes per activation element and per weight/gradient element, by precision.
# amp keeps fp32 master weights and fp32 gradients (PyTorch autocast + GradScaler).
ACTIVATION_BYTES = {"fp32": 4, "tf32": 4, "fp16": 2, "bf16": 2, "amp": 2, "fp8": 2}
PARAMETER_BYTES = {"fp32": 4, "tf32": 4, "fp16": 2, "bf16": 2, "amp": 4, "fp8": 2}
#: Linear layers that stay in bf16 under fp8 (Megatron's output layer, the MoE router).
FP8_EXCLUDED_SUFFIXES = ("lm_head", ".router")

# Bytes of optimizer-state traffic per parameter and fp32 word: (reads + writes).
# sgd: read w, g; write w. momentum: + read/write m. adam: + read/write m and v.
OPTIMIZER_WORDS = optimizer_step.OPTIMIZER_WORDS  # re-exported: words per parameter of a fused update


def device_rates(gpu: GPUSpec, precision: str, compute_efficiency: float, memory_efficiency: float,
                 layer_overhead_s: float) -> kernel_efficiency.DeviceRates:
    """The rates the layer-time model runs at on ``gpu`` in ``precision``. Matrix
    layers never run slower than they would on CUDA cores."""
    clock = getattr(gpu, "sustained_clock_ratio", 1.0)
    # Kepler's schedulers cannot feed all its CUDA cores (GPUSpec.cuda_core_issue_share), and
    # full-rate partitions lose issue slots to non-FMA instructions; tensor cores are fed by
    # their own MMA instructions
    issue = fma_issue_share(gpu)
    on_tensor_cores = (precision in TENSOR_CORE_PRECISIONS
                       and getattr(gpu, "architecture", None) in TENSOR_CORE_ARCHITECTURES)
    scalar = gpu.peak_flops("fp32") * compute_efficiency * clock * issue
    peak = gpu.peak_flops(precision) * compute_efficiency * clock * (1.0 if on_tensor_cores else issue)
    # 4-byte TF32 operands: twice the operand traffic per FLOP of fp16
    matrix = peak * kernel_efficiency.TF32_EFFICIENCY if precision == "tf32" else peak
    conv = matrix
    # (a profiled stand-in device, calibrated_layers.ProfiledDevice, has no architecture: no factor)
    if on_tensor_cores:
        # convolutions pay for their 4-byte TF32 operands in the staging factor itself
        conv = peak * kernel_efficiency.conv_staging_factor(gpu.flops_per_sm_clock(precision),
                                                            ACTIVATION_BYTES[precision])
    return kernel_efficiency.DeviceRates(
        matrix_flops_s=max(matrix, scalar),
        conv_flops_s=max(conv, scalar),
        scalar_flops_s=scalar,
        bytes_s=gpu.memory_bandwidth_gbytes_s * 1e9 * memory_efficiency,
        sm_count=getattr(gpu, "sm_count", None),
        overhead_s=layer_overhead_s,
        act_bytes=ACTIVATION_BYTES[precision],
        overlap_loss=kernel_efficiency.OVERLAP_LOSS,
    )


def fma_issue_share(gpu: GPUSpec) -> float:
    """Share of a CUDA-core FMA kernel's peak the SM's schedulers can issue on ``gpu``: the
    catalog's ``cuda_core_issue_share`` (Kepler's dual issue), times 1 - NON_FMA_ISSUE_SHARE
    where a scheduler feeds 32 or more FP32 lanes: 16-lane partitions exist only on Volta,
    Turing and GA100, whose SMs do 128 fp32 FLOP per clock (4 x 16 lanes x 2; GP100's 128
    are 2 x 32 lanes). A profiled stand-in device (no architecture) gets 1."""
    if getattr(gpu, "architecture", None) is None:
        return 1.0
    issue = gpu.cuda_core_issue_share
    half_rate_partitions = (gpu.architecture in ("Volta", "Turing", "Ampere")
                            and gpu.flops_per_sm_clock("fp32") == 128.0)
    return issue if half_rate_partitions else issue * (1.0 - NON_FMA_ISSUE_SHARE)


def layer_times(layer: Layer, batch: int, rates: kernel_efficiency.DeviceRates, weight_bytes: float,
                algorithm: str | None, *, input_gradient: bool) -> tuple[float, float]:
    """(forward, backward) seconds of one matrix layer run with ``algorithm`` (convs)."""
    factor, cuda_only = 1.0, False
    if layer.kind == "conv" and algorithm not in (None, "implicit_gemm", "winograd"):
        factor = algorithms.time_factor(layer, algorithm)
        cuda_only = algorithm in algorithms.CUDA_CORE_ONLY
    return kernel_efficiency.matrix_layer_times(
        layer, batch, rates, weight_bytes=weight_bytes, algorithm=algorithm if layer.kind == "conv" else None,
        input_gradient=input_gradient, cuda_core_only=cuda_only, time_factor=factor)


def default_compute_efficiency(precision: str, architecture: str | None = None) -> float:
    """The default share of peak for ``precision`` on a GPU of ``architecture``: the
    tensor-core figure only where tensor cores run it. fp16 on a Pascal or older card
    (half2 or fp32 arithmetic) runs on its CUDA cores, at their figure. ``None`` (a
    profiled stand-in device): by precision alone."""
    on_tensor_cores = precision in TENSOR_CORE_PRECISIONS and (
        architecture is None or architecture in TENSOR_CORE_ARCHITECTURES)
    return DEFAULT_EFFICIENCY["tensor_cores" if on_tensor_cores else "cuda_cores"]


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
    kernel_fusion: str = "none",
    fork_gradients: str | None = "sum",
    activation_epilogues: bool = False,
    optimizer_kernels: str = "multi_tensor",
    optimizer_compiled: bool = False,
    host_dispatch_s: float = 0.0,
    host_sync_layers: int = 0,
) -> ComputeCosts:
    """Every layer's forward and backward time (see the module docstring).

    ``conv_algorithms`` names, per layer in forward order, the convolution algorithm
    of each conv layer (:mod:`simulator.algorithms`): Winograd is timed as its
    products and transforms, precomputed GEMM and FFT by their time factors, FFT and
    Winograd on CUDA cores. None means implicit GEMM everywhere. ``kernel_fusion``
    (:data:`kernel_efficiency.KERNEL_FUSIONS`) says which memory-bound layers run inside
    their neighbour's kernels; ``fork_gradients`` (:data:`kernel_efficiency.FORK_GRADIENTS`)
    how the gradients of a layer read by several others are summed, a cost added to
    that layer's backward (None: not costed, for per-layer timings that leave it out);
    ``activation_epilogues`` (XLA) runs a ReLU that follows a convolution or dense layer in
    that layer's kernel (:func:`kernel_efficiency.activation_in_epilogue`): no forward
    time of its own. ``optimizer_kernels`` (:data:`optimizer_step.OPTIMIZER_KERNELS`) says
    how many kernels the optimizer step launches and what they move; ``optimizer_compiled``
    that a graph compiler fuses an element-wise update (:mod:`simulator.optimizer_step`);
    ``host_dispatch_s`` > 0 that the host issues a kernel no faster than that
    (:mod:`simulator.host_dispatch`), waiting for the GPU after every ``host_sync_layers``
    layers when that is > 0."""
    rates = device_rates(gpu, precision, compute_efficiency, memory_efficiency, layer_overhead_s)
    # fp8 speeds up the dense layers' GEMMs only; everything else runs as bf16
    other_rates = device_rates(gpu, "bf16", compute_efficiency, memory_efficiency, layer_overhead_s) \
        if precision == "fp8" else rates
    par_bytes = PARAMETER_BYTES[precision]
    n = len(model.layers)
    forward = np.empty(n)
    backward = np.empty(n)
    grads = np.zeros(n)
    first_weighted = next((i for i, layer in enumerate(model.layers) if layer.params > 0), -1)
    for i, layer in enumerate(model.layers):
        weights = layer.params * par_bytes
        if layer.gemm is not None:
            algorithm = conv_algorithms[i] if conv_algorithms is not None else None
            fp8 = layer.kind == "linear" and not layer.name.endswith(FP8_EXCLUDED_SUFFIXES)
            forward[i], backward[i] = layer_times(layer, batch, rates if fp8 else other_rates, weights, algorithm,
                                                  input_gradient=i != first_weighted or layer.params == 0)
        elif kernel_efficiency.fused_into_norm(model.layers, i, kernel_fusion):
            for pass_index, out in ((0, forward), (1, backward)):
                elements = kernel_efficiency.fused_traffic(model.layers, i, backward=bool(pass_index))
                out[i] = elements * batch * rates.act_bytes / rates.bytes_s
        else:
            for pass_index, out in ((0, forward), (1, backward)):
                elements, kernels = kernel_efficiency.elementwise_traffic(layer, backward=bool(pass_index))
                moved = elements * batch * rates.act_bytes + weights
                flops = layer.forward_flops * batch * (1 + pass_index)
                out[i] = (kernels * layer_overhead_s + max(moved / rates.bytes_s, flops / rates.scalar_flops_s)
                          if kernels else 0.0)
            if activation_epilogues and kernel_efficiency.activation_in_epilogue(model.layers, i):
                forward[i] = 0.0
        # amp's per-tensor casts: fp32 weights to fp16 (forward), their gradients back (backward)
        casts, cast_bytes = optimizer_step.master_copies_per_layer(layer, precision, optimizer_kernels)
        cast_s = casts * layer_overhead_s + cast_bytes / rates.bytes_s
        forward[i] += cast_s
        backward[i] += cast_s
        grads[i] = layer.params * PARAMETER_BYTES[precision]
        elements, kernels = (kernel_efficiency.fork_gradient_traffic(layer, fork_gradients)
                             if fork_gradients is not None else (0.0, 0))
        if elements:
            backward[i] += kernels * layer_overhead_s + elements * batch * rates.act_bytes / rates.bytes_s

    launches, words = optimizer_step.step_launches_and_words(model, optimizer, optimizer_kernels, optimizer_compiled)
    amp_launches, amp_words = optimizer_step.master_copies_at_step(model, precision, optimizer_kernels)
    optimizer_s = ((launches + amp_launches) * layer_overhead_s
                   + model.total_params * 4 * (words + amp_words) / rates.bytes_s)
    costs = ComputeCosts(forward, backward, optimizer_s, grads)
    if host_dispatch_s > 0:
        one_us_more = roofline_costs(
            model, gpu, precision=precision, batch=batch, compute_efficiency=compute_efficiency,
            memory_efficiency=memory_efficiency, layer_overhead_s=layer_overhead_s + host_dispatch.COUNTING_STEP_S,
            optimizer=optimizer, conv_algorithms=conv_algorithms, kernel_fusion=kernel_fusion,
            fork_gradients=fork_gradients, activation_epilogues=activation_epilogues,
            optimizer_kernels=optimizer_kernels, optimizer_compiled=optimizer_compiled)
        step = (costs.forward_s, costs.backward_s, costs.optimizer_s)
        counts = host_dispatch.kernel_counts(step, (one_us_more.forward_s, one_us_more.backward_s,
                                                    one_us_more.optimizer_s))
        forward, backward, optimizer_s = host_dispatch.pipelined(step, counts, host_dispatch_s, host_sync_layers)
        costs = ComputeCosts(forward, backward, optimizer_s, grads)
    return costs


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
    gradient_bytes: np.ndarray, backward_s: np.ndarray, cycle_s: float, cap_bytes: float,
    release: Callable[[float], float] | None = None,
) -> list[tuple[float, float]]:
    """Horovod tensor fusion: every ``cycle_s`` from the start of backward, the
    gradients that became ready since the last cycle are packed, in the order they
    became ready, into fusion buffers of at most ``cap_bytes`` (a larger tensor goes
    alone) and each buffer is allreduced. ``release``: when a gradient ready at an offset
    leaves backward (XLA's clusters: :func:`simulator.build.release_of`), if not at once.

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
        leaves = ready if release is None else release(ready)
        this_tick = max(math.ceil(leaves / cycle_s - 1e-9), 1) * cycle_s
        size = float(gradient_bytes[i])
        if tick is not None and (this_tick != tick or filled + size > cap_bytes):
            buckets.append((tick, filled))
            filled = 0.0
        tick = this_tick
        filled += size
    if filled > 0 and tick is not None:  # (a tick is set once anything is filled)
        buckets.append((tick, filled))
    return buckets


def fusion_tensors(gradient_bytes: np.ndarray, backward_s: np.ndarray,
                   release: Callable[[float], float] | None = None) -> list[tuple[float, float]]:
    """The gradients Horovod's background loop fuses, in the order backward makes them
    ready: ``(ready offset from the start of backward in seconds, bytes)`` per layer
    with parameters (reverse layer order); the offset is when it leaves backward under
    ``release`` (as :func:`fusion_buckets`)."""
    out: list[tuple[float, float]] = []
    ready = 0.0
    for i in range(len(gradient_bytes) - 1, -1, -1):
        ready += float(backward_s[i])
        if gradient_bytes[i] > 0:
            out.append((ready if release is None else release(ready), float(gradient_bytes[i])))
    return out


def pack_fusion_buffers(sizes: list[float], cap_bytes: float) -> list[tuple[float, int]]:
    """One Horovod cycle: the ready tensors ``sizes`` (in readiness order) packed into
    fusion buffers of at most ``cap_bytes`` (a larger tensor goes alone). Returns
    ``(bytes, tensors)`` per buffer, in launch order."""
    buffers: list[tuple[float, int]] = []
    filled, count = 0.0, 0
    for size in sizes:
        if count and filled + size > cap_bytes:
            buffers.append((filled, count))
            filled, count = 0.0, 0
        filled += size
        count += 1
    if count:
        buffers.append((filled, count))
    return buffers

"""Convolution algorithms: time and workspace of each way to compute a conv layer.

cuDNN (and every framework on top of it) can run one convolution with several
algorithms. They do the same arithmetic in different orders, so they differ in time
and in the scratch memory ("workspace") they need, and the fastest one is often the
hungriest - which competes with the batch for GPU memory. This catalog holds
documented *estimates*, not measurements:

``implicit_gemm`` (cuDNN ``IMPLICIT_GEMM``)
    The convolution as a matrix product whose im2col operand is formed on the fly.
    Needs no workspace and runs every shape. It is what the roofline compute model
    costs, so its time factor is exactly 1.0 (the simulator's default: choosing it
    changes nothing).
``precomputed_gemm`` (cuDNN ``IMPLICIT_PRECOMP_GEMM``)
    Implicit GEMM with the input offsets of every (filter tap, output pixel) pair
    precomputed once: ``4 * (Cin*kh*kw) * Hout*Wout`` bytes (one int32 each),
    independent of the batch. About 10% faster than implicit GEMM (factor 0.90): Jorda,
    Valero-Lara & Pena, "Performance Evaluation of cuDNN Convolution Algorithms on
    NVIDIA Volta GPUs", IEEE Access 7 (2019) find it the fastest GEMM variant on most
    ResNet/VGG layers, by 5-20%.
``fft`` (cuDNN ``FFT``)
    Transform input and filters, multiply pointwise, transform back (Mathieu et al.,
    arXiv:1312.5851; Vasilache et al., "Fast convolutional nets with fbfft",
    arXiv:1412.7580). Stride-1 layers with kernels of 3x3 or larger only. Its
    arithmetic does not grow with the kernel area, so its advantage does: time factor
    ``0.45 + 2.5 / (kh*kw)`` (0.73 at 3x3, 0.55 at 5x5, 0.50 at 7x7), matching fbfft's
    reported 1.4x at 3x3 rising to ~2x for large kernels. Workspace: the complex
    (8-byte) spectra of inputs, filters and outputs padded to the next power of two
    ``P >= H + k - 1``, Hermitian half kept:
    ``8 * (N*Cin + Cin*Cout + N*Cout) * P * (P/2 + 1)`` - it grows with the batch.
``winograd`` (cuDNN ``WINOGRAD_NONFUSED``, F(4x4, 3x3))
    Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", CVPR 2016:
    4x fewer multiplies on 3x3 stride-1 layers (only those), about 2x faster in
    practice once the transforms are paid: time factor 0.55. Workspace: the
    transformed tiles (6x6 per 4x4 output tile) of inputs, filters and outputs,
    ``act_bytes * 36 * (N*Cin*T + Cin*Cout + N*Cout*T)`` with ``T = ceil(Hout/4) *
    ceil(Wout/4)`` tiles - also growing with the batch.

FFT and Winograd run on CUDA cores: on tensor-core precisions their factor applies to
the fp32 peak, so there they rarely beat a tensor-core GEMM (as on real Volta+ cards).

Kepler runs no Winograd (:data:`NO_WINOGRAD_ARCHITECTURES`): the autotuner picks among the
other three there, and a Winograd named for a Kepler layer falls back to implicit GEMM.

Layer shapes. The zoo's :class:`~simulator.zoo.Layer` carries params, FLOPs and
activation sizes, not the kernel. :func:`conv_shape` recovers it exactly for
ungrouped convolutions: the fan-in ``Cin*kh*kw`` from FLOPs per output element, the
output channels from params, then the kernel area as the one of 1, 3 (1x3/3x1), 7
(1x7/7x1), 9, 25, 49, 121 whose implied input size gives a stride of 1, 2 or 4. The
test suite checks it against the builder's true shapes for every conv of the zoo.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .zoo import Layer

ALGORITHMS: tuple[str, ...] = ("implicit_gemm", "precomputed_gemm", "fft", "winograd")
CUDA_CORE_ONLY = frozenset({"fft", "winograd"})
#: GPU architectures cuDNN has no Winograd kernels for. cuDNN's Winograd kernels (5.0 on)
#: show up in published profiler traces only under Maxwell-and-later names
#: (``maxwell_scudnn_winograd_128x128_*``, ``volta_scudnn_winograd_*``; the C++
#: ``cudnn::winograd::winograd3x3Kernel`` takes ``cudnn::maxwell::winograd::KernelParams``),
#: and the first GPU Winograd kernels, Nervana neon's (Lavin & Gray), were Maxwell/Pascal
#: assembly only (NervanaSystems/neon#332). No trace of a Kepler Winograd kernel was found;
#: NVIDIA documents no per-architecture list, so this is inferred. The dev set agrees: on the
#: same EC2 p2.2xlarge K80, MXNet's perf.md runs gained 14% (Inception-v3) and 9% (ResNet-50)
#: at batch 32 from cuDNN 5.1's heuristic GEMM (2016) to cuDNN 7.0.5's autotuner (2018); the
#: layer-time model gives +24 / +19% with Winograd on Kepler and +10 / +6% without. Chosen
#: after reading those K80 rows, so their leave-one-GPU-out figure is not an independent
#: test of it (README, "One GPU").
NO_WINOGRAD_ARCHITECTURES = frozenset({"Kepler"})
_KERNEL_AREAS = (1, 3, 7, 9, 25, 49, 121)
_STRIDES = (1, 2, 4)


@dataclass(frozen=True)
class ConvShape:
    """One sample's convolution shape, recovered from a zoo layer."""

    cin: int
    cout: int
    kernel_area: int  # kh * kw
    stride: int
    in_hw: int  # H * W of the input
    out_hw: int  # Hout * Wout

    @property
    def side(self) -> int:
        """Side of the (square) input, rounded."""
        return max(1, round(math.sqrt(self.in_hw)))

    @property
    def kernel_side(self) -> int:
        return max(1, round(math.sqrt(self.kernel_area)))


@lru_cache(maxsize=4096)
def conv_shape(layer: Layer) -> ConvShape:
    """The shape of a conv layer (see the module docstring for how)."""
    if layer.kind != "conv":
        raise ValueError(f"{layer.name} is a {layer.kind} layer, not a convolution")
    outputs = layer.output_elements
    per_output = layer.forward_flops / outputs
    bias = round(per_output) % 2 == 1
    fan_in = round((per_output - 1) / 2) if bias else round(per_output / 2)
    cout = round(layer.params / (fan_in + 1)) if bias else round(layer.params / fan_in)
    out_hw = max(1, round(outputs / cout))
    best: tuple[float, ConvShape] | None = None
    for area in _KERNEL_AREAS:
        if fan_in % area:
            continue
        cin = fan_in // area
        if layer.input_elements % cin:
            continue
        in_hw = layer.input_elements // cin
        ratio = in_hw / out_hw
        for stride in _STRIDES:
            # distance in log space from stride^2 (padding makes it inexact)
            miss = abs(math.log(ratio / stride**2))
            if best is None or miss < best[0]:
                best = (miss, ConvShape(cin, cout, area, stride, in_hw, out_hw))
    if best is None:  # no candidate divides evenly: treat as a 1x1 of the fan-in
        return ConvShape(fan_in, cout, 1, 1, max(1, layer.input_elements // fan_in), out_hw)
    return best[1]


def eligible(layer: Layer, algorithm: str, architecture: str | None = None) -> bool:
    """Whether ``algorithm`` can run this conv layer on a GPU of ``architecture`` (None:
    a GPU without one, such as a profiled stand-in device, runs every algorithm)."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown convolution algorithm {algorithm!r}; known: {', '.join(ALGORITHMS)}")
    if algorithm in ("implicit_gemm", "precomputed_gemm"):
        return True
    s = conv_shape(layer)
    if algorithm == "winograd":
        return s.kernel_area == 9 and s.stride == 1 and architecture not in NO_WINOGRAD_ARCHITECTURES
    return s.stride == 1 and s.kernel_area >= 9  # fft


def time_factor(layer: Layer, algorithm: str) -> float:
    """Multiplier on the roofline arithmetic time of the layer (1.0 = implicit GEMM)."""
    if algorithm == "implicit_gemm":
        return 1.0
    if algorithm == "precomputed_gemm":
        return 0.90
    if algorithm == "winograd":
        return 0.55
    return 0.45 + 2.5 / conv_shape(layer).kernel_area  # fft


def workspace_bytes(layer: Layer, algorithm: str, batch: int, act_bytes: int) -> int:
    """Scratch memory the algorithm needs for this layer at this batch."""
    if algorithm == "implicit_gemm":
        return 0
    s = conv_shape(layer)
    if algorithm == "precomputed_gemm":
        return 4 * s.cin * s.kernel_area * s.out_hw
    if algorithm == "winograd":
        tiles = math.ceil(math.sqrt(s.out_hw) / 4) ** 2
        return act_bytes * 36 * (batch * s.cin * tiles + s.cin * s.cout + batch * s.cout * tiles)
    padded = 1 << math.ceil(math.log2(s.side + s.kernel_side - 1))
    return 8 * (batch * s.cin + s.cin * s.cout + batch * s.cout) * padded * (padded // 2 + 1)


def fastest(layer: Layer, *, max_workspace: float = math.inf, batch: int = 1, act_bytes: int = 4,
            tensor_cores: bool = False, tensor_speedup: float = 1.0, architecture: str | None = None) -> str:
    """The fastest eligible algorithm whose workspace fits ``max_workspace``.

    ``tensor_speedup`` is the matrix peak over the fp32 peak (>1 on tensor-core
    precisions), by which CUDA-core-only algorithms lose ground."""
    best, best_time = "implicit_gemm", 1.0
    for algorithm in ALGORITHMS[1:]:
        if not eligible(layer, algorithm, architecture):
            continue
        if workspace_bytes(layer, algorithm, batch, act_bytes) > max_workspace:
            continue
        t = effective_factor(layer, algorithm, tensor_speedup if tensor_cores else 1.0)
        if t < best_time:
            best, best_time = algorithm, t
    return best


def effective_factor(layer: Layer, algorithm: str, tensor_speedup: float = 1.0) -> float:
    """Time factor relative to implicit GEMM at the precision's matrix peak."""
    factor = time_factor(layer, algorithm)
    return factor * tensor_speedup if algorithm in CUDA_CORE_ONLY else factor


def layer_algorithms(model_layers: tuple[Layer, ...], default: str, overrides: dict[str, str] | None = None,
                     architecture: str | None = None, **fastest_kwargs: Any) -> list[str | None]:
    """Per layer (forward order) the algorithm each conv runs on a GPU of ``architecture``;
    None for other layers.

    ``default`` may be ``auto`` (the fastest eligible per layer, workspace unbounded);
    a named algorithm a layer cannot run falls back to implicit GEMM, as cuDNN does."""
    overrides = overrides or {}
    chosen: list[str | None] = []
    for layer in model_layers:
        if layer.kind != "conv":
            chosen.append(None)
            continue
        name = overrides.get(layer.name, default)
        if name == "auto":
            name = fastest(layer, architecture=architecture, **fastest_kwargs)
        chosen.append(name if eligible(layer, name, architecture) else "implicit_gemm")
    return chosen

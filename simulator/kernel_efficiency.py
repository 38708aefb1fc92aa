"""How well one GPU runs one layer: shape-dependent efficiency of its kernels.

One global "fraction of peak" cannot fit both VGG-16 (large 3x3 convolutions that
cuDNN runs faster than their direct FLOPs allow, by Winograd) and Inception-v3 or
small-batch ResNets (narrow, 1x1 and asymmetric convolutions that leave SMs idle).
This module gives each layer its own efficiency from its shape, with a handful of
physically meaningful parameters:

**Matrix layers** (convolutions as implicit GEMM, dense layers, attention's batched
products) run as a grid of output tiles, one thread block per tile, spread over the
GPU's streaming multiprocessors (SMs) in waves. cuBLAS/cuDNN pick the tile size per
shape; we do the same among :data:`TILES`, each with its own efficiency (smaller tiles
reuse less data per load). Three quantizations follow (NVIDIA, "Matrix Multiplication
Background User's Guide", sections on tile and wave quantization):

* *tile*: a 129-wide output pays for two 128-wide tiles;
* *wave*: 81 tiles on an 80-SM V100 take two waves, the second nearly empty;
* *k*: the reduction dimension is consumed :data:`K_STEP` elements at a time, and a
  tile spends about :data:`K_OVERHEAD` steps' worth of time on its prologue and
  epilogue, so a 1x1 convolution over 64 channels (k = 64) runs far below peak.

A product with too few tiles to fill the GPU splits its reduction dimension over
several blocks (split-K), as cuBLAS does for weight gradients. The efficiency of a
product is its ideal time at the large-GEMM rate divided by this quantized time, so
a large product whose sizes are multiples of the tile runs at exactly the
large-GEMM rate (``compute_efficiency`` of the scenario).

**Convolution algorithms**: which ones exist, their time factors and workspaces are
in :mod:`simulator.algorithms`; the factor multiplies the quantized time.

**Memory-bound layers** (normalization, activations, pooling, elementwise, softmax,
dropout, concatenation, embedding) take the bytes their kernels really move at the
achievable memory bandwidth: :data:`ELEMENTWISE_PASSES` counts, per layer kind and
pass, how many times the kernels read or write the layer's input and output tensors
(batch norm's forward reads its input twice: statistics, then normalization; a
residual add's backward launches nothing, autograd hands the same gradient to both
branches).

**Backward kernels** are not forward GEMMs run twice. The data gradient is a
convolution of the output gradient with the flipped filters (the shape of
:func:`backward_gemms`); the weight gradient reduces over the batch's pixels, so its
thread blocks split that reduction (split-K), write partial sums and reduce them in a
second pass, and read both operands transposed (activations channel-minor, gradients
pixel-minor). cuDNN's weight-gradient kernels therefore run slower than a forward GEMM
of the same FLOPs: their time is multiplied by :data:`WGRAD_FACTOR`, one fitted number
(Winograd's weight-gradient pass included).

**Tensor-core precisions**: a TF32 tensor-core instruction multiplies 4-byte operands
(m16n8k8) where fp16/bf16 ones multiply 2-byte operands (m16n8k16), so per FLOP a TF32
kernel moves twice the shared-memory and register traffic and reaches a smaller share
of its (half as high) peak: a convolution pays it in its operand staging (below), a
dense product's large-GEMM rate in TF32 is the fp16 share times :data:`TF32_EFFICIENCY`.

**Convolutions on tensor cores** reach a smaller share of the peak the wider the
tensor cores are per SM. An implicit-GEMM convolution spends, besides its MMAs, SM
issue slots on staging operands: the im2col address arithmetic and predicated loads
of the activation tile, the copies into shared memory, the epilogue. That work runs at
a rate per SM per clock that did not grow with the tensor cores, which doubled per SM
and clock from Volta/Turing (1024 dense fp16 FLOP) to GA100 (2048) and again to GH100
(4096), while GeForce Turing/Ampere run fp32-accumulate MMAs at half width (512). With
the MMAs at a width ``W`` per SM per clock and the staging at
:data:`CONV_STAGING_FLOPS_PER_SM_CLOCK` (``Q``), a convolution's time per FLOP is
``1/W + 1/Q`` SM-clocks, so its share of peak scales by
``(1 + W_ref/Q) / (1 + W/Q)`` relative to a Volta SM (``W_ref`` =
:data:`REFERENCE_MMA_WIDTH`, where ``compute_efficiency`` was fitted):
:func:`conv_staging_factor`. Staging moves bytes, so 4-byte TF32 operands halve ``Q``:
at the fitted ``Q`` an A100's TF32 convolutions (W = 1024) come out at 0.6 of a V100's
share, where the separately fitted TF32 share of the earlier model was 0.7. Same SMs x
clock, an A100 PCIe runs the Lambda ResNet-50 amp benchmark 1.48x as fast as an RTX
A6000, not the 2.0x of their peaks. Dense and attention products (cuBLAS GEMMs, no
im2col) are left at ``compute_efficiency``: large GEMMs reach 70-90% of peak on A100
and H100 (the catalog's ``matmul_efficiency``).

**Launches**: every kernel costs ``layer_overhead`` (launch plus framework dispatch),
so small batches come out latency-bound: a matrix layer launches one kernel forward
and two backward (data and weight gradients; one for the first layer, whose input
needs no gradient).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from .zoo import GemmShape, Layer

#: Output tile shapes (rows, columns, relative efficiency) the GEMM library chooses
#: among. 128x128 is the workhorse of cuBLAS/CUTLASS on every generation since
#: Maxwell; half and quarter tiles reuse each loaded element half / a quarter as
#: often per FLOP and lose a little per-tile efficiency.
TILES: tuple[tuple[int, int, float], ...] = (
    (128, 128, 1.0),
    (128, 64, 0.9),
    (64, 128, 0.9),
    (64, 64, 0.75),
)
#: Reduction elements consumed per main-loop step (CUTLASS's threadblock K).
K_STEP = 32
#: Prologue + epilogue of a tile, in reduction elements' worth of main-loop time.
K_OVERHEAD = 32
#: Split-K keeps at least this many reduction elements per block.
MIN_K_PER_SPLIT = 256
#: Share of the shorter of a matrix layer's arithmetic and memory time that the
#: kernel does not hide behind the longer (0: a perfect roofline). Fitted with the
#: compute and memory efficiencies (``benchmarks/accuracy_single_gpu.py --cv``).
OVERLAP_LOSS = 0.5
#: Time of a weight-gradient kernel over that of a forward product of the same FLOPs
#: and quantization (split-K partial sums, transposed operand reads). The one-GPU fit
#: (``benchmarks/accuracy_single_gpu.py --cv``) chose 1.25 until the per-kernel overhead
#: was counted in SM cycles, and 1.0 (a forward GEMM's speed, the default) on all points and
#: in 17 of 18 leave-one-GPU-out folds since.
WGRAD_FACTOR = 1.0
#: Share of the fp16/bf16 tensor-core efficiency that TF32 dense and attention products
#: reach (twice the operand bytes per FLOP). Fitted on the one-GPU points when it also
#: covered convolutions (0.7 in every fold that had a tf32 row; A100 tf32 ResNet-50 was
#: 18-28% too fast at 1.0); convolutions now pay for 4-byte operands in
#: :func:`conv_staging_factor` (0.6 on an A100), and the dev set has no TF32 dense rows
#: to refit this on.
TF32_EFFICIENCY = 0.7
#: Dense FLOP per SM per clock at which an implicit-GEMM convolution stages its
#: operands (None: no staging cost, every width at ``compute_efficiency``). Fitted on
#: the one-GPU points (``benchmarks/accuracy_single_gpu.py --cv``: 12 of 15 then, 13 of
#: 18 now, leave-one-GPU-out folds choose 512 among 512-4096; all points now: 768).
CONV_STAGING_FLOPS_PER_SM_CLOCK: float | None = 512.0
#: Tensor-core width (dense fp16 FLOP per SM per clock) of the SMs the tensor-core
#: ``compute_efficiency`` is stated for: a Volta SM (the V100 rows the tensor-core fit began with).
REFERENCE_MMA_WIDTH = 1024.0


def conv_staging_factor(mma_width: float | None, operand_bytes: int = 2) -> float:
    """Share of the reference SM's convolution efficiency that an SM whose tensor cores
    complete ``mma_width`` dense FLOP per clock reaches (1 at the reference width, in
    2-byte operands). Staging moves bytes: 4-byte TF32 operands stage half the FLOP per
    clock that fp16/bf16 ones do."""
    q = CONV_STAGING_FLOPS_PER_SM_CLOCK
    if q is None or mma_width is None:
        return 1.0
    return (1 + REFERENCE_MMA_WIDTH / q) / (1 + mma_width * operand_bytes / 2 / q)


@dataclass(frozen=True)
class Gemm:
    """One matrix product as launched: ``groups`` independent (m x k) @ (k x n)."""

    groups: int
    m: int
    n: int
    k: int

    @property
    def flops(self) -> float:
        return 2.0 * self.groups * self.m * self.n * self.k


def gemm_efficiency(gemm: Gemm, sm_count: int | None) -> float:
    """Fraction of the large-GEMM rate this product reaches (tile, wave and k
    quantization; the best tile among :data:`TILES`). ``sm_count`` None (a device
    that is not a GPU, or not in the catalog) applies no quantization: 1.0."""
    if sm_count is None:
        return 1.0
    best = math.inf
    for tm, tn, tile_eff in TILES:
        tiles = gemm.groups * math.ceil(gemm.m / tm) * math.ceil(gemm.n / tn)
        split = 1
        if tiles < sm_count:
            split = max(1, min(sm_count // tiles, gemm.k // MIN_K_PER_SPLIT))
        k_per_block = math.ceil(gemm.k / split)
        k_time = math.ceil(k_per_block / K_STEP) * K_STEP + K_OVERHEAD
        waves = math.ceil(tiles * split / sm_count)
        # time in units of (one SM's large-GEMM FLOP/s)^-1
        time = waves * 2.0 * tm * tn * k_time / tile_eff
        best = min(best, time)
    ideal = gemm.flops / sm_count
    return ideal / best


def large_gemm_k_efficiency(k: int) -> float:
    """The k quantization alone of a product whose m and n fill the GPU."""
    return k / (math.ceil(k / K_STEP) * K_STEP + K_OVERHEAD)


def forward_gemm(shape: GemmShape, batch: int) -> Gemm:
    if shape.batch_in_m:
        return Gemm(shape.groups, shape.m * batch, shape.n, shape.k)
    return Gemm(shape.groups * batch, shape.m, shape.n, shape.k)


def backward_gemms(shape: GemmShape, batch: int, input_gradient: bool) -> tuple[Gemm, ...]:
    """The products of the backward pass, the weight gradient last: the weight
    gradient dB = A^T @ dC (k x m by m x n: its reduction runs over the batch's rows or
    pixels, split-K territory) and, unless nobody needs it, the data gradient. For a dense layer or attention that is
    dA = dC @ B^T (m x n by n x k). For a convolution cuDNN computes it as a
    convolution of dy with the flipped filters: per pixel, the input channels as
    outputs (n = k / kernel area) and a reduction over output channels x kernel taps."""
    f = forward_gemm(shape, batch)
    weight_grad = Gemm(f.groups, f.k, f.n, f.m)
    if not input_gradient:
        return (weight_grad,)
    taps = shape.kernel[0] * shape.kernel[1]
    if taps > 1:
        data_grad = Gemm(f.groups, f.m, f.k // taps, f.n * taps)
    else:
        data_grad = Gemm(f.groups, f.m, f.k, f.n)
    return (data_grad, weight_grad)


#: Per memory-bound layer kind: (forward, backward) passes over its tensors, each as
#: (times the input tensor is read or written, times the output tensor is) and the
#: kernels launched. Forward of an activation: read x, write y; its backward reads
#: the saved tensor and dy and writes dx.
ELEMENTWISE_PASSES: dict[str, tuple[tuple[float, float, int], tuple[float, float, int]]] = {
    "relu": ((1, 1, 1), (1, 2, 1)),  # bwd: read y and dy, write dx
    "gelu": ((1, 1, 1), (2, 1, 1)),  # bwd: read x, write dx, read dy
    "dropout": ((1, 1, 1), (1, 1, 1)),  # the 1-byte mask is not counted
    "batchnorm": ((2, 1, 1), (3, 2, 1)),  # fwd: statistics pass + normalize pass
    "layernorm": ((1, 1, 1), (2, 2, 2)),  # a row fits on chip; parameter grads reduce again
    "softmax": ((1, 1, 1), (1, 2, 1)),  # a row fits on chip
    "lrn": ((2, 1, 1), (3, 2, 1)),
    "pool": ((1, 1, 1), (2, 2, 1)),  # bwd: zero dx, read dy and argmax, scatter into dx
    "add": ((1, 1, 1), (0, 0, 0)),  # input counts both operands; bwd aliases dy
    "concat": ((1, 1, 1), (1, 1, 1)),  # bwd slices the gradient back into copies
    "embedding": ((0, 2, 1), (0, 2, 1)),  # gather rows / scatter-add them back
    "permute": ((1, 1, 1), (1, 1, 1)),  # MoE token (un)permutation: gather rows; bwd scatters the gradient back
}
DEFAULT_PASSES = ((1, 1, 1), (1, 2, 1))


def elementwise_traffic(layer: Layer, backward: bool) -> tuple[float, int]:
    """(elements moved per sample, kernels launched) of a memory-bound layer's pass."""
    fwd, bwd = ELEMENTWISE_PASSES.get(layer.kind, DEFAULT_PASSES)
    reads_in, reads_out, kernels = bwd if backward else fwd
    return reads_in * layer.input_elements + reads_out * layer.output_elements, kernels


#: ``workload.fork_gradients`` values: how a framework sums the gradients of a tensor
#: that several layers read (a residual block's input, an Inception module's input),
#: before the backward pass of the layer that produced it.
#:
#: * ``sum``: one kernel reads every consumer's gradient and writes their sum (PyTorch
#:   autograd's input buffer, TensorFlow's AddN, MXNet's ElementwiseSum, Caffe's Split).
#: * ``copy_add``: Lua Torch's ``nn.ConcatTable`` copies the first branch's gradient into
#:   its own buffer, then adds each other branch's in place (``ConcatTable:_backward``):
#:   one kernel per consumer.
#: * ``fused``: no kernel of its own, no write: a whole-graph compiler (XLA) fuses the sum
#:   into the elementwise kernel that consumes it, or the kernel that produces a gradient
#:   adds it to the one already there (MXNet with ``MXNET_EXEC_ENABLE_ADDTO=1``, cuDNN's
#:   beta = 1): only the extra gradients are read.
FORK_GRADIENTS = ("sum", "copy_add", "fused")


def fork_gradient_traffic(layer: Layer, fork_gradients: str) -> tuple[float, int]:
    """(elements moved per sample, kernels launched) to sum the gradients of
    ``layer``'s output over its consumers (nothing unless it is read by two or more)."""
    consumers = layer.output_consumers
    if consumers < 2:
        return 0.0, 0
    out = layer.output_elements
    if fork_gradients == "sum":
        return (consumers + 1) * out, 1
    if fork_gradients == "copy_add":
        return (2 + 3 * (consumers - 1)) * out, consumers
    if fork_gradients == "fused":
        return (consumers - 1) * out, 0
    raise ValueError(f"unknown fork_gradients {fork_gradients!r}; expected one of {FORK_GRADIENTS}")


#: ``workload.kernel_fusion`` values: ``none`` runs every layer as its own kernels (eager
#: frameworks: PyTorch, TensorFlow without XLA, Caffe, Torch7); ``norm_activation``
#: runs a residual add and a ReLU that follow a batch norm inside the norm's kernels,
#: as cuDNN's and MXNet's fused BN-add-ReLU (NVIDIA's MXNet ResNet-50 in fp16), XLA's
#: auto-clustering and compilers that fuse elementwise epilogues do.
KERNEL_FUSIONS = ("none", "norm_activation")
FUSABLE_KINDS = frozenset({"relu", "add"})


def fused_into_norm(layers: Sequence[Layer], index: int, kernel_fusion: str) -> bool:
    """Whether ``layers[index]`` runs inside the batch norm before it (directly, or
    through a residual add that does): a ReLU or add right after a batch norm, or a
    ReLU right after such an add."""
    if kernel_fusion == "none" or layers[index].kind not in FUSABLE_KINDS:
        return False
    back = index - 1
    if back >= 0 and layers[back].kind == "add" and layers[index].kind == "relu":
        back -= 1
    return back >= 0 and layers[back].kind == "batchnorm"


#: Layers whose output an activation can be applied to in the kernel's epilogue.
EPILOGUE_KINDS = frozenset({"conv", "linear"})


def activation_in_epilogue(layers: Sequence[Layer], index: int) -> bool:
    """Whether ``layers[index]`` is a ReLU right after a convolution or dense layer, which
    XLA runs in that layer's epilogue (its fused-convolution rewrite calls cuDNN's
    convolution-bias-activation; dense layers get the same from cuBLAS epilogues): the
    forward pass launches nothing and moves nothing of its own. Its backward (read the
    output for the mask and the gradient, write the input's gradient) still runs."""
    return (layers[index].kind == "relu" and index > 0
            and layers[index - 1].kind in EPILOGUE_KINDS and layers[index - 1].output_consumers == 1)


def fused_traffic(layers: Sequence[Layer], index: int, backward: bool) -> float:
    """Elements per sample a layer fused into a batch norm (:func:`fused_into_norm`)
    still moves; it launches no kernel. Forward, an add reads its other operand (half
    its input counts both) and nothing is written: the norm's kernel writes the
    result once, as it would have anyway. Backward, the norm's kernel reads the ReLU's
    output for its mask, and writes the residual branch's gradient where an add was
    fused (unfused, the ReLU's backward wrote it and the add aliased it)."""
    layer = layers[index]
    if not backward:
        return 0.5 * layer.input_elements if layer.kind == "add" else 0.0
    if layer.kind == "add":
        return 0.0
    after_add = index > 0 and layers[index - 1].kind == "add"
    return (2.0 if after_add else 1.0) * layer.output_elements


@dataclass(frozen=True)
class DeviceRates:
    """What one device sustains, as the layer-time model uses it."""

    matrix_flops_s: float  # large-GEMM rate at the layer precision's matrix peak
    scalar_flops_s: float  # large-GEMM rate on CUDA cores (fp32 peak)
    bytes_s: float  # achievable memory bandwidth
    sm_count: int | None
    overhead_s: float  # per kernel launched
    act_bytes: int  # bytes per activation element
    overlap_loss: float = 0.0  # share of the shorter of compute and memory time not hidden
    conv_flops_s: float | None = None  # convolutions' large-GEMM rate (None: matrix_flops_s)

    @property
    def convolution_flops_s(self) -> float:
        """The large-GEMM rate convolutions run at."""
        return self.matrix_flops_s if self.conv_flops_s is None else self.conv_flops_s

    def roofline(self, compute_s: float, memory_s: float) -> float:
        return max(compute_s, memory_s) + self.overlap_loss * min(compute_s, memory_s)

    def gemm_s(self, gemm: Gemm, flops_s: float) -> float:
        return gemm.flops / (flops_s * gemm_efficiency(gemm, self.sm_count))


def winograd_tiles(shape: GemmShape) -> int:
    """4x4 output tiles of one sample of a (square-output) convolution."""
    side = max(1, round(math.sqrt(shape.m)))
    return math.ceil(side / 4) * math.ceil(shape.m / side / 4)


def winograd_products(shape: GemmShape, batch: int, input_gradient: bool) -> tuple[tuple[Gemm, int], ...]:
    """F(4x4, 3x3) as cuDNN's non-fused Winograd runs a 3x3 stride-1 convolution
    (Lavin & Gray, CVPR 2016; cuDNN has it for the forward pass, the data gradient and
    the weight gradient): 36 independent products over the 4x4 tiles, 4x fewer
    multiplies than direct convolution, plus memory-bound transforms that expand the
    tiles 36/16, write them out and read them back. Per pass (forward, data gradient
    when needed, weight gradient): the batched product and the elements the
    transforms move."""
    tiles = batch * winograd_tiles(shape)
    cin, cout, g = shape.k // 9, shape.n, shape.groups
    moved = tiles * g * 52 * (cin + cout)
    passes = [(Gemm(36 * g, tiles, cout, cin), moved)]
    if input_gradient:
        passes.append((Gemm(36 * g, tiles, cin, cout), moved))
    passes.append((Gemm(36 * g, cin, cout, tiles), moved))  # reduction over the tiles
    return tuple(passes)


def matrix_layer_times(layer: Layer, batch: int, rates: DeviceRates, *, weight_bytes: float,
                       algorithm: str | None, input_gradient: bool,
                       cuda_core_only: bool = False, time_factor: float = 1.0) -> tuple[float, float]:
    """(forward, backward) seconds of a conv / linear / attention layer."""
    shape = layer.gemm
    assert shape is not None
    if cuda_core_only or layer.kind not in ("conv", "linear", "attention"):
        flops_s = rates.scalar_flops_s
    elif layer.kind == "conv":
        flops_s = rates.convolution_flops_s
    else:
        flops_s = rates.matrix_flops_s
    activations = (layer.input_elements + layer.output_elements) * batch * rates.act_bytes
    fwd = forward_gemm(shape, batch)
    bwd = backward_gemms(shape, batch, input_gradient)
    kernels_bwd = len(bwd)
    if algorithm == "winograd":
        # transforms are memory-bound kernels of their own: input in, 36/16 of it out;
        # the products' 36/16 back in and the output out (per pass and operand)
        passes = [3 * rates.overhead_s + rates.gemm_s(product, rates.scalar_flops_s)
                  + moved * rates.act_bytes / rates.bytes_s
                  for product, moved in winograd_products(shape, batch, input_gradient)]
        passes[-1] *= WGRAD_FACTOR  # the weight-gradient pass
        return passes[0], sum(passes[1:])
    fwd_s = rates.overhead_s + rates.roofline(time_factor * rates.gemm_s(fwd, flops_s),
                                              (activations + weight_bytes) / rates.bytes_s)
    # the weight gradient is the last product (backward_gemms)
    bwd_compute = time_factor * (sum(rates.gemm_s(g, flops_s) for g in bwd[:-1])
                                 + WGRAD_FACTOR * rates.gemm_s(bwd[-1], flops_s))
    bwd_s = kernels_bwd * rates.overhead_s + rates.roofline(bwd_compute,
                                                            (2 * activations + 2 * weight_bytes) / rates.bytes_s)
    return fwd_s, bwd_s

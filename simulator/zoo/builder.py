"""Shape-propagating network builder.

:class:`NetBuilder` tracks the shape of the "current" activation tensor of one sample
and appends a :class:`~simulator.zoo.core.Layer` for every operation, computing its
parameters, FLOPs and activation sizes from that shape. Image tensors are (C, H, W);
token tensors are (seq,) for ids and (seq, features) afterwards; ``linear`` acts on
the last dimension, like ``torch.nn.Linear``.

Branches (residual shortcuts, Inception modules) are built by rewinding ``shape`` to
the block input for each branch and joining them with :meth:`NetBuilder.add` or
:meth:`NetBuilder.concat`; :meth:`NetBuilder.branches` and
:meth:`NetBuilder.residual` wrap that pattern. Layers are recorded in the order
PyTorch would execute them (branch after branch, then the join).

FLOP conventions (a multiply-add is 2 FLOPs; per output element unless stated):

* conv: ``2 * Cout*Hout*Wout * (Cin/groups * kh*kw)`` (+ ``Cout*Hout*Wout`` for bias)
* linear: ``2 * in * out`` per row (+ ``out`` per row for bias)
* batchnorm / layernorm: ``NORM_FLOPS_PER_ELEMENT`` (scale and shift; the
  statistics are reductions of the same order and are not counted separately)
* relu / dropout: 1; gelu: ``GELU_FLOPS_PER_ELEMENT``; softmax:
  ``SOFTMAX_FLOPS_PER_ELEMENT``
* max/avg pool: the number of window elements (k*k for a fixed window)
* add: one per output element per extra input; concat and embedding: 0 (copies /
  gathers only move memory)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace

from simulator.zoo.core import GemmShape, Layer

Shape = tuple[int, ...]
IntPair = int | tuple[int, int]

NORM_FLOPS_PER_ELEMENT = 2
GELU_FLOPS_PER_ELEMENT = 8  # tanh approximation: cube, 2 mul-adds, tanh, mul, add
SOFTMAX_FLOPS_PER_ELEMENT = 5  # scale, max-subtract, exp, sum, divide


def _pair(value: IntPair) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def _elements(shape: Shape) -> int:
    return math.prod(shape)


def conv_out_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output length of a convolution along one axis (PyTorch, no dilation)."""
    out = (size + 2 * padding - kernel) // stride + 1
    if out < 1:
        raise ValueError(f"kernel {kernel} does not fit input of size {size} with padding {padding}")
    return out


def pool_out_size(size: int, kernel: int, stride: int, padding: int, ceil_mode: bool) -> int:
    """Output length of a pooling window along one axis, PyTorch semantics."""
    span = size + 2 * padding - kernel
    if span < 0:
        raise ValueError(f"pool kernel {kernel} does not fit input of size {size}")
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    # PyTorch drops a last window that would start entirely inside the right padding.
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def adaptive_bins(size: int, out: int) -> list[int]:
    """Window lengths PyTorch's adaptive pooling uses to map ``size`` onto ``out``."""
    return [math.ceil((i + 1) * size / out) - (i * size) // out for i in range(out)]


class NetBuilder:
    """Accumulates layers while propagating the current per-sample tensor shape."""

    def __init__(self, input_shape: Shape) -> None:
        self.shape: Shape = tuple(input_shape)
        self._layers: list[Layer] = []
        self._names: set[str] = set()

    # -- generic -------------------------------------------------------------------

    def emit(
        self,
        name: str,
        kind: str,
        *,
        output_shape: Shape,
        flops: int,
        params: int = 0,
        input_elements: int | None = None,
        gemm: GemmShape | None = None,
        parameter_tensors: int | None = None,
    ) -> Layer:
        """Record a layer and make ``output_shape`` the current shape.

        ``input_elements`` defaults to the size of the current tensor; pass it for
        operations with several inputs.
        """
        if name in self._names:
            raise ValueError(f"duplicate layer name {name!r}")
        layer = Layer(
            name=name,
            kind=kind,
            params=params,
            forward_flops=flops,
            input_elements=_elements(self.shape) if input_elements is None else input_elements,
            output_elements=_elements(output_shape),
            gemm=gemm,
            parameter_tensors=parameter_tensors,
        )
        self._names.add(name)
        self._layers.append(layer)
        self.shape = tuple(output_shape)
        return layer

    def layers(self) -> tuple[Layer, ...]:
        """The layers recorded so far, in execution order."""
        return tuple(self._layers)

    def count(self) -> int:
        """How many layers are recorded."""
        return len(self._layers)

    def last_name(self) -> str:
        """The name of the last layer recorded."""
        return self._layers[-1].name

    def flatten(self) -> None:
        """``torch.flatten(x, 1)``: one feature vector per sample, no layer."""
        self.shape = (_elements(self.shape),)

    def _elementwise(self, name: str, kind: str, flops_per_element: int, params: int = 0) -> Layer:
        return self.emit(
            name, kind, output_shape=self.shape, flops=flops_per_element * _elements(self.shape), params=params
        )

    def _chw(self) -> tuple[int, int, int]:
        if len(self.shape) != 3:
            raise ValueError(f"expected a (C, H, W) tensor, have {self.shape}")
        c, h, w = self.shape
        return c, h, w

    # -- image layers --------------------------------------------------------------

    def conv(
        self,
        name: str,
        out_channels: int,
        kernel: IntPair,
        stride: IntPair = 1,
        padding: IntPair = 0,
        *,
        bias: bool = False,
        groups: int = 1,
    ) -> Layer:
        cin, h, w = self._chw()
        if cin % groups or out_channels % groups:
            raise ValueError(f"{name}: channels {cin}->{out_channels} not divisible by groups={groups}")
        (kh, kw), (sh, sw), (ph, pw) = _pair(kernel), _pair(stride), _pair(padding)
        ho, wo = conv_out_size(h, kh, sh, ph), conv_out_size(w, kw, sw, pw)
        fan_in = cin // groups * kh * kw
        outputs = out_channels * ho * wo
        return self.emit(
            name,
            "conv",
            output_shape=(out_channels, ho, wo),
            params=out_channels * fan_in + (out_channels if bias else 0),
            flops=2 * outputs * fan_in + (outputs if bias else 0),
            gemm=GemmShape(groups, ho * wo, out_channels // groups, fan_in, (kh, kw), (sh, sw)),
        )

    def batchnorm(self, name: str) -> Layer:
        # gamma and beta per channel; running mean/var are buffers, not parameters
        return self._elementwise(name, "batchnorm", NORM_FLOPS_PER_ELEMENT, params=2 * self._chw()[0])

    def _pool(self, name: str, kernel: IntPair, stride: IntPair | None, padding: IntPair, ceil_mode: bool) -> Layer:
        c, h, w = self._chw()
        (kh, kw) = _pair(kernel)
        (sh, sw) = _pair(kernel if stride is None else stride)
        (ph, pw) = _pair(padding)
        ho, wo = pool_out_size(h, kh, sh, ph, ceil_mode), pool_out_size(w, kw, sw, pw, ceil_mode)
        return self.emit(name, "pool", output_shape=(c, ho, wo), flops=c * ho * wo * kh * kw)

    def maxpool(
        self, name: str, kernel: IntPair, stride: IntPair | None = None, padding: IntPair = 0, *, ceil_mode: bool = False
    ) -> Layer:
        return self._pool(name, kernel, stride, padding, ceil_mode)

    def avgpool(
        self, name: str, kernel: IntPair, stride: IntPair | None = None, padding: IntPair = 0, *, ceil_mode: bool = False
    ) -> Layer:
        return self._pool(name, kernel, stride, padding, ceil_mode)

    def adaptive_avgpool(self, name: str, output_size: IntPair) -> Layer:
        c, h, w = self._chw()
        ho, wo = _pair(output_size)
        # every output element sums its (possibly overlapping) window
        window_sum = sum(adaptive_bins(h, ho)) * sum(adaptive_bins(w, wo))
        return self.emit(name, "pool", output_shape=(c, ho, wo), flops=c * window_sum)

    # -- generic layers ------------------------------------------------------------

    def linear(self, name: str, out_features: int, *, bias: bool = True, tied: bool = False,
               parameter_tensors: int | None = None) -> Layer:
        """Dense layer on the last dimension. ``tied``: weight shared with an earlier
        layer (GPT-2's LM head), so it owns no parameters but still costs FLOPs.
        ``parameter_tensors``: the tensors a framework holds its parameters in, where one
        product stands for several dense layers (default: a weight and a bias)."""
        *rows_shape, in_features = self.shape
        rows = _elements(tuple(rows_shape))
        params = in_features * out_features + (out_features if bias else 0)
        return self.emit(
            name,
            "linear",
            output_shape=(*rows_shape, out_features),
            params=0 if tied else params,
            flops=rows * (2 * in_features * out_features + (out_features if bias else 0)),
            gemm=GemmShape(1, rows, out_features, in_features),
            parameter_tensors=parameter_tensors,
        )

    def layernorm(self, name: str) -> Layer:
        # gamma and beta over the normalised (last) dimension
        return self._elementwise(name, "layernorm", NORM_FLOPS_PER_ELEMENT, params=2 * self.shape[-1])

    def relu(self, name: str) -> Layer:
        return self._elementwise(name, "relu", 1)

    def gelu(self, name: str) -> Layer:
        return self._elementwise(name, "gelu", GELU_FLOPS_PER_ELEMENT)

    def softmax(self, name: str) -> Layer:
        return self._elementwise(name, "softmax", SOFTMAX_FLOPS_PER_ELEMENT)

    def dropout(self, name: str) -> Layer:
        return self._elementwise(name, "dropout", 1)

    def embedding(self, name: str, num_embeddings: int, dim: int) -> Layer:
        """Table lookup: (seq,) ids -> (seq, dim). Gathers only, so 0 FLOPs."""
        return self.emit(
            name, "embedding", output_shape=(*self.shape, dim), params=num_embeddings * dim, flops=0
        )

    # -- joins ---------------------------------------------------------------------

    def add(self, name: str, inputs: Sequence[Shape]) -> Layer:
        """Element-wise sum of equally shaped tensors (residual joins)."""
        if len(inputs) < 2 or any(tuple(s) != tuple(inputs[0]) for s in inputs):
            raise ValueError(f"{name}: add needs >= 2 equal shapes, got {list(inputs)}")
        out = tuple(inputs[0])
        n = _elements(out)
        return self.emit(
            name, "add", output_shape=out, flops=(len(inputs) - 1) * n, input_elements=len(inputs) * n
        )

    def concat(self, name: str, inputs: Sequence[Shape]) -> Layer:
        """Concatenate along the channel (first) dimension."""
        rest = {tuple(s[1:]) for s in inputs}
        if len(inputs) < 2 or len(rest) != 1:
            raise ValueError(f"{name}: concat needs >= 2 shapes equal past dim 0, got {list(inputs)}")
        out = (sum(s[0] for s in inputs), *rest.pop())
        return self.emit(
            name, "concat", output_shape=out, flops=0, input_elements=sum(_elements(s) for s in inputs)
        )

    def fork(self, paths: int) -> None:
        """The current tensor is read by ``paths`` layers: its producer (the last layer
        recorded) gets that many consumers, whose gradients backward sums. A fork of the
        network's input has no producer and no gradient to sum."""
        if paths >= 2 and self._layers:
            last = self._layers[-1]
            self._layers[-1] = replace(last, output_consumers=last.output_consumers + paths - 1)

    def mark_consumers(self, name: str, consumers: int) -> None:
        """Set how many layers read the output of the recorded layer ``name``."""
        index = next(i for i, layer in enumerate(self._layers) if layer.name == name)
        self._layers[index] = replace(self._layers[index], output_consumers=consumers)

    def branches(self, name: str, *paths: Callable[[], object]) -> Layer:
        """Run each path from the current tensor, then concatenate their outputs (what a
        path returns is not read)."""
        self.fork(len(paths))
        start = self.shape
        outputs: list[Shape] = []
        for path in paths:
            self.shape = start
            path()
            outputs.append(self.shape)
        return self.concat(name, outputs)

    def residual(self, name: str, main: Callable[[], None], shortcut: Callable[[], None] | None = None) -> Layer:
        """``main(x) + shortcut(x)`` (identity shortcut when None), recorded in
        torchvision order: main path, then shortcut, then the add."""
        self.fork(2)
        start = self.shape
        main()
        main_shape = self.shape
        self.shape = start
        if shortcut is not None:
            shortcut()
        return self.add(name, [main_shape, self.shape])



class ForkReaders:
    """How many layers read each recorded layer's output, for a model built entry by
    entry from names (a model file): each entry names its inputs; an entry that records
    no layer (a view: flatten, reshape) stands for its input's producer."""

    def __init__(self, input_name: str) -> None:
        self._producer: dict[str, str | None] = {input_name: None}  # entry name -> recorded layer
        self._readers: dict[str, int] = {}  # recorded layer -> layers that read it

    def entry(self, b: NetBuilder, name: str, inputs: Sequence[str], recorded_before: int) -> None:
        """The entry ``name`` reading ``inputs`` was just emitted on ``b`` (which had
        ``recorded_before`` layers before it)."""
        if b.count() == recorded_before:  # a view reads nothing; it renames its input
            self._producer[name] = self._producer.get(inputs[0])
            return
        for read in (self._producer.get(i) for i in inputs):
            if read is not None:
                self._readers[read] = self._readers.get(read, 0) + 1
        self._producer[name] = b.last_name()

    def mark(self, b: NetBuilder, stated: dict[str, int]) -> None:
        """Give every layer read by two or more its count (``stated`` counts win)."""
        for name, count in {**self._readers, **stated}.items():
            if count >= 2 or name in stated:
                b.mark_consumers(name, count)

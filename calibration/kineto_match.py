"""Matching a trace's forward operators to a model's layers by their shapes.

Each top-level forward operator (one the model's Python code called: ``aten::conv2d``,
``aten::batch_norm``, ``aten::relu``, ``aten::add``, ``aten::linear``, ...) has a layer
kind and, from its ``Input Dims`` (the profiler's ``record_shapes=True``), the batch
(the first input's leading dimension) and the elements per sample it reads. A zoo
layer matches an operator of its kind that reads as many elements per sample and, for
matrix layers, has the weight of its GEMM shape: a convolution's
``[out, in / groups, kh, kw]`` weight gives ``groups x n = out``, ``k = in / groups x kh
x kw`` and the kernel, and its stride argument the stride; a linear layer's weight
gives ``n`` and ``k``; normalization layers' weights give their parameter count.

Layers and operators are both in execution order, so the match is an order-preserving
alignment: the longest common subsequence under that relation (:func:`align`),
computed row by row with numpy. Operators that are no layer (the loss, views, a
buffer update) and layers without an operator (``other``) stay unmatched.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from simulator.zoo import Layer

from .kineto_trace import Event

KIND_OF_OP = {
    **dict.fromkeys(("aten::conv1d", "aten::conv2d", "aten::conv3d", "aten::convolution", "aten::_convolution"),
                    "conv"),
    **dict.fromkeys(("aten::linear", "aten::addmm", "aten::matmul", "aten::mm"), "linear"),
    "aten::batch_norm": "batchnorm",
    "aten::layer_norm": "layernorm",
    **dict.fromkeys(("aten::relu", "aten::relu_", "aten::threshold", "aten::threshold_"), "relu"),
    "aten::gelu": "gelu",
    **dict.fromkeys(("aten::max_pool1d", "aten::max_pool2d", "aten::max_pool3d", "aten::avg_pool1d",
                     "aten::avg_pool2d", "aten::avg_pool3d", "aten::adaptive_avg_pool1d",
                     "aten::adaptive_avg_pool2d", "aten::adaptive_avg_pool3d", "aten::adaptive_max_pool2d",
                     "aten::max_pool2d_with_indices"), "pool"),
    **dict.fromkeys(("aten::add", "aten::add_"), "add"),
    **dict.fromkeys(("aten::cat", "aten::concat", "aten::concatenate"), "concat"),
    **dict.fromkeys(("aten::softmax", "aten::_softmax"), "softmax"),
    **dict.fromkeys(("aten::dropout", "aten::dropout_", "aten::native_dropout", "aten::feature_dropout"), "dropout"),
    "aten::embedding": "embedding",
    **dict.fromkeys(("aten::scaled_dot_product_attention", "aten::_scaled_dot_product_attention"), "attention"),
}


@dataclass(frozen=True, slots=True)
class OpShape:
    """What a forward operator's shapes say about the layer it runs."""

    kind: str
    batch: int
    sample_elements: int  # input elements per sample (summed over the inputs of add/concat)
    weight: tuple[int, ...] | None = None  # conv [out, in/groups, *kernel]; linear (out, in)
    stride: tuple[int, ...] | None = None
    params: int | None = None  # normalization and embedding weights


def _tensors(dims: Any) -> list[tuple[int, ...]]:
    """The shapes in an ``Input Dims`` list, a tensor list's members flattened; an empty
    entry (a scalar or None argument) is left out."""
    out: list[tuple[int, ...]] = []
    for entry in dims if isinstance(dims, list) else []:
        if isinstance(entry, list) and entry and all(isinstance(d, int) and not isinstance(d, bool) for d in entry):
            out.append(tuple(entry))
        elif isinstance(entry, list) and entry and all(isinstance(d, list) for d in entry):
            out.extend(_tensors(entry))
    return out


def _concrete(event: Event, index: int) -> tuple[int, ...] | None:
    values = event.args.get("Concrete Inputs")
    if not isinstance(values, list) or index >= len(values) or not isinstance(values[index], str):
        return None
    try:
        value = ast.literal_eval(values[index]) if values[index] else None
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    if isinstance(value, list) and value and all(isinstance(v, int) for v in value):
        return tuple(value)
    return None


def op_shape(event: Event) -> OpShape | None:
    """The shape signature of a top-level forward operator; None when it is no layer
    kind or its shapes were not recorded."""
    kind = KIND_OF_OP.get(event.name)
    dims = event.args.get("Input Dims")
    if kind is None or not isinstance(dims, list):
        return None
    raw = [tuple(d) if isinstance(d, list) and all(isinstance(x, int) for x in d) else () for d in dims]
    tensors = _tensors(dims)
    if not tensors:
        return None
    x, weight, params, stride = tensors[0], None, None, None
    if kind == "conv" and len(tensors) >= 2:
        weight, stride = tensors[1], _concrete(event, 3)
    elif kind == "linear":
        if event.name == "aten::addmm" and len(raw) >= 3 and len(raw[1]) >= 2 and len(raw[2]) == 2:
            x, weight = raw[1], (raw[2][1], raw[2][0])
        elif event.name == "aten::linear" and len(raw) >= 2 and len(raw[1]) == 2:
            weight = raw[1]
        elif len(raw) >= 2 and len(raw[1]) == 2:  # matmul / mm by a matrix: [in, out]
            weight = (raw[1][1], raw[1][0])
    elif kind == "batchnorm":
        params = 2 * raw[1][0] if len(raw) >= 2 and len(raw[1]) == 1 else 0
    elif kind == "layernorm":
        params = 2 * math.prod(raw[2]) if len(raw) >= 3 and raw[2] else 0
    elif kind == "embedding" and len(tensors) >= 2:
        params, x = math.prod(tensors[0]), tensors[1]
    if len(x) < 2:
        return None
    batch = x[0]
    if kind in ("add", "concat"):
        joined = [t for t in tensors if len(t) == len(x) and t[0] == batch]
        if len(joined) < 2:  # a tensor plus a scalar or a broadcast bias: not a join of layers
            return None
        sample = sum(math.prod(t[1:]) for t in joined)
    else:
        sample = math.prod(x[1:])
    return OpShape(kind, batch, sample, weight, stride, params)


def matches(layer: Layer, op: OpShape) -> bool:
    """Whether ``op`` can be ``layer``'s forward operator (see the module doc)."""
    if op.kind != layer.kind or op.sample_elements != layer.input_elements and layer.kind != "embedding":
        return False
    gemm = layer.gemm
    if layer.kind == "conv" and op.weight is not None and len(op.weight) >= 3:
        out, per_group, kernel = op.weight[0], op.weight[1], op.weight[2:]
        if gemm is None:
            return layer.params in (math.prod(op.weight), math.prod(op.weight) + out)
        if (gemm.groups * gemm.n, gemm.k) != (out, per_group * math.prod(kernel)):
            return False
        if len(kernel) == 2 and kernel != gemm.kernel:
            return False
        return op.stride is None or len(op.stride) != 2 or op.stride == gemm.stride
    if layer.kind == "linear" and op.weight is not None:
        out, k = op.weight
        if gemm is not None:
            return (gemm.n, gemm.k) == (out, k)
        return layer.params in (out * k, out * k + out)
    if layer.kind in ("batchnorm", "layernorm", "embedding") and op.params is not None:
        return op.params == layer.params
    return True


def align(layers: Sequence[Layer], ops: Sequence[OpShape | None]) -> dict[int, int]:
    """Operator index -> layer index: the largest order-preserving matching."""
    n_ops = len(ops)
    by_key: dict[tuple[str, int], list[int]] = {}
    for j, op in enumerate(ops):
        if op is not None:
            by_key.setdefault((op.kind, op.sample_elements), []).append(j)
    hits: list[np.ndarray] = []
    for layer in layers:
        row = np.zeros(n_ops, dtype=np.int32)
        candidates = by_key.get((layer.kind, layer.input_elements), []) if layer.kind != "embedding" else [
            j for j, op in enumerate(ops) if op is not None and op.kind == "embedding"]
        for j in candidates:
            op = ops[j]
            if op is not None and matches(layer, op):
                row[j] = 1
        hits.append(row)
    # table[i][j]: the most pairs among the first i layers and first j operators
    table = np.zeros((len(layers) + 1, n_ops + 1), dtype=np.int32)
    for i, row in enumerate(hits, start=1):
        prev = table[i - 1]
        best = np.maximum(prev[1:], prev[:-1] + row)
        table[i, 1:] = np.maximum.accumulate(best)
    pairs: dict[int, int] = {}
    i, j = len(layers), n_ops
    while i > 0 and j > 0:
        if hits[i - 1][j - 1] and table[i, j] == table[i - 1, j - 1] + 1:
            pairs[j - 1] = i - 1
            i, j = i - 1, j - 1
        elif table[i - 1, j] >= table[i, j - 1]:
            i -= 1
        else:
            j -= 1
    return pairs

"""Core records of the model zoo: :class:`Layer` and :class:`Model`.

A model is described as a flat, forward-ordered tuple of layers. Each layer carries
only what the simulator needs to cost it for ONE sample (one image or one sequence):

* ``params`` - trainable parameters, i.e. the gradient it produces in the backward
  pass (weights + biases; batch-norm running statistics are buffers, not counted);
* ``forward_flops`` - arithmetic of the forward pass, a multiply-add counted as 2;
* ``input_elements`` / ``output_elements`` - activation tensor sizes, which give the
  bytes a layer moves (roofline) and the activations kept for the backward pass;
* ``output_consumers`` - how many layers read the output (2 or more: a fork, such as
  a residual block's input, whose gradients the backward pass must sum before this
  layer's own backward runs).

Everything is derived from layer shapes by :mod:`simulator.zoo.builder`; nothing here
is a typed-in total.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

#: The layer kinds the zoo emits; other modules may dispatch on these strings.
LAYER_KINDS: frozenset[str] = frozenset(
    {
        "conv",
        "linear",
        "batchnorm",
        "layernorm",
        "relu",
        "gelu",
        "pool",
        "add",
        "concat",
        "softmax",
        "attention",
        "embedding",
        "dropout",
        "lrn",
        "permute",  # MoE tokens gathered into expert order and back (memory-bound)
        "other",  # a user's layer given by numbers that is none of the above (timed as element-wise)
    }
)

#: What one sample is, per model family.
SAMPLE_UNITS: frozenset[str] = frozenset({"images", "sequences"})


@dataclass(frozen=True, slots=True)
class GemmShape:
    """The matrix product a matrix layer's forward pass runs for ONE sample.

    ``groups`` independent products of an (m x k) by a (k x n) matrix. For
    convolutions (implicit GEMM) m is the output pixels, n the output channels per
    group and k the fan-in (input channels per group x kernel area); for dense
    layers m is the rows (tokens), n the output and k the input features; for
    attention, one product per head. A batch multiplies m (``batch_in_m``) or, for
    attention, the number of independent products. ``kernel`` and ``stride`` decide
    which convolution algorithms can run the layer (Winograd needs 3x3, stride 1).
    """

    groups: int
    m: int
    n: int
    k: int
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    batch_in_m: bool = True

    def __post_init__(self) -> None:
        for field in ("groups", "m", "n", "k"):
            value = getattr(self, field)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"GemmShape.{field} must be a positive int, got {value!r}")


@dataclass(frozen=True, slots=True)
class Layer:
    """One layer (or tensor operation) of a model, costed for one sample."""

    name: str  # unique within the model, e.g. "layer3.2.conv1"
    kind: str  # one of LAYER_KINDS
    params: int  # trainable parameters (weights + biases)
    forward_flops: int  # forward FLOPs for one sample, multiply-add = 2
    input_elements: int  # input activation elements for one sample (sum over inputs)
    output_elements: int  # output activation elements for one sample
    gemm: GemmShape | None = None  # the matrix product of conv / linear / attention layers
    output_consumers: int = 1  # layers that read the output; >= 2 is a fork whose gradients are summed
    parameter_tensors: int | None = None  # trainable tensors held; None: derived (parameter_tensor_count)

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("layer name must not be empty")
        if isinstance(self.output_consumers, bool) or not isinstance(self.output_consumers, int) \
                or self.output_consumers < 1:
            raise ValueError(f"layer {self.name!r}: output_consumers must be a positive int, "
                             f"got {self.output_consumers!r}")
        if self.parameter_tensors is not None and (
                isinstance(self.parameter_tensors, bool) or not isinstance(self.parameter_tensors, int)
                or self.parameter_tensors < 0 or (self.parameter_tensors == 0) != (self.params == 0)):
            raise ValueError(f"layer {self.name!r}: parameter_tensors must be a non-negative int, 0 exactly when "
                             f"the layer has no parameters, got {self.parameter_tensors!r}")
        if self.kind not in LAYER_KINDS:
            raise ValueError(f"layer {self.name!r}: unknown kind {self.kind!r}")
        for field in ("params", "forward_flops", "input_elements", "output_elements"):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"layer {self.name!r}: {field} must be a non-negative int, got {value!r}")

    @property
    def parameter_tensor_count(self) -> int:
        """Trainable tensors the layer holds, as frameworks store them (an optimizer that
        updates tensor by tensor launches its kernels once for each): a weight, plus a
        bias where the parameters exceed the weight's; a norm's scale and shift."""
        if self.parameter_tensors is not None:
            return self.parameter_tensors
        if self.params == 0:
            return 0
        if self.kind in ("batchnorm", "layernorm"):
            return 2
        if self.gemm is not None:
            return 2 if self.params > self.gemm.groups * self.gemm.n * self.gemm.k else 1
        return 1


@dataclass(frozen=True)
class Model:
    """A named model: its layers in forward execution order plus provenance."""

    name: str  # zoo name, e.g. "resnet50"
    description: str  # one line
    source: str  # architecture paper and reference parameter count
    sample_unit: str  # "images" or "sequences"
    input_shape: tuple[int, ...]  # per sample, e.g. (3, 224, 224) or (seq_len,)
    layers: tuple[Layer, ...]  # forward execution order

    def __post_init__(self) -> None:
        if self.sample_unit not in SAMPLE_UNITS:
            raise ValueError(f"model {self.name!r}: sample_unit must be one of {sorted(SAMPLE_UNITS)}")
        if not self.layers:
            raise ValueError(f"model {self.name!r} has no layers")
        seen: set[str] = set()
        for layer in self.layers:
            if layer.name in seen:
                raise ValueError(f"model {self.name!r}: duplicate layer name {layer.name!r}")
            seen.add(layer.name)

    # cached_property writes straight into the instance __dict__, so it works on a
    # frozen (non-slots) dataclass; layers are immutable so the cache never goes stale.
    @cached_property
    def total_params(self) -> int:
        """Trainable parameters of the whole model (tied weights counted once)."""
        return sum(layer.params for layer in self.layers)

    @cached_property
    def parameter_tensors(self) -> int:
        """Trainable tensors of the whole model (:attr:`Layer.parameter_tensor_count`)."""
        return sum(layer.parameter_tensor_count for layer in self.layers)

    @cached_property
    def total_forward_flops(self) -> int:
        """Forward FLOPs for one sample."""
        return sum(layer.forward_flops for layer in self.layers)

    @cached_property
    def parameter_layers(self) -> tuple[Layer, ...]:
        """Layers that own trainable parameters (and so produce gradients), in order."""
        return tuple(layer for layer in self.layers if layer.params > 0)

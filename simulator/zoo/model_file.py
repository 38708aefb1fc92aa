"""Model files: a user's own model as a list of layers (README "Bring your own model").

A model file is YAML (or JSON) data with a name, the per-sample input shape and a list
of layers in execution order. Each layer is given either

* **by shape**: a layer kind the zoo builder knows (``conv``, ``linear``, ``batchnorm``,
  ``maxpool``, ``attention``, ...) with its hyper-parameters; its parameters, FLOPs and
  activation sizes come from :class:`~simulator.zoo.builder.NetBuilder`, the same
  formulas as the zoo's own models; or
* **by numbers**: any zoo layer kind (or ``other``) with ``forward_flops`` and
  ``output_elements`` (``params``, ``input_elements`` and a ``gemm`` shape optional).
  Sizes are in elements, not bytes, so one file serves every precision (bytes =
  elements x the precision's bytes per element, as for zoo layers).

A layer reads the output of the layer listed before it, or of the layer named in its
``input`` (``input`` names the model's input); ``add`` and ``concat`` name their
``inputs``. ``flatten`` and ``reshape`` entries change the shape later layers see and
cost nothing. This module only validates data and builds the :class:`Model`; reading
files (with the input limits) is :func:`simulator.loading.load_model_file`'s job.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag, ValidationError, model_validator

from simulator.zoo.builder import ForkReaders, NetBuilder, Shape
from simulator.zoo.core import LAYER_KINDS, SAMPLE_UNITS, GemmShape, Layer, Model
from simulator.zoo.transformer import TransformerConfig, _attention_core

#: The name ``input`` in a layer's ``input``/``inputs`` means the model's input.
INPUT = "input"
#: Most layers a model file may list (a typo's runaway, not a real limit).
MAX_LAYERS = 100_000
MAX_COUNT = 10**18  # any parameter, FLOP or element count


def _integral(value: Any) -> Any:
    """Accept ``1.2e9`` for a count (YAML reads it as a float) when it is a whole number."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return value


Count = Annotated[int, BeforeValidator(_integral), Field(ge=0, le=MAX_COUNT)]
Positive = Annotated[int, Field(ge=1, le=MAX_COUNT)]
NonNegative = Annotated[int, Field(ge=0, le=MAX_COUNT)]
# (height, width) pairs: lists, as YAML writes them
Pair = Positive | Annotated[list[Positive], Field(min_length=2, max_length=2)]
PadPair = NonNegative | Annotated[list[NonNegative], Field(min_length=2, max_length=2)]
LayerName = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\s\x00-\x1f]+$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class _LayerSpec(_Strict):
    kind: str  # each spec narrows it to its own kinds (the union's tag)
    name: LayerName = Field(description="Unique layer name, e.g. layer1.0.conv1.")
    input: LayerName | None = Field(None, description="The layer whose output this one reads; default: the one before.")


class ConvSpec(_LayerSpec):
    kind: Literal["conv"]
    out_channels: Positive
    kernel: Pair
    stride: Pair = 1
    padding: PadPair = 0
    bias: bool = False
    groups: Positive = 1


class LinearSpec(_LayerSpec):
    kind: Literal["linear"]
    out_features: Positive
    bias: bool = True
    tied: bool = Field(False, description="Weight shared with an earlier layer: FLOPs but no parameters.")


class ElementwiseSpec(_LayerSpec):
    kind: Literal["batchnorm", "layernorm", "relu", "gelu", "softmax", "dropout"]


class PoolSpec(_LayerSpec):
    kind: Literal["maxpool", "avgpool"]
    kernel: Pair
    stride: Pair | None = None
    padding: PadPair = 0
    ceil_mode: bool = False


class AdaptivePoolSpec(_LayerSpec):
    kind: Literal["adaptive_avgpool"]
    output_size: Pair


class EmbeddingSpec(_LayerSpec):
    kind: Literal["embedding"]
    num_embeddings: Positive
    dim: Positive


class JoinSpec(_LayerSpec):
    kind: Literal["add", "concat"]
    inputs: list[LayerName] = Field(min_length=2, description="The layers (or input) joined.")


class AttentionSpec(_LayerSpec):
    """The zoo's attention core on a fused QKV output (seq, 3*hidden): scores, softmax,
    dropout and context, recorded as ``NAME.scores`` ... ``NAME.context``."""

    kind: Literal["attention"]
    heads: Positive
    hidden: Positive

    @model_validator(mode="after")
    def _heads_divide(self) -> AttentionSpec:
        if self.hidden % self.heads:
            raise ValueError(f"hidden {self.hidden} is not divisible by heads {self.heads}")
        return self


class ReshapeSpec(_LayerSpec):
    """No layer and no cost: ``flatten`` (one feature vector per sample) or ``reshape``
    (a view with the given per-sample shape)."""

    kind: Literal["flatten", "reshape"]
    shape: list[Positive] | None = None

    @model_validator(mode="after")
    def _shape_for_reshape(self) -> ReshapeSpec:
        if (self.kind == "reshape") != (self.shape is not None):
            raise ValueError("reshape needs shape; flatten takes none")
        return self


class GemmSpec(_Strict):
    """The matrix product a layer given by numbers runs for one sample."""

    groups: Positive = 1
    m: Positive
    n: Positive
    k: Positive
    kernel: Annotated[list[Positive], Field(min_length=2, max_length=2)] = [1, 1]
    stride: Annotated[list[Positive], Field(min_length=2, max_length=2)] = [1, 1]
    batch_in_m: bool = True


class ExplicitSpec(_LayerSpec):
    """A layer given by its numbers for one sample."""

    kind: str
    forward_flops: Count
    params: Count = 0
    input_elements: Count | None = Field(None, description="Default: the size of the input tensor.")
    output_elements: Count | None = Field(None, description="Default: the size of output_shape.")
    output_shape: list[Positive] | None = Field(None, description="Lets later layers be given by shape.")
    gemm: GemmSpec | None = None
    output_consumers: Positive | None = Field(None, description="Layers that read the output (2 or more: a fork "
                                              "whose gradients backward sums). Default: counted from the inputs named.")
    parameter_tensors: Count | None = Field(None, description="Tensors the parameters are held in. Default: a "
                                            "weight, plus a bias where params exceed the gemm's; 2 for a norm.")

    @model_validator(mode="after")
    def _consistent(self) -> ExplicitSpec:
        if self.kind in ("conv", "linear", "attention") and self.gemm is None:
            raise ValueError(f"a {self.kind} layer given by numbers needs gemm: {{m, n, k}} (its matrix product "
                             "per sample) so the GEMM model can time it")
        if self.output_shape is None and self.output_elements is None:
            raise ValueError("give output_elements or output_shape")
        if self.output_shape is not None and self.output_elements is not None \
                and math.prod(self.output_shape) != self.output_elements:
            raise ValueError(f"output_elements {self.output_elements} is not the size of output_shape "
                             f"{self.output_shape}")
        return self


#: Kinds a layer given by shape may have, with the spec class of each.
SHAPE_KINDS: dict[str, type[_LayerSpec]] = {
    "conv": ConvSpec, "linear": LinearSpec, "maxpool": PoolSpec, "avgpool": PoolSpec,
    "adaptive_avgpool": AdaptivePoolSpec, "embedding": EmbeddingSpec, "add": JoinSpec, "concat": JoinSpec,
    "attention": AttentionSpec, "flatten": ReshapeSpec, "reshape": ReshapeSpec,
    **{k: ElementwiseSpec for k in ("batchnorm", "layernorm", "relu", "gelu", "softmax", "dropout")},
}


def _tag(value: Any) -> str | None:
    if isinstance(value, dict):
        return "explicit" if "forward_flops" in value else value.get("kind")
    return getattr(value, "kind", None)


def _spec_union() -> Any:
    """The layer spec union, chosen by :func:`_tag` (one tag per kind)."""
    tagged = [Annotated[cls, Tag(kind)] for kind, cls in SHAPE_KINDS.items()]
    return Annotated[
        Annotated[ExplicitSpec, Tag("explicit")] | _union(tagged),
        Discriminator(_tag),
    ]


def _union(items: list[Any]) -> Any:
    out = items[0]
    for item in items[1:]:
        out = out | item
    return out


if TYPE_CHECKING:  # the union is built at run time; every member is a _LayerSpec
    LayerSpec = _LayerSpec
else:
    LayerSpec = _spec_union()


class ModelFile(_Strict):
    """A model file: what :func:`build_model` turns into a :class:`Model`."""

    name: LayerName | None = Field(None, description="Model name in results; default: the file name.")
    description: str = ""
    source: str = Field("", description="Where the architecture comes from.")
    sample_unit: Literal["images", "sequences"] = "images"
    input_shape: list[Positive] = Field(min_length=1, description="One sample's input, e.g. [3, 224, 224] or [128].")
    layers: list[LayerSpec] = Field(min_length=1, max_length=MAX_LAYERS)

    @model_validator(mode="before")
    @classmethod
    def _known_kinds(cls, data: Any) -> Any:
        """Name an unknown or missing layer kind before the union says it less clearly."""
        layers = data.get("layers") if isinstance(data, dict) else None
        if not isinstance(layers, list):
            return data
        for i, layer in enumerate(layers):
            if not isinstance(layer, dict):
                continue
            explicit = "forward_flops" in layer
            known = sorted(LAYER_KINDS) if explicit else sorted(SHAPE_KINDS)
            kind = layer.get("kind")
            if kind is None:
                raise ValueError(f"layers.{i}.kind: missing; known: {', '.join(known)}")
            if not isinstance(kind, str) or kind not in known:
                shown = repr(kind)[:40]
                form = "layer kind (given by numbers)" if explicit else "layer kind"
                raise ValueError(f"layers.{i}.kind: unknown {form} {shown}; known: {', '.join(known)}")
        return data


def _shape_of(shapes: dict[str, Shape | None], name: str, i: int, layer: str) -> Shape:
    if name not in shapes:
        raise ValueError(f"layers.{i} ({layer}): input {name!r} is not an earlier layer (or {INPUT!r})")
    shape = shapes[name]
    if shape is None:
        raise ValueError(f"layers.{i} ({layer}): the shape of {name!r} is unknown (a layer given by numbers "
                         "without output_shape); give this layer by numbers too, or that one an output_shape")
    return shape


def _pair(value: int | list[int] | None) -> Any:
    """A YAML pair (list) as the builder's tuple; ints and None pass."""
    return tuple(value) if isinstance(value, list) else value


def _emit(b: NetBuilder, spec: Any, shapes: dict[str, Shape | None], i: int) -> Shape | None:
    """Record ``spec``'s layers on ``b`` (whose shape is the input's); its output shape."""
    kind = spec.kind
    if kind == "conv":
        b.conv(spec.name, spec.out_channels, _pair(spec.kernel), _pair(spec.stride), _pair(spec.padding),
               bias=spec.bias, groups=spec.groups)
    elif kind == "linear":
        b.linear(spec.name, spec.out_features, bias=spec.bias, tied=spec.tied)
    elif kind in ("maxpool", "avgpool"):
        getattr(b, kind)(spec.name, _pair(spec.kernel), _pair(spec.stride), _pair(spec.padding),
                         ceil_mode=spec.ceil_mode)
    elif kind == "adaptive_avgpool":
        b.adaptive_avgpool(spec.name, _pair(spec.output_size))
    elif kind == "embedding":
        b.embedding(spec.name, spec.num_embeddings, spec.dim)
    elif kind in ("add", "concat"):
        getattr(b, kind)(spec.name, [_shape_of(shapes, n, i, spec.name) for n in spec.inputs])
    elif kind == "attention":
        config = TransformerConfig(vocab_size=1, max_positions=1, hidden=spec.hidden, layers=1, heads=spec.heads,
                                   intermediate=1)
        _attention_core(b, spec.name, config, b.shape[0], "dropout")
    elif kind == "flatten":
        b.flatten()
    elif kind == "reshape":
        b.shape = tuple(spec.shape)
    else:  # an element-wise layer
        getattr(b, kind)(spec.name)
    return b.shape


def _emit_explicit(b: NetBuilder, spec: ExplicitSpec, input_shape: Shape | None, i: int) -> Shape | None:
    if spec.input_elements is None and input_shape is None:
        raise ValueError(f"layers.{i} ({spec.name}): give input_elements (the input's shape is unknown)")
    inputs = math.prod(input_shape) if spec.input_elements is None else spec.input_elements  # type: ignore[arg-type]
    out_shape: Shape = tuple(spec.output_shape) if spec.output_shape is not None else (int(spec.output_elements or 0),)
    g = spec.gemm
    gemm = None if g is None else GemmShape(g.groups, g.m, g.n, g.k, _pair(g.kernel), _pair(g.stride), g.batch_in_m)
    b.emit(spec.name, spec.kind, output_shape=out_shape, flops=spec.forward_flops, params=spec.params,
           input_elements=inputs, gemm=gemm, parameter_tensors=spec.parameter_tensors)
    return None if spec.output_shape is None else out_shape


def build_model(spec: ModelFile, default_name: str = "model") -> Model:
    """The :class:`Model` a validated model file describes.

    Raises:
        ValueError: a layer reads an unknown input, a shape does not fit (``layers.N (name): ...``).
    """
    b = NetBuilder(tuple(spec.input_shape))
    shapes: dict[str, Shape | None] = {INPUT: tuple(spec.input_shape)}
    readers = ForkReaders(INPUT)
    previous = INPUT
    for i, layer in enumerate(spec.layers):
        if layer.name in shapes:
            raise ValueError(f"layers.{i}.name: {layer.name!r} is used twice (or is the reserved name {INPUT!r})")
        source = layer.input or previous
        recorded = b.count()
        if getattr(layer, "inputs", None) is not None and layer.input is not None:
            raise ValueError(f"layers.{i} ({layer.name}): {layer.kind} names its inputs, not input")
        try:
            if isinstance(layer, ExplicitSpec):
                if source not in shapes:
                    _shape_of(shapes, source, i, layer.name)
                shapes[layer.name] = _emit_explicit(b, layer, shapes[source], i)
            else:
                if layer.kind not in ("add", "concat"):
                    b.shape = _shape_of(shapes, source, i, layer.name)
                shapes[layer.name] = _emit(b, layer, shapes, i)
        except ValueError as exc:
            text = str(exc)
            raise ValueError(text if text.startswith("layers.") else f"layers.{i} ({layer.name}): {text}") from None
        readers.entry(b, layer.name, getattr(layer, "inputs", None) or [source], recorded)
        previous = layer.name
    readers.mark(b, {entry.name: entry.output_consumers for entry in spec.layers
                     if isinstance(entry, ExplicitSpec) and entry.output_consumers is not None})
    return Model(
        name=spec.name or default_name,
        description=spec.description or f"user model {spec.name or default_name}",
        source=spec.source or "model file",
        sample_unit=spec.sample_unit,
        input_shape=tuple(spec.input_shape),
        layers=b.layers(),
    )


def model_from_data(data: Any, default_name: str = "model") -> Model:
    """Validate model-file data (a dict) and build its :class:`Model`.

    Raises:
        pydantic.ValidationError: unknown keys, impossible values, unknown layer kinds.
        ValueError: the layers do not fit together (see :func:`build_model`).
    """
    try:
        spec = ModelFile.model_validate(data)
    except ValidationError as exc:
        raise _without_tags(exc) from None
    return build_model(spec, default_name)


def _without_tags(exc: ValidationError) -> ValidationError:
    """The same errors with the layer-kind tag pydantic puts in a layer's location
    (``layers.2.conv.kernel``) left out: ``layers.2.kernel``."""
    line_errors: list[Any] = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        if len(loc) > 3 and loc[0] == "layers" and isinstance(loc[1], int) and isinstance(loc[2], str):
            loc = loc[:2] + loc[3:]
        item = {"type": err["type"], "loc": loc, "input": err["input"]}
        if "ctx" in err:
            item["ctx"] = err["ctx"]
        line_errors.append(item)
    return ValidationError.from_exception_data(exc.title, line_errors)


def layer_to_data(layer: Layer) -> dict[str, Any]:
    """A zoo :class:`Layer` as a layer given by numbers (exports any model exactly)."""
    data: dict[str, Any] = {"name": layer.name, "kind": layer.kind, "forward_flops": layer.forward_flops,
                            "params": layer.params, "input_elements": layer.input_elements,
                            "output_elements": layer.output_elements}
    if layer.gemm is not None:
        g = layer.gemm
        data["gemm"] = {"groups": g.groups, "m": g.m, "n": g.n, "k": g.k, "kernel": list(g.kernel),
                        "stride": list(g.stride), "batch_in_m": g.batch_in_m}
    if layer.output_consumers > 1:  # read in order, one after another, the layers would show no fork
        data["output_consumers"] = layer.output_consumers
    if layer.parameter_tensors is not None:
        data["parameter_tensors"] = layer.parameter_tensors
    return data


__all__ = ["INPUT", "SAMPLE_UNITS", "SHAPE_KINDS", "ModelFile", "build_model", "layer_to_data", "model_from_data"]

"""Model zoo: per-layer descriptions of deep-learning models.

A :class:`Model` is a forward-ordered tuple of :class:`Layer` records, each giving the
trainable parameters (gradient size), forward FLOPs and activation sizes of one layer
for ONE sample. The simulator turns them into per-layer compute time (roofline),
gradient traffic and activation memory. Every number is derived from layer shapes by
:mod:`simulator.zoo.builder`; the architectures follow torchvision / Hugging Face so
the totals can be checked against their published parameter counts.

Use :func:`get_model` (cached; models are immutable), :func:`list_models` and
:func:`model_summary`. Users add their own models with :func:`register_model` (from
Python: zoo layers or layer specs) or a model file (:mod:`simulator.zoo.model_file`,
named by a scenario's ``workload.model_file``); :func:`list_models` lists the zoo's
own, :func:`registered_models` the users'.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from simulator.llm.spec import PRESETS as LLM_PRESETS
from simulator.llm.spec import TransformerSpec, register_spec
from simulator.zoo import cnn
from simulator.zoo.core import LAYER_KINDS, GemmShape, Layer, Model
from simulator.zoo.registry import (
    file_model_name,
    register_file_model,
    register_model,
    registered_model,
    reserve_names,
    unregister_model,
)
from simulator.zoo.registry import registered_models as _registered_user_models

__all__ = [
    "LAYER_KINDS", "GemmShape", "Layer", "Model", "file_model_name", "get_model", "list_models", "model_summary",
    "register_file_model", "register_model", "register_transformer", "registered_models", "unregister_model",
]


@dataclass(frozen=True)
class _Entry:
    builder: Callable[..., Model]
    # None for image models; otherwise the default tokens per sequence
    default_sequence_length: int | None = None


_REGISTRY: dict[str, _Entry] = {}


def _register(name: str, builder: Callable[..., Model], default_sequence_length: int | None = None) -> None:
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} registered twice")
    _REGISTRY[name] = _Entry(builder, default_sequence_length)


for _name, _builder in (
    ("alexnet", cnn.alexnet),
    ("vgg16", cnn.vgg16),
    ("vgg19", cnn.vgg19),
    ("googlenet", cnn.googlenet),
    ("inception_v3", cnn.inception_v3),
    ("resnet18", cnn.resnet18),
    ("resnet34", cnn.resnet34),
    ("resnet50", cnn.resnet50),
    ("resnet101", cnn.resnet101),
    ("resnet152", cnn.resnet152),
):
    _register(_name, _builder)


def _transformer(name: str) -> Callable[[int], Model]:
    def build(sequence_length: int) -> Model:
        from simulator.zoo import transformer  # loaded when a BERT or GPT-2 is built: start-up time

        builder: Callable[[int], Model] = getattr(transformer, name)
        return builder(sequence_length)

    return build


_register("bert_base", _transformer("bert_base"), default_sequence_length=128)
_register("bert_large", _transformer("bert_large"), default_sequence_length=128)
_register("gpt2", _transformer("gpt2"), default_sequence_length=1024)
_register("gpt2_medium", _transformer("gpt2_medium"), default_sequence_length=1024)


def _llm_builder(spec: Any) -> Callable[[int], Model]:
    def build(sequence_length: int) -> Model:
        # Imported here: simulator.llm.stage imports the zoo's builder, so importing it
        # at the top made `import simulator.llm.stage` (before the zoo) a circular import.
        from simulator.llm.stage import full_model

        return full_model(spec, sequence_length)

    return build


# The transformer presets of the parallelism model (simulator.llm), trainable by plain
# data parallelism too; default sequence: the model's training context.
_LLM_CONTEXT = {"gpt3": 2048, "llama2": 4096, "llama3": 8192, "mixtral": 4096}
for _spec in LLM_PRESETS.values():
    _register(_spec.name, _llm_builder(_spec), default_sequence_length=_LLM_CONTEXT[_spec.name.split("_")[0]])


def register_transformer(spec: TransformerSpec, default_sequence_length: int = 2048) -> None:
    """Add a transformer described by its shapes (:class:`simulator.llm.spec.TransformerSpec`)
    to the zoo under ``spec.name``: scenarios can then train it, by plain data
    parallelism or with ``training.parallelism``. The same shapes again: no-op."""
    if spec.name in _REGISTRY and spec.name not in LLM_PRESETS or spec.name in _registered_user_models():
        raise ValueError(f"{spec.name!r} is a zoo or user model; give the transformer another name")
    register_spec(spec)
    if spec.name not in _REGISTRY and spec.name not in _TRANSFORMERS:
        # the users' transformers: not the zoo's own list (editor schemas, `list models`)
        _TRANSFORMERS[spec.name] = _Entry(_llm_builder(spec), default_sequence_length)


_TRANSFORMERS: dict[str, _Entry] = {}


def registered_models() -> list[str]:
    """The users' models: registered from Python or model files, and transformers
    added by :func:`register_transformer`."""
    return sorted([*_registered_user_models(), *_TRANSFORMERS])
reserve_names(_REGISTRY)  # user models may not take a zoo name


@functools.lru_cache(maxsize=None)
def _build(name: str, sequence_length: int | None) -> Model:
    entry = _REGISTRY.get(name) or _TRANSFORMERS[name]
    return entry.builder() if sequence_length is None else entry.builder(sequence_length)


def get_model(name: str, *, sequence_length: int | None = None) -> Model:
    """The zoo model ``name``.

    ``sequence_length`` (tokens per sample) applies to transformer models only and
    defaults to 128 for BERT, 1024 for GPT-2.

    Raises:
        KeyError: ``name`` is not in the zoo.
        ValueError: ``sequence_length`` given for an image model, or out of range.
    """
    user = registered_model(name) if name not in _REGISTRY and name not in _TRANSFORMERS else None
    if user is not None:
        if sequence_length is not None:
            raise ValueError(f"model {name!r} is a user model of fixed input shape; sequence_length does not apply")
        return user
    entry = _REGISTRY.get(name) or _TRANSFORMERS.get(name)
    if entry is None:
        raise KeyError(name)
    if entry.default_sequence_length is None:
        if sequence_length is not None:
            raise ValueError(f"model {name!r} takes images; sequence_length does not apply")
    elif sequence_length is None:
        sequence_length = entry.default_sequence_length
    return _build(name, sequence_length)


def list_models() -> list[str]:
    """The zoo's own model names, sorted (user models: :func:`registered_models`)."""
    return sorted(_REGISTRY)



def model_summary(name: str) -> dict[str, Any]:
    """One row for ``clustersim list models`` (default sequence length)."""
    model = get_model(name)
    return {
        "name": model.name,
        "description": model.description,
        "params": model.total_params,
        "forward_gflops": model.total_forward_flops / 1e9,
        "sample_unit": model.sample_unit,
        "layers": len(model.layers),
    }

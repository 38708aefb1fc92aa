"""User models: registered from Python or loaded from model files.

:func:`register_model` adds a model under a name that scenarios can then use as
``workload.model`` (in this process: a notebook, a script, a sweep whose workers are
forked from it). Layers may be zoo :class:`Layer` records or layer specs in the
model-file syntax (:mod:`simulator.zoo.model_file`), so the same formulas cost them.
Model files named by a scenario's ``workload.model_file`` are registered by the load
phase (:func:`simulator.loading.load_model_file`) through :func:`register_file_model`,
which remembers the file so that re-loading an edited file replaces its model while two
different models cannot silently share a name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from simulator.zoo.core import Layer, Model


@dataclass(frozen=True)
class _UserModel:
    model: Model
    path: str | None  # the model file it came from; None when registered from Python


_USER: dict[str, _UserModel] = {}
_FILES: dict[str, str] = {}  # model file path -> the name its model is registered under
_RESERVED: set[str] = set()


def reserve_names(names: Iterable[str]) -> None:
    """Names user models may not take (the zoo's own)."""
    _RESERVED.update(names)


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip() or any(c.isspace() or not c.isprintable() for c in name):
        raise ValueError(f"a model name must be a non-empty word without spaces, got {name!r:.60}")
    if name in _RESERVED:
        raise ValueError(f"{name!r} is a zoo model; give your model another name")
    return name


def register_model(
    name: str,
    layers: Model | Sequence[Layer] | Sequence[Mapping[str, Any]],
    *,
    input_shape: Sequence[int] | None = None,
    sample_unit: str = "images",
    description: str = "",
    source: str = "",
    replace: bool = False,
) -> Model:
    """Register a model under ``name`` and return it.

    ``layers`` is a :class:`Model`, a sequence of zoo :class:`Layer` records, or a
    sequence of layer specs as in a model file (dicts: ``{"name": "conv1", "kind":
    "conv", "out_channels": 64, "kernel": 7, ...}``; ``input_shape`` is then required).
    Registering the same model again is a no-op; a different model under a taken name
    needs ``replace=True`` (re-running a notebook cell that changed it).

    Raises:
        ValueError: a bad name or layer; the name is a zoo model's or already taken
            (``pydantic.ValidationError``, a ValueError, for a bad layer spec).
    """
    _check_name(name)
    if isinstance(layers, Model):
        model = Model(name, layers.description, layers.source, layers.sample_unit, layers.input_shape, layers.layers)
    else:
        items: list[Any] = list(layers)
        if items and all(isinstance(x, Layer) for x in items):
            shape = tuple(input_shape) if input_shape is not None else ()
            model = Model(name, description or f"user model {name}", source or "registered from Python",
                          sample_unit, shape, tuple(items))
        else:
            if input_shape is None:
                raise ValueError("layer specs need input_shape (one sample's input, e.g. (3, 224, 224))")
            data = {"name": name, "description": description, "source": source or "registered from Python",
                    "sample_unit": sample_unit, "input_shape": list(input_shape), "layers": [dict(x) for x in items]}
            from simulator.zoo.model_file import model_from_data  # pydantic models: built only when used

            model = model_from_data(data)
    current = _USER.get(name)
    if current is not None and current.model != model and not replace:
        raise ValueError(f"a different model {name!r} is already registered; pass replace=True to replace it")
    _USER[name] = _UserModel(model, None)
    return model


def register_file_model(model: Model, path: str) -> Model:
    """Register the model read from the model file ``path`` (under the model's name).

    Raises:
        ValueError: the name is a zoo model's, or another file's or a Python-registered
            model of different layers already has it.
    """
    _check_name(model.name)
    current = _USER.get(model.name)
    if current is not None and current.path != path and current.model != model:
        where = f"the model file {current.path}" if current.path else "Python (register_model)"
        raise ValueError(f"model name {model.name!r} is already taken by a different model from {where}; "
                         "give each model its own name")
    _USER[model.name] = _UserModel(model, path)
    _FILES[path] = model.name
    return model


def registered_model(name: str) -> Model | None:
    """The user model ``name``, or None."""
    entry = _USER.get(name)
    return None if entry is None else entry.model


def file_model_name(path: str) -> str | None:
    """The name of the model registered from the model file ``path``, or None."""
    name = _FILES.get(path)
    return name if name in _USER else None


def registered_models() -> list[str]:
    """Names of the user models registered in this process, sorted."""
    return sorted(_USER)


def unregister_model(name: str) -> None:
    """Forget the user model ``name`` (no error when there is none)."""
    _USER.pop(name, None)

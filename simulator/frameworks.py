"""Framework presets: the defaults a training stack brings (``training.framework``).

Each preset is a data file, ``simulator/data/frameworks/<name>.yaml``, with

* ``sets``: scenario fields (under ``training``) and the value the framework uses,
* ``sources``: for every field it sets, where the number or behaviour comes from,
* ``not_set`` (optional): fields deliberately left alone, and why (no published figure:
  a parameter to fit, or a mechanism the simulator does not have).

A preset only fills in fields the scenario leaves out: every field the user sets
explicitly wins. :func:`apply_preset` runs once, when the ``training`` section is
validated (:class:`simulator.scenario.TrainingSpec`), so every path that builds a
scenario (files, ``--set``, dicts, sweeps, validation cases) sees the same result.
``none`` (the default) sets nothing.
"""

from __future__ import annotations

import copy
from functools import cache
from importlib import resources
from typing import Any

import yaml

from .catalog.datafile import SAFE_LOADER

DEFAULT = "none"


@cache
def _presets() -> dict[str, dict[str, Any]]:
    folder = resources.files("simulator").joinpath("data/frameworks")
    presets = {}
    for entry in folder.iterdir():
        if entry.name.endswith(".yaml"):
            data = yaml.load(entry.read_text(), Loader=SAFE_LOADER)  # plain data, no tags
            presets[data["name"]] = data
    return presets


def list_frameworks() -> list[str]:
    return sorted(_presets())


def get_preset(name: str) -> dict[str, Any]:
    """The preset's whole data file (``name``, ``description``, ``sets``, ``sources``)."""
    presets = _presets()
    if name not in presets:
        raise ValueError(f"unknown framework {name!r}; known: {', '.join(sorted(presets))}")
    return copy.deepcopy(presets[name])


def _fill(user: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """``user`` with every key it lacks taken from ``defaults`` (recursively for sections)."""
    merged = dict(user)
    for key, value in defaults.items():
        if key not in merged:
            merged[key] = copy.deepcopy(value)
        elif isinstance(value, dict) and isinstance(merged[key], dict):
            merged[key] = _fill(merged[key], value)
    return merged


def apply_preset(training: dict[str, Any]) -> dict[str, Any]:
    """The raw ``training`` section with its framework's defaults filled in."""
    name = training.get("framework", DEFAULT)
    if not isinstance(name, str):
        return training  # the field's own type check reports it
    preset = get_preset(name)
    return _fill(training, preset["sets"].get("training", {}))


__all__ = ["DEFAULT", "apply_preset", "get_preset", "list_frameworks"]

"""JSON Schemas of scenario and sweep files, for editors (``clustersim schema``).

Pydantic generates the structure; this module adds what an editor needs to complete
and check a file as it is typed: ``$schema`` and ``$id``, the names every catalog and
registry defines as ``enum`` lists (GPUs, links, models, server layouts, fabrics,
collective backends, framework presets), and for sweep files the scenario's dotted
field paths as the keys of ``axes`` (each with the field's own value schema) and an
inline ``base`` checked as a scenario. The fields' Python types are unchanged: the
enums are added to the generated schema, and the models still check the names (with
"did you mean" hints) when a file is loaded.

The generated files are committed under ``schemas/`` (``tests/test_schema_files.py``
checks they match) so that a YAML file can name one in its first line::

    # yaml-language-server: $schema=../schemas/scenario.schema.json
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

DRAFT = "https://json-schema.org/draft/2020-12/schema"
SCENARIO_ID = "urn:clustersim:schema:scenario"
SWEEP_ID = "urn:clustersim:schema:sweep"

#: Files under ``schemas/`` written from :data:`SCHEMAS` (``clustersim schema KIND``).
SCHEMA_FILES = {"scenario": "scenario.schema.json", "sweep": "sweep.schema.json"}


def _registry_names() -> dict[tuple[str, str], Callable[[], list[str]]]:
    """(pydantic model name, field) -> the names its catalog or registry defines."""
    from topologies import FABRICS, SERVER_LAYOUTS

    from . import catalog, zoo
    from .collectives.backend import list_backends
    from .frameworks import list_frameworks

    return {
        ("ClusterSpec", "gpu"): catalog.list_gpus,
        ("NICSpec", "link"): catalog.list_links,
        ("WorkloadSpec", "model"): zoo.list_models,
        ("ServerSpec", "layout"): lambda: list(SERVER_LAYOUTS),
        ("FabricSpec", "topology"): lambda: list(FABRICS),
        ("CollectivesSpec", "backend"): list_backends,
        ("TrainingSpec", "framework"): list_frameworks,
    }


def _add_enum(prop: dict[str, Any], names: list[str]) -> None:
    """Give a string property (or the string branch of ``str | None``) an enum."""
    enum = sorted(set(names))
    if prop.get("type") == "string":
        prop["enum"] = enum
        return
    for branch in prop.get("anyOf", []):
        if branch.get("type") == "string":
            branch["enum"] = enum
            return
    raise ValueError(f"not a string field: {prop}")  # a field's type changed: update this table


def scenario_schema() -> dict[str, Any]:
    """The scenario file's JSON Schema with ``$schema``, ``$id`` and registry enums."""
    from .scenario import Scenario

    schema = Scenario.model_json_schema()
    defs = schema["$defs"]
    for (model, field), names in _registry_names().items():
        _add_enum(defs[model]["properties"][field], names())
    # Rank keys are written as digits (YAML and JSON keys are strings to an editor).
    defs["VariabilitySpec"]["properties"]["gpu_speed_factors"]["propertyNames"] = {"pattern": "^[0-9]+$"}
    return {"$schema": DRAFT, "$id": SCENARIO_ID, "title": "clustersim scenario", **_without(schema, "title")}


def scenario_field_paths() -> list[str]:
    """Every dotted path ``--set`` and sweep axes can set (leaf fields, in schema order)."""
    from .scenario import Scenario

    out: list[str] = []

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, field in model.model_fields.items():
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                walk(annotation, f"{prefix}{name}.")
            else:
                out.append(f"{prefix}{name}")

    walk(Scenario, "")
    return out


def _leaf_schema(scenario: dict[str, Any], path: str) -> dict[str, Any]:
    """The schema of one scenario field (by dotted path), ``$ref`` s resolved on the way."""
    node = scenario
    for part in path.split("."):
        if "$ref" in node:
            node = scenario["$defs"][node["$ref"].rsplit("/", 1)[1]]
        node = node["properties"][part]
    return node


def _without(schema: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k not in keys}


def sweep_schema() -> dict[str, Any]:
    """The sweep file's JSON Schema: axes keyed by scenario paths, inline base = scenario."""
    from .sweep.spec import SweepSpec

    scenario = scenario_schema()
    schema = SweepSpec.model_json_schema()
    defs = schema.setdefault("$defs", {})
    clash = set(defs) & (set(scenario["$defs"]) | {"Scenario", "AxisValues"})
    if clash:
        raise ValueError(f"sweep and scenario schemas both define {sorted(clash)}")
    defs.update(copy.deepcopy(scenario["$defs"]))
    defs["Scenario"] = _without(scenario, "$schema", "$id", "$defs")

    paths = scenario_field_paths()
    axis_values = {}
    for path in paths:
        leaf = _leaf_schema(scenario, path)
        item = _without(leaf, "default", "title", "description")
        axis_values[path] = {"type": "array", "minItems": 1, "items": item,
                             "description": leaf.get("description", "")}
    defs["AxisValues"] = {"type": "object", "propertyNames": {"enum": paths}, "properties": axis_values,
                          "description": "Scenario field (dotted path) -> the values it takes."}
    axes = defs["Axes"]["properties"]
    for family in ("grid", "zip"):
        axes[family] = {"$ref": "#/$defs/AxisValues", "description": axes[family]["description"]}
    params = defs["RandomAxes"]["properties"]["params"]
    params["propertyNames"] = {"enum": paths}
    # A list is a uniform choice (``workload.precision: [fp32, fp16]``).
    params["additionalProperties"] = {"anyOf": [params["additionalProperties"], {"type": "array", "minItems": 1}]}

    base = schema["properties"]["base"]
    for branch in base["anyOf"]:
        if branch.get("type") == "object":
            branch.clear()
            branch["$ref"] = "#/$defs/Scenario"
    return {"$schema": DRAFT, "$id": SWEEP_ID, "title": "clustersim sweep", **_without(schema, "title")}


SCHEMAS: dict[str, Callable[[], dict[str, Any]]] = {"scenario": scenario_schema, "sweep": sweep_schema}


def schema_text(kind: str) -> str:
    """What ``clustersim schema KIND`` prints (and ``schemas/`` holds), newline-terminated."""
    import json

    return json.dumps(SCHEMAS[kind](), indent=2) + "\n"

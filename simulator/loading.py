"""Load phase: YAML/JSON file -> raw dict -> dotted overrides -> validated Scenario.

Overrides (``--set cluster.nodes=4``) are applied to the raw dict before validation,
so a bad override produces exactly the error the same value in the file would. Every
failure becomes one :class:`ScenarioError` whose message names the source and the
dotted path of the field.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .errors import ScenarioError
from .scenario import Scenario

DEFAULT_SCENARIO_NAME = "<default scenario>"


def default_scenario_text() -> str:
    """The YAML of the scenario `clustersim simulate` runs when given no file."""
    return resources.files("simulator").joinpath("data/default_scenario.yaml").read_text()


def read_raw(path: str | Path) -> dict[str, Any]:
    """Parse a YAML or JSON scenario file into a dict; errors name the file and line."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ScenarioError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot read: {exc}") from None
    return parse_raw(text, str(path), as_json=path.suffix.lower() == ".json")


def parse_raw(text: str, source: str, *, as_json: bool = False) -> dict[str, Any]:
    try:
        data = json.loads(text) if as_json else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise ScenarioError(f"{source}: line {exc.lineno}: malformed JSON: {exc.msg}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ScenarioError(f"{source}: {where}malformed YAML: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: a scenario must be a mapping of sections, got {type(data).__name__}")
    return data


def apply_overrides(data: dict[str, Any], overrides: Iterable[str], source: str) -> dict[str, Any]:
    """Apply ``dotted.path=value`` overrides (values parsed as YAML scalars) to a copy."""
    result = json.loads(json.dumps(data))  # deep copy of plain data
    for item in overrides:
        path, sep, text = item.partition("=")
        path = path.strip()
        if not sep or not path or any(not part for part in path.split(".")):
            raise ScenarioError(f"{source}: --set {item!r}: expected dotted.path=value")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            value = text
        node: Any = result
        parts = path.split(".")
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                where = ".".join(parts[: depth + 1])
                raise ScenarioError(f"{source}: --set {path}: {where} is a value, not a section")
            node = child
        node[parts[-1]] = value
    return result


def validate(data: Mapping[str, Any], source: str) -> Scenario:
    """Validate a raw dict into a Scenario, turning pydantic errors into one message."""
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(f"{source}: {format_validation_error(exc)}") from None


def format_validation_error(exc: ValidationError) -> str:
    messages = []
    for err in exc.errors():
        loc = ".".join(str(part) for part in err["loc"])
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        else:
            msg = err["msg"].removeprefix("Value error, ")
            if "input" in err and err["type"] not in ("missing",) and not isinstance(err["input"], dict):
                msg += f" (got {err['input']!r})"
        messages.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(messages)


def load_scenario(
    source: str | Path | Mapping[str, Any] | None = None,
    overrides: Iterable[str] = (),
) -> Scenario:
    """Load a scenario from a file path, a dict, or (None) the embedded default."""
    if source is None:
        name = DEFAULT_SCENARIO_NAME
        data = parse_raw(default_scenario_text(), name)
    elif isinstance(source, Mapping):
        name = "<dict>"
        data = dict(source)
    else:
        name = str(source)
        data = resolve_calibration_path(read_raw(source), Path(source).parent)
    data = apply_overrides(data, overrides, name)
    return validate(data, name)


def resolve_calibration_path(data: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Make a relative ``calibration:`` path relative to the scenario file's folder
    (a ``--set calibration=...`` override stays relative to the working directory)."""
    path = data.get("calibration")
    if isinstance(path, str) and path and not Path(path).is_absolute():
        data = {**data, "calibration": str(folder / path)}
    return data

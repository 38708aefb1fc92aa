"""Load phase: YAML/JSON file -> raw dict -> dotted overrides -> validated Scenario.

Overrides (``--set cluster.nodes=4``) are applied to the raw dict before validation,
so a bad override produces exactly the error the same value in the file would. Every
failure becomes one :class:`ScenarioError` whose message names the source and the
dotted path of the field.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ValidationError

from . import zoo
from .errors import ScenarioError, excerpt
from .input_paths import resolve_input_path

# Re-exported: the safe readers lived here before they had a module of their own.
from .safe_input import (  # noqa: F401
    MAX_ALIASES,
    MAX_DEPTH,
    MAX_ELEMENTS,
    MAX_INPUT_BYTES,
    InputLimit,
    check_plain_data,
    parse_data,
    read_text_file,
    safe_yaml,
    value_problem,
)
from .scenario import Scenario

DEFAULT_SCENARIO_NAME = "<default scenario>"


def default_scenario_text() -> str:
    """The YAML of the scenario `clustersim simulate` runs when given no file."""
    return resources.files("simulator").joinpath("data/default_scenario.yaml").read_text()


def read_raw(path: str | Path) -> dict[str, Any]:
    """Parse a YAML or JSON scenario file into a dict; errors name the file and line."""
    text = read_text_file(path)
    path = Path(path)
    return parse_raw(text, str(path), as_json=path.suffix.lower() == ".json")


def parse_raw(text: str, source: str, *, as_json: bool = False) -> dict[str, Any]:
    data = parse_data(text, source, as_json=as_json)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: a scenario must be a mapping of sections, got {type(data).__name__}")
    return data


def apply_overrides(data: dict[str, Any], overrides: Iterable[str], source: str) -> dict[str, Any]:
    """Apply ``dotted.path=value`` overrides (values parsed as YAML scalars) to a copy."""
    check_plain_data(data, source)  # bounded and plain before the copy below
    result: dict[str, Any] = json.loads(json.dumps(data))  # deep copy of plain data
    for item in overrides:
        path, sep, text = item.partition("=")
        path = path.strip()
        if not sep or not path or any(not part for part in path.split(".")):
            raise ScenarioError(f"{source}: --set {excerpt(item, 80)}: expected dotted.path=value")
        if path.count(".") >= MAX_DEPTH:
            raise ScenarioError(f"{source}: --set {excerpt(path, 80)}: more than {MAX_DEPTH} levels deep")
        try:
            value = safe_yaml(text)
        except InputLimit as exc:
            raise ScenarioError(f"{source}: --set {path}: refused: {exc}") from None
        except RecursionError:
            raise ScenarioError(f"{source}: --set {path}: refused: nested too deeply") from None
        except ValueError as exc:  # an integer of over 4,300 digits
            raise ScenarioError(f"{source}: --set {path}: {value_problem(exc)}") from None
        except yaml.YAMLError:
            value = text
        check_plain_data(value, f"{source}: --set", prefix=path)
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
    check_plain_data(result, source)
    return result


def validate(data: Mapping[str, Any], source: str) -> Scenario:
    """Validate a raw dict into a Scenario, turning pydantic errors into one message.

    A ``workload.model_file`` is read and registered first (:func:`with_model_file`)."""
    data = with_model_file(data, source)
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(f"{source}: {format_validation_error(exc)}") from None


#: Most problems one validation message lists (the rest are counted).
MAX_MESSAGES = 5


def _loc_part(part: Any) -> str:
    text = str(part)
    return text if len(text) <= 40 and text.isprintable() else excerpt(text)


def did_you_mean(word: object, candidates: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` naming the candidates closest to a misspelt ``word``
    (case ignored, at most three), or an empty string when none is close."""
    if not isinstance(word, str) or not word or len(word) > 200:
        return ""
    by_lower: dict[str, str] = {}
    for name in candidates:
        by_lower.setdefault(str(name).lower(), str(name))
    lower = word.lower()
    if lower in by_lower and by_lower[lower] != word:  # only the case differs
        return f" (did you mean {by_lower[lower]!r}?)"
    import difflib  # only when a name is unknown: no import on a valid scenario's path

    close = difflib.get_close_matches(lower, list(by_lower), n=3, cutoff=0.6)
    if len(lower) >= 3:  # "ring" -> ring_allreduce
        close += [c for c in by_lower if c.startswith(lower) and c not in close]
    close = [by_lower[c] for c in close[:3] if by_lower[c] != word]
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(c) for c in close) + "?)"


def _model_at(root: type[BaseModel] | None, loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model a validation error's location (less its last part) is in."""
    model = root
    for part in loc:
        if model is None or not isinstance(part, str):
            return None
        field = model.model_fields.get(part)
        if field is None:
            return None
        inner = [a for a in (field.annotation, *get_args(field.annotation))
                 if isinstance(a, type) and issubclass(a, BaseModel)]
        model = inner[0] if inner else None
    return model


#: Top-level file models by name, for "did you mean" hints on their validation errors.
#: Other file schemas (the sweep file's ``SweepSpec``) add themselves with
#: :func:`register_root_model`, so this module never imports them.
_ROOT_MODELS: dict[str, type[BaseModel]] = {Scenario.__name__: Scenario}


def register_root_model(model: type[BaseModel]) -> None:
    """Let :func:`format_validation_error` find unknown keys' siblings in ``model``."""
    _ROOT_MODELS[model.__name__] = model


def _root_model(title: str) -> type[BaseModel] | None:
    return _ROOT_MODELS.get(title)


def _hint(err: Any, root: type[BaseModel] | None) -> str:
    """A "did you mean" for an unknown key (its siblings) or an unknown registry name
    (a message ending ``known: a, b, c``)."""
    if err["type"] == "extra_forbidden" and err["loc"]:
        model = _model_at(root, tuple(err["loc"][:-1]))
        return did_you_mean(err["loc"][-1], model.model_fields) if model is not None else ""
    if err["type"] == "literal_error":
        return did_you_mean(err.get("input"), re.findall(r"'([^']*)'", str(err.get("ctx", {}).get("expected", ""))))
    head, sep, known = str(err.get("msg", "")).partition("; known: ")
    if sep and "unknown" in head:
        word = err.get("input")
        if not isinstance(word, str):  # a section's check: the name is quoted in the message
            quoted = re.search(r"unknown [^'\"]*'([^']*)'$", head)
            word = quoted.group(1) if quoted else None
        return did_you_mean(word, known.split(", "))
    return ""


def format_validation_error(exc: ValidationError) -> str:
    messages = []
    errors = exc.errors()
    root = _root_model(exc.title)
    for err in errors[:MAX_MESSAGES]:
        loc = ".".join(_loc_part(part) for part in err["loc"])
        hint = _hint(err, root)
        if err["type"] == "extra_forbidden":
            msg = "unknown key" + hint
        else:
            msg = " ".join(err["msg"].removeprefix("Value error, ").split())
            head, sep, known = msg.partition("; known: ")
            msg = f"{head}{hint}{sep}{known}"  # the hint before the (long) list of known names
            if "input" in err and err["type"] not in ("missing",) and not isinstance(err["input"], dict):
                msg += f" (got {excerpt(err['input'])})"
        messages.append(f"{loc}: {msg}" if loc else msg)
    if len(errors) > MAX_MESSAGES:
        messages.append(f"and {len(errors) - MAX_MESSAGES:,} more")
    return "; ".join(messages)


def load_scenario(
    source: str | Path | Mapping[str, Any] | None = None,
    overrides: Iterable[str] = (),
    *,
    root: str | Path | None = None,
) -> Scenario:
    """Load a scenario from a file path, a dict, or (None) the embedded default.

    A file's ``calibration:`` path resolves against the file's folder and must lie
    under ``root`` (the trust root: default the file's own folder) or a shipped data
    folder (:mod:`simulator.input_paths`)."""
    if source is None:
        name = DEFAULT_SCENARIO_NAME
        data = parse_raw(default_scenario_text(), name)
    elif isinstance(source, Mapping):
        name = "<dict>"
        data = dict(source)
    else:
        name = str(source)
        data = resolve_calibration_path(read_raw(source), Path(source).parent, source=name, root=root)
    data = apply_overrides(data, overrides, name)
    return validate(data, name)


def resolve_calibration_path(
    data: dict[str, Any], folder: Path, *, source: str = "<scenario>", root: str | Path | None = None
) -> dict[str, Any]:
    """Make a ``calibration:`` path (and a ``workload.model_file:``, a
    ``training.collectives.measured:``) named in a scenario
    file relative to the file's folder, checked to lie under ``root`` (default that
    folder) or a shipped data folder unless outside paths are allowed (a ``--set
    calibration=...`` override is the user's own: it stays relative to the working
    directory, unchecked)."""
    path = data.get("calibration")
    if isinstance(path, str):  # anything else is the schema's error
        resolved = resolve_input_path(path, folder, source=source, field="calibration", root=root)
        data = {**data, "calibration": str(resolved)}
    workload = data.get("workload")
    if isinstance(workload, dict) and isinstance(workload.get("model_file"), str):
        resolved = resolve_input_path(workload["model_file"], folder, source=source, field="workload.model_file",
                                      root=root)
        data = {**data, "workload": {**workload, "model_file": str(resolved)}}
    training = data.get("training")
    if isinstance(training, dict):
        collectives = training.get("collectives")
        if isinstance(collectives, dict) and isinstance(collectives.get("measured"), str):
            resolved = resolve_input_path(collectives["measured"], folder, source=source,
                                          field="training.collectives.measured", root=root)
            data = {**data, "training": {**training, "collectives": {**collectives, "measured": str(resolved)}}}
    return data


# -- model files (README "Bring your own model") ------------------------------------------

#: Model files read in this process: path -> ((mtime, size), model), so a sweep's runs
#: read a file once and an edited file is read again.
_MODEL_FILES: dict[str, tuple[tuple[int, int], zoo.Model]] = {}


def load_model_file(path: str | Path, *, source: str = "", register: bool = True) -> zoo.Model:
    """The model a model file describes (:mod:`simulator.zoo.model_file`), registered in
    the zoo under its name (default: the file name) unless ``register`` is False.

    Every problem is one :class:`ScenarioError` naming ``source`` (the scenario and
    field naming the file, if any), the model file and the field in it."""
    where = f"{source}: " if source else ""
    text = read_text_file(path, what=f"{where}model file")
    shown = f"{where}{path}"
    key = str(path)
    try:
        st = os.stat(path)
        stamp = (st.st_mtime_ns, st.st_size)
    except OSError:  # read a moment ago; gone now
        stamp = (0, 0)
    cached = _MODEL_FILES.get(key)
    if cached is not None and cached[0] == stamp:
        model = cached[1]
    else:
        data = parse_data(text, shown, as_json=Path(path).suffix.lower() == ".json")
        if not isinstance(data, dict):
            raise ScenarioError(f"{shown}: a model file must be a mapping (name, input_shape, layers), "
                                f"got {type(data).__name__}")
        from .zoo.model_file import ModelFile, model_from_data  # its schema is built only when a file is read

        register_root_model(ModelFile)
        try:
            model = model_from_data(data, default_name=Path(path).name.split(".")[0] or "model")
        except ValidationError as exc:
            raise ScenarioError(f"{shown}: {format_validation_error(exc)}") from None
        except ValueError as exc:
            raise ScenarioError(f"{shown}: {' '.join(str(exc).split())}") from None
        _MODEL_FILES[key] = (stamp, model)
    if register:
        try:
            zoo.register_file_model(model, key)
        except ValueError as exc:
            raise ScenarioError(f"{shown}: {exc}") from None
    return model


def with_model_file(data: Mapping[str, Any], source: str) -> Mapping[str, Any]:
    """``data`` with its ``workload.model_file`` (if any) read and registered, and
    ``workload.model`` set to that model's name; naming a different ``model`` as well
    is an error."""
    workload = data.get("workload")
    if not isinstance(workload, dict) or not isinstance(workload.get("model_file"), str):
        return data  # none, or the schema's error
    path = workload["model_file"]
    if not path.strip() or "\0" in path:
        return data  # the schema says why
    model = load_model_file(path, source=f"{source}: workload.model_file")
    named = workload.get("model", model.name)
    if named != model.name:
        raise ScenarioError(
            f"{source}: workload.model: {excerpt(named)} and workload.model_file {path} (model {model.name!r}) "
            "both name the model; give one of them")
    return {**data, "workload": {**workload, "model": model.name}}

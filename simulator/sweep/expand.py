"""Expand a sweep into numbered runs, each a validated scenario with its own seed.

Runs are numbered grid point (first axis outermost) x zip position x random sample x
replication, replication innermost. A run's ``simulation.seed`` derives from the sweep
seed and the replication only (numpy ``SeedSequence``): every configuration of one
replication shares a seed (common random numbers, the usual variance reduction when
comparing designs), and adding a value to an axis leaves every other run's scenario,
and so its cache entry, unchanged. An axis over ``simulation.seed`` overrides this.

A point whose scenario does not validate (say 6 GPUs over 4 PCIe switches) is kept as
a run carrying its error, so the sweep reports it as a failed row and goes on.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from ..errors import ScenarioError
from ..input_paths import resolve_input_path
from ..loading import (
    DEFAULT_SCENARIO_NAME,
    apply_overrides,
    default_scenario_text,
    parse_raw,
    read_raw,
    resolve_calibration_path,
    validate,
)
from ..scenario import Scenario
from .spec import Distribution, SweepSpec

# Spawn keys separate the random-axes stream from the replication seeds.
_AXES_STREAM, _SEED_STREAM = 0, 1


@dataclass(frozen=True)
class Run:
    """One run of a sweep."""

    run: int
    point: int
    replication: int
    seed: int
    values: dict[str, Any]  # axis path -> value at this point
    scenario: Scenario | None  # None when the point did not validate
    scenario_hash: str  # canonical scenario (or raw dict, if invalid) and the files it reads, hashed
    error: str | None = None

    @property
    def cache_key(self) -> str:
        """Canonical scenario + package version: what a cached result is valid for."""
        return _sha256(f"{self.scenario_hash}:{__version__}")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _files_read(scenario: Scenario, seen: dict[str, str]) -> str:
    """The contents (hashed) of the files a scenario names and a run reads: a
    calibration profile, a model file. Part of the run's hash, so an edited file is a
    different run to the result cache and to --resume, not a stale hit. ``seen`` holds
    the digests already taken in this expansion (each file is read once)."""
    digests = []
    for path in (scenario.calibration, scenario.workload.model_file):
        if path is None:
            continue
        if path not in seen:
            try:
                seen[path] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
            except OSError:  # gone since it was validated: the run reports it
                seen[path] = "unreadable"
        digests.append(seen[path])
    return "" if not digests else ":files:" + ",".join(digests)


def canonical(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    """Set a dotted path in a raw scenario dict, creating sections as needed."""
    *sections, leaf = path.split(".")
    node = data
    for part in sections:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[leaf] = value


def _int_or(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def replication_seed(sweep_seed: int, replication: int) -> int:
    seq = np.random.SeedSequence(sweep_seed, spawn_key=(_SEED_STREAM, replication))
    return int(seq.generate_state(1, dtype=np.uint32)[0])


def _draw(rng: np.random.Generator, dist: Distribution) -> Any:
    if dist.choice is not None:
        return dist.choice[int(rng.integers(len(dist.choice)))]
    if dist.randint is not None:
        return int(rng.integers(dist.randint[0], dist.randint[1], endpoint=True))
    if dist.uniform is not None:
        low, high = dist.uniform
        # + 0.0 turns -0.0 into 0.0: numpy refuses uniform(0, -0.0) ("high - low < 0")
        # although the bounds are equal, which the spec accepts.
        return float(rng.uniform(low + 0.0, high + 0.0))
    lo, hi = dist.loguniform  # type: ignore[misc]
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def points(spec: SweepSpec) -> list[dict[str, Any]]:
    """Axis values of every point, in run order (without replications)."""
    axes = spec.axes
    grid = [dict(zip(axes.grid, combo)) for combo in itertools.product(*axes.grid.values())]
    n_zip = len(next(iter(axes.zip.values()))) if axes.zip else 1
    zipped = [{path: values[i] for path, values in axes.zip.items()} for i in range(n_zip)]
    samples: list[dict[str, Any]] = [{}]
    if axes.random is not None:
        rng = np.random.default_rng(np.random.SeedSequence(spec.seed, spawn_key=(_AXES_STREAM,)))
        samples = [
            {path: _draw(rng, dist) for path, dist in axes.random.params.items()} for _ in range(axes.random.samples)
        ]
    return [{**g, **z, **r} for g in grid for z in zipped for r in samples]


def base_scenario(spec: SweepSpec, root: Path | None, source: str) -> dict[str, Any]:
    """The base scenario's raw dict with the sweep's ``set`` overrides applied.

    A ``base:`` file resolves against the sweep file's folder (``root``) and must lie
    under it or a shipped scenarios folder (:mod:`simulator.input_paths`); a
    ``calibration:`` path in the base file resolves against the base file's folder, one
    in an inline base or in ``set`` against the sweep file's, all within ``root``."""
    if spec.base is None:
        raw, name = parse_raw(default_scenario_text(), DEFAULT_SCENARIO_NAME), DEFAULT_SCENARIO_NAME
    elif isinstance(spec.base, dict):
        raw, name = spec.base, "inline"
        if root is not None:
            raw = resolve_calibration_path(raw, root, source=f"{source}: base", root=root)
    else:
        path = Path(spec.base)
        if root is not None:
            path = resolve_input_path(spec.base, root, source=source, field="base")
        try:
            raw, name = read_raw(path), str(path)
            raw = resolve_calibration_path(raw, path.parent, source=str(path), root=root)
        except ScenarioError as exc:
            raise ScenarioError(f"{source}: base: {exc}") from None
    data = apply_overrides(raw, spec.set, f"{source}: set")
    if root is not None and any(item.partition("=")[0].strip() == "calibration" for item in spec.set):
        data = resolve_calibration_path(data, root, source=f"{source}: set", root=root)
    try:
        validate(data, name)  # a broken base is the sweep file's error, not every run's
    except ScenarioError as exc:
        raise ScenarioError(f"{source}: base scenario: {exc}") from None
    return data


#: Axes whose values name files: resolved against the sweep file's folder (and checked),
#: as the same fields of a scenario resolve against the scenario's.
_PATH_AXES = ("calibration", "workload.model_file")


def _axis_paths(values: dict[str, Any], root: Path | None, source: str) -> dict[str, Any]:
    """An axis over ``calibration`` (profiles) or ``workload.model_file`` (model files)
    names files relative to the sweep file (checked)."""
    if root is None:
        return values
    out = dict(values)
    for path in _PATH_AXES:
        value = values.get(path)
        if isinstance(value, str):
            out[path] = str(resolve_input_path(value, root, source=source, field=f"axes: {path}", root=root))
    return out


def expand(spec: SweepSpec, root: Path | None = None, source: str = "<sweep>") -> list[Run]:
    """Every run of the sweep, numbered from 0."""
    base = base_scenario(spec, root, source)
    runs: list[Run] = []
    digests: dict[str, str] = {}
    for p, values in enumerate(points(spec)):
        for rep in range(spec.replications):
            data = json.loads(json.dumps(base))
            set_path(data, "simulation.seed", replication_seed(spec.seed, rep))
            for path, value in _axis_paths(values, root, source).items():
                set_path(data, path, value)
            if "workload.model_file" in values and "workload.model" not in values:
                data.get("workload", {}).pop("model", None)  # the file names the model
            scenario: Scenario | None
            try:
                scenario = validate(data, f"run {len(runs)}")
                files = _files_read(scenario, digests)
                digest, error = _sha256(canonical(scenario.model_dump(mode="json")) + files), None
            except ScenarioError as exc:
                scenario, digest, error = None, _sha256(canonical(data)), f"ScenarioError: {exc}"
            section = data.get("simulation")
            seed = scenario.simulation.seed if scenario else _int_or(
                section.get("seed") if isinstance(section, dict) else None, -1)
            runs.append(Run(len(runs), p, rep, seed, values, scenario, digest, error))
    return runs

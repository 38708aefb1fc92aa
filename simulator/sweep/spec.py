"""The sweep file: a base scenario, axes over dotted scenario paths, replications.

```yaml
name: ring-vs-ps
base: ../ring_4x4_ib100.yaml      # a scenario file (relative to this file), an inline
                                  # scenario mapping, or omitted (the embedded default)
set: [simulation.iterations=2]    # overrides applied to the base, as with --set
axes:
  grid:                           # every combination, first axis outermost
    cluster.nodes: [1, 2, 4]
  zip:                            # walked in lockstep (equal lengths), crossed with grid
    training.strategy: [ring_allreduce, parameter_server]
    training.parameter_servers.count: [1, 4]
  random:                         # seeded samples, crossed with grid and zip
    samples: 4
    params:
      workload.batch_per_gpu: {randint: [16, 128]}
      cluster.nic.bandwidth_gbps: {loguniform: [10, 100]}
      workload.precision: [fp32, fp16]          # a list = uniform choice
replications: 1
seed: 0
```

Everything is validated here (unknown keys rejected, axis paths checked against the
scenario schema) so a bad file fails before any run starts, with one message naming
the file and the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from ..errors import ScenarioError
from ..loading import format_validation_error, read_raw, register_root_model
from ..scenario import Scenario
from ..schema_base import check_limit

#: Integers numpy can draw (int64).
_INT64 = 2**63 - 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Distribution(_Strict):
    """One random axis: exactly one of these keys."""

    choice: list[Any] | None = Field(default=None, min_length=1, description="Pick one value uniformly.")
    uniform: tuple[float, float] | None = Field(default=None, description="Uniform float in [low, high).")
    loguniform: tuple[float, float] | None = Field(
        default=None, description="Log-uniform float in [low, high), low > 0."
    )
    randint: tuple[int, int] | None = Field(default=None, description="Uniform integer in [low, high], both included.")

    @model_validator(mode="after")
    def _exactly_one(self) -> Distribution:
        given = [k for k in ("choice", "uniform", "loguniform", "randint") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of choice, uniform, loguniform, randint")
        bounds = getattr(self, given[0])
        if given[0] == "randint" and not (-_INT64 - 1 <= bounds[0] and bounds[1] < _INT64):
            raise ValueError(f"randint: bounds must lie within 64-bit integers ({-_INT64 - 1} to {_INT64 - 1})")
        if given[0] != "choice" and bounds[0] > bounds[1]:
            raise ValueError(f"{given[0]}: low {bounds[0]} > high {bounds[1]}")
        if given[0] == "loguniform" and bounds[0] <= 0:
            raise ValueError("loguniform: low must be > 0")
        return self


class RandomAxes(_Strict):
    samples: int = Field(ge=1, le=100_000, description="Number of random points drawn (at most 100,000).")
    params: dict[str, Distribution] = Field(min_length=1, description="Dotted path -> distribution (a list = choice).")

    @field_validator("params", mode="before")
    @classmethod
    def _lists_are_choices(cls, v: Any) -> Any:
        if isinstance(v, Mapping):
            return {k: {"choice": d} if isinstance(d, list) else d for k, d in v.items()}
        return v


class Axes(_Strict):
    grid: dict[str, list[Any]] = Field(default_factory=dict, description="Cartesian product of these lists.")
    zip: dict[str, list[Any]] = Field(default_factory=dict, description="Lists of equal length walked in lockstep.")
    random: RandomAxes | None = Field(default=None, description="Seeded random samples.")

    @model_validator(mode="after")
    def _consistent(self) -> Axes:
        for family in ("grid", "zip"):
            for path, values in getattr(self, family).items():
                if not values:
                    raise ValueError(f"{family}.{path}: needs at least one value")
        lengths = {len(v) for v in self.zip.values()}
        if len(lengths) > 1:
            sizes = ", ".join(f"{k} has {len(v)}" for k, v in self.zip.items())
            raise ValueError(f"zip: lists must have equal lengths ({sizes})")
        seen: set[str] = set()
        for path in self.paths():
            if path in seen:
                raise ValueError(f"{path}: appears in more than one axis family")
            seen.add(path)
        return self

    def paths(self) -> list[str]:
        random = list(self.random.params) if self.random else []
        return [*self.grid, *self.zip, *random]


class SweepSpec(_Strict):
    """A validated sweep file."""

    name: str = Field(default="sweep", description="Short name of the sweep.")
    description: str = Field(default="", description="Free text.")
    base: str | dict[str, Any] | None = Field(
        default=None,
        description="Base scenario: a file path (relative to the sweep file), an inline mapping, or the default.",
    )
    set: list[str] = Field(default_factory=list, description="dotted.path=value overrides applied to the base.")
    axes: Axes = Field(default_factory=Axes, description="What varies from run to run.")
    replications: int = Field(
        default=1,
        ge=1,
        description="Runs per point, each with its own derived seed (at most 1,000 unless --allow-large).",
    )
    seed: int = Field(
        default=0, ge=0, le=_INT64, description="Root seed: random axes and every run's simulation.seed derive from it."
    )

    @field_validator("replications")
    @classmethod
    def _replications_limit(cls, v: int) -> int:
        check_limit("simulation.replications", v)
        return v

    @model_validator(mode="after")
    def _runs_limit(self) -> SweepSpec:
        runs = self.run_count()
        try:
            check_limit("sweep.runs", runs)
        except ValueError as exc:
            raise ValueError(f"the sweep expands to {runs:,} runs: {exc}") from None
        return self

    def run_count(self) -> int:
        """Runs the sweep expands to (grid x zip x samples x replications), without expanding it."""
        axes = self.axes
        count = 1
        for values in axes.grid.values():
            count *= len(values)
        if axes.zip:
            count *= len(next(iter(axes.zip.values())))
        if axes.random is not None:
            count *= axes.random.samples
        return count * self.replications


register_root_model(SweepSpec)  # unknown keys in a sweep file get "did you mean" hints


def check_path(path: str) -> str | None:
    """Why ``path`` is not a scenario field (None if it is one)."""
    model: type[BaseModel] | None = Scenario
    parts = path.split(".")
    for depth, part in enumerate(parts):
        if model is None:
            return f"{'.'.join(parts[:depth])} is a value, not a section"
        field = model.model_fields.get(part)
        if field is None:
            return f"unknown scenario field {'.'.join(parts[: depth + 1])!r}"
        annotation = field.annotation
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    if model is not None:
        example = next(iter(model.model_fields))
        return f"{path} is a section, not a value; an axis sets one field (e.g. {path}.{example})"
    return None


def load_sweep(source: str | Path | Mapping[str, Any] | SweepSpec) -> tuple[SweepSpec, Path | None, str]:
    """Parse and validate a sweep; returns the spec, the directory relative base paths
    resolve against (None for an in-memory sweep) and the name errors cite."""
    if isinstance(source, SweepSpec):
        spec, root, name = source, None, "<sweep>"
    else:
        if isinstance(source, Mapping):
            raw, root, name = dict(source), None, "<sweep dict>"
        else:
            raw, root, name = read_raw(source), Path(source).parent, str(source)
        try:
            spec = SweepSpec.model_validate(raw)
        except ValidationError as exc:
            raise ScenarioError(f"{name}: {format_validation_error(exc)}") from None
    for path in spec.axes.paths():
        problem = check_path(path)
        if problem:
            raise ScenarioError(f"{name}: axes: {path}: {problem}")
    return spec, root, name

"""What every scenario schema section shares: strict, frozen pydantic models, the
count limits that stop a typo from running for hours, and the physical bounds of float
fields. Its own module so that sections defined outside :mod:`simulator.scenario` (the
transformer parallelism of :mod:`simulator.llm.parallel`) share them without a cycle."""

from __future__ import annotations

import os
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

#: Upper bounds on counts, beyond any cluster built so far; they stop a typo (10^7
#: nodes) from running for hours or exhausting memory. Lifted by ``--allow-large`` or
#: the environment variable ``CLUSTERSIM_ALLOW_LARGE=1`` for users who mean it.
LIMITS: dict[str, int] = {
    "cluster.nodes": 16_384,
    "cluster.gpus_per_node": 64,
    "cluster.total_gpus": 65_536,
    "cluster.host_cores": 4_096,
    "cluster.server.pcie_switches": 64,
    "cluster.server.gpus_per_switch": 64,
    "cluster.server.nics": 64,
    "cluster.fabric.nodes_per_leaf": 16_384,
    "cluster.fabric.spines": 4_096,
    "workload.batch_per_gpu": 1_048_576,
    "workload.sequence_length": 1_048_576,
    "training.parameter_servers.count": 4_096,
    "training.parameter_servers.cores": 4_096,
    "training.parameter_servers.staleness": 10_000,
    "simulation.iterations": 1_000,
    "simulation.warmup_iterations": 1_000,
    "simulation.replications": 1_000,
    "sweep.runs": 100_000,
    "training.parallelism.tensor": 1_024,
    "training.parallelism.pipeline": 1_024,
    "training.parallelism.context": 1_024,
    "training.parallelism.expert": 1_024,
    "training.parallelism.virtual_stages": 1_024,
    "training.parallelism.micro_batch": 1_048_576,
    "training.parallelism.global_batch": 67_108_864,
}
ALLOW_LARGE_ENV = "CLUSTERSIM_ALLOW_LARGE"

#: Per-rank compute variation on by default: fitted, leave-one-source-out, on the
#: multi-GPU training dev set (README "Validation"); a run that should be noise-free
#: sets ``variability.iteration_cv: 0``.
DEFAULT_ITERATION_CV = 0.04

#: Bounds of float fields (physical, not lifted): every number must also be finite.
MAX_LATENCY_US = 1e6  # one second per hop, message or layer
MAX_GBPS = 1e6  # 1 Pb/s
MAX_GBYTES_S = 1e5
MAX_MIB = 1_048_576.0  # 1 TiB (the tensorflow_collective preset's "unlimited" pack)


def large_allowed() -> bool:
    """Whether the count limits are lifted (``--allow-large`` / ``CLUSTERSIM_ALLOW_LARGE``)."""
    return os.environ.get(ALLOW_LARGE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def check_limit(path: str, value: int | None) -> int | None:
    """``value`` if it is within ``LIMITS[path]`` (or limits are lifted), else a ValueError."""
    limit = LIMITS[path]
    if value is not None and value > limit and not large_allowed():
        raise ValueError(
            f"{value:,} is above the limit of {limit:,} (a safeguard; pass --allow-large or set "
            f"{ALLOW_LARGE_ENV}=1 if you mean it)"
        )
    return value


class _Strict(BaseModel):
    """Frozen, unknown keys rejected, strict types (no "4" or true for a number), finite
    numbers only. ``_limits`` names the count fields bounded by :data:`LIMITS`."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, strict=True, allow_inf_nan=False)
    _section: ClassVar[str] = ""
    _limited: ClassVar[tuple[str, ...]] = ()
    _within_limits: ClassVar[Any]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("_limited"):
            # A validator on the limited fields alone (pydantic collects it after this hook):
            # one on "*" put a Python call on every field of every section and cost about a
            # tenth of the schema's build time at import.
            cls._within_limits = field_validator(*cls._limited)(_within_limits)


def _within_limits(cls: type[_Strict], value: Any, info: ValidationInfo) -> Any:
    """The field's value if it is within :data:`LIMITS` (a ValueError naming the limit if not)."""
    check_limit(f"{cls._section}.{info.field_name}", value)
    return value

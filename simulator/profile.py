"""Calibration profiles: reading one, and what it leaves the simulator to estimate.

The format (a versioned JSON document written by the torch probe) is the pydantic
schema in :mod:`simulator.profile_schema`, re-exported here. :func:`load_profile`
validates a file and raises :class:`~simulator.errors.CalibrationError` naming the file
and the field on anything wrong: unreadable, corrupt or truncated JSON, another
``schema_version``, missing or mistyped fields.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

from pydantic import ValidationError

from .errors import CalibrationError, excerpt
from .profile_schema import (
    BUS_FACTORS,
    FORMAT_NAME,
    READABLE_VERSIONS,
    SCHEMA_VERSION,
    AlphaBetaFit,
    Collective,
    CollectiveFit,
    CollectiveSample,
    Collectives,
    CopyFit,
    CopySample,
    Efficiency,
    Environment,
    Interference,
    IterationSpread,
    LayerFit,
    LayerSample,
    LinearFit,
    MemorySample,
    ModelProfile,
    Phase,
    Profile,
    Provenance,
    ThreadTimings,
    ThroughputFit,
    Timing,
    TrainingSteps,
    WholeModelSample,
    WorkSample,
)
from .safe_input import read_text_file

# The schema's names are this module's too (they were defined here before the split).
__all__ = [
    "AlphaBetaFit",
    "BUS_FACTORS",
    "Collective",
    "CollectiveFit",
    "CollectiveSample",
    "Collectives",
    "CopyFit",
    "CopySample",
    "Efficiency",
    "Environment",
    "FORMAT_NAME",
    "Interference",
    "IterationSpread",
    "LayerFit",
    "LayerSample",
    "LinearFit",
    "MAX_PROFILE_BYTES",
    "MemorySample",
    "ModelProfile",
    "Phase",
    "Profile",
    "Provenance",
    "READABLE_VERSIONS",
    "SCHEMA_VERSION",
    "ThreadTimings",
    "ThroughputFit",
    "Timing",
    "TrainingSteps",
    "WholeModelSample",
    "WorkSample",
    "estimated_fields",
    "load_profile",
    "parse_profile",
]


def estimated_fields(profile: Profile) -> list[str]:
    """What this profile does not measure that the simulator needs, so estimates: one
    line per missing field (empty for a complete version-2 profile)."""
    out = []
    if profile.schema_version < SCHEMA_VERSION:
        out.append(f"schema_version {profile.schema_version}: written before version {SCHEMA_VERSION}")
    if profile.environment.device_kind == "cpu":
        main = profile.environment.torch_threads
        for m in profile.models:
            if not m.threads_sweep:
                out.append(f"models.{m.model}.threads_sweep: layer times at fewer threads per process than "
                           f"{m.threads or main} (ranks sharing the cores) are scaled from those, not measured")
            if m.training_step is None and not any(t.training_step for t in m.threads_sweep):
                out.append(f"models.{m.model}.training_step: whole training iterations in a fresh process are not "
                           "measured; layers are scaled to the probe's forward + backward only, which leaves out "
                           "the allocator's page faults a job pays, DDP's bucket copies and the loss")
    if profile.interference is None:
        out.append("interference: the slowdown of compute beside a collective is a default, not measured")
    if not profile.iteration_spread:
        out.append("iteration_spread: the spread of iteration times is not measured")
    if profile.provenance.load_average_start is None:
        out.append("provenance.load_average_start: the load the profile was taken under is not recorded")
    return out


#: Largest profile file read (the shipped CPU profile is 0.25 MB).
MAX_PROFILE_BYTES = 64 * 2**20


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a finite number")


def parse_profile(text: str, source: str) -> Profile:
    """Validate profile JSON text; errors name ``source`` and the field."""
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        # at the end of the text, or a string never closed before it: cut short
        hint = " (truncated?)" if exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string") else ""
        raise CalibrationError(f"{source}: line {exc.lineno}: not valid JSON{hint}: {exc.msg}") from None
    except RecursionError:
        raise CalibrationError(f"{source}: not a profile: nested too deeply") from None
    except ValueError as exc:  # NaN/Infinity, or an integer of over 4,300 digits
        raise CalibrationError(f"{source}: not valid JSON: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise CalibrationError(f"{source}: a profile must be a JSON object, got {type(data).__name__}")
    if data.get("format", FORMAT_NAME) != FORMAT_NAME:
        raise CalibrationError(f"{source}: format: not a clustersim profile (got {excerpt(data.get('format'))})")
    version = data.get("schema_version")
    if version not in READABLE_VERSIONS or isinstance(version, bool):
        readable = " and ".join(map(str, READABLE_VERSIONS))
        if version is None:
            raise CalibrationError(f"{source}: schema_version: missing (this clustersim reads versions {readable})")
        raise CalibrationError(
            f"{source}: schema_version: profile is version {excerpt(version)}, this clustersim reads versions "
            f"{readable}; re-run `clustersim probe` or `clustersim calibrate` with this version"
        )
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        raise CalibrationError(f"{source}: {_format_errors(exc)}") from None


def _format_errors(exc: ValidationError, limit: int = 3) -> str:
    messages = []
    for err in exc.errors()[:limit]:
        loc = ".".join(str(part) for part in err["loc"])
        msg = "unknown key" if err["type"] == "extra_forbidden" else " ".join(err["msg"].split())
        messages.append(f"{loc}: {msg}" if loc else msg)
    more = len(exc.errors()) - limit
    return "; ".join(messages) + (f"; and {more} more" if more > 0 else "")


def load_profile(path: str | Path) -> Profile:
    """Read and validate a profile file (cached per path and modification time)."""
    path = Path(path)
    if "\0" in str(path):
        raise CalibrationError(f"{excerpt(str(path))}: a path cannot contain a NUL byte")
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise CalibrationError(f"{path}: no such calibration profile") from None
    except OSError as exc:
        raise CalibrationError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return _load_cached(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=16)
def _load_cached(path: str, _mtime_ns: int, _size: int) -> Profile:
    text = read_text_file(path, limit=MAX_PROFILE_BYTES, error=CalibrationError)
    return parse_profile(text, path)

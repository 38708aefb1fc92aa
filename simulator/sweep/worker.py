"""What runs on an executor's workers: simulate a batch of scenarios into metric rows.

Kept tiny and importable at top level so process pools, dask and ray can ship it. A
run that raises becomes an error string instead of stopping the batch.
"""

from __future__ import annotations

import math
from typing import Any

from ..engine import simulate
from ..results import SimResult
from ..scenario import Scenario

Task = tuple[int, Scenario]  # (run number, scenario)
Outcome = tuple[int, dict[str, Any] | None, str | None]  # (run, metrics, error)


def metrics(result: SimResult) -> dict[str, Any]:
    """A result's flat metrics as plain Python values, plus its top utilizations ranked
    (``utilization.1.resource`` / ``.kind`` / ``.utilization``)."""
    row = {k: _plain(v) for k, v in result.to_row().items()}
    for rank, u in enumerate(result.utilization, start=1):
        row[f"utilization.{rank}.resource"] = u.resource
        row[f"utilization.{rank}.kind"] = u.kind
        row[f"utilization.{rank}.utilization"] = float(u.utilization)
    return row


def _plain(value: Any) -> Any:
    """numpy scalars -> Python scalars, so rows serialize and compare exactly."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()
    return value


def estimated_cost(scenario: Scenario) -> float:
    """A rough relative cost of simulating ``scenario``, only to order a sweep's batches:
    events grow with the iterations, the ranks followed (every one on the detailed
    path), the flows per bucket (parameter servers make several times a collective's)
    and, more slowly, the GPUs (routes, graph)."""
    c, s = scenario.cluster, scenario.simulation
    iterations = s.iterations + s.warmup_iterations
    ranks = c.total_gpus if scenario.detailed else 1
    flows = 6.0 if scenario.training.strategy == "parameter_server" else 1.0
    return iterations * ranks * flows * (1.0 + math.log2(c.total_gpus))


def run_one(scenario: Scenario) -> dict[str, Any]:
    return metrics(simulate(scenario))


def run_batch(tasks: list[Task]) -> list[Outcome]:
    out: list[Outcome] = []
    for run, scenario in tasks:
        try:
            out.append((run, run_one(scenario), None))
        except Exception as exc:  # noqa: BLE001 - a failed run is a row, not a crash
            out.append((run, None, f"{type(exc).__name__}: {exc}"))
    return out


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))

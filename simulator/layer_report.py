"""Per-layer predicted times of one rank: which layers dominate an iteration.

``clustersim simulate`` puts these rows in its JSON (``layers``) and, with
``--layers``, prints the most expensive ones with the totals per layer kind. The times
are the ones the engine runs (the layer-time model of :mod:`simulator.compute`, or the
calibration profile, or a measured throughput), for the scenario's batch per GPU.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from .engine import rank_compute_costs
from .resolved import resolve
from .scenario import Scenario


def layer_rows(scenario: Scenario) -> list[dict[str, Any]]:
    """One row per layer in forward order: name, kind, conv algorithm (None for other
    layers), forward and backward milliseconds and share of the rank's compute, and how
    many layers read its output (two or more: its backward includes summing their
    gradients, ``workload.fork_gradients``)."""
    view = resolve(scenario)
    costs, _, algorithms = rank_compute_costs(view)
    model = view.model
    total = costs.total_s
    return [
        {"layer": layer.name, "kind": layer.kind, "algorithm": algorithm,
         "forward_ms": float(f) * 1e3, "backward_ms": float(b) * 1e3, "share": float(f + b) / total,
         "readers": layer.output_consumers}
        for layer, algorithm, f, b in zip(model.layers, algorithms, costs.forward_s, costs.backward_s, strict=True)
    ] + [{"layer": "optimizer step", "kind": "optimizer", "algorithm": None, "forward_ms": 0.0,
          "backward_ms": costs.optimizer_s * 1e3, "share": costs.optimizer_s / total, "readers": 0}]


def by_kind(rows: list[dict[str, Any]]) -> list[tuple[str, int, float, float]]:
    """(kind, layers, milliseconds, share) per layer kind, largest first."""
    ms: dict[str, float] = defaultdict(float)
    count: dict[str, int] = defaultdict(int)
    share: dict[str, float] = defaultdict(float)
    for row in rows:
        ms[row["kind"]] += row["forward_ms"] + row["backward_ms"]
        count[row["kind"]] += 1
        share[row["kind"]] += row["share"]
    return sorted(((k, count[k], ms[k], share[k]) for k in ms), key=lambda r: -r[2])

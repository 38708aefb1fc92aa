"""What plots are drawn from: results as one table, the scenario columns that vary,
labels with units, the tables the heatmaps show, and the refusal to average rows
silently (:class:`PlotError`).
The figures themselves are :mod:`simulator.plots`."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .errors import ClusterSimError
from .results import SimResult

# Columns that differ between runs without describing a configuration.
_NOT_CONFIG = {"run", "point", "replication", "seed", "simulation.seed", "scenario_hash", "name", "description"}
_SECTIONS = ("cluster", "workload", "training", "simulation", "variability")
# Descriptors of a SimResult row (lists of results carry no scenario columns).
_RESULT_CONFIG = ("model", "strategy", "gpu", "nodes", "gpus_per_node", "batch_per_gpu", "mode")
_UNITS = {
    "throughput_samples_per_s": ("throughput", "samples/s"),
    "iteration_time_s": ("iteration time", "s"),
    "speedup": ("speedup", "x one GPU"),
    "scaling_efficiency": ("scaling efficiency", "fraction of linear"),
    "bottleneck.utilization": ("bottleneck utilization", "fraction of capacity"),
    "total_gpus": ("GPUs", "count"),
}


class PlotError(ClusterSimError):
    """A plot cannot be drawn honestly from these rows (or they lack a column)."""


def metric_label(column: str) -> str:
    """Axis label of a metric column, with its unit: ``'throughput (samples/s)'``."""
    if column in _UNITS:
        name, unit = _UNITS[column]
        return f"{name} ({unit})"
    if column.endswith("_s"):
        return f"{column[:-2].replace('_', ' ')} (s)"
    return column


def as_frame(data: pd.DataFrame | Sequence[SimResult] | SimResult) -> pd.DataFrame:
    """A sweep table, or a list of results turned into one (one row each)."""
    if isinstance(data, pd.DataFrame):
        frame = data
    else:
        from .sweep.worker import metrics

        results = [data] if isinstance(data, SimResult) else list(data)
        frame = pd.DataFrame([{**metrics(r), "run": i} for i, r in enumerate(results)])
    if "status" in frame:
        frame = frame[frame["status"] == "ok"]
    if frame.empty:
        raise PlotError("nothing to plot: no successful runs")
    return frame


def varying_columns(frame: pd.DataFrame) -> list[str]:
    """Scenario columns (dotted, with a section) whose value differs between rows."""
    cols = [c for c in frame.columns if "." in c and c.split(".")[0] in _SECTIONS]
    return [c for c in cols if c not in _NOT_CONFIG and frame[c].astype(str).nunique() > 1]


def config_columns(frame: pd.DataFrame) -> list[str]:
    """Columns that describe a configuration and differ between rows."""
    cols = varying_columns(frame)
    if any("." in c and c.split(".")[0] in _SECTIONS for c in frame.columns):
        return cols  # a sweep table: the scenario columns say it all
    return [c for c in _RESULT_CONFIG if c in frame and frame[c].astype(str).nunique() > 1]


def hidden_columns(frame: pd.DataFrame, keys: Sequence[str]) -> dict[str, int]:
    """Configuration columns that differ between rows sharing the ``keys`` values (what
    a mean over those rows would hide), with each one's number of distinct values.
    Columns that follow from ``keys`` (cluster.nodes when keys hold total_gpus) and
    replications (rows differing only in their seed) are not hidden."""
    keys = list(keys)
    candidates = [c for c in config_columns(frame) if c not in keys]
    if not candidates:
        return {}
    as_text = frame[keys + candidates].astype(str)
    grouped = as_text.groupby(keys, sort=False)[candidates].nunique()
    return {c: int(frame[c].astype(str).nunique()) for c in candidates if (grouped[c] > 1).any()}


def refuse_averaging(what: str, keys: Sequence[str], hidden: dict[str, int], how: str, flag: str) -> PlotError:
    listed = ", ".join(f"{c} ({n} values)" for c, n in hidden.items())
    return PlotError(
        f"{what}: rows with the same {' and '.join(keys)} differ in {listed}; a point would average "
        f"them. {how}, keep one value (--where COLUMN=VALUE), or ask for the aggregate ({flag})"
    )


def short_name(col: str) -> str:
    return col.split(".")[-1]


def config_labels(frame: pd.DataFrame, by: str | Sequence[str] | None) -> list[str]:
    cols = [by] if isinstance(by, str) else list(by) if by else varying_columns(frame)
    if not cols:
        return [str(s) for s in frame.get("scenario", pd.Series(frame.index.astype(str), index=frame.index))]
    return [", ".join(f"{short_name(c)}={row[c]}" for c in cols) for _, row in frame[cols].iterrows()]


def replication_note(frame: pd.DataFrame, keys: Sequence[str]) -> str:
    per_point = frame.groupby(list(keys), sort=False).size()
    n = int(per_point.max()) if len(per_point) else 1
    return f" (mean of {n} replications)" if n > 1 else ""


def top_ranks(frame: pd.DataFrame) -> list[int]:
    return sorted({int(c.split(".")[1]) for c in frame.columns if re.fullmatch(r"utilization\.\d+\.utilization", c)})


def utilization_matrix(
    data: pd.DataFrame | Sequence[SimResult],
    by: str | Sequence[str] | None = None,
    kinds: Sequence[str] = ("network", "pcie", "parameter_server"),
) -> pd.DataFrame:
    """Resources (rows) x configurations (columns) of utilization, from each run's
    ranked top resources; NaN where a resource is not among a run's top ones (its
    utilization is then at most :func:`utilization_bounds`' value for that run)."""
    frame = as_frame(data)
    labels = config_labels(frame, by)
    cells: dict[tuple[str, str], float] = {}
    for label, (_, row) in zip(labels, frame.iterrows()):
        for r in top_ranks(frame):
            kind = row.get(f"utilization.{r}.kind")
            if isinstance(kind, str) and kind in kinds:
                cells[(row[f"utilization.{r}.resource"], label)] = float(row[f"utilization.{r}.utilization"])
    resources = sorted({res for res, _ in cells}, key=natural_key)
    columns = list(dict.fromkeys(labels))
    matrix = pd.DataFrame(np.nan, index=resources, columns=columns)
    for (res, label), value in cells.items():
        matrix.loc[res, label] = value
    return matrix


def utilization_bounds(data: pd.DataFrame | Sequence[SimResult], by: str | Sequence[str] | None = None) -> pd.Series:
    """Per configuration, the most a resource left out of its ranked list can be
    utilized: its last listed value when the list is full (a tie at the cut may have
    left out resources exactly this busy), 0 when the list is shorter (every resource
    that carried anything is listed)."""
    frame = as_frame(data)
    ranks = top_ranks(frame)
    out: dict[str, float] = {}
    for label, (_, row) in zip(config_labels(frame, by), frame.iterrows()):
        values = [float(row[f"utilization.{r}.utilization"]) for r in ranks
                  if pd.notna(row.get(f"utilization.{r}.utilization"))]
        full = bool(ranks) and len(values) == len(ranks)
        out[label] = min(values) if full else 0.0
    return pd.Series(out)


def natural_key(name: str) -> list[Any]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(name))]


def sweep_matrix(
    data: pd.DataFrame, x: str, y: str, value: str = "throughput_samples_per_s", agg: str | None = None
) -> pd.DataFrame:
    """``value`` per (y, x) cell: rows y, columns x. A cell holding rows that differ
    in another scenario column raises :class:`PlotError` unless ``agg`` (``"mean"``,
    ``"max"``, ...) says how to combine them; replications are averaged."""
    frame = as_frame(data)
    for col in (x, y, value):
        if col not in frame:
            raise PlotError(f"no column {col!r} in the results")
    if agg is None:
        hidden = hidden_columns(frame, [x, y])
        if hidden:
            raise refuse_averaging("heatmap", [x, y], hidden, "Put them on the axes", 'agg="mean"')
    return frame.pivot_table(index=y, columns=x, values=value, aggfunc=agg or "mean").sort_index().sort_index(axis=1)

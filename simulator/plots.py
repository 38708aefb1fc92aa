"""Plots of results and sweeps. Every function returns a matplotlib ``Figure``.

Figures are built with ``matplotlib.figure.Figure`` (no pyplot global state), so they
work in scripts, notebooks and worker threads alike; save with ``fig.savefig(path)``.
Table inputs are sweep tables (:func:`run_sweep`, ``clustersim sweep``) or lists of
:class:`SimResult`; configurations are labelled by the scenario columns that vary
unless ``by`` names them.

* :func:`speedup_plot` - speedup and scaling efficiency against GPU count, ideal line;
* :func:`breakdown_plot` - stacked compute / exposed communication / idle per config;
* :func:`utilization_heatmap` - the most utilized links and servers per config;
* :func:`timeline_plot` - one iteration as a Gantt chart per GPU and link;
* :func:`sweep_heatmap` - a metric over two sweep axes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .errors import ClusterSimError
from .results import SimResult

_PARTS = {"compute_s": "compute", "exposed_communication_s": "exposed communication", "idle_s": "idle"}
_PHASE_COLORS = {
    "forward": "tab:blue",
    "backward": "tab:cyan",
    "sync wait": "tab:red",
    "optimizer": "tab:purple",
    "communication": "tab:orange",
}
# Columns that differ between runs without describing a configuration.
_NOT_CONFIG = {"run", "point", "replication", "seed", "simulation.seed", "scenario_hash", "name", "description"}


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
        raise ClusterSimError("nothing to plot: no successful runs")
    return frame


def varying_columns(frame: pd.DataFrame) -> list[str]:
    """Scenario columns (dotted, with a section) whose value differs between rows."""
    cols = [c for c in frame.columns if "." in c and c.split(".")[0] in ("cluster", "workload", "training", "simulation")]
    return [c for c in cols if c not in _NOT_CONFIG and frame[c].astype(str).nunique() > 1]


def _labels(frame: pd.DataFrame, by: str | Sequence[str] | None) -> list[str]:
    cols = [by] if isinstance(by, str) else list(by) if by else varying_columns(frame)
    if not cols:
        return [str(s) for s in frame.get("scenario", frame.index)]
    return [", ".join(f"{c.split('.')[-1]}={row[c]}" for c in cols) for _, row in frame[cols].iterrows()]


def speedup_plot(
    data: pd.DataFrame | Sequence[SimResult], x: str = "total_gpus", hue: str | Sequence[str] | None = None
) -> Figure:
    """Speedup (left) and scaling efficiency (right) against GPU count, one line per
    ``hue`` group (mean over rows sharing x and group), with the ideal (linear) line."""
    frame = as_frame(data)
    hue_cols = [hue] if isinstance(hue, str) else list(hue or [])
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax_s, ax_e = fig.subplots(1, 2)
    groups = frame.groupby(hue_cols, sort=True) if hue_cols else [((), frame)]
    for key, group in groups:
        agg = group.groupby(x)[["speedup", "scaling_efficiency"]].mean().sort_index()
        key = key if isinstance(key, tuple) else (key,)
        label = ", ".join(f"{c.split('.')[-1]}={k}" for c, k in zip(hue_cols, key)) or "simulated"
        ax_s.plot(agg.index, agg["speedup"], marker="o", label=label)
        ax_e.plot(agg.index, agg["scaling_efficiency"], marker="o", label=label)
    xs = np.sort(frame[x].unique())
    ax_s.plot(xs, xs, "k--", label="ideal", linewidth=1)
    ax_e.axhline(1.0, color="k", linestyle="--", linewidth=1, label="ideal")
    ax_s.set(xlabel="GPUs", ylabel="speedup over 1 GPU", title="Speedup")
    ax_e.set(xlabel="GPUs", ylabel="scaling efficiency", title="Scaling efficiency", ylim=(0, 1.05))
    for ax in (ax_s, ax_e):
        ax.grid(True, alpha=0.3)
        if len(xs) > 1 and xs.min() > 0 and xs.max() / xs.min() >= 8:
            ax.set_xscale("log", base=2)
    ax_s.legend(fontsize="small")
    return fig


def breakdown_plot(data: pd.DataFrame | Sequence[SimResult], by: str | Sequence[str] | None = None) -> Figure:
    """Stacked bars of one iteration: compute, exposed communication, idle (ms)."""
    frame = as_frame(data)
    labels = _labels(frame, by)
    fig = Figure(figsize=(max(6, 0.5 * len(frame) + 3), 4.5), layout="constrained")
    ax = fig.subplots()
    bottom = np.zeros(len(frame))
    for key, name in _PARTS.items():
        values = frame[f"breakdown.{key}"].to_numpy(dtype=float) * 1e3
        ax.bar(range(len(frame)), values, bottom=bottom, label=name)
        bottom += values
    ax.set_xticks(range(len(frame)), labels, rotation=60, ha="right", fontsize="small")
    ax.set(ylabel="ms per iteration", title="Where one iteration's time goes")
    ax.legend()
    return fig


def utilization_matrix(
    data: pd.DataFrame | Sequence[SimResult],
    by: str | Sequence[str] | None = None,
    kinds: Sequence[str] = ("network", "pcie", "parameter_server"),
) -> pd.DataFrame:
    """Resources (rows) x configurations (columns) of utilization, from each run's
    ranked top resources; NaN where a resource is not among a run's top ones."""
    frame = as_frame(data)
    labels = _labels(frame, by)
    ranks = sorted({int(c.split(".")[1]) for c in frame.columns if c.startswith("utilization.")})
    cells: dict[tuple[str, str], float] = {}
    for label, (_, row) in zip(labels, frame.iterrows()):
        for r in ranks:
            kind = row.get(f"utilization.{r}.kind")
            if isinstance(kind, str) and kind in kinds:
                cells[(row[f"utilization.{r}.resource"], label)] = float(row[f"utilization.{r}.utilization"])
    resources = sorted({res for res, _ in cells})
    columns = list(dict.fromkeys(labels))
    matrix = pd.DataFrame(np.nan, index=resources, columns=columns)
    for (res, label), value in cells.items():
        matrix.loc[res, label] = value
    return matrix


def utilization_heatmap(
    data: pd.DataFrame | Sequence[SimResult],
    by: str | Sequence[str] | None = None,
    kinds: Sequence[str] = ("network", "pcie", "parameter_server"),
) -> Figure:
    """Heatmap of link and parameter-server utilization per configuration."""
    matrix = utilization_matrix(data, by, kinds)
    if matrix.empty:
        raise ClusterSimError(f"no {'/'.join(kinds)} resource among the runs' most utilized ones")
    fig = Figure(figsize=(max(6, 0.6 * matrix.shape[1] + 4), max(3, 0.35 * matrix.shape[0] + 2)), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(np.ma.masked_invalid(matrix.to_numpy(dtype=float)), vmin=0, vmax=1, cmap="viridis", aspect="auto")
    ax.set_xticks(range(matrix.shape[1]), matrix.columns, rotation=60, ha="right", fontsize="small")
    ax.set_yticks(range(matrix.shape[0]), matrix.index, fontsize="small")
    ax.set_title("Link and server utilization (most utilized resources of each run)")
    fig.colorbar(image, ax=ax, label="utilization")
    return fig


def timeline_plot(result: SimResult, iteration: int | None = None, max_links: int = 8) -> Figure:
    """One iteration as a Gantt chart: each recorded GPU's phases and communication,
    then the ``max_links`` busiest links' flows. Needs ``simulate(...,
    record_timeline=True)``; ``iteration`` defaults to the first measured one."""
    timeline = result.extra.get("timeline")
    if timeline is None:
        raise ClusterSimError("this result has no timeline: simulate(scenario, record_timeline=True)")
    it = timeline["warmup_iterations"] if iteration is None else iteration
    if not 0 <= it < len(timeline["iterations"]):
        raise ClusterSimError(f"iteration {it} out of range 0..{len(timeline['iterations']) - 1}")
    lo, hi = timeline["iterations"][it]

    def clip(start: float, end: float | None) -> tuple[float, float] | None:
        end = hi if end is None else end
        a, b = max(start, lo), min(end, hi)
        return (a - lo, b - a) if b > a else None

    rows: list[tuple[str, list[tuple[float, float]], str]] = []
    for rank in timeline["ranks"]:
        for kind in ("forward", "backward", "sync wait", "optimizer"):
            spans = [clip(i["start"], i["end"]) for i in rank["intervals"] if i["kind"] == kind]
            rows.append((f"{rank['gpu']} compute", [s for s in spans if s], _PHASE_COLORS[kind]))
        spans = [clip(i["start"], i["end"]) for i in rank["intervals"] if i["kind"] == "communication"]
        rows.append((f"{rank['gpu']} sync", [s for s in spans if s], _PHASE_COLORS["communication"]))
    busy: dict[str, list[tuple[float, float]]] = {}
    for flow in timeline["flows"]:
        span = clip(flow["start"], flow["end"])
        if span:
            for link in flow["links"]:
                busy.setdefault(link, []).append(span)
    top = sorted(busy, key=lambda link: (-sum(w for _, w in busy[link]), link))[:max_links]
    for link in top:
        rows.append((link, busy[link], "tab:green"))

    names = list(dict.fromkeys(name for name, _, _ in rows))
    fig = Figure(figsize=(10, 0.45 * len(names) + 1.5), layout="constrained")
    ax = fig.subplots()
    for name, spans, color in rows:
        if spans:
            ax.broken_barh([(a * 1e3, w * 1e3) for a, w in spans], (names.index(name) - 0.4, 0.8), color=color, alpha=0.8)
    ax.set_yticks(range(len(names)), names, fontsize="small")
    ax.invert_yaxis()
    ax.set(xlabel="ms since the iteration started", xlim=(0, (hi - lo) * 1e3))
    ax.set_title(f"{result.scenario}: iteration {it} ({(hi - lo) * 1e3:.1f} ms)")
    handles = [_patch(c, k) for k, c in _PHASE_COLORS.items()] + [_patch("tab:green", "link busy")]
    ax.legend(handles=handles, fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=6)
    return fig


def _patch(color: str, label: str) -> Any:
    from matplotlib.patches import Patch

    return Patch(color=color, label=label)


def sweep_matrix(
    data: pd.DataFrame, x: str, y: str, value: str = "throughput_samples_per_s", agg: str = "mean"
) -> pd.DataFrame:
    """``value`` aggregated over the rows of each (y, x) cell: rows y, columns x."""
    frame = as_frame(data)
    for col in (x, y, value):
        if col not in frame:
            raise ClusterSimError(f"no column {col!r} in the results")
    return frame.pivot_table(index=y, columns=x, values=value, aggfunc=agg).sort_index().sort_index(axis=1)


def sweep_heatmap(
    data: pd.DataFrame, x: str, y: str, value: str = "throughput_samples_per_s", agg: str = "mean"
) -> Figure:
    """A metric over two sweep axes, each cell annotated (``agg`` over other axes)."""
    matrix = sweep_matrix(data, x, y, value, agg)
    fig = Figure(figsize=(max(5, 0.9 * matrix.shape[1] + 3), max(3, 0.5 * matrix.shape[0] + 2)), layout="constrained")
    ax = fig.subplots()
    values = matrix.to_numpy(dtype=float)
    image = ax.imshow(values, cmap="viridis", aspect="auto", origin="lower")
    ax.set_xticks(range(matrix.shape[1]), [str(c) for c in matrix.columns])
    ax.set_yticks(range(matrix.shape[0]), [str(i) for i in matrix.index])
    ax.set(xlabel=x, ylabel=y, title=f"{value} ({agg})")
    finite = values[np.isfinite(values)]
    middle = (finite.min() + finite.max()) / 2 if finite.size else 0
    for (i, j), v in np.ndenumerate(values):
        if np.isfinite(v):
            ax.text(j, i, f"{v:.3g}", ha="center", va="center", fontsize="small", color="white" if v < middle else "black")
    fig.colorbar(image, ax=ax, label=value)
    return fig


PLOTS = {
    "speedup": speedup_plot,
    "breakdown": breakdown_plot,
    "utilization": utilization_heatmap,
    "heatmap": sweep_heatmap,
    "timeline": timeline_plot,
}

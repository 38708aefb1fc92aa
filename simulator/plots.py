"""Plots of results and sweeps. Every function returns a matplotlib ``Figure``.

Figures are built with ``matplotlib.figure.Figure`` (no pyplot global state), so they
work in scripts, notebooks and worker threads alike; save with ``fig.savefig(path)``.
In Jupyter a figure that is a cell's value is shown once, as a PNG (the figures carry
their own ``_repr_png_``; no ``%matplotlib`` magic is needed).

Table inputs are sweep tables (:func:`run_sweep`, ``clustersim sweep``) or lists of
:class:`SimResult`; configurations are labelled by the scenario columns that vary
unless ``by`` names them.

No plot averages silently: where rows that would share one point (or one heatmap cell)
differ in a scenario column that is not on the plot, the plot raises :class:`PlotError`
naming those columns; put them on the plot (``hue``, ``facet``), filter the rows, or
ask for the aggregate (``average=True``, ``agg="mean"``). Replications of one
configuration (rows differing only in their seed) are averaged, and the title says so.

* :func:`speedup_plot` - speedup and scaling efficiency against GPU count, ideal line;
* :func:`breakdown_plot` - stacked compute / exposed communication / idle per config;
* :func:`utilization_heatmap` - the most utilized links and servers per config;
* :func:`timeline_plot` - one iteration as a Gantt chart per GPU, server and link;
* :func:`sweep_heatmap` - a metric over two sweep axes.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import PercentFormatter

from .plot_data import (
    PlotError,
    as_frame,
    config_labels,
    hidden_columns,
    metric_label,
    natural_key,
    refuse_averaging,
    replication_note,
    short_name,
    sweep_matrix,
    top_ranks,
    utilization_bounds,
    utilization_matrix,
    varying_columns,
)
from .results import SimResult

# PlotError and the table helpers are this module's too (defined here before the split).
__all__ = ["PLOTS", "DisplayFigure", "PlotError", "as_frame", "breakdown_plot", "hidden_columns", "metric_label",
           "speedup_plot", "sweep_heatmap", "sweep_matrix", "timeline_plot", "utilization_bounds",
           "utilization_heatmap", "utilization_matrix", "varying_columns"]

_PARTS = {
    "compute_s": ("compute", "tab:blue"),
    "interference_s": ("compute slowed by collectives", "tab:purple"),
    "bucket_copy_s": ("gradient bucket copies", "tab:olive"),
    "exposed_communication_s": ("exposed communication", "tab:orange"),
    "input_wait_s": ("input pipeline wait", "tab:gray"),
    "input_copy_s": ("batch copied from host", "tab:pink"),
    "idle_s": ("idle (waiting for others)", "tab:red"),
}
_PHASE_COLORS = {
    "accumulation": "tab:gray",  # micro-batches whose gradients are only summed
    "forward": "tab:blue",
    "backward": "tab:cyan",
    "sync wait": "tab:red",
    "optimizer": "tab:purple",
    "communication": "tab:orange",
    "bucket copy": "tab:olive",
}
_LINK_COLOR, _SERVER_COLOR = "tab:green", "tab:brown"
_NOT_LISTED = "#d9d9d9"


class DisplayFigure(Figure):
    """A :class:`~matplotlib.figure.Figure` that Jupyter shows as one PNG when it is a
    cell's value, whatever the matplotlib backend (no pyplot, no ``%matplotlib``)."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png")
        return buffer.getvalue()


def speedup_plot(
    data: pd.DataFrame | Sequence[SimResult],
    x: str = "total_gpus",
    hue: str | Sequence[str] | None = None,
    *,
    facet: str | None = None,
    average: bool = False,
) -> Figure:
    """Speedup (left) and scaling efficiency (right) against GPU count, one line per
    ``hue`` group, with the ideal (linear) line; one row of panels per ``facet`` value.

    Rows sharing an x value and a hue group must not differ in any other scenario
    column: otherwise :class:`PlotError` names those columns, unless ``average=True``
    asks for their mean (said in the title). Replications are averaged."""
    frame = as_frame(data)
    hue_cols = [hue] if isinstance(hue, str) else list(hue or [])
    for col in [x, *hue_cols, *([facet] if facet else [])]:
        if col not in frame:
            raise PlotError(f"no column {col!r} in the results")
    keys = [x, *hue_cols, *([facet] if facet else [])]
    hidden = hidden_columns(frame, keys)
    if hidden and not average:
        raise refuse_averaging("speedup plot", keys, hidden, "Put them on the plot (hue= / --hue, facet=)",
                      "average=True")
    note = f" (mean over {', '.join(short_name(c) for c in hidden)})" if hidden else replication_note(frame, keys)

    facets = sorted(frame[facet].unique(), key=str) if facet else [None]
    fig = DisplayFigure(figsize=(11, 3.8 * len(facets) + 0.8), layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(facets), 2, squeeze=False))
    xs_all = np.sort(frame[x].unique())
    log_x = len(xs_all) > 1 and xs_all.min() > 0 and xs_all.max() / xs_all.min() >= 8
    handles: dict[str, Any] = {}
    for (ax_s, ax_e), value in zip(axes, facets):
        part = frame if facet is None else frame[frame[facet] == value]
        groups = part.groupby(hue_cols, sort=True) if hue_cols else [((), part)]
        for key, group in groups:
            agg = group.groupby(x)[["speedup", "scaling_efficiency"]].mean().sort_index()
            key = key if isinstance(key, tuple) else (key,)
            label = ", ".join(f"{short_name(c)}={k}" for c, k in zip(hue_cols, key)) or "simulated"
            (line,) = ax_s.plot(agg.index, agg["speedup"], marker="o", label=label)
            ax_e.plot(agg.index, agg["scaling_efficiency"], marker="o", label=label, color=line.get_color())
            handles.setdefault(label, line)
        xs = np.sort(part[x].unique())
        if x == "total_gpus":
            (ideal,) = ax_s.plot(xs, xs, "k--", label="ideal", linewidth=1)
            handles["ideal (linear)"] = ideal
        ax_e.axhline(1.0, color="k", linestyle="--", linewidth=1, label="ideal")
        where = f" - {short_name(facet)}={value}" if facet else ""
        xlabel = metric_label(x)
        ax_s.set(xlabel=xlabel, ylabel="speedup (x one GPU)", title=f"Speedup{where}")
        ax_e.set(xlabel=xlabel, ylabel="scaling efficiency (% of linear)", title=f"Scaling efficiency{where}",
                 ylim=(0, 1.05))
        ax_e.yaxis.set_major_formatter(PercentFormatter(xmax=1))
        for ax in (ax_s, ax_e):
            ax.grid(True, alpha=0.3)
            if log_x:
                ax.set_xscale("log", base=2)
                ax.set_xticks(xs_all, [f"{v:g}" for v in xs_all])
    fig.suptitle(f"Scaling against {xlabel.split(' (')[0]}{note}")
    fig.legend(list(handles.values()), list(handles), loc="outside lower center",
               ncol=min(4, len(handles)), fontsize="small", frameon=False)
    return fig


def breakdown_plot(data: pd.DataFrame | Sequence[SimResult], by: str | Sequence[str] | None = None) -> Figure:
    """Horizontal stacked bars, one per configuration (top to bottom in table order):
    where one iteration's time goes (ms) - compute (and its slowdown beside collectives),
    exposed communication, input wait, idle. The
    figure grows with the rows, so many configurations stay readable."""
    frame = as_frame(data)
    labels = config_labels(frame, by)
    n = len(frame)
    longest = max((len(label) for label in labels), default=10)
    fig = DisplayFigure(figsize=(min(7 + 0.07 * longest, 16), 0.28 * n + 2.2), layout="constrained")
    ax = fig.subplots()
    left = np.zeros(n)
    rows = np.arange(n)
    for key, (name, color) in _PARTS.items():
        col = f"breakdown.{key}"
        if col not in frame:
            continue
        values = np.nan_to_num(frame[col].to_numpy(dtype=float)) * 1e3
        ax.barh(rows, values, left=left, height=0.75, label=name, color=color)
        left += values
    ax.set_yticks(rows, labels, fontsize="small" if n > 12 else "medium")
    ax.set_ylim(n - 0.5, -0.5)  # first row on top
    cols = [by] if isinstance(by, str) else list(by) if by else varying_columns(frame)
    ax.set_ylabel("configuration" + (f" ({', '.join(short_name(c) for c in cols)})" if cols else ""))
    ax.set_xlabel("time per iteration (ms)")
    ax.grid(True, axis="x", alpha=0.3)
    fig.suptitle("Where one iteration's time goes")
    # Above the bars, under the title, in constrained layout's room (never over them).
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, fontsize="small", frameon=False)
    return fig


def utilization_heatmap(
    data: pd.DataFrame | Sequence[SimResult],
    by: str | Sequence[str] | None = None,
    kinds: Sequence[str] = ("network", "pcie", "parameter_server"),
) -> Figure:
    """Heatmap of link and parameter-server utilization per configuration, each cell
    annotated. A resource outside a run's ranked list is drawn grey and hatched (not as
    a color of the scale), annotated with the most it can be (``<=27%``): resources tied
    with the last listed one may have been cut from the list."""
    frame = as_frame(data)
    matrix = utilization_matrix(frame, by, kinds)
    if matrix.empty:
        raise PlotError(f"no {'/'.join(kinds)} resource among the runs' most utilized ones")
    bounds = utilization_bounds(frame, by)
    n_rows, n_cols = matrix.shape
    longest = max(len(str(r)) for r in matrix.index)
    fig = DisplayFigure(
        figsize=(min(max(7.0, 0.9 * n_cols + 0.07 * longest + 3), 30), max(3.5, 0.4 * n_rows + 3)),
        layout="constrained",
    )
    ax = fig.subplots()
    values = matrix.to_numpy(dtype=float)
    for j, label in enumerate(matrix.columns):  # known to be idle: not ranked, nothing carried
        if bounds.get(label, 1.0) == 0.0:
            values[np.isnan(values[:, j]), j] = 0.0
    import matplotlib

    cmap = matplotlib.colormaps["viridis"].with_extremes(bad=_NOT_LISTED)
    image = ax.imshow(np.ma.masked_invalid(values), vmin=0, vmax=1, cmap=cmap, aspect="auto")
    for (i, j), v in np.ndenumerate(values):
        if np.isfinite(v):
            ax.text(j, i, f"{v:.0%}", ha="center", va="center", fontsize="small",
                    color="white" if v < 0.6 else "black")
        else:
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="///", edgecolor="#a0a0a0", lw=0))
            ax.text(j, i, f"<={bounds[matrix.columns[j]]:.0%}", ha="center", va="center", fontsize="small",
                    color="#404040", bbox={"fc": _NOT_LISTED, "ec": "none", "pad": 1})
    ax.set_xticks(range(n_cols), matrix.columns, rotation=30 if n_cols > 3 else 0,
                  ha="right" if n_cols > 3 else "center", fontsize="small")
    ax.set_yticks(range(n_rows), matrix.index, fontsize="small")
    cols = [by] if isinstance(by, str) else list(by) if by else varying_columns(frame)
    ax.set_xlabel("configuration" + (f" ({', '.join(short_name(c) for c in cols)})" if cols else ""))
    ax.set_ylabel("link (direction u->v) or server")
    top = len(top_ranks(frame))
    fig.suptitle(f"Link and server utilization: each run's {top} most utilized resources")
    colorbar = fig.colorbar(image, ax=ax, label="utilization (% of capacity or of time busy)")
    colorbar.formatter = PercentFormatter(xmax=1)
    colorbar.update_ticks()
    fig.legend(handles=[Patch(facecolor=_NOT_LISTED, hatch="///", edgecolor="#a0a0a0",
                              label=f"not among that run's {top} most utilized (at most the value shown)")],
               loc="outside lower center", fontsize="small", frameon=False)
    return fig


def _union(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """(start, width) spans merged where they overlap."""
    merged: list[list[float]] = []
    for a, w in sorted(spans):
        if merged and a <= merged[-1][0] + merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], a + w - merged[-1][0])
        else:
            merged.append([a, w])
    return [(a, w) for a, w in merged]


def _server_nic_link(link: str) -> bool:
    """A parameter server's NIC to the fabric (either direction), not inside its host."""
    ends = link.split("->")
    hosts = [re.match(r"(ps\d+)\.nic\d+$", end) for end in ends]
    return len(ends) == 2 and any(hosts) and not all(end.startswith(f"{h.group(1)}.") for h in hosts if h for end in ends)


def timeline_plot(result: SimResult, iteration: int | None = None, max_links: int = 8) -> Figure:
    """One iteration as a Gantt chart: each recorded GPU's phases and communication,
    each parameter server's aggregation, then the links: always those among the run's
    most utilized resources (the bottleneck first, e.g. the parameter servers' NICs),
    then the busiest others, ``max_links`` in all. A link's bar shows when it carried at
    least one flow. Needs ``simulate(..., record_timeline=True)``; ``iteration``
    defaults to the first measured one."""
    timeline = result.extra.get("timeline")
    if timeline is None:
        raise PlotError("this result has no timeline: simulate(scenario, record_timeline=True)")
    it = timeline["warmup_iterations"] if iteration is None else iteration
    if not 0 <= it < len(timeline["iterations"]):
        raise PlotError(f"iteration {it} out of range 0..{len(timeline['iterations']) - 1}")
    lo, hi = timeline["iterations"][it]

    def clip(start: float, end: float | None) -> tuple[float, float] | None:
        end = hi if end is None else end
        a, b = max(start, lo), min(end, hi)
        return (a - lo, b - a) if b > a else None

    rows: list[tuple[str, list[tuple[float, float]], str]] = []
    for rank in timeline["ranks"]:
        for kind in ("accumulation", "forward", "backward", "sync wait", "optimizer",
                     "bucket copy"):  # (copies drawn over them)
            clipped = [clip(i["start"], i["end"]) for i in rank["intervals"] if i["kind"] == kind]
            rows.append((f"{rank['gpu']} compute", [s for s in clipped if s], _PHASE_COLORS[kind]))
        clipped = [clip(i["start"], i["end"]) for i in rank["intervals"] if i["kind"] == "communication"]
        rows.append((f"{rank['gpu']} sync", [s for s in clipped if s], _PHASE_COLORS["communication"]))
    for server in timeline.get("servers", []):
        clipped = [clip(a, b) for a, b in server["busy"]]
        rows.append((f"ps{server['server']} aggregation", _union([s for s in clipped if s]), _SERVER_COLOR))
    busy: dict[str, list[tuple[float, float]]] = {}
    for flow in timeline["flows"]:
        span = clip(flow["start"], flow["end"])
        if span:
            for link in flow["links"]:
                busy.setdefault(link, []).append(span)
    busy = {link: _union(link_spans) for link, link_spans in busy.items()}
    ranked = {u.resource: u.utilization for u in result.utilization if u.kind in ("network", "pcie")}

    def busiest(links: Iterable[str]) -> list[str]:
        return sorted(links, key=lambda k: (-sum(w for _, w in busy[k]), natural_key(k)))

    must = [link for link in ranked if link in busy]
    # Both directions of every parameter server's links: where PS runs bottleneck.
    must += busiest(k for k in busy if k not in must and _server_nic_link(k))
    others = busiest(k for k in busy if k not in must)
    for link in (must + others)[: max(max_links, len(must))]:
        note = f" ({ranked[link]:.0%})" if link in ranked else ""
        rows.append((f"{link}{note}", busy[link], _LINK_COLOR))

    names = list(dict.fromkeys(name for name, _, _ in rows))
    fig = DisplayFigure(figsize=(11, 0.38 * len(names) + 2.2), layout="constrained")
    ax = fig.subplots()
    for name, spans, color in rows:
        if spans:
            ax.broken_barh([(a * 1e3, w * 1e3) for a, w in spans], (names.index(name) - 0.4, 0.8), color=color,
                           alpha=0.85)
    ax.set_yticks(range(len(names)), names, fontsize="small")
    ax.set_ylim(len(names) - 0.5, -0.5)
    ax.set(xlabel="time since the iteration started (ms)", xlim=(0, (hi - lo) * 1e3))
    ax.set_ylabel("GPU, server or link (link: % utilized over the run)")
    ax.grid(True, axis="x", alpha=0.3)
    fig.suptitle(f"{result.scenario}: iteration {it} ({(hi - lo) * 1e3:.1f} ms)")
    handles = [Patch(color=c, label=k) for k, c in _PHASE_COLORS.items()]
    if timeline.get("servers"):
        handles.append(Patch(color=_SERVER_COLOR, label="server aggregating"))
    handles.append(Patch(color=_LINK_COLOR, label="link carrying a flow"))
    fig.legend(handles=handles, fontsize="small", loc="outside lower center", ncol=4, frameon=False)
    return fig


def sweep_heatmap(
    data: pd.DataFrame, x: str, y: str, value: str = "throughput_samples_per_s", agg: str | None = None
) -> Figure:
    """A metric over two sweep axes, each cell annotated. Refuses to combine rows that
    differ in another scenario column unless ``agg`` is given (see :func:`sweep_matrix`)."""
    frame = as_frame(data)
    matrix = sweep_matrix(frame, x, y, value, agg)
    fig = DisplayFigure(figsize=(max(6, 0.9 * matrix.shape[1] + 4), max(3.5, 0.5 * matrix.shape[0] + 2.5)),
                        layout="constrained")
    ax = fig.subplots()
    values = matrix.to_numpy(dtype=float)
    image = ax.imshow(values, cmap="viridis", aspect="auto", origin="lower")
    ax.set_xticks(range(matrix.shape[1]), [str(c) for c in matrix.columns])
    ax.set_yticks(range(matrix.shape[0]), [str(i) for i in matrix.index])
    if agg:
        hidden = hidden_columns(frame, [x, y])
        note = f" ({agg} over {', '.join(short_name(c) for c in hidden)})" if hidden else replication_note(frame, [x, y])
    else:
        note = replication_note(frame, [x, y])
    ax.set(xlabel=metric_label(x), ylabel=metric_label(y))
    fig.suptitle(f"{metric_label(value)}{note}")
    finite = values[np.isfinite(values)]
    middle = (finite.min() + finite.max()) / 2 if finite.size else 0
    for (i, j), v in np.ndenumerate(values):
        if np.isfinite(v):
            ax.text(j, i, f"{v:.3g}", ha="center", va="center", fontsize="small", color="white" if v < middle else "black")
    fig.colorbar(image, ax=ax, label=metric_label(value))
    return fig


PLOTS = {
    "speedup": speedup_plot,
    "breakdown": breakdown_plot,
    "utilization": utilization_heatmap,
    "heatmap": sweep_heatmap,
    "timeline": timeline_plot,
}

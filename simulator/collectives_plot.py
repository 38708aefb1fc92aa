"""The collectives report as a figure: bus bandwidth against message size, predicted
and (where measured) measured, one panel per collective (``clustersim collectives
--plot``; :func:`collectives_plot` in notebooks)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .plots import DisplayFigure


def collectives_plot(df: pd.DataFrame, title: str = "", extra: dict[str, pd.DataFrame] | None = None) -> Figure:
    """busbw (GB/s) against size (bytes, log scale) of a :func:`~simulator.collectives_report.report`
    table: the prediction as a line, the measurement (``meas_busbw_gbs``) as points, and
    each of ``extra`` (label -> another report of the same sizes, e.g. after ``--fit``)
    as a dashed line. Each panel's title gives the median |predicted / measured - 1| of
    the time where the table has measurements."""
    ops = list(dict.fromkeys(df["op"]))
    fig = DisplayFigure(figsize=(5.4 * len(ops), 4.2), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(ops), squeeze=False)[0])
    for ax, op in zip(axes, ops):
        block = df[df["op"] == op]
        ax.plot(block["size_bytes"], block["busbw_gbs"], marker=".", color="C0", label="predicted")
        for i, (label, other) in enumerate((extra or {}).items(), start=2):
            part = other[other["op"] == op]
            ax.plot(part["size_bytes"], part["busbw_gbs"], linestyle="--", color=f"C{i}", label=label)
        measured = block.dropna(subset=["meas_busbw_gbs"])
        heading = op
        if len(measured):
            ax.scatter(measured["size_bytes"], measured["meas_busbw_gbs"], color="C1", zorder=3, label="measured")
            heading += f" (time off by {100 * measured['rel_error'].abs().median():.1f}%, median)"
        ax.set_xscale("log", base=2)
        ax.set_xlabel("message size (bytes, as nccl-tests counts it)")
        ax.set_ylabel("bus bandwidth (GB/s)")
        ax.set_title(heading, fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig

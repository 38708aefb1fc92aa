"""Validation reports: summary figures, JSON and the predicted-vs-measured plot."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import pandas as pd

from .cases import LLM_METRICS

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.figure import Figure

HARD_EFFICIENCY = 0.85  # measured scaling efficiency below this: a "hard" case


def _ape(errors: pd.Series) -> pd.Series:
    return errors.dropna().abs() * 100


def summarize(df: pd.DataFrame) -> dict[str, Any]:
    """n, failed, median / mean / p90 / max APE (in %) and the worst case.

    APE = |predicted - measured| / measured x 100 over the cases that ran.
    """
    ok = df[df["error"].isna() & df["rel_error"].notna()]
    ape = _ape(ok["rel_error"])
    out: dict[str, Any] = {"n": int(len(ok)), "failed": int(len(df) - len(ok))}
    if ape.empty:
        out.update(median_ape=math.nan, mean_ape=math.nan, p90_ape=math.nan, max_ape=math.nan, worst_case=None)
        return out
    worst = ok.loc[ok["rel_error"].abs().idxmax()]
    out.update(
        median_ape=float(ape.median()),
        mean_ape=float(ape.mean()),
        p90_ape=float(ape.quantile(0.9)),
        max_ape=float(ape.max()),
        worst_case=str(worst["case_id"]),
    )
    return out


def reference_summary(df: pd.DataFrame) -> dict[str, Any]:
    """The same figures for the trivial reference "one-GPU throughput x GPUs"."""
    ok = df[df["error"].isna() & df["reference_rel_error"].notna()]
    ape = _ape(ok["reference_rel_error"])
    if ape.empty:
        return {"n": 0, "median_ape": math.nan, "mean_ape": math.nan, "p90_ape": math.nan, "max_ape": math.nan}
    return {"n": int(len(ape)), "median_ape": float(ape.median()), "mean_ape": float(ape.mean()),
            "p90_ape": float(ape.quantile(0.9)), "max_ape": float(ape.max())}


def hard_cases(df: pd.DataFrame) -> pd.DataFrame:
    """Cases whose measured scaling efficiency is below 85%."""
    return df[df["measured_efficiency"] < HARD_EFFICIENCY]


def to_json_dict(df: pd.DataFrame) -> dict[str, Any]:
    """{"cases": [{case_id, measured, predicted, rel_error, error}...], "summary": {...}}."""

    def num(x: Any) -> float | None:
        return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)

    cases = [
        {
            "case_id": str(r.case_id),
            "source": str(r.source),
            "metric": str(r.metric),
            "measured": num(r.measured),
            "predicted": num(r.predicted),
            "rel_error": num(r.rel_error),
            "error": None if r.error is None or (isinstance(r.error, float) and math.isnan(r.error)) else str(r.error),
            "note": str(r.note) if isinstance(r.note, str) and r.note else None,
        }
        for r in df.itertuples(index=False)
    ]
    s = summarize(df)
    summary = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in s.items()}
    ref = reference_summary(df)
    summary["reference"] = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in ref.items()}
    hard = hard_cases(df)
    hs = summarize(hard)
    summary["hard_cases"] = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in hs.items()}
    return {"cases": cases, "summary": summary}


def format_table(df: pd.DataFrame) -> str:
    """Plain-text table: case, measured, predicted, relative error (or the error)."""

    def fmt(x: float) -> str:
        if x is None or (isinstance(x, float) and math.isnan(x)):
            return "-"
        return f"{x:.4g}"

    lines = []
    width = max([len("case")] + [len(str(c)) for c in df["case_id"]])
    lines.append(f"{'case':<{width}}  {'metric':<24}  {'measured':>10}  {'predicted':>10}  {'rel.err':>8}")
    for r in df.itertuples(index=False):
        if isinstance(r.error, str):
            lines.append(f"{str(r.case_id):<{width}}  {str(r.metric):<24}  {fmt(r.measured):>10}  {'-':>10}  "
                         f"{'-':>8}  error: {r.error}")
            continue
        lines.append(f"{str(r.case_id):<{width}}  {str(r.metric):<24}  {fmt(r.measured):>10}  "
                     f"{fmt(r.predicted):>10}  {r.rel_error * 100:>+7.1f}%")
    return "\n".join(lines)


def format_summary(df: pd.DataFrame) -> str:
    s = summarize(df)
    ref = reference_summary(df)
    hard = summarize(hard_cases(df))
    out = [
        f"cases: {s['n']} simulated, {s['failed']} failed",
        f"absolute percentage error: median {s['median_ape']:.1f}%, mean {s['mean_ape']:.1f}%, "
        f"p90 {s['p90_ape']:.1f}%, max {s['max_ape']:.1f}% (worst: {s['worst_case']})",
    ]
    if ref["n"]:
        transformer = df["metric"].isin(LLM_METRICS).any()  # a transformer file: its rows' reference
        label = "one-GPU throughput x GPUs" + ("; transformer rows: 6N FLOPs per token at 40% MFU" if transformer else "")
        out.append(f"trivial reference ({label}) on its {ref['n']} cases: median "
                   f"{ref['median_ape']:.1f}%, mean {ref['mean_ape']:.1f}%, p90 {ref['p90_ape']:.1f}%, "
                   f"max {ref['max_ape']:.1f}%")
    if hard["n"]:
        out.append(f"hard cases (measured scaling efficiency < 85%), n={hard['n']}: median "
                   f"{hard['median_ape']:.1f}%, p90 {hard['p90_ape']:.1f}%, max {hard['max_ape']:.1f}%")
    return "\n".join(out)


_METRIC_PANELS = (  # (metrics, panel title, unit): one panel per unit, never mixed
    (("throughput_samples_per_s",), "Training throughput", "samples/s"),
    (("iteration_time_s", "collective_time_s"), "Iteration and collective time", "s"),
    (("speedup",), "Speedup", "x one GPU"),
    (("scaling_efficiency",), "Scaling efficiency", "fraction of linear"),
)
_LINEAR = {"fraction of linear"}  # a bounded ratio: linear axes, 0 to past 1


def validation_plot(df: pd.DataFrame, path: str | None = None) -> Figure:
    """Predicted against measured: one log-log panel per unit (samples/s, seconds,
    speedup), each with the y = x line and the +-10% and +-25% error bands, one marker
    per source. Returns the matplotlib Figure (shown once in Jupyter as a PNG); saves
    it when ``path`` is given."""
    import io

    import numpy as np
    from matplotlib.figure import Figure

    class _Figure(Figure):
        def _repr_png_(self) -> bytes:
            buffer = io.BytesIO()
            self.savefig(buffer, format="png")
            return buffer.getvalue()

    ok = df[df["error"].isna() & df["predicted"].notna() & (df["predicted"] > 0) & (df["measured"] > 0)]
    known = {m for metrics, _, _ in _METRIC_PANELS for m in metrics}
    panels = [(metrics, title, unit) for metrics, title, unit in _METRIC_PANELS if ok["metric"].isin(metrics).any()]
    other = sorted(set(ok["metric"]) - known)
    panels += [((m,), m, "metric's unit") for m in other]
    if not panels:
        panels = [(("throughput_samples_per_s",), "Training throughput", "samples/s")]
    fig = _Figure(figsize=(5.2 * len(panels), 5.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(panels), squeeze=False)[0])
    markers = "osD^v<>pP*Xh"
    sources = sorted(ok["source"].astype(str).unique())
    handles: dict[str, Artist] = {}
    for ax, (metrics, title, unit) in zip(axes, panels):
        part = ok[ok["metric"].isin(metrics)]
        for source, g in part.groupby(part["source"].astype(str), sort=True):
            i = sources.index(source)
            handles[source] = ax.scatter(g["measured"], g["predicted"], marker=markers[i % len(markers)],
                                         color=f"C{i % 10}", label=source, alpha=0.8, zorder=3)
        values = np.concatenate([part["measured"].to_numpy(float), part["predicted"].to_numpy(float)])
        linear = unit in _LINEAR
        if linear:
            lo, hi = 0.0, max(1.1, float(values.max()) * 1.05 if values.size else 1.1)
        else:
            lo, hi = (values.min() / 1.6, values.max() * 1.6) if values.size else (0.1, 10.0)
        line = np.linspace(lo, hi, 50) if linear else np.geomspace(lo, hi, 50)
        handles["y = x"] = ax.plot(line, line, "k-", lw=1, zorder=2)[0]
        for band, alpha in ((0.25, 0.10), (0.10, 0.18)):
            handles[f"within {band:.0%}"] = ax.fill_between(line, line * (1 - band), line * (1 + band), color="tab:gray",
                                                            alpha=alpha, lw=0, zorder=1)
        scale = "linear" if linear else "log"
        ax.set(xscale=scale, yscale=scale, xlim=(lo, hi), ylim=(lo, hi), aspect="equal")
        ax.set_xlabel(f"measured ({unit})")
        ax.set_ylabel(f"predicted ({unit})")
        n = len(part)
        within = float(((part["predicted"] / part["measured"] - 1).abs() <= 0.10).mean()) if n else 0.0
        ax.set_title(f"{title}: {n} cases, {within:.0%} within 10%")
        ax.grid(True, which="both", alpha=0.2)
    fig.suptitle("clustersim validation: predicted against measured")
    fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncol=min(5, len(handles)),
               fontsize="small", frameon=False)
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig

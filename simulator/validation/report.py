"""Validation reports: summary figures, JSON and the predicted-vs-measured plot."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

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
        out.append(f"trivial reference (one-GPU throughput x GPUs) on its {ref['n']} cases: median "
                   f"{ref['median_ape']:.1f}%, mean {ref['mean_ape']:.1f}%, p90 {ref['p90_ape']:.1f}%, "
                   f"max {ref['max_ape']:.1f}%")
    if hard["n"]:
        out.append(f"hard cases (measured scaling efficiency < 85%), n={hard['n']}: median "
                   f"{hard['median_ape']:.1f}%, p90 {hard['p90_ape']:.1f}%, max {hard['max_ape']:.1f}%")
    return "\n".join(out)


def validation_plot(df: pd.DataFrame, path: str | None = None):
    """Predicted against measured, log scales, the y = x line, one marker per source.

    Metrics of different units share the plot (each point is its own ratio to y = x).
    Returns the matplotlib Figure; saves it when ``path`` is given.
    """
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    ok = df[df["error"].isna() & df["predicted"].notna() & (df["predicted"] > 0)]
    fig, ax = plt.subplots(figsize=(6.5, 6))
    markers = "osD^v<>pP*Xh"
    for i, (source, g) in enumerate(ok.groupby("source", sort=True)):
        ax.scatter(g["measured"], g["predicted"], marker=markers[i % len(markers)], label=str(source), alpha=0.8)
    if not ok.empty:
        lo = float(min(ok["measured"].min(), ok["predicted"].min())) / 1.5
        hi = float(max(ok["measured"].max(), ok["predicted"].max())) * 1.5
        ax.plot([lo, hi], [lo, hi], "k-", lw=1, label="y = x")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("measured (metric's unit)")
    ax.set_ylabel("predicted")
    ax.set_title("clustersim validation: predicted vs measured")
    ax.legend(fontsize="small")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig

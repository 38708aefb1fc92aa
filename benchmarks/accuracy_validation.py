"""Accuracy of the simulator on the shipped validation set, honestly reported.

Runs ``clustersim validate``'s Python API on ``scenarios/validation/published_cases.csv``
and prints, per source and overall: n, median / p90 / max absolute percentage error
(APE); side by side the trivial reference "one-GPU throughput x GPUs" on the cases it
applies to (training cases: with the measured one-GPU throughput where the row gives
it); and the same figures on the hard cases alone (measured scaling efficiency < 85%).

    python benchmarks/accuracy_validation.py [CASES.csv]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pandas as pd

from simulator.validation import summarize, validate
from simulator.validation.report import hard_cases, reference_summary

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT = REPO_ROOT / "scenarios" / "validation" / "published_cases.csv"


def fmt(x: float) -> str:
    return "-" if pd.isna(x) else f"{x:.1f}"


def line(name: str, df: pd.DataFrame) -> dict[str, object]:
    s, r = summarize(df), reference_summary(df)
    return {
        "group": name, "n": s["n"], "median_ape_%": fmt(s["median_ape"]), "p90_ape_%": fmt(s["p90_ape"]),
        "max_ape_%": fmt(s["max_ape"]), "ref_n": r["n"], "ref_median_%": fmt(r["median_ape"]),
        "ref_p90_%": fmt(r["p90_ape"]), "ref_max_%": fmt(r["max_ape"]),
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    path = Path(argv[0]) if argv else DEFAULT
    t0 = time.perf_counter()
    df = validate(path)
    ok = df[df["error"].isna()]
    rows = [line(src, g) for src, g in ok.groupby("source", sort=True)]
    rows.append(line("ALL", ok))
    training = ok[ok["metric"] != "collective_time_s"]
    rows.append(line("ALL training (no collectives)", training))
    rows.append(line("ALL collectives", ok[ok["metric"] == "collective_time_s"]))
    hard = hard_cases(ok)
    rows.append(line("HARD (measured eff. < 85%)", hard))
    print(f"{path}: {len(df)} cases, {int(df['error'].notna().sum())} failed")
    print("APE = |predicted - measured| / measured in %; ref = trivial 'one-GPU throughput x GPUs'")
    print(pd.DataFrame(rows).to_string(index=False))
    s = summarize(ok)
    print(f"\noverall: median {s['median_ape']:.1f}%, mean {s['mean_ape']:.1f}%, p90 {s['p90_ape']:.1f}%, "
          f"max {s['max_ape']:.1f}% (worst: {s['worst_case']})")
    if not hard.empty:
        print("\nhard cases:")
        view = hard[["case_id", "measured", "predicted", "rel_error", "reference_rel_error", "measured_efficiency"]]
        view = view.assign(rel_error=(view["rel_error"] * 100).map(lambda v: f"{v:+.1f}%"),
                           reference_rel_error=(view["reference_rel_error"] * 100).map(lambda v: f"{v:+.1f}%"),
                           measured_efficiency=view["measured_efficiency"].map(lambda v: f"{v:.2f}"))
        print(view.to_string(index=False))
    print(f"\n({time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Accuracy of the simulator on the shipped validation set, honestly reported.

Runs ``clustersim validate``'s Python API on ``scenarios/validation/published_cases.csv``
and prints, per source and overall: n, median / p90 / max absolute percentage error
(APE); side by side the trivial reference "one-GPU throughput x GPUs" on the cases it
applies to (training cases: with the measured one-GPU throughput where the row gives
it); and the same figures on the hard cases alone (measured scaling efficiency < 85%).

    python benchmarks/accuracy_validation.py [CASES.csv]
    python benchmarks/accuracy_validation.py --ratchet            # the dev-set figures the ratchet guards
    python benchmarks/accuracy_validation.py --ratchet --record   # record them (only when they improve)
    python benchmarks/accuracy_validation.py --ratchet --record --accept-worse "WHY"
        # a deliberate model change that makes a figure worse: recorded with the reason,
        # old and new figures appended to benchmarks/results/dev_set_exceptions.json

The ratchet (``tests/validation/test_accuracy_ratchet.py``) recomputes
:func:`dev_set_figures` (deterministic: no timing, fixed seeds) and fails when any is
worse than ``benchmarks/results/dev_set_record.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

from simulator.validation import summarize, validate
from simulator.validation.report import hard_cases, reference_summary

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT = REPO_ROOT / "scenarios" / "validation" / "published_cases.csv"
DEV_SET = [
    DEFAULT,
    REPO_ROOT / "scenarios" / "validation" / "training_cases.csv",
    REPO_ROOT / "scenarios" / "validation" / "collectives" / "cases.csv",
    REPO_ROOT / "scenarios" / "validation" / "llm_cases.csv",
]
RECORD = REPO_ROOT / "benchmarks" / "results" / "dev_set_record.json"
EXCEPTIONS = REPO_ROOT / "benchmarks" / "results" / "dev_set_exceptions.json"


def dev_set_figures(frames: list[pd.DataFrame] | None = None) -> dict[str, float]:
    """The dev set's headline errors with the shipped defaults (percent, rounded to
    0.01): multi-GPU training median / p90 / hard-case median, the reference "one-GPU x
    GPUs" on the same cases, and collectives median / p90. Deterministic. ``frames``:
    the validation of each :data:`DEV_SET` file, if already made."""
    if frames is None:
        frames = [validate(path) for path in DEV_SET]
    *frames, llm = frames
    df = pd.concat(frames, ignore_index=True)
    if df["error"].notna().any():
        raise RuntimeError("dev-set cases failed: " + ", ".join(df[df["error"].notna()]["case_id"].head(5)))
    training = df[(df["metric"] != "collective_time_s") & (df["total_gpus"] > 1)]
    collectives = df[df["metric"] == "collective_time_s"]
    ape = training["rel_error"].abs() * 100
    ref = training["reference_rel_error"].abs() * 100
    hard = training["measured_efficiency"] < 0.85
    coll = collectives["rel_error"].abs() * 100
    figures = {
        "training_n": len(training), "training_median": ape.median(), "training_p90": ape.quantile(0.9),
        "training_hard_n": int(hard.sum()), "training_hard_median": ape[hard].median(),
        "reference_median": ref.median(), "reference_p90": ref.quantile(0.9), "reference_hard_median": ref[hard].median(),
        "collectives_n": len(collectives), "collectives_median": coll.median(), "collectives_p90": coll.quantile(0.9),
    }
    # LLM training rows: those the simulator runs (the others, fp8 or without a batch or
    # layout, are listed by benchmarks/accuracy_llm.py); reference 6N at 40% MFU
    ran = llm[llm["error"].isna()]
    figures.update({
        "llm_n": len(ran), "llm_median": (ran["rel_error"].abs() * 100).median(),
        "llm_p90": (ran["rel_error"].abs() * 100).quantile(0.9),
        "llm_reference_median": (ran["reference_rel_error"].abs() * 100).median(),
        "llm_reference_p90": (ran["reference_rel_error"].abs() * 100).quantile(0.9),
    })
    return {k: (int(v) if k.endswith("_n") else round(float(v), 2)) for k, v in figures.items()}


RATCHETED = ("training_median", "training_p90", "training_hard_median", "collectives_median", "collectives_p90",
             "llm_median", "llm_p90")


def ratchet_main(record: bool, accept_worse: str | None = None) -> int:
    figures = dev_set_figures()
    recorded = json.loads(RECORD.read_text()) if RECORD.exists() else {}
    print(json.dumps(figures, indent=1))
    worse = [k for k in RATCHETED if k in recorded and figures[k] > recorded[k]]
    if worse:
        print("worse than recorded: " + ", ".join(f"{k} {figures[k]} > {recorded[k]}" for k in worse))
    if record:
        if worse and not accept_worse:
            print("not recorded: the ratchet only moves when every figure is at least as good "
                  "(or with --accept-worse REASON, which is logged)")
            return 1
        if worse:
            log = json.loads(EXCEPTIONS.read_text()) if EXCEPTIONS.exists() else []
            log.append({"reason": accept_worse, "worse": {k: [recorded[k], figures[k]] for k in worse},
                        "before": recorded, "after": figures})
            EXCEPTIONS.write_text(json.dumps(log, indent=1) + "\n")
            print(f"accepted worse figures ({', '.join(worse)}), logged in {EXCEPTIONS}")
        RECORD.parent.mkdir(exist_ok=True)
        RECORD.write_text(json.dumps(figures, indent=1) + "\n")
        print(f"recorded in {RECORD}")
    return 1 if worse and not (record and accept_worse) else 0


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
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cases", nargs="?", type=Path, default=DEFAULT, help="measured-runs CSV")
    parser.add_argument("--ratchet", action="store_true", help="the dev-set figures the ratchet guards")
    parser.add_argument("--record", action="store_true", help="with --ratchet: record them (only when they improve)")
    parser.add_argument("--accept-worse", metavar="WHY", help="with --record: record worse figures, with the reason")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.ratchet:
        return ratchet_main(args.record, args.accept_worse)
    path = args.cases
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

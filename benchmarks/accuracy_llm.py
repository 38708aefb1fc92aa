"""Transformer (LLM) training accuracy on the dev set, cross-validated by leaving one
source out.

Cases: every row of ``scenarios/validation/llm_cases.csv`` (published, measured LLM
training runs: Megatron-LM, BLOOM, MT-NLG, OPT, LLaMA, Llama 3, DeepSpeed, PyTorch FSDP,
IBM fms-fsdp, MLPerf; sources and reading in ``llm_cases.md``) that the simulator can
run: rows without a global batch or layout, with LoRA or CPU offload, or without the model's shapes are listed as
not simulated, with the reason.

Predictors, side by side on the same cases:

- ``6N at 40% MFU``: the trivial reference of issue #20 (6 x parameters FLOPs per
  token at a constant 40% of the dense peak), in each row's metric;
- ``clustersim (defaults)``: the simulator as shipped;
- ``clustersim (LOSO)``: the one fitted parameter, ``TRANSFORMER_MATMUL_SHARE`` of
  ``simulator/llm/run.py`` (the share of each card's measured maximum achievable matmul
  rate, the catalog's ``matmul_efficiency``, a transformer step's products sustain),
  chosen on the other sources (grid, smallest mean over sources of each source's mean
  |log(predicted / measured)|: see ``loso.py``), then predicting the held-out source.
  The figure to quote.

    python benchmarks/accuracy_llm.py [-j 2] [--json benchmarks/results/llm_cv.json]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from loso import close_calls, leave_one_source_out, print_close_calls

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT / "scenarios/validation/llm_cases.csv"
SHARE = "llm.TRANSFORMER_MATMUL_SHARE"  # a constant of simulator/llm/run.py, patched in (see _combo)
GRID = {SHARE: [0.72, 0.78, 0.84, 0.9, 0.96]}


def run(overrides: tuple[str, ...]) -> pd.DataFrame:
    from simulator.validation import validate

    return validate(CASES, overrides=list(overrides))


def _combo(values: tuple) -> np.ndarray:
    import simulator.llm.run as llm_run

    llm_run.TRANSFORMER_MATMUL_SHARE = dict(zip(GRID, values))[SHARE]
    return run(())["predicted"].to_numpy()


def figures(err: np.ndarray) -> dict:
    a = np.abs(err) * 100
    return {"n": int(len(a)), "median %": float(np.median(a)) if len(a) else math.nan,
            "p90 %": float(np.percentile(a, 90)) if len(a) else math.nan}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-j", "--jobs", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    base = run(())
    ok = base["error"].isna().to_numpy()
    print(f"{len(base)} rows, {ok.sum()} simulated; not simulated:")
    for reason, count in base.loc[~ok, "error"].str.replace(r"line \d+: ", "", regex=True).str[:100]\
            .value_counts().items():
        print(f"  {count:3d}  {reason}")
    frame = base[ok].reset_index(drop=True)
    measured = frame["measured"].to_numpy()
    combos = [tuple(c) for c in zip(*GRID.values())] if len(GRID) == 1 else None
    assert combos is not None
    with ProcessPoolExecutor(args.jobs) as pool:
        grid = np.array([p[ok] for p in pool.map(_combo, combos)])
    cv, fitted = leave_one_source_out(grid, measured, frame["source"].to_numpy(), list(GRID), combos)
    predictors = {
        "6N at 40% MFU": frame["reference"].to_numpy(),
        "clustersim (defaults)": frame["predicted"].to_numpy(),
        "clustersim (LOSO)": cv,
    }
    rows = [{"predictor": name, **figures(pred / measured - 1)} for name, pred in predictors.items()]
    summary = pd.DataFrame(rows)
    print()
    print(summary.to_string(index=False, float_format=lambda x: f"{x:.1f}"))
    per_source = []
    for source, idx in frame.groupby("source").groups.items():
        i = np.asarray(list(idx))
        per_source.append({"source": source, "n": len(i), **{
            name: float(np.median(np.abs(pred[i] / measured[i] - 1)) * 100) for name, pred in predictors.items()},
            "fitted": fitted[source][SHARE]})
    table = pd.DataFrame(per_source)
    print("\nmedian |error| % per source (fitted: the matmul share chosen on the other sources)")
    print(table.to_string(index=False, float_format=lambda x: f"{x:.1f}"))
    print(f"\nfitted on all sources: {fitted['(all sources)']}")
    print_close_calls(close_calls(grid, measured, frame["source"].to_numpy(), list(GRID), combos))
    if args.json:
        args.json.write_text(json.dumps({"summary": rows, "per_source": per_source, "fitted": fitted,
                                         "not_simulated": int((~ok).sum())}, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

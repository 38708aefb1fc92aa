"""Closed loop on this machine: probe, run real DDP jobs, predict each from the profile.

The must-hold matrix of issue #15: resnet18, alexnet, resnet34, resnet50 (every model of
``calibration/models.py`` the probe covers except VGG-16, which takes minutes per run on
2 cores); 1 and 2 processes; batches 2 and 8 per process. Prints measured, predicted and
relative error per run with the load average before and after it, then the median and
max absolute error against the targets (median <= 5%, max <= 15%). A timed result,
never a test assertion: run it on a quiet machine (load average well under the core
count) and keep the load columns with the numbers.

    python benchmarks/closed_loop.py                      # probe first (full matrix), ~10-15 min on 2 cores
    python benchmarks/closed_loop.py --profile P.json     # predict from an existing profile
    python benchmarks/closed_loop.py --quick --json out.json

It is ``clustersim selfcheck --full`` (:mod:`calibration.selfcheck`) with the targets.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from calibration import selfcheck as sc  # noqa: E402

MEDIAN_TARGET, MAX_TARGET = 5.0, 15.0  # absolute percentage error


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", type=Path, help="predict from this profile instead of probing first")
    parser.add_argument("--quick", action="store_true", help="the quick selfcheck matrix (batches 1, 2)")
    parser.add_argument("--models", help="comma-separated models (default: resnet18,alexnet,resnet34,resnet50)")
    parser.add_argument("-o", "--output-dir", type=Path, help="folder for profile, runs.csv, scenarios")
    parser.add_argument("--json", help="write the report as JSON here (- for standard output)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    models = tuple(args.models.split(",")) if args.models else None
    config = sc.SelfcheckConfig() if args.quick else sc.SelfcheckConfig.full_matrix()
    if models:
        config = dataclasses.replace(config, models=models)
    out_dir = args.output_dir or Path(sc.default_output_dir().name.replace("selfcheck", "closed-loop"))

    def show(row: sc.RunRow) -> None:
        err = "-" if row.rel_error is None else f"{row.rel_error * 100:+.1f}%"
        print(f"  {row.label}: measured {sc._fmt(row.measured)}, predicted {sc._fmt(row.predicted)}, {err}; "
              f"load {sc._fmt(row.load_before, '.2f')} -> {sc._fmt(row.load_after, '.2f')}"
              + (f"; error: {row.error}" if row.error else ""), flush=True)

    report = sc.run_selfcheck(config, out_dir, profile=args.profile, show_progress=not args.no_progress, on_row=show)
    print()
    print(sc.format_report(report))
    s = report.summary()
    if s["n"]:
        met = s["median_ape"] <= MEDIAN_TARGET and s["max_ape"] <= MAX_TARGET
        print(f"targets (median <= {MEDIAN_TARGET:g}%, max <= {MAX_TARGET:g}%): {'met' if met else 'NOT met'}")
    print(f"runs: {out_dir / 'runs.csv'} (clustersim validate repeats the predictions)")
    if args.json:
        sc.write_json(report, args.json)
    return 130 if report.interrupted_during else 0


if __name__ == "__main__":
    sys.exit(main())

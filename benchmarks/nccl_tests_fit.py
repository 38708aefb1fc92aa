"""Does fitting a machine's own nccl-tests run predict what that run did not measure?

``clustersim collectives SCENARIO --nccl-tests FILE --fit`` sets the scenario's host
staging bandwidth and network efficiency (``training.collectives``) from the user's
measurement (:mod:`simulator.collective_fit`). In-sample its objective (the mean |log
error|) can only improve, the median need not. This script holds the fit against
measurements of the *same machine* it did not see: another world size of the same
host, or another collective of the same run set, from the
collectives dev set (``scenarios/validation/collectives/cases.csv``: nccl-tests tables of
published runs). Per experiment: the value fitted on the first set of rows, and the
median |predicted / measured - 1| of the held-out rows' times with the backend's
figures (as shipped) and with the fitted one. Systems with a single run get their
in-sample figures only (labelled so).

    python benchmarks/nccl_tests_fit.py [--json benchmarks/results/nccl_tests_fit.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from accuracy_collectives import load_cases, system_of  # noqa: E402

# (label, fit on (system, collectives), held out (system, collectives) or None)
EXPERIMENTS = [
    ("4x RTX 4090 host: 4-GPU allreduce -> 2-GPU allreduce",
     ("kalavai-4090-4gpu", {"allreduce"}), ("kalavai-4090-2gpu", {"allreduce"})),
    ("4x RTX 4090 host: 2-GPU allreduce -> 4-GPU allreduce",
     ("kalavai-4090-2gpu", {"allreduce"}), ("kalavai-4090-4gpu", {"allreduce"})),
    ("2x RTX 2080 Ti: allreduce -> allgather and broadcast",
     ("autodl-2080ti-2gpu", {"allreduce"}), ("autodl-2080ti-2gpu", {"allgather", "broadcast"})),
    ("2x RTX 2080 Ti: broadcast -> allreduce and allgather",
     ("autodl-2080ti-2gpu", {"broadcast"}), ("autodl-2080ti-2gpu", {"allreduce", "allgather"})),
    ("Azure NDmv4: 2 x 8 GPUs -> 2 x 1 GPU",
     ("ndmv4-a100-2x8", {"allreduce", "allgather"}), ("ndmv4-a100-2x1", {"allreduce", "allgather"})),
    ("Azure NDmv4: 2 x 1 GPU -> 2 x 8 GPUs",
     ("ndmv4-a100-2x1", {"allreduce", "allgather"}), ("ndmv4-a100-2x8", {"allreduce", "allgather"})),
    ("4x A100 PCIe on two sockets (in-sample)", ("sm02-a100pcie-4gpu-2socket", {"allreduce"}), None),
    ("OCI BM.GPU4.8, 2 nodes RoCE (in-sample)", ("oci-bm-gpu4-8-a100-2node-roce", {"allreduce"}), None),
    ("CoreWeave A100, 16 nodes IB (in-sample)", ("coreweave-a100-16x8-ib", {"allreduce"}), None),
    ("GCP A3 Mega, 2 nodes (in-sample)", ("gcp-a3mega-h100-2node", {"allreduce"}), None),
]


def rows_of(system: str, ops: set[str]):
    """(scenario, {(op, bytes): seconds}) of a dev-set system's rows of ``ops``."""
    from simulator.validation.run import case_scenario

    scenario, measured = None, {}
    for case, folder in load_cases():
        if system_of(case) == system and case.collective in ops:
            scenario = scenario or case_scenario(case, folder)[0]
            measured[(case.collective, int(case.message_bytes))] = case.value
    if scenario is None:
        raise SystemExit(f"no dev-set rows of {system} ({', '.join(sorted(ops))})")
    return scenario, measured


def median_error(scenario, measured) -> float:
    from simulator.collective_fit import predicted_times

    calls = sorted(measured)
    return 100 * statistics.median(abs(p / measured[c] - 1) for p, c in zip(predicted_times(scenario, calls), calls))


def run() -> list[dict]:
    from simulator.collective_fit import fit_collective_fields, with_fields

    out = []
    for label, (system, ops), held in EXPERIMENTS:
        scenario, measured = rows_of(system, ops)
        fit = fit_collective_fields(scenario, measured)
        row = {"experiment": label, "fitted": fit.fitted, "fit_rows": len(measured),
               "in_sample_before_%": median_error(scenario, measured),
               "in_sample_after_%": median_error(with_fields(scenario, fit.fitted), measured)}
        if held is not None:
            held_scenario, held_measured = rows_of(*held)
            row.update({"held_out_rows": len(held_measured),
                        "held_out_before_%": median_error(held_scenario, held_measured),
                        "held_out_after_%": median_error(with_fields(held_scenario, fit.fitted), held_measured)})
        out.append(row)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    rows = run()
    print(f"{'experiment':56} {'fitted':34} {'in-sample %':>14} {'held out %':>16}")
    for r in rows:
        fitted = ", ".join(f"{k} {v:.3g}" for k, v in r["fitted"].items()) or "-"
        held = (f"{r['held_out_before_%']:5.1f} -> {r['held_out_after_%']:5.1f}" if "held_out_rows" in r else "-")
        print(f"{r['experiment']:56} {fitted:34} {r['in_sample_before_%']:5.1f} -> {r['in_sample_after_%']:5.1f}"
              f" {held:>16}")
    if args.json:
        args.json.write_text(json.dumps({"experiments": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

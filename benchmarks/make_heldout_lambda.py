"""Write ``scenarios/validation/heldout_lambda_non_xla.csv``: Lambda's runs without XLA.

The dev set's Lambda rows of the RTX 2080 Ti and Quadro RTX 8000 servers (with and
without NVLink bridges) are the XLA runs of Lambda's logs. The same servers ran every
configuration again without XLA (TensorFlow 1.15, 2020, ``logs/Gold_6230-*_trt_TF1_15``
of LambdaColdStorage/lambda-tensorflow-benchmark). This script copies each dev-set row,
replacing its measured throughput and its one-GPU baseline by the plain run's (same
model, precision, per-GPU batch and GPU count), so the simulator can be held against
runs it was never fitted to. The rows keep the dev set's scenario files (the servers'
wiring); ``benchmarks/heldout_lambda_non_xla.py`` runs them unfused.

Needs a clone of the repository (``--repo``; the logs are read with ``git show``):

    python benchmarks/make_heldout_lambda.py --repo PATH/lambda-tensorflow-benchmark
"""

from __future__ import annotations

import argparse
import csv
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT / "scenarios" / "validation" / "published_cases.csv"
OUT = ROOT / "scenarios" / "validation" / "heldout_lambda_non_xla.csv"
# (GPU, NVLink bridge) -> the plain run set of the server the dev set's XLA rows come from
PLAIN_LOGS = {
    ("RTX-2080Ti", False): "Gold_6230-GeForce_RTX_2080_Ti_trt_TF1_15",
    ("RTX-2080Ti", True): "Gold_6230-GeForce_RTX_2080_Ti_NVLink_trt_TF1_15",
    ("Quadro-RTX-8000", False): "Gold_6230-Quadro_RTX_8000_trt_TF1_15",
    ("Quadro-RTX-8000", True): "Gold_6230-Quadro_RTX_8000_NVLink_trt_TF1_15",
}
LOG_MODEL = {"inception_v3": "inception3"}  # tf_cnn_benchmarks' name where it differs from the zoo's
FRAMEWORK = "TensorFlow 1.15 tf_cnn_benchmarks, replicated variables, NCCL all-reduce, without XLA"


def throughput(repo: Path, log: str) -> float | None:
    """The last 'total images/sec' of one run's log, or None if the run is missing."""
    shown = subprocess.run(["git", "-C", str(repo), "show", f"HEAD:{log}"], capture_output=True, text=True)
    found = re.findall(r"total images/sec: ([0-9.]+)", shown.stdout)
    return float(found[-1]) if shown.returncode == 0 and found else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", type=Path, required=True,
                        help="clone of LambdaColdStorage/lambda-tensorflow-benchmark")
    args = parser.parse_args()
    commit = subprocess.run(["git", "-C", str(args.repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=True).stdout.strip()
    with DEV.open(newline="", encoding="utf-8") as f:
        dev = list(csv.DictReader(f))
    out = []
    for row in dev:
        if row["source"] != "Lambda" or row["gpu"] not in ("RTX-2080Ti", "Quadro-RTX-8000"):
            continue
        logs = PLAIN_LOGS[(row["gpu"], "nvlinkbridge" in row["case_id"])]
        gpus = int(row["nodes"]) * int(row["gpus_per_node"])
        prec = "fp16" if row["precision"] == "amp" else "fp32"
        run = f"{LOG_MODEL.get(row['model'], row['model'])}-{row['batch_per_gpu']}"
        path = f"logs/{logs}.logs/syn-replicated-{prec}-{{n}}gpus/{run}/throughput/1"
        value, base = throughput(args.repo, path.format(n=gpus)), throughput(args.repo, path.format(n=1))
        if value is None or base is None:
            print(f"no plain run for {row['case_id']}", file=sys.stderr)
            continue
        out.append({**row, "case_id": f"{row['case_id']}-noxla", "value": f"{value:g}",
                    "baseline_throughput_samples_per_s": f"{base:g}", "framework": FRAMEWORK,
                    "notes": (f"LambdaColdStorage/lambda-tensorflow-benchmark@{commit[:7]}, {path.format(n=gpus)} "
                              f"(one GPU: {path.format(n=1)}); the plain twin of dev-set row {row['case_id']} "
                              "(its wiring and scenario file); held out, not in the dev set")})
    with OUT.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(dev[0]))
        writer.writeheader()
        writer.writerows(out)
    print(f"wrote {len(out)} rows to {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

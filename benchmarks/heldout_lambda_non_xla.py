"""Multi-GPU scaling held out: Lambda's PCIe servers without XLA.

``scenarios/validation/heldout_lambda_non_xla.csv`` (written by
``make_heldout_lambda.py``) holds 80 runs that are not in the dev set: the plain
TensorFlow 1.15 twins of the dev set's XLA rows on Lambda's RTX 2080 Ti (host-staged, no
P2P) and Quadro RTX 8000 (P2P) servers, with and without NVLink bridges, at 2, 4 and 8
GPUs. Each row carries its own one-GPU baseline, so only scaling is predicted; they are
simulated without XLA (``workload.kernel_fusion=none``, ``workload.graph_compiler=none``)
with the dev set's server wiring and the shipped defaults, nothing refitted.

Printed: every row, then median / p90 APE of the simulator and of the trivial reference
"one-GPU x GPUs" per group, and the measured scaling efficiency of the fp16 runs of the
batch-norm models (ResNet-50/152, Inception-v3) by GPU count, a loss the simulator does not
have (README, "Where the model is weak").

    python benchmarks/heldout_lambda_non_xla.py [--json benchmarks/results/heldout_lambda.json]   # ~10 s
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT / "scenarios" / "validation" / "heldout_lambda_non_xla.csv"
BATCH_NORM_MODELS = ("resnet50", "resnet152", "inception_v3")


def results() -> pd.DataFrame:
    from simulator.validation import validate
    from simulator.validation.cases import read_cases

    cases, _ = read_cases(CASES)
    frame = validate(cases, base_dir=CASES.parent, overrides=["workload.kernel_fusion=none",
                                                                     "workload.graph_compiler=none"])
    meta = pd.DataFrame({"case_id": [c.case_id for c in cases], "model": [c.model for c in cases],
                         "gpu": [c.gpu for c in cases], "precision": [c.precision for c in cases]})
    frame = frame.merge(meta, on="case_id")
    frame["group"] = [
        "fp32" if p == "fp32" else ("fp16, batch-norm models" if m in BATCH_NORM_MODELS else "fp16, AlexNet and VGG-16")
        for p, m in zip(frame.precision, frame.model)]
    frame["predicted_efficiency"] = frame.measured_efficiency * frame.predicted / frame.measured
    return frame


def summary(frame: pd.DataFrame) -> pd.DataFrame:
    def figures(g: pd.DataFrame) -> pd.Series:
        return pd.Series({
            "n": len(g), "median %": 100 * g.rel_error.abs().median(), "p90 %": 100 * g.rel_error.abs().quantile(0.9),
            "reference median %": 100 * g.reference_rel_error.abs().median(),
            "reference p90 %": 100 * g.reference_rel_error.abs().quantile(0.9)})

    groups = [("all", frame), *frame.groupby("group")]
    return pd.DataFrame({name: figures(g) for name, g in groups}).T


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="write the summary here (the README table reads it)")
    args = parser.parse_args()
    frame = results()
    pd.set_option("display.width", 200)
    pd.set_option("display.max_rows", 200)
    cols = ["case_id", "measured", "predicted", "rel_error", "measured_efficiency", "predicted_efficiency"]
    print(frame[cols].round(3).to_string(index=False))
    print("\nAPE of the simulator and of one-GPU x GPUs (%)")
    print(summary(frame).round(1).to_string())
    fp16_bn = frame[frame.group == "fp16, batch-norm models"]
    print("\nfp16 batch-norm models: measured (predicted) scaling efficiency by GPU count, median over models")
    print(fp16_bn.groupby(["gpu", "total_gpus"])[["measured_efficiency", "predicted_efficiency"]].median()
          .round(2).to_string())
    if args.json:
        table = summary(frame).round(1)
        args.json.write_text(json.dumps([{"group": name, **row} for name, row in table.to_dict(orient="index").items()],
                                        indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())

"""TensorFlow BERT's element-wise optimizer step, held against the runs that measured it.

Google's BERT (and NVIDIA's fork of it, DeepLearningExamples ``TensorFlow/LanguageModeling/BERT``)
writes AdamWeightDecay as element-wise TensorFlow ops per variable, then ``assign``\\ s the
parameter and both moments: ``workload.optimizer_kernels: elementwise`` (17 kernels and 39
fp32 words per parameter per tensor; under XLA one fused kernel and three ``Assign`` copies).
Three measurements say how much that costs, none fitted to:

1. NVIDIA's TensorFlow BERT-large table (DeepLearningExamples at 12c7bc2, NGC 19.03, XLA on,
   V100, sequence 384): the dev set's nine one-GPU configurations, predicted with every
   optimizer step one fused kernel and with the step as the code writes it;
2. google-research/bert#255 (NVIDIA, 2018-12): Google's ``run_pretraining.py`` at sequence 512,
   batch 8, fp32, no XLA, on a 32 GB V100: "~7.81 examples/second";
3. NVIDIA/DeepLearningExamples#539 (2020-05): resource variables under XLA, which let XLA
   compile the ``Assign`` write-backs too (each variable's update one kernel): "13% on 1GPU
   for BERT SQuad fine-tuning (fp16, BS=3, on DGX-1)".

    python benchmarks/optimizer_step_tf_bert.py [--json benchmarks/results/optimizer_step_tf_bert.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import accuracy_single_gpu as single  # noqa: E402

from simulator import load_scenario  # noqa: E402
from simulator.engine import build  # noqa: E402

PR255_MEASURED = 7.81  # examples/s, BERT-large pretraining, seq 512, batch 8, fp32, 32 GB V100
PR539_MEASURED_GAIN = 0.13  # one GPU, fp16 (TF-AMP), batch 3, SQuAD (seq 384), DGX-1 V100 16 GB


def _throughput(gpu: str, seq: int, batch: int, precision: str, **workload) -> float:
    sc = load_scenario({"name": "bert", "cluster": {"nodes": 1, "gpus_per_node": 1, "gpu": gpu},
                        "workload": {"model": "bert_large", "sequence_length": seq, "batch_per_gpu": batch,
                                     "precision": precision, "optimizer": "adam", **workload},
                        "simulation": {"iterations": 1, "warmup_iterations": 0}})
    return batch / build(sc).costs.total_s


def dev_rows() -> pd.DataFrame:
    """The dev set's NVIDIA TensorFlow BERT one-GPU rows, predicted both ways."""
    frames = [single.read_rows(single.DEFAULT_CSV), *(single.read_rows(p) for p in single.EXTRA_CSVS)]
    cases, _ = single.select_cases(pd.concat(frames, ignore_index=True), include_approx=False, ampere_fp32="skip")
    cases = [c for c in cases if c.source == "NV-DLE/TF" and c.model == "bert_large"]
    out = []
    for kernels in ("multi_tensor", "elementwise"):
        for c in cases:
            c.workload = {**c.workload, "optimizer_kernels": kernels}
        res = single.evaluate(cases, [], {}, fast=True)
        out.append(res.assign(optimizer_kernels=kernels))
    return pd.concat(out, ignore_index=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args(argv)
    report: dict = {"dev_rows": {}}
    rows = dev_rows()
    print("1. NVIDIA's TensorFlow BERT-large, one V100 (dev set): median |predicted / measured - 1|, signed median")
    for kernels, res in rows.groupby("optimizer_kernels", sort=False):
        for family, part in res.groupby(res["precision"].eq("amp").map({True: "amp", False: "fp32"})):
            err = 100 * part["rel_err"]
            fig = {"n": len(part), "median_ape_%": round(float(np.median(err.abs())), 1),
                   "median_signed_%": round(float(np.median(err)), 1)}
            report["dev_rows"].setdefault(kernels, {})[family] = fig
            print(f"   {kernels:13s} {family:5s} n={fig['n']:2d}  {fig['median_ape_%']:5.1f}%  "
                  f"({fig['median_signed_%']:+.1f}%)")
    fused = _throughput("V100-SXM2-32GB", 512, 8, "fp32")
    written = _throughput("V100-SXM2-32GB", 512, 8, "fp32", optimizer_kernels="elementwise")
    report["pr255"] = {"measured": PR255_MEASURED, "multi_tensor": round(fused, 2), "elementwise": round(written, 2)}
    print(f"\n2. google-research/bert#255, fp32 pretraining at sequence 512, batch 8, 32 GB V100: measured "
          f"{PR255_MEASURED} examples/s; predicted {fused:.2f} with one fused step "
          f"({100 * (fused / PR255_MEASURED - 1):+.1f}%), {written:.2f} element-wise "
          f"({100 * (written / PR255_MEASURED - 1):+.1f}%)")
    ref_vars = _throughput("V100-SXM2-16GB", 384, 3, "amp", graph_compiler="xla", optimizer_kernels="elementwise")
    resource = _throughput("V100-SXM2-16GB", 384, 3, "amp", graph_compiler="xla", optimizer_kernels="per_tensor")
    gain = resource / ref_vars - 1
    report["pr539"] = {"measured_gain_%": 100 * PR539_MEASURED_GAIN, "predicted_gain_%": round(100 * gain, 1)}
    print(f"\n3. DeepLearningExamples#539, resource variables under XLA, amp batch 3 at sequence 384, one V100: "
          f"measured +{100 * PR539_MEASURED_GAIN:.0f}%, predicted {100 * gain:+.1f}% "
          f"({ref_vars:.1f} -> {resource:.1f} sequences/s)")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`workload.kernel_fusion` held against runs that differ only in XLA.

Lambda's tf_cnn_benchmarks logs (LambdaColdStorage/lambda-tensorflow-benchmark at commit
e086e0e, ``logs/``) time the same one-GPU runs twice on the same servers: plain and with
XLA auto-clustering. ``benchmarks/data/kernel_fusion_pairs.csv`` holds those pairs
(70: RTX 2080 Ti and Quadro RTX 8000 under TensorFlow 1.15 and 2.2, A100 SXM4 under
TensorFlow 2.3; AlexNet, VGG-16, ResNet-50/152, Inception-v3; synthetic data, NCHW; fp32
runs on the A100 read as TF32, cuDNN 8's default for fp32 convolutions there). None of
them is in the dev set and nothing is fitted to them.

The model's answer to "how much faster does the fused run go" is the ratio of the
one-GPU iteration times of the same scenario plain (``kernel_fusion: none``) and as XLA
runs it (``kernel_fusion: norm_activation`` with ``graph_compiler: xla``: a batch norm's
add and ReLU in its kernels, a convolution's or dense layer's ReLU in its epilogue, the
gradients of a fork summed inside the kernel that reads them); the measured answer is XLA
throughput over plain throughput. The table prints both per pair and the error of the
ratio, grouped by precision family. XLA does more (it picks NHWC layouts for fp16 tensor
cores, where plain TensorFlow transposes NCHW around every convolution), so the fp16 rows
show what the model leaves out.

    python benchmarks/kernel_fusion_pairs.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
PAIRS = ROOT / "benchmarks" / "data" / "kernel_fusion_pairs.csv"
BATCH_NORM_MODELS = ("resnet50", "resnet152", "inception_v3")


def predicted_speedup(gpu: str, model: str, precision: str, batch: int) -> float:
    """One-GPU iteration time unfused over fused, by the layer-time model."""
    from simulator import load_scenario
    from simulator.engine import build

    times = []
    for fusion, compiler in (("none", "none"), ("norm_activation", "xla")):
        scenario = load_scenario({"cluster": {"nodes": 1, "gpus_per_node": 1, "gpu": gpu},
                                  "workload": {"model": model, "precision": precision, "batch_per_gpu": batch,
                                               "kernel_fusion": fusion, "graph_compiler": compiler}}, [])
        times.append(build(scenario).costs.total_s)
    return times[0] / times[1]


def table() -> pd.DataFrame:
    pairs = pd.read_csv(PAIRS)
    pairs["measured"] = pairs.xla_images_per_s / pairs.unfused_images_per_s
    pairs["predicted"] = [predicted_speedup(r.gpu, r.model, r.precision, int(r.batch)) for r in pairs.itertuples()]
    pairs["error_%"] = 100 * (pairs.predicted / pairs.measured - 1)
    pairs["family"] = ["fp16 (amp)" if p == "amp" else "fp32 / tf32" for p in pairs.precision]
    pairs["batch_norm"] = pairs.model.isin(BATCH_NORM_MODELS)
    return pairs


def main() -> int:
    pairs = table()
    pd.set_option("display.width", 160)
    cols = ["gpu", "model", "precision", "batch", "tensorflow", "measured", "predicted", "error_%"]
    print(pairs[cols].round(3).to_string(index=False))
    print("\nXLA speedup over plain TensorFlow, measured and predicted (median over pairs; error = predicted / "
          "measured - 1)")
    summary = pairs.groupby(["batch_norm", "family"]).agg(
        pairs=("measured", "size"), measured=("measured", "median"), predicted=("predicted", "median"),
        median_abs_error_pct=("error_%", lambda e: e.abs().median()))
    print(summary.round(3).to_string())
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())

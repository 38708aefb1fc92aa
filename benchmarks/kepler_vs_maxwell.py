"""Kepler against Maxwell with the software held fixed: the architecture factor alone.

soumith/convnet-benchmarks timed the same convolutions with the same libraries on an
NVIDIA GTX Titan Black (Kepler GK110B, README until commit 6468ba7, December 2014) and then
on a GTX Titan X (Maxwell GM200, commit 0e3ec86, April 2015): AlexNet ("One Weird Trick",
batch 128), VGG model A ("OxfordNet", batch 32 on the Titan Black, 64 on the Titan X:
compared per sample) and five single convolution layers L1-L5 (batch 128; backward =
gradInput + gradWeight), each with cuDNN R2 (Torch's cudnn.SpatialConvolution) and with
Torch's own im2col + cuBLAS kernel (nn.SpatialConvolutionMM).
The two cards have the same memory bandwidth (336 GB/s) and datasheet fp32 peaks within
17%, yet the Kepler card took 1.1-2.0 times as long (1.5 typically). Whatever cuDNN R2 made of either
card cancels in the ratio, so the ratio tests what the catalog says about the
architectures: the Kepler SMX feeds only 128 of its 192 cores per clock without dual
issue (``cuda_core_issue_share`` 0.667). Absolute times are printed too: cuDNN R2 (2014)
ran far below what the layer-time model's shipped efficiencies (fitted on later
software) expect on both cards.

Prints, per workload and pass, the measured Titan Black / Titan X time ratio, the
model's ratio with the catalog's issue share and with it set to 1, and each card's
predicted / measured time.

    python benchmarks/kepler_vs_maxwell.py [--json benchmarks/results/kepler_vs_maxwell.json]

(the README's table comes from that JSON: ``benchmarks/readme_tables.py``)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from simulator import compute
from simulator.catalog import get_gpu
from simulator.loading import load_model_file
from simulator.zoo import get_model

DATA = Path(__file__).resolve().parent / "data" / "convnet_benchmarks"
CUDNN, TORCH = "cuDNN R2", "Torch MM"
# (library, workload) -> {card: (batch, forward ms, backward ms)} from the README tables:
# the Titan Black's at commit 6468ba7, the Titan X's at 0e3ec86.
MEASURED = {
    (CUDNN, "AlexNet"): {"GTX-Titan-Black": (128, 100, 261), "TitanX-Maxwell": (128, 70, 161)},
    (TORCH, "AlexNet"): {"GTX-Titan-Black": (128, 172, 306), "TitanX-Maxwell": (128, 132, 210)},
    (CUDNN, "VGG-A"): {"GTX-Titan-Black": (32, 221, 581), "TitanX-Maxwell": (64, 342, 757)},
    (TORCH, "VGG-A"): {"GTX-Titan-Black": (32, 262, 579), "TitanX-Maxwell": (64, 350, 755)},
    (CUDNN, "L1"): {"GTX-Titan-Black": (128, 90, 189), "TitanX-Maxwell": (128, 56, 139)},
    (CUDNN, "L2"): {"GTX-Titan-Black": (128, 218, 606), "TitanX-Maxwell": (128, 143, 401)},
    (CUDNN, "L3"): {"GTX-Titan-Black": (128, 79, 230), "TitanX-Maxwell": (128, 53, 159)},
    (CUDNN, "L4"): {"GTX-Titan-Black": (128, 9, 27), "TitanX-Maxwell": (128, 6, 19)},
    (CUDNN, "L5"): {"GTX-Titan-Black": (128, 17, 47), "TitanX-Maxwell": (128, 11, 32)},
    (TORCH, "L1"): {"GTX-Titan-Black": (128, 105, 301), "TitanX-Maxwell": (128, 94, 206)},
    (TORCH, "L2"): {"GTX-Titan-Black": (128, 239, 673), "TitanX-Maxwell": (128, 149, 432)},
    (TORCH, "L3"): {"GTX-Titan-Black": (128, 168, 270), "TitanX-Maxwell": (128, 123, 178)},
    (TORCH, "L4"): {"GTX-Titan-Black": (128, 32, 47), "TitanX-Maxwell": (128, 24, 29)},
    (TORCH, "L5"): {"GTX-Titan-Black": (128, 37, 64), "TitanX-Maxwell": (128, 28, 32)},
}


def predict(workload: str, gpu, batch: int) -> tuple[float, float]:
    """(forward, backward) ms by the layer-time model at the shipped defaults (implicit
    GEMM: cuDNN R2 had neither FFT nor Winograd, Torch's kernel is a GEMM)."""
    efficiency = compute.default_compute_efficiency("fp32", gpu.architecture)
    if workload in ("AlexNet", "VGG-A"):
        model = get_model("alexnet") if workload == "AlexNet" else load_model_file(DATA / "vgg_a.yml", register=False)
        costs = compute.roofline_costs(model, gpu, precision="fp32", batch=batch, compute_efficiency=efficiency,
                                       memory_efficiency=0.8, layer_overhead_s=20e-6, optimizer="momentum")
        return 1e3 * float(np.sum(costs.forward_s)), 1e3 * float(np.sum(costs.backward_s))
    layer = load_model_file(DATA / f"layer_{workload}.yml", register=False).layers[0]
    rates = compute.device_rates(gpu, "fp32", efficiency, 0.8, 20e-6)
    fwd, bwd = compute.layer_times(layer, batch, rates, layer.params * 4, None, input_gradient=True)
    return 1e3 * fwd, 1e3 * bwd


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", type=Path, help="write the rows here")
    args = ap.parse_args(argv)
    kepler, maxwell = get_gpu("GTX-Titan-Black"), get_gpu("TitanX-Maxwell")
    no_share = dataclasses.replace(kepler, cuda_core_issue_share=1.0, issue_source="")
    rows = []
    print(f"{'library':9s} {'workload':9s} {'pass':9s} {'measured':>9s} {'model':>7s} {'share 1':>8s}   "
          f"{'Titan Black pred/meas':>21s} {'Titan X pred/meas':>17s}")
    for (library, workload), measured in MEASURED.items():
        (b_tb, *m_tb), (b_tx, *m_tx) = measured["GTX-Titan-Black"], measured["TitanX-Maxwell"]
        tb, tx = predict(workload, kepler, b_tb), predict(workload, maxwell, b_tx)
        tb1 = predict(workload, no_share, b_tb)
        per = b_tx / b_tb  # compared per sample where the batches differ
        for i, phase in enumerate(("forward", "backward")):
            row = {"library": library, "workload": workload, "pass": phase,
                   "measured_ratio": m_tb[i] / m_tx[i] * per, "model_ratio": tb[i] / tx[i] * per,
                   "model_ratio_share_1": tb1[i] / tx[i] * per,
                   "titan_black_pred_over_meas": tb[i] / m_tb[i], "titan_x_pred_over_meas": tx[i] / m_tx[i]}
            rows.append(row)
            print(f"{library:9s} {workload:9s} {phase:9s} {row['measured_ratio']:9.2f} {row['model_ratio']:7.2f} "
                  f"{row['model_ratio_share_1']:8.2f}   {row['titan_black_pred_over_meas']:21.2f} "
                  f"{row['titan_x_pred_over_meas']:17.2f}")
    err = np.array([r["model_ratio"] / r["measured_ratio"] - 1 for r in rows])
    err1 = np.array([r["model_ratio_share_1"] / r["measured_ratio"] - 1 for r in rows])
    print(f"\nratio error, median |%| over {len(rows)} passes: with the issue share "
          f"{100 * np.median(np.abs(err)):.1f}% "
          f"(signed median {100 * np.median(err):+.1f}%), with share 1 {100 * np.median(np.abs(err1)):.1f}% "
          f"(signed {100 * np.median(err1):+.1f}%)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Gradient accumulation held against the one report found with and without it.

huggingface/pytorch-image-models#1659 measured timm's maxvit_large_tf_384 (batch 8 per
GPU) on three GPUs in one node and on one GPU in each of three nodes over 10 Gb/s, with
no accumulation and with 32 micro-batches (``--iters-to-accum 32``). The scenarios
(``benchmarks/data/timm_1659/``) stand a dense model with MaxViT-L's 212 M parameters in
its four stages in for the network and take the one-GPU rate from the report's
single-node run with 32 micro-batches (so that row checks little); the GPU is not
stated. Prints measured and predicted samples/s per configuration.

    python benchmarks/accumulation_timm1659.py [--json benchmarks/results/accumulation_timm1659.json]

(the README's table comes from that JSON: ``benchmarks/readme_tables.py``)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from simulator import load_scenario, simulate

DATA = Path(__file__).resolve().parent / "data" / "timm_1659"
# (scenario file, micro-batches, measured samples/s)
MEASURED = [
    ("one_node_three_gpus.yaml", 1, 50.3),
    ("one_node_three_gpus.yaml", 32, 59.5),
    ("three_nodes_one_gpu.yaml", 1, 21.6),
    ("three_nodes_one_gpu.yaml", 32, 57.1),
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", type=Path, help="write the rows here")
    args = ap.parse_args(argv)
    rows = []
    print(f"{'configuration':32s} {'micro-batches':>13s} {'measured':>9s} {'predicted':>9s} {'error':>7s}")
    for name, steps, measured in MEASURED:
        scenario = load_scenario(DATA / name, [f"training.gradient_accumulation_steps={steps}"])
        predicted = simulate(scenario).throughput_samples_per_s
        print(f"{scenario.name:32s} {steps:13d} {measured:9.1f} {predicted:9.1f} {predicted / measured - 1:+7.1%}")
        rows.append({"configuration": scenario.name, "micro_batches": steps, "measured": measured,
                     "predicted": predicted})
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Small batches on one GPU: MXNet's perf.md training tables against the layer-time model,
with and without the host's dispatch of each kernel as a bound of its own
(``workload.host_dispatch_us``, :mod:`simulator.host_dispatch`).

MXNet's docs/faq/perf.md ("Training results", MXNet 1.2.0.rc1 with cuDNN 7.0.5,
``train_imagenet.py --benchmark 1`` on one GPU of EC2 p2.2xlarge / g3.4xlarge /
p3.2xlarge, all three with the same Xeon E5-2686 v4 host) times Inception-v3 and ResNet-50
at batch 1 to 32 on a K80 and an M60 and 1 to 128 on a V100
(``benchmarks/data/mxnet_perf_faq_one_gpu.csv``). The shipped model (``host_dispatch_us``
0) charges every kernel ``layer_overhead_us`` (20 us) on the GPU, back to back; with
``host_dispatch_us`` c > 0 the host issues one kernel every c us and the GPU cannot run
ahead of it. The script prints the error (predicted / measured throughput - 1) at each
batch size for each c, from the layer costs of one iteration as the one-GPU benchmark
builds them for MXNet (per-weight optimizer updates); nothing is fitted or shipped here.

    python benchmarks/small_batch_dispatch.py [--host-us 0 40 50 60] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from simulator import load_scenario  # noqa: E402
from simulator.build import forget_shared_clusters  # noqa: E402
from simulator.engine import build  # noqa: E402

DATA = REPO_ROOT / "benchmarks" / "data" / "mxnet_perf_faq_one_gpu.csv"
GPUS = {"K80 (single GPU die)": "K80", "M60 (single GPU of the board, EC2 g3.4xlarge)": "M60",
        "V100 16GB (EC2 p3.2xlarge)": "V100-SXM2-16GB"}
MODELS = {"Inception-v3": "inception_v3", "ResNet-50": "resnet50"}


def iteration_s(model: str, gpu: str, batch: int, host_us: float) -> float:
    """One iteration's compute time by the layer-time model, as the one-GPU benchmark runs MXNet."""
    workload = {"model": model, "batch_per_gpu": batch, "precision": "fp32", "optimizer_kernels": "per_tensor",
                "host_dispatch_us": host_us}
    scenario = load_scenario({"name": "small-batch", "cluster": {"nodes": 1, "gpus_per_node": 1, "gpu": gpu},
                              "workload": workload, "simulation": {"iterations": 1, "warmup_iterations": 0}})
    return build(scenario).costs.total_s


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host-us", type=float, nargs="+", default=[0.0, 40.0, 50.0, 60.0],
                    help="host dispatch per kernel (us); 0 is the shipped model")
    ap.add_argument("--json", type=Path, help="write the errors here")
    args = ap.parse_args(argv)
    rows = pd.read_csv(DATA)
    rows = rows[rows.model.isin(MODELS)]
    out = []
    for (gpu_text, model_text), group in rows.groupby(["gpu", "model"], sort=False):
        gpu, model = GPUS[gpu_text], MODELS[model_text]
        group = group.sort_values("batch_per_gpu")
        batches = [int(b) for b in group.batch_per_gpu]
        print(f"\n{gpu} {model}: batch " + " ".join(f"{b:>5d}" for b in batches))
        for host_us in args.host_us:
            errors = [batch / iteration_s(model, gpu, batch, host_us) / measured - 1
                      for batch, measured in zip(batches, group.value)]
            forget_shared_clusters()
            print(f"  host {host_us:4.0f} us per kernel:   " + " ".join(f"{100 * e:+5.0f}" for e in errors))
            out.append({"gpu": gpu, "model": model, "host_us": host_us, "batch": batches,
                        "error_%": [round(100 * e, 1) for e in errors]})
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

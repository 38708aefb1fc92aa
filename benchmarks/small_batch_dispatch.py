"""Small batches on one GPU: MXNet's perf.md training tables against the layer-time model
at several values of the host's cost to issue a kernel (``workload.host_dispatch_us``,
:mod:`simulator.host_dispatch`).

MXNet's perf.md ("Training results", ``train_imagenet.py --benchmark 1`` on one GPU,
fp32) times Inception-v3 and ResNet-50 from batch 1: in December 2016 (MXNet commit
0a03417, cuDNN 5.1) on a K80 of EC2 p2.2xlarge, an M40 and a DGX-1's P100, and in May 2018
(MXNet 1.2.0.rc1, cuDNN 7.0.5) on one GPU of EC2 p2.2xlarge (K80), g3.4xlarge (M60) and
p3.2xlarge (V100), three instances with the same Xeon E5-2686 v4 host
(``benchmarks/data/mxnet_perf_faq_one_gpu.csv``). With ``host_dispatch_us`` c the host
issues one kernel every c us and the GPU cannot run ahead of it; 0 leaves the host out
(every kernel costs ``layer_overhead_us`` on the GPU, back to back). The script prints the
error (predicted / measured throughput - 1) at each batch size for each c, from the layer
costs of one iteration as the one-GPU benchmark builds them from the row's framework text
(``workload_for_text``: per-weight optimizer updates; the 2016 MXNet ran cuDNN's heuristic
convolution algorithms, ``precomputed_gemm``, not the autotuner's; MXNet's engine waits
for the GPU, ``host_sync_layers``). The shipped default (50) is what the one-GPU
cross-validation picks (``accuracy_single_gpu.py --cv``); nothing is fitted here.

    python benchmarks/small_batch_dispatch.py [--host-us 0 50 80] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from accuracy_single_gpu import GPU_MAP, MODEL_MAP  # noqa: E402  (the one-GPU benchmark's mappings)

from simulator import load_scenario  # noqa: E402
from simulator.build import forget_shared_clusters  # noqa: E402
from simulator.engine import build  # noqa: E402
from simulator.validation.framework_text import workload_for_text  # noqa: E402

DATA = REPO_ROOT / "benchmarks" / "data" / "mxnet_perf_faq_one_gpu.csv"
MODELS = ("Inception-v3", "ResNet-50")  # MXNet's AlexNet is not the zoo's


def iteration_s(model: str, gpu: str, batch: int, host_us: float, framework: str) -> float:
    """One iteration's compute time by the layer-time model, with the fields the row's ``framework`` text implies."""
    workload = {"model": model, "batch_per_gpu": batch, "precision": "fp32", "host_dispatch_us": host_us,
                **workload_for_text(framework, model, "fp32")}
    scenario = load_scenario({"name": "small-batch", "cluster": {"nodes": 1, "gpus_per_node": 1, "gpu": gpu},
                              "workload": workload, "simulation": {"iterations": 1, "warmup_iterations": 0}})
    return build(scenario).costs.total_s


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host-us", type=float, nargs="+", default=[0.0, 50.0, 80.0],
                    help="host dispatch per kernel (us); 0 leaves the host out")
    ap.add_argument("--json", type=Path, help="write the errors here")
    args = ap.parse_args(argv)
    rows = pd.read_csv(DATA)
    rows = rows[rows.model.isin(MODELS)]
    out = []
    for (source, gpu_text, model_text, framework), group in rows.groupby(["source", "gpu", "model", "framework"],
                                                                        sort=False):
        gpu, model = GPU_MAP[gpu_text], MODEL_MAP[model_text][0]
        assert gpu is not None
        software = "MXNet 1.2, cuDNN 7.0.5" if "1.2.0" in source else "MXNet 0a03417, cuDNN 5.1"
        group = group.sort_values("batch_per_gpu")
        batches = [int(b) for b in group.batch_per_gpu]
        print(f"\n{gpu} {model} ({software}): batch " + " ".join(f"{b:>5d}" for b in batches))
        for host_us in args.host_us:
            errors = [batch / iteration_s(model, gpu, batch, host_us, framework) / measured - 1
                      for batch, measured in zip(batches, group.value)]
            forget_shared_clusters()
            print(f"  host {host_us:4.0f} us per kernel:   " + " ".join(f"{100 * e:+5.0f}" for e in errors))
            out.append({"gpu": gpu, "model": model, "software": software, "host_us": host_us, "batch": batches,
                        "error_%": [round(100 * e, 1) for e in errors]})
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

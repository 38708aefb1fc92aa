"""Training on DGX-1-class servers with a measured allreduce in place of the modelled one.

``training.collectives.measured`` lets a scenario take its bucket allreduces from an
nccl-tests run of the cluster (:mod:`simulator.measured_collectives`). The dev set has no
source that published both a training throughput and an nccl-tests run of the same
machine, so this holds the closest pair there is: every multi-GPU training row on one
server of 8 V100-SXM2 (NVIDIA's DeepLearningExamples, Lambda, PaddlePaddle's report, each
with the server layout its dev-set row has), predicted once with the nccl backend's modelled
allreduce and once with the allreduce konnase's blog measured on another 8x V100-SXM2
hybrid-cube-mesh server in 2019 (``scenarios/validation/collectives/nccl_tests/
dgx1-v100-konnase-all_reduce_perf.txt``; nccl-tests ``-g 8``, NCCL version not stated).
Printed: the median |predicted / measured - 1| of the rows' throughput either way, per
source and overall, and the two allreduce times at the bucket sizes the frameworks use.

    python benchmarks/measured_allreduce_dgx1.py [--json benchmarks/results/measured_allreduce_dgx1.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import accuracy_training as at  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "scenarios/validation/collectives/nccl_tests/dgx1-v100-konnase-all_reduce_perf.txt"
SYSTEM = ROOT / "scenarios/validation/collectives/systems/dgx1-v100-konnase.yaml"


def dgx1_rows(frame):
    """Multi-GPU rows on one server of 8 V100-SXM2 (not a DGX-2's 16)."""
    ids = frame.case_id
    return frame[(frame.total_gpus == 8) & ids.str.contains("V100-SXM2") & ~ids.str.contains("dgx2")
                 & ids.str.contains("1x8")]


def bucket_times() -> list[dict]:
    """The modelled and the measured allreduce of 8 GPUs at typical bucket sizes."""
    import numpy as np

    from simulator.calibrated_run import measured_time_s
    from simulator.loading import load_scenario
    from simulator.measured_collectives import collective_fit, read_measured_allreduce
    from simulator.validation.run import collective_estimate

    scenario = load_scenario(SYSTEM)
    run = read_measured_allreduce(str(RUN), 8, 1)
    fit = collective_fit(run, 8, 1)
    sizes, times = np.array(list(run.times_s), dtype=float), np.array(list(run.times_s.values()))
    out = []
    for mib in (1, 25, 64, 128):
        nbytes = mib * 2**20
        measured = measured_time_s(sizes, times, fit, nbytes)
        out.append({"bucket_mib": mib, "modelled_us": 1e6 * collective_estimate(scenario, "allreduce", nbytes,
                                                                                  "auto").time_s,
                    "measured_us": 1e6 * measured})
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    modelled = dgx1_rows(at.run(()))
    measured = dgx1_rows(at.run((f"training.collectives.measured={RUN}",)))
    frame = modelled[["case_id", "source"]].copy()
    frame["modelled_%"] = 100 * modelled.rel_error.abs()
    frame["measured_%"] = 100 * measured.set_index("case_id").loc[modelled.case_id].rel_error.abs().to_numpy()
    if frame[["modelled_%", "measured_%"]].isna().any().any():
        raise SystemExit("a row did not run: " + ", ".join(frame[frame.isna().any(axis=1)].case_id))
    per_source = frame.groupby("source")[["modelled_%", "measured_%"]].median().round(1)
    per_source["rows"] = frame.groupby("source").size()
    print(per_source.to_string())
    overall = {"rows": len(frame), "modelled_median_%": float(frame["modelled_%"].median()),
               "measured_median_%": float(frame["measured_%"].median())}
    print(f"\nall {overall['rows']} rows: median |error| {overall['modelled_median_%']:.1f}% with the modelled "
          f"allreduce, {overall['measured_median_%']:.1f}% with the measured one")
    buckets = bucket_times()
    for b in buckets:
        print(f"allreduce of {b['bucket_mib']:>3} MiB on 8 V100: modelled {b['modelled_us']:8.0f} us, "
              f"measured {b['measured_us']:8.0f} us")
    if args.json:
        args.json.write_text(json.dumps({"overall": overall, "per_source": per_source.reset_index().to_dict("records"),
                                         "buckets": buckets}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

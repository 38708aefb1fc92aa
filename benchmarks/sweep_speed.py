"""Sweep throughput (runs per second): serial execution against the local process pool.

    python benchmarks/sweep_speed.py [--runs 200] [--repeats 5] [--workers N]

Both executors run the same sweep of small ResNet-50 scenarios (1 measured iteration,
2-40 GPUs) with the result cache off, in this one process, median of ``--repeats``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from simulator import run_sweep


def sweep(runs: int) -> dict:
    nodes = list(range(1, 11))
    batches = list(range(8, 8 + 8 * max(1, runs // (len(nodes) * 2)), 8))
    return {
        "name": "bench",
        "base": {"cluster": {"nodes": 2, "gpus_per_node": 4, "server": {"pcie_switches": 1}},
                 "simulation": {"iterations": 1, "warmup_iterations": 0}},
        "axes": {"grid": {"cluster.nodes": nodes, "workload.batch_per_gpu": batches,
                          "training.strategy": ["ring_allreduce", "parameter_server"]}},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    args = parser.parse_args()
    spec = sweep(args.runs)
    n = len(run_sweep(spec, executor="serial", cache=False, progress=False))  # also warms imports
    print(f"{n} runs per sweep, cache off, median of {args.repeats}, {os.cpu_count()} cores")
    for name, kwargs in [("serial", {"executor": "serial"}), (f"local x{args.workers}", {"workers": args.workers})]:
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            run_sweep(spec, cache=False, progress=False, **kwargs)
            times.append(time.perf_counter() - start)
        median = statistics.median(times)
        print(f"{name:>10}: {median:6.2f} s  {n / median:7.1f} runs/s")


if __name__ == "__main__":
    main()

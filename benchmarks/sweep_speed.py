"""Sweep throughput (runs per second): serial execution against the local process pool.

    python benchmarks/sweep_speed.py [--runs 200] [--repeats 5] [--workers N]
    python benchmarks/sweep_speed.py --must-hold [--repeats 1]

Both executors run the same sweep of small ResNet-50 scenarios (1 measured iteration,
2-40 GPUs) with the result cache off, in this one process, median of ``--repeats``.
``--must-hold`` runs issue 19's figure instead: 1,008 configurations (ring and
parameter servers, 8-512 GPUs, every NIC, eight batch sizes) on 2 workers, cache off,
against its target (<= 30 s wall). It also prints the CPU seconds of the workers and of
the sweep process, and the load average: on a machine shared with other work the wall
time is not the sweep's own, and the workers' CPU seconds / 2 is what it would take on
two idle cores.
"""

from __future__ import annotations

import argparse
import os
import resource
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


def must_hold_spec() -> dict:
    """7 cluster sizes (8-512 GPUs) x 2 strategies x 9 NICs x 8 batches = 1,008 runs."""
    return {
        "name": "must-hold",
        "base": {"cluster": {"gpus_per_node": 8, "server": {"pcie_switches": 2}},
                 "simulation": {"iterations": 1, "warmup_iterations": 0}},
        "axes": {"grid": {
            "cluster.nodes": [1, 2, 4, 8, 16, 32, 64],
            "training.strategy": ["ring_allreduce", "parameter_server"],
            "cluster.nic.link": ["1GbE", "10GbE", "25GbE", "40GbE", "100GbE", "IB-FDR", "IB-EDR", "IB-HDR", "IB-NDR"],
            "workload.batch_per_gpu": [8, 16, 24, 32, 40, 48, 56, 64],
        }},
    }


def must_hold_sweep(workers: int = 2) -> tuple[int, float, float, float]:
    """(runs, wall seconds, CPU seconds of this process, CPU seconds of its workers) of
    :func:`must_hold_spec` on ``workers`` processes, cache off. The CPU figures say what
    the wall time would be on an idle machine (about workers' CPU / workers) when the
    machine is shared and the wall time is not the sweep's own."""
    start, cpu, children = time.perf_counter(), time.process_time(), _children_cpu()
    n = len(run_sweep(must_hold_spec(), workers=workers, cache=False, progress=False))
    return n, time.perf_counter() - start, time.process_time() - cpu, _children_cpu() - children


def _children_cpu() -> float:
    """CPU seconds of the finished child processes (a sweep's pool is joined at its end)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--must-hold", action="store_true", help="the 1,000-run sweep of issue 19, 2 workers")
    args = parser.parse_args()
    if args.must_hold:
        results = [must_hold_sweep(2) for _ in range(args.repeats)]
        wall, parent, workers = (statistics.median(r[i] for r in results) for i in (1, 2, 3))
        print(f"{results[0][0]} runs (ring and parameter servers, 8-512 GPUs), 2 workers, cache off, "
              f"median of {args.repeats}: wall {wall:.1f} s (target <= 30 s); CPU: workers {workers:.1f} s, "
              f"sweep process {parent:.1f} s; on an idle machine about {max(parent, workers / 2):.1f} s wall; "
              f"load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        return
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

"""Wall time and peak memory of whole `clustersim simulate` runs against the size of the
cluster graph: the figures behind ``simulator.run_budget.DEFAULT_MAX_GRAPH_EDGES``
(issue 18: no valid input may run past 20 s or 1 GiB by default).

Each case runs `clustersim simulate` in a fresh process (limits lifted with
``CLUSTERSIM_ALLOW_LARGE=1``, so a case over the budget runs instead of being refused)
and reads that process's wall time and peak resident memory. Cases: ring allreduce of
BERT-large on four-GPU DGX-1 servers (the largest graph per GPU of the shipped layouts:
74 edges per server) and ResNet-50 on eight-GPU NVSwitch servers, at several server
counts. Prints edges, GPUs, the median wall time over ``--repeats`` runs and the
largest peak memory, and per case whether it is within 20 s and 1 GiB, and whether the
default budget lets it run.

    python benchmarks/graph_budget.py                  # about 2 minutes
    python benchmarks/graph_budget.py --repeats 3 --nodes 2700 10000
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simulator.run_budget import DEFAULT_MAX_GRAPH_EDGES  # noqa: E402

DGX1_BERT = (ROOT / "scenarios/validation/training_systems"
             / "NVIDIA-DLE-PyTorch-BERT-bert_large-s384-V100-SXM2-16GB-amp-b4-1x4.yaml")
CASES = {
    # name -> (scenario file, overrides)
    "DGX-1 x4, BERT-large, ring": (DGX1_BERT, []),
    "NVSwitch x8, ResNet-50, ring": (None, ["cluster.gpus_per_node=8", "cluster.server.layout=nvswitch",
                                            "cluster.server.pcie_switches=null", "cluster.server.gpus_per_switch=null",
                                            "cluster.gpu=A100-SXM4-80GB", "workload.model=resnet50"]),
}
TIME_LIMIT_S, MEMORY_LIMIT_MB = 20.0, 1024.0


def graph_size(scenario: Path | None, overrides: list[str], nodes: int) -> tuple[int, int]:
    """GPUs and cluster-graph edges at ``nodes`` servers, from graphs of 3 and 4 servers
    (a single-switch fabric adds the same edges per server)."""
    from simulator import load_scenario
    from simulator.build import cluster_network

    edges = []
    for n in (3, 4):
        loaded = load_scenario(str(scenario) if scenario else None, [*overrides, f"cluster.nodes={n}"])
        cluster, _, _ = cluster_network(loaded, None)  # type: ignore[arg-type]  (no run: no environment)
        edges.append(cluster.graph.number_of_edges())
    return nodes * loaded.cluster.gpus_per_node, edges[0] + (nodes - 3) * (edges[1] - edges[0])


def run_once(scenario: Path | None, overrides: list[str], nodes: int) -> tuple[float, float, int]:
    """Wall seconds, peak resident MB and exit code of one `clustersim simulate`."""
    args = [sys.executable, "-m", "simulator.cli", "simulate"]
    if scenario is not None:
        args.append(str(scenario))
    for item in [*overrides, f"cluster.nodes={nodes}"]:
        args += ["--set", item]
    env = {**os.environ, "CLUSTERSIM_ALLOW_LARGE": "1"}
    start = time.perf_counter()
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        print(f"  (exit {proc.returncode}: {proc.stderr.read().decode()[-300:].strip() if proc.stderr else ''})")
    return wall, usage.ru_maxrss / 1024, proc.returncode


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, nargs="+", default=[1350, 2700, 4000])
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--case", choices=sorted(CASES), action="append", help="only these cases (default: all)")
    args = ap.parse_args()
    print(f"default budget: {DEFAULT_MAX_GRAPH_EDGES:,} edges; limits {TIME_LIMIT_S:g} s, {MEMORY_LIMIT_MB:g} MB")
    print(f"{'case':32} {'nodes':>6} {'GPUs':>7} {'edges':>9} {'wall s':>7} {'peak MB':>8}  within  default")
    for name in args.case or list(CASES):
        scenario, overrides = CASES[name]
        for nodes in args.nodes:
            runs = [run_once(scenario, overrides, nodes) for _ in range(args.repeats)]
            wall = statistics.median(r[0] for r in runs)
            peak = max(r[1] for r in runs)
            gpus, edges = graph_size(scenario, overrides, nodes)
            within = "yes" if wall <= TIME_LIMIT_S and peak <= MEMORY_LIMIT_MB else "NO"
            if any(r[2] != 0 for r in runs):
                within = "ERROR"  # the run failed: its figures measure nothing
            allowed = "runs" if edges <= DEFAULT_MAX_GRAPH_EDGES else "refused"
            print(f"{name:32} {nodes:>6,} {gpus:>7,} {edges:>9,} {wall:>7.1f} {peak:>8.0f}  {within:6}  {allowed}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""How fast the simulator itself runs: one ResNet-50 iteration at 8, 64 and 256 GPUs.

Prints, per GPU count and execution path, the median wall time over ``--repeats``
runs of build + run + collect (no one-GPU baseline), the simulated events and flows,
and simulated events per wall second. The fast path simulates one representative rank
and one bundled flow per collective; the detailed path every rank and every
point-to-point flow (slow by design; capped at ``--detailed-max`` GPUs).

    python benchmarks/engine_speed.py [--repeats 5] [--strategy ring_allreduce]
"""

from __future__ import annotations

import argparse
import statistics
import time

from simulator import load_scenario
from simulator.engine import build, run
from simulator.results import collect


def scenario(gpus: int, mode: str, strategy: str):
    per_node = 8
    nodes = max(gpus // per_node, 1)
    return load_scenario(
        None,
        [
            f"cluster.nodes={nodes}",
            f"cluster.gpus_per_node={min(gpus, per_node)}",
            "cluster.server.pcie_switches=2",
            "cluster.server.gpus_per_switch=null",
            "cluster.nic.link=IB-EDR",
            "workload.model=resnet50",
            f"training.strategy={strategy}",
            "training.parameter_servers.count=" + str(max(nodes, 1)),
            "simulation.iterations=1",
            "simulation.warmup_iterations=0",
            f"simulation.mode={mode}",
        ],
    )


def measure(gpus: int, mode: str, strategy: str, repeats: int) -> dict:
    s = scenario(gpus, mode, strategy)
    walls = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        sim = build(s)
        run(sim)
        result = collect(sim, None)
        walls.append(time.perf_counter() - t0)
    wall = statistics.median(walls)
    return {
        "gpus": gpus,
        "mode": mode,
        "wall_s": wall,
        "events": result.simulated_events,
        "flows": result.flows,
        "events_per_s": result.simulated_events / wall,
        "iteration_ms": result.iteration_time_s * 1e3,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--strategy", default="ring_allreduce", choices=["ring_allreduce", "parameter_server"])
    parser.add_argument("--gpus", type=int, nargs="+", default=[8, 64, 256])
    parser.add_argument("--detailed-max", type=int, default=64)
    args = parser.parse_args()
    print(f"ResNet-50, one iteration, {args.strategy}, median of {args.repeats} runs")
    print(f"{'GPUs':>6} {'path':>9} {'wall s':>9} {'events':>9} {'flows':>9} {'events/s':>10} {'iter ms':>9}")
    for gpus in args.gpus:
        for mode in ("fast", "detailed"):
            if mode == "detailed" and gpus > args.detailed_max:
                continue
            r = measure(gpus, mode, args.strategy, args.repeats)
            print(f"{r['gpus']:>6} {r['mode']:>9} {r['wall_s']:>9.4f} {r['events']:>9} {r['flows']:>9} "
                  f"{r['events_per_s']:>10.0f} {r['iteration_ms']:>9.2f}")


if __name__ == "__main__":
    main()

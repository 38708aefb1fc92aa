"""How fast the simulator itself runs: one ResNet-50 iteration at 8, 64 and 256 GPUs.

Prints, per GPU count and execution path, the median wall time over ``--repeats``
runs of build + run + collect (no one-GPU baseline), the simulated events and flows,
and simulated events per wall second. The fast path simulates one representative rank
and one bundled flow per collective; the detailed path every rank and every
point-to-point flow (slow by design; capped at ``--detailed-max`` GPUs).

    python benchmarks/engine_speed.py [--repeats 5] [--strategy ring_allreduce]
    python benchmarks/engine_speed.py --must-hold [--repeats 3] [--max-gpus 1024]

``--must-hold`` prints instead the figures issue 19 asks for that this script can
measure in one process (CPU seconds, medians of ``--repeats``): parameter servers on
the fast path, leaf-spine 4:1 with parameter servers, ``strategy: auto``, jitter +
stragglers, each over GPU counts up to ``--max-gpus`` with the fitted exponent of time
against GPUs from 1,024 (or the smallest size) up; and the detailed path's events per
second as a fraction of a bare SimPy timeout loop measured in the same process.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import simpy

from simulator import load_scenario
from simulator.engine import build, run
from simulator.results import collect


def base_overrides(gpus: int, strategy: str) -> list[str]:
    """ResNet-50, 8 GPUs per node on IB-EDR, one iteration; one parameter server per node."""
    per_node = 8
    nodes = max(gpus // per_node, 1)
    return [
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
    ]


def scenario(gpus: int, mode: str, strategy: str):
    return load_scenario(None, base_overrides(gpus, strategy) + [f"simulation.mode={mode}"])


# name -> (strategy, extra overrides); the cases of issue 19's "Must hold" measured here.
MUST_HOLD = {
    "parameter servers, fast": ("parameter_server", ["simulation.mode=fast"]),
    "leaf-spine 4:1, parameter servers": ("parameter_server", [
        "cluster.fabric.topology=leaf_spine", "cluster.fabric.nodes_per_leaf=4", "cluster.fabric.spines=4",
        "cluster.fabric.oversubscription=4"]),
    "strategy: auto": ("auto", []),
    "ring, jitter + stragglers": ("ring_allreduce", [
        "variability.jitter.distribution=lognormal", "variability.jitter.cv=0.05",
        "variability.stragglers.probability=0.01"]),
}


def fitted_exponent(points: list[tuple[int, float]]) -> float:
    """Slope of log(time) against log(GPUs) by least squares (nan with fewer than 2 points)."""
    if len(points) < 2:
        return float("nan")
    x = [math.log(g) for g, _ in points]
    y = [math.log(max(t, 1e-9)) for _, t in points]
    mx, my = sum(x) / len(x), sum(y) / len(y)
    return sum((a - mx) * (b - my) for a, b in zip(x, y)) / sum((a - mx) ** 2 for a in x)


def bare_simpy_events_per_s(n: int = 200_000) -> float:
    """Events per CPU second of a bare SimPy loop of timeouts (the engine's ceiling)."""
    env = simpy.Environment()

    def loop():
        for _ in range(n):
            yield env.timeout(1.0)

    env.process(loop())
    t0 = time.process_time()
    env.run()
    return n / (time.process_time() - t0)


def must_hold(repeats: int, sizes: list[int], budget_s: float) -> None:
    print(f"CPU seconds per ResNet-50 iteration (build + run + collect), median of {repeats}")
    for name, (strategy, extra) in MUST_HOLD.items():
        points = []
        for gpus in sizes:
            r = measure(gpus, "", strategy, repeats, extra)
            points.append((gpus, r["wall_s"]))
            print(f"  {name:<36} {gpus:>6} GPUs {r['wall_s']:>9.3f} s  ({r['events']} events, {r['flows']} flows)")
            if r["wall_s"] > budget_s:
                print(f"  {name:<36} stopped: over {budget_s:g} s")
                break
        tail = [p for p in points if p[0] >= 1024] or points
        print(f"  {name:<36} fitted exponent of time against GPUs ({tail[0][0]}-{tail[-1][0]}): "
              f"{fitted_exponent(tail):.2f}")
    bare = bare_simpy_events_per_s()
    r = measure(64, "", "ring_allreduce", repeats, ["simulation.mode=detailed"])
    print(f"detailed path, ring, 64 GPUs: {r['events'] / r['wall_s']:,.0f} events/s; bare SimPy timeouts "
          f"{bare:,.0f} events/s; ratio {r['events'] / r['wall_s'] / bare:.1%} (measured in this run)")


def measure(gpus: int, mode: str, strategy: str, repeats: int, extra: list[str] | None = None) -> dict:
    s = scenario(gpus, mode, strategy) if extra is None else load_scenario(None, base_overrides(gpus, strategy) + extra)
    walls = []
    for _ in range(repeats):
        t0 = time.process_time() if extra is not None else time.perf_counter()
        sim = build(s)
        run(sim)
        result = collect(sim, None)
        walls.append((time.process_time() if extra is not None else time.perf_counter()) - t0)
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
    parser.add_argument("--must-hold", action="store_true", help="print the figures of issue 19's 'Must hold'")
    parser.add_argument("--max-gpus", type=int, default=1024)
    parser.add_argument("--budget", type=float, default=60.0, help="stop a case's growth once a size takes longer")
    args = parser.parse_args()
    if args.must_hold:
        sizes = [g for g in (64, 256, 1024, 4096, 16384) if g <= args.max_gpus]
        must_hold(args.repeats, sizes, args.budget)
        return
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

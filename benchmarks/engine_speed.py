"""How fast the simulator itself runs: one ResNet-50 iteration at 8, 64 and 256 GPUs.

Prints, per GPU count and execution path, the median wall time over ``--repeats``
runs of build + run + collect (no one-GPU baseline), the simulated events and flows,
and simulated events per wall second. The fast path simulates one representative rank
and one bundled flow per collective; the detailed path every rank and every
point-to-point flow (slow by design; capped at ``--detailed-max`` GPUs).

    python benchmarks/engine_speed.py [--repeats 5] [--strategy ring_allreduce]
    python benchmarks/engine_speed.py --must-hold [--repeats 3] [--max-gpus 65536] [--sweep]
    python benchmarks/engine_speed.py --must-hold --case 'ring, fast' --gpus 65536 [--repeats 3]
    python benchmarks/engine_speed.py --transformer [--repeats 3] [--gpus 4096 16384]
    python benchmarks/engine_speed.py --events-ratio [--repeats 5]
    python benchmarks/engine_speed.py --events-ratio --both-engines [--rounds 3] [--repeats 3]
    python benchmarks/engine_speed.py --advise [--repeats 3]

``--must-hold`` prints instead every figure of issue 19's "Must hold", each against its
limit (CPU seconds of build + run + collect, medians of ``--repeats``, one process):

* per path (ring fast, parameter servers fast, leaf-spine 4:1 with parameter servers,
  ``strategy: auto``, jitter + stragglers), the time at each size up to ``--max-gpus``
  and the fitted exponent of time against GPUs from 1,024 to the largest size measured;
* the peak memory of parameter servers at 4,096 GPUs (a fresh process, its max RSS);
* the detailed path's events per second against a bare SimPy timeout loop measured in
  the same process (alone: ``--events-ratio``), with whichever engine core this process
  runs (``simulator.compiled``: the sources, or the build of ``clustersim accelerate``);
  ``--both-engines`` runs it in fresh processes with the sources and with the compiled
  core in turn (``--rounds`` times each) and prints every line and the medians;
* ``clustersim --version`` and an 8-GPU ``clustersim simulate`` (wall seconds of the
  command, medians);
* with ``--sweep``, the 1,000-configuration sweep of ``benchmarks/sweep_speed.py``
  (``--must-hold``) on 2 workers, cache off (a minute or so).

``--transformer`` prints instead one transformer-parallel training step (Llama 2 70B,
bf16, 4,096 tokens, tensor 8 x pipeline 8, interleaved schedule with 5 virtual stages,
one sample per GPU) on H100 NVSwitch servers with one 3,200 Gb/s NIC per GPU on one
switch, at each ``--gpus`` (default 4,096 and 16,384): the median CPU and wall seconds
of ``simulate`` over ``--repeats`` cold runs. Routing the collective library's rings
between servers of that cluster searched the whole graph per pair before routes were
composed from server templates there (rails on one switch).
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import simpy

from simulator import load_scenario
from simulator.build import forget_shared_clusters
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
    "ring, fast": ("ring_allreduce", ["simulation.mode=fast"]),
    "parameter servers, fast": ("parameter_server", ["simulation.mode=fast"]),
    "leaf-spine 4:1, parameter servers": ("parameter_server", [
        "cluster.fabric.topology=leaf_spine", "cluster.fabric.nodes_per_leaf=4", "cluster.fabric.spines=4",
        "cluster.fabric.oversubscription=4"]),
    "strategy: auto": ("auto", []),
    "ring, jitter + stragglers": ("ring_allreduce", [
        "variability.jitter.distribution=lognormal", "variability.jitter.cv=0.05",
        "variability.stragglers.probability=0.01"]),
}
# name -> (GPU counts measured, {GPUs: limit in CPU seconds}).
SIZES = {
    "ring, fast": ((1024, 4096, 16384, 65536), {65536: 2.0}),
    "parameter servers, fast": ((1024, 4096, 16384), {4096: 2.0}),
    "leaf-spine 4:1, parameter servers": ((1024, 4096, 16384), {1024: 1.0}),
    "strategy: auto": ((1024, 4096, 16384), {1024: 0.5}),
    "ring, jitter + stragglers": ((1024, 4096, 16384), {1024: 1.0, 16384: 30.0}),
}
GROWTH_LIMIT = 1.2
PS_MEMORY = (4096, 500.0)  # GPUs, MB
EVENTS_RATIO = 0.30
CLI_LIMITS = {"clustersim --version": 0.3, "clustersim simulate (8 GPUs)": 0.6}
SWEEP_LIMIT_S = 30.0


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


def verdict(value: float, limit: float) -> str:
    return f"{'ok' if value <= limit else 'MISSED'} (limit {limit:g})"


def print_events_ratio(repeats: int) -> None:
    """The detailed path's events per CPU second against a bare SimPy timeout loop."""
    from simulator.compiled import in_use

    bare = bare_simpy_events_per_s()
    r = measure(64, "", "ring_allreduce", repeats, ["simulation.mode=detailed"])
    ratio = r["events"] / r["wall_s"] / bare
    engine = "compiled core" if in_use() else "sources"
    print(f"detailed path, ring, 64 GPUs ({engine}): {r['events'] / r['wall_s']:,.0f} events/s; bare SimPy "
          f"timeouts {bare:,.0f} events/s; ratio {ratio:.1%} (measured in this run)  "
          f"{'ok' if ratio >= EVENTS_RATIO else 'MISSED'} (at least {EVENTS_RATIO:.0%})")


def events_ratio_both_engines(rounds: int, repeats: int) -> None:
    """:func:`print_events_ratio` in fresh processes, the sources and the compiled core in
    turn (alternated, so both see the same load), and the median ratio of each."""
    from simulator.compiled import enable

    if not enable().startswith("compiled"):
        sys.exit("no compiled build of these sources: run `clustersim accelerate` first")
    ratios: dict[str, list[float]] = {"sources": [], "compiled core": []}
    for _ in range(rounds):
        for engine, pure in (("sources", "1"), ("compiled core", "0")):
            out = subprocess.run([sys.executable, __file__, "--events-ratio", "--repeats", str(repeats)],
                                 env={**os.environ, "CLUSTERSIM_PURE_PYTHON": pure}, capture_output=True,
                                 text=True, check=True).stdout.strip()
            print(out)
            ratios[engine].append(float(out.split("ratio ")[1].split("%")[0]))
    for engine, values in ratios.items():
        median = statistics.median(values)
        print(f"median over {rounds} processes, {engine}: {median:.1f}%  "
              f"{'ok' if median >= EVENTS_RATIO * 100 else 'MISSED'} (at least {EVENTS_RATIO:.0%})")


def must_hold(repeats: int, max_gpus: int, budget_s: float, with_sweep: bool, case: str | None = None,
              gpus_only: list[int] | None = None) -> None:
    """Print the figures of issue 19's "Must hold"; with ``case``, only that path's times
    (at ``gpus_only`` where given) and nothing else."""
    os.environ["CLUSTERSIM_ALLOW_LARGE"] = "1"  # 65,536 GPUs is above the scenario safeguard
    print(f"CPU seconds per ResNet-50 iteration (build + run + collect), median of {repeats}")
    for name, (strategy, extra) in MUST_HOLD.items():
        if case is not None and name != case:
            continue
        sizes, limits = SIZES[name]
        points = []
        for gpus in (g for g in gpus_only or sizes if g <= max_gpus):
            r = measure(gpus, "", strategy, repeats, extra)
            points.append((gpus, r["wall_s"]))
            limit = f"  {verdict(r['wall_s'], limits[gpus])}" if gpus in limits else ""
            print(f"  {name:<36} {gpus:>6} GPUs {r['wall_s']:>9.3f} s  ({r['events']} events, {r['flows']} flows)"
                  f"{limit}")
            if r["wall_s"] > budget_s:
                print(f"  {name:<36} stopped: over {budget_s:g} s")
                break
        tail = [p for p in points if p[0] >= 1024] or points
        if len(tail) < 2:
            continue  # (one size: no exponent)
        exponent = fitted_exponent(tail)
        print(f"  {name:<36} fitted exponent of time against GPUs ({tail[0][0]}-{tail[-1][0]}): "
              f"{exponent:.2f}  {verdict(exponent, GROWTH_LIMIT)}")
    if case is not None:
        return
    gpus, limit_mb = PS_MEMORY
    if gpus <= max_gpus:
        peak = peak_rss_mb("parameter servers, fast", gpus)
        print(f"  peak memory, parameter servers, fast, {gpus} GPUs (fresh process): {peak:.0f} MB  "
              f"{verdict(peak, limit_mb)}")
    print_events_ratio(repeats)
    print(f"command line, wall seconds, median of {max(repeats, 5)}")
    for label, seconds in cli_wall_s(max(repeats, 5)).items():
        print(f"  {label:<36} {seconds:.3f} s  {verdict(seconds, CLI_LIMITS[label])}")
    if with_sweep:
        from sweep_speed import must_hold_sweep

        n, seconds, parent, workers = must_hold_sweep(workers=2)
        print(f"sweep of {n} configurations (ring and parameter servers, 8-512 GPUs), 2 workers, cache off: "
              f"{seconds:.1f} s  {verdict(seconds, SWEEP_LIMIT_S)}; CPU: workers {workers:.1f} s, sweep process "
              f"{parent:.1f} s (idle machine: about {max(parent, workers / 2):.1f} s)")


def peak_rss_mb(name: str, gpus: int) -> float:
    """Peak resident memory of a fresh process that builds, runs and collects one case:
    its VmHWM (Linux; ru_maxrss elsewhere, which on Linux keeps the parent's peak
    across fork and exec)."""
    code = (f"import resource, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import engine_speed as e; "
            f"strategy, extra = e.MUST_HOLD[{name!r}]; e.measure({gpus}, '', strategy, 1, extra); "
            "hwm = [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')] "
            "if sys.platform == 'linux' else []; "
            "print(hwm[0] if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "CLUSTERSIM_ALLOW_LARGE": "1"})
    return int(out.stdout.split()[-1]) / 1024


def cli_wall_s(repeats: int) -> dict[str, float]:
    """Median wall seconds of ``clustersim --version`` and of an 8-GPU simulate, with
    compiled bytecode as an installed package has it (written to a scratch folder, so
    PYTHONDONTWRITEBYTECODE=1 in the caller does not make every run compile every module)."""
    exe = shutil.which("clustersim") or "clustersim"
    scenario = Path(__file__).resolve().parents[1] / "scenarios" / "pcie_8gpu_server.yaml"
    commands = {"clustersim --version": [exe, "--version"],
                "clustersim simulate (8 GPUs)": [exe, "simulate", str(scenario)]}
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / "clustersim-bench-pycache")
    out = {}
    for label, command in commands.items():
        subprocess.run(command, capture_output=True, check=True, env=env)  # compile once, warm the file cache
        walls = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            subprocess.run(command, capture_output=True, check=True, env=env)
            walls.append(time.perf_counter() - t0)
        out[label] = statistics.median(walls)
    return out


def transformer_scenario(gpus: int):
    """The transformer step of ``--transformer`` at ``gpus`` GPUs (8 per node)."""
    nodes = gpus // 8
    return load_scenario({
        "cluster": {"nodes": nodes, "gpus_per_node": 8, "gpu": "H100-SXM5-80GB", "server": {"layout": "nvswitch"},
                    "nic": {"bandwidth_gbps": 3200}},
        "workload": {"model": "llama2_70b", "precision": "bf16", "sequence_length": 4096},
        "training": {"parallelism": {"tensor": 8, "pipeline": 8, "micro_batch": 1, "global_batch": nodes * 8,
                                     "schedule": "interleaved", "virtual_stages": 5}}})


def transformer(sizes: list[int], repeats: int) -> None:
    from simulator import simulate

    os.environ["CLUSTERSIM_ALLOW_LARGE"] = "1"
    print(f"transformer step (llama2_70b, TP 8 x PP 8, interleaved), H100 NVSwitch, 8 rails on one switch; "
          f"median of {repeats} cold runs")
    for gpus in sizes:
        s = transformer_scenario(gpus)
        cpu, wall = [], []
        result = None
        for _ in range(repeats):
            result = None
            forget_shared_clusters()
            t0, w0 = time.process_time(), time.perf_counter()
            result = simulate(s)
            cpu.append(time.process_time() - t0)
            wall.append(time.perf_counter() - w0)
        assert result is not None
        print(f"  {gpus:>6} GPUs  CPU {statistics.median(cpu):8.2f} s  wall {statistics.median(wall):8.2f} s  "
              f"(iteration {result.iteration_time_s:.6f} s)")


def advise(repeats: int) -> None:
    """``advise parallelism`` for Llama-2-70B (4,096 tokens, global batch 1,024) on 1,024
    H100s (issue 20: a full search in under 60 s on this machine)."""
    from simulator.llm.search import advise_parallelism

    s = load_scenario({
        "cluster": {"nodes": 128, "gpus_per_node": 8, "gpu": "H100-SXM5-80GB", "server": {"layout": "nvswitch"},
                    "nic": {"bandwidth_gbps": 3200}},
        "workload": {"model": "llama2_70b", "precision": "bf16", "sequence_length": 4096},
        "training": {"parallelism": {"global_batch": 1024}}})
    cpu, advice = [], None
    for _ in range(repeats):
        forget_shared_clusters()
        t0 = time.process_time()
        advice = advise_parallelism(s)
        cpu.append(time.process_time() - t0)
    assert advice is not None
    print(f"advise parallelism, llama2_70b on 1,024 H100s: {advice.considered} layouts, {advice.fit} fit, "
          f"{len(advice.simulated)} simulated; CPU {statistics.median(cpu):.2f} s (median of {repeats}; limit 60 s)")
    print("  best: " + advice.lines()[1].strip())


def measure(gpus: int, mode: str, strategy: str, repeats: int, extra: list[str] | None = None) -> dict:
    s = scenario(gpus, mode, strategy) if extra is None else load_scenario(None, base_overrides(gpus, strategy) + extra)
    walls = []
    for _ in range(repeats):
        # Every repeat cold: the last run (its graph and routes) and shared clusters dropped.
        sim = result = None
        forget_shared_clusters()
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
    parser.add_argument("--gpus", type=int, nargs="+", default=None,
                        help="GPU counts (default 8 64 256; with --transformer 4096 16384)")
    parser.add_argument("--detailed-max", type=int, default=64)
    parser.add_argument("--must-hold", action="store_true", help="print the figures of issue 19's 'Must hold'")
    parser.add_argument("--max-gpus", type=int, default=65536)
    parser.add_argument("--budget", type=float, default=60.0, help="stop a case's growth once a size takes longer")
    parser.add_argument("--sweep", action="store_true", help="with --must-hold: also the 1,000-run sweep")
    parser.add_argument("--case", choices=list(MUST_HOLD), default=None,
                        help="with --must-hold: only this path (at --gpus where given), e.g. --case 'ring, fast' "
                             "--gpus 65536")
    parser.add_argument("--events-ratio", action="store_true",
                        help="print only the detailed path's events per second against bare SimPy (a few seconds)")
    parser.add_argument("--both-engines", action="store_true",
                        help="with --events-ratio: the sources and the compiled core in turn, fresh processes")
    parser.add_argument("--rounds", type=int, default=3, help="with --both-engines: processes per engine")
    parser.add_argument("--transformer", action="store_true",
                        help="time the transformer-parallel step instead (--gpus: 4096 16384 unless given)")
    parser.add_argument("--advise", action="store_true",
                        help="time `advise parallelism` for Llama-2-70B on 1,024 H100s instead")
    args = parser.parse_args()
    if args.advise:
        advise(args.repeats)
        return
    if args.transformer:
        transformer(args.gpus or [4096, 16384], args.repeats)
        return
    if args.events_ratio:
        if args.both_engines:
            events_ratio_both_engines(args.rounds, args.repeats)
        else:
            print_events_ratio(args.repeats)
        return
    if args.must_hold:
        must_hold(args.repeats, args.max_gpus, args.budget, args.sweep, args.case, args.gpus if args.case else None)
        return
    print(f"ResNet-50, one iteration, {args.strategy}, median of {args.repeats} runs")
    print(f"{'GPUs':>6} {'path':>9} {'wall s':>9} {'events':>9} {'flows':>9} {'events/s':>10} {'iter ms':>9}")
    for gpus in args.gpus or [8, 64, 256]:
        for mode in ("fast", "detailed"):
            if mode == "detailed" and gpus > args.detailed_max:
                continue
            r = measure(gpus, mode, args.strategy, args.repeats)
            print(f"{r['gpus']:>6} {r['mode']:>9} {r['wall_s']:>9.4f} {r['events']:>9} {r['flows']:>9} "
                  f"{r['events_per_s']:>10.0f} {r['iteration_ms']:>9.2f}")


if __name__ == "__main__":
    main()

"""Issue 19's engine-speed paths give what the paths they replace gave, to the last bit:
the counting environment's own event loop (and its float clock) against SimPy's loop of
``step``, the callback ring members against the SimPy process they replace, and the
network's timer set once an instant's reactions are in against one set at once."""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Sequence

import networkx as nx
import numpy as np
import pytest
import simpy

from simulator import load_scenario
from simulator.built import CountingEnvironment
from simulator.collectives.fabric import Fabric, ring_steps
from simulator.compiled import in_use
from simulator.engine import build, run
from simulator.network import Network
from simulator.results import collect
from topologies import add_duplex_link

from .conftest import REPO_ROOT, star

RING = str(REPO_ROOT / "scenarios" / "ring_4x4_ib100.yaml")
# Two tests replace a network's method or derive from Network: the sources only (a compiled
# core's classes allow neither; tests/test_compiled.py holds a build to the golden results).
sources_only = pytest.mark.skipif(in_use(), reason="patches the engine core's classes: the sources only")


def _result(overrides: list[str], simpy_loop: bool) -> tuple[str, int]:
    sim = build(load_scenario(RING, overrides))
    if simpy_loop:  # an instance step: the environment's run falls back to SimPy's loop of steps
        sim.env.step = sim.env.step  # type: ignore[method-assign]
    run(sim)
    # (As JSON, as the golden results compare: SimPy's loop keeps a numpy clock whose repr differs.)
    return json.dumps(dataclasses.asdict(collect(sim, None)), default=str), sim.env.events_processed


@pytest.mark.parametrize("overrides", [
    ["simulation.mode=detailed", "cluster.nodes=2", "simulation.iterations=1", "simulation.warmup_iterations=0"],
    ["simulation.mode=detailed", "cluster.nodes=2", "simulation.iterations=2", "simulation.warmup_iterations=1",
     "training.strategy=tree_allreduce"],
    ["simulation.mode=fast"],
])
def test_the_counting_loop_gives_simpys_results_and_count(overrides):
    assert _result(overrides, simpy_loop=False) == _result(overrides, simpy_loop=True)


def test_a_numpy_delay_leaves_a_float_clock_at_the_same_time():
    env = CountingEnvironment()
    seen = []

    def proc():
        yield env.timeout(np.float64(0.1))
        seen.append(env.now)
        yield env.timeout(0.2)
        seen.append(env.now)

    env.process(proc())
    env.run()
    assert [type(t) for t in seen] == [float, float]
    assert seen == [float(np.float64(0.1)), float(np.float64(0.1)) + 0.2]


def _process_ring_steps(f: Fabric, rings: Sequence[Sequence[str]], chunk: float, steps: int):
    """The detailed ring as it was written before (one SimPy process per member)."""
    net = f.network
    programs = []
    labels = [f"ring step {k}" for k in range(steps)]
    for ring in (r for r in rings if len(r) > 1):
        n = len(ring)
        received = [[f.env.event() for _ in range(steps)] for _ in range(n)]

        def member(r, ring=ring, n=n, received=received):
            mine, successors = received[r], received[(r + 1) % n]
            route = net.route(ring[r], ring[(r + 1) % n])
            for k in range(steps):
                if k > 0:
                    yield mine[k - 1]
                yield net.start_flow(route.usage, chunk, route.latency_s, label=labels[k])
                successors[k].succeed()

        programs.extend(f.env.process(member(r)) for r in range(n))
    yield simpy.AllOf(f.env, programs)


def _uneven_graph(seed: int) -> nx.DiGraph:
    rnd = random.Random(seed)
    graph = nx.DiGraph()
    for i in range(6):
        add_duplex_link(graph, f"g{i}", f"sw{i % 2}", bandwidth=rnd.choice([1e9, 2e9, 5e9]),
                        latency=rnd.choice([0.0, 1e-6, 3e-6]), link="network")
    add_duplex_link(graph, "sw0", "sw1", bandwidth=rnd.choice([1e9, 3e9]), latency=2e-6, link="network")
    return graph


@pytest.mark.parametrize("environment", [simpy.Environment, CountingEnvironment])
@pytest.mark.parametrize("seed", range(4))
def test_callback_ring_members_start_the_flows_a_process_would(seed, environment):
    def trace(program):
        env = environment()
        net = Network(env, _uneven_graph(seed))
        starts = []

        def recording(usage, nbytes, latency, label, done):
            starts.append((env.now, tuple(usage.edges), label))
            done.callbacks.append(lambda _event: starts.append((env.now, "done", label)))

        net.flow_observer = recording
        fabric = Fabric(env, net, [["g0", "g1", "g2"], ["g3", "g4", "g5"]], detailed=True)
        rings = [["g0", "g1", "g2", "g3", "g4", "g5"], ["g5", "g3", "g1"]]
        done = []

        def caller():
            yield from program(fabric, rings, 1e6 * (1 + seed), 4)
            done.append(env.now)

        env.process(caller())
        env.run()
        return starts, done, net.bottleneck_log, net.edge_bytes().tolist()

    assert trace(ring_steps) == trace(_process_ring_steps)


def _timer_at_once() -> type[Network]:
    """The network with its timer set at every recomputation, as before (made when asked:
    a compiled Network cannot be derived from)."""

    class _TimerAtOnce(Network):
        def _recompute(self, _event=None, timer_later=False):
            super()._recompute(_event, timer_later=False)

    return _TimerAtOnce


@pytest.mark.parametrize("seed", range(6))
@sources_only
def test_the_timer_set_after_an_instants_reactions_is_the_one_set_at_once(seed):
    # Chains of flows, each started when the one before it ends (many at the same
    # instant, as ring steps are): the same completion times, bottlenecks and bytes.
    def trace(network_type):
        rnd = random.Random(seed)
        env = simpy.Environment()
        net = network_type(env, star(5, 1e9, rnd.choice([0.0, 1e-6])))
        ends = []

        def chain(i):
            for k in range(6):
                src, dst = rnd.sample(range(5), 2)
                yield net.transfer(f"h{src}", f"h{dst}", rnd.choice([1e5, 2e5, 1e6]))
                ends.append((i, k, env.now))
                if rnd.random() < 0.3:
                    yield env.timeout(rnd.choice([0.0, 1e-4]))

        for i in range(8):
            env.process(chain(i))
        env.run()
        return ends, net.bottleneck_log, net.edge_bytes().tolist(), env.now

    assert trace(Network) == trace(_timer_at_once())

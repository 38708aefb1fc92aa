"""Jitter and stragglers at scale: the shortcuts of the per-rank run change no draw and no event.

* :meth:`RandomStreams.streams` seeds many streams at once with NumPy's SeedSequence
  hashing written out over arrays: each generator must equal ``stream(name)`` exactly
  (state and draws), for seeds and replications of one and of several 32-bit words.
* :class:`ComputeVariation` made in bulk (``of_ranks``) draws what one made per rank draws.
* :class:`DeviceSharing` waits on ``timer | changed`` without SimPy's condition: the
  processed events, their count and the times must be those of the condition.
"""

from __future__ import annotations

import numpy as np
import pytest
import simpy

from simulator import load_scenario
from simulator.build import build
from simulator.interference import DeviceSharing
from simulator.rng import RandomStreams
from simulator.variation import ComputeVariation


@pytest.mark.parametrize(("seed", "replication"), [(0, 0), (7, 3), (2**32 - 1, 1), (2**32, 0), (2**70 + 5, 2**33)])
def test_streams_in_bulk_equal_streams_by_name(seed, replication):
    streams = RandomStreams(seed, replication)
    names = [f"rank {r} compute" for r in range(300)] + [f"rank {r} iteration" for r in range(300)] + ["", "é"]
    for name, bulk in zip(names, streams.streams(names), strict=True):
        one = streams.stream(name)
        assert bulk.bit_generator.state == one.bit_generator.state
        assert np.array_equal(bulk.random(4), one.random(4))
        assert np.array_equal(bulk.lognormal(-0.001, 0.05, 4), one.lognormal(-0.001, 0.05, 4))


def test_streams_in_bulk_fall_back_for_other_seeds():
    streams = RandomStreams(np.int64(3), 0)  # not a plain int: SeedSequence itself
    bulk = streams.streams(["a", "b"])
    assert [g.random() for g in bulk] == [streams.stream(n).random() for n in ("a", "b")]
    assert [g.random() for g in RandomStreams(0).streams(["only"])] == [RandomStreams(0).stream("only").random()]


@pytest.mark.parametrize("distribution", ["normal", "lognormal", "uniform"])
def test_variations_made_in_bulk_draw_as_made_one_by_one(distribution):
    scenario = load_scenario(None, [
        "cluster.nodes=2", "cluster.gpus_per_node=4", "simulation.mode=detailed",
        f"variability.jitter.distribution={distribution}", "variability.jitter.cv=0.2",
        "variability.stragglers.probability=0.3", "variability.gpu_speed_factors={1: 0.5}"])
    sim = build(scenario)
    bulk = ComputeVariation.of_ranks(sim)
    assert len(bulk) == 8
    for rank, variation in enumerate(bulk):
        one = ComputeVariation(sim, rank)
        for _ in range(5):
            assert variation.iteration_factor() == one.iteration_factor()
            assert [variation.jitter() for _ in range(4)] == [one.jitter() for _ in range(4)]


def _condition_compute(sharing: DeviceSharing, rank: int, seconds: float):
    """DeviceSharing.compute as written with SimPy's condition (the reference)."""
    env = sharing.env
    sharing.computing[rank] += 1
    if any(sharing.comm_in_flight):
        sharing._fire_compute()
    try:
        left = seconds
        while True:
            rate_now = 1.0 / sharing.compute_factor if sharing.comm_in_flight[rank] else 1.0
            timer = env.timeout(left / rate_now)
            start = env.now
            yield timer | sharing._comm_changed[rank]
            if timer.processed:
                return
            left = max(left - (env.now - start) * rate_now, 0.0)
    finally:
        sharing.computing[rank] -= 1
        if any(sharing.comm_in_flight):
            sharing._fire_compute()


class _Counting(simpy.Environment):
    def __init__(self) -> None:
        super().__init__()
        self.log: list[float] = []

    def step(self) -> None:
        self.log.append(self.now)
        super().step()


def _run(compute) -> tuple[list[float], list[tuple[int, float]]]:
    env = _Counting()
    sharing = DeviceSharing(env, 3, 1.7)
    done: list[tuple[int, float]] = []

    def rank(r: int):
        for seconds in (0.3 + r * 0.1, 0.25, 0.5 - r * 0.05, 0.0, 0.4):
            yield from compute(sharing, r, seconds)
            done.append((r, env.now))

    def collectives():
        for start, length, ranks in ((0.1, 0.2, [0, 1, 2]), (0.35, 0.3, [1]), (0.5, 0.05, [0, 2]), (0.5, 0.4, [2])):
            yield env.timeout(max(start - env.now, 0.0))
            sharing.begin(ranks)
            yield env.timeout(length)
            sharing.end(ranks)

    for r in range(3):
        env.process(rank(r))
    env.process(collectives())
    env.run()
    return env.log, done


def test_sharing_without_conditions_processes_the_same_events():
    def reference(sharing, rank, seconds):
        if seconds <= 0:
            yield sharing.env.timeout(0.0)
            return
        yield from _condition_compute(sharing, rank, seconds)

    assert _run(DeviceSharing.compute) == _run(reference)

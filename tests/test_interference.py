"""Compute beside a collective on the same device (issue 13; issue 15 item 2): closed
forms of :class:`simulator.interference.DeviceSharing` and what a scenario's
``training.collectives.compute_interference`` does to an iteration."""

from __future__ import annotations

import pytest
import simpy

from simulator.engine import simulate
from simulator.interference import DeviceSharing
from simulator.loading import load_scenario


def _finish(env: simpy.Environment, process) -> float:
    done = {}

    def wrapper():
        yield from process
        done["t"] = env.now

    env.process(wrapper())
    env.run()
    return done["t"]


@pytest.mark.parametrize("factor", [1.0, 1.3, 2.0])
def test_a_layer_covered_by_a_collective_takes_factor_times_its_time(factor):
    env = simpy.Environment()
    sharing = DeviceSharing(env, 1, factor)
    sharing.begin([0])  # the collective runs throughout
    assert _finish(env, sharing.compute(0, 1.0)) == pytest.approx(factor)


def test_a_layer_covered_for_part_of_its_run_pays_only_there():
    """Collective on [0, 0.5] at factor 2: 0.25 s of work done by 0.5, the other 0.75 s
    at full rate: the layer ends at 1.25."""
    env = simpy.Environment()
    sharing = DeviceSharing(env, 1, 2.0)
    sharing.begin([0])

    def collective():
        yield env.timeout(0.5)
        sharing.end([0])

    env.process(collective())
    assert _finish(env, sharing.compute(0, 1.0)) == pytest.approx(1.25)


def test_another_ranks_collective_does_not_slow_this_rank():
    env = simpy.Environment()
    sharing = DeviceSharing(env, 2, 2.0)
    sharing.begin([1])
    assert _finish(env, sharing.compute(0, 1.0)) == pytest.approx(1.0)


def _run(*overrides: str):
    return simulate(load_scenario(None, ["cluster.nodes=2", "workload.batch_per_gpu=64", *overrides]))


def test_factor_one_is_the_model_without_interference_and_breakdown_adds_up():
    """compute_interference 1 builds no sharing at all (identical to before); above 1 the
    iteration is never faster, the slowdown is booked as ``interference_s`` and the
    breakdown still adds up to the iteration time."""
    plain = _run("training.collectives.compute_interference=1")
    assert "interference_s" not in plain.breakdown
    slowed = _run("training.collectives.compute_interference=1.5")
    assert slowed.iteration_time_s >= plain.iteration_time_s
    assert slowed.breakdown["interference_s"] > 0
    parts = sum(v for k, v in slowed.breakdown.items() if k != "communication_s")
    assert parts == pytest.approx(slowed.iteration_time_s, rel=1e-9)
    # at most every second of communication overlapping compute, stretched by 0.5
    assert slowed.iteration_time_s - plain.iteration_time_s <= 0.5 * plain.breakdown["communication_s"] + 1e-9


def test_one_gpu_has_no_collective_to_interfere():
    one = simulate(load_scenario(None, ["training.collectives.compute_interference=2"]).single_gpu())
    assert "interference_s" not in one.breakdown


def test_simulate_table_lists_every_part_and_the_shares_add_up(capsys):
    """The terminal report of the default scenario (8 GPUs over 10 GbE, interference on)
    names the slowdown as a part of its own; the parts' shares make the whole iteration."""
    import re

    from simulator.cli import main

    main(["simulate"])
    out = capsys.readouterr().out
    assert "compute slowed by collectives" in out and "gradient bucket copies" in out
    table = out.split("where one iteration's time goes")[1].split("communication in flight")[0]
    shares = [float(x) for x in re.findall(r"([\d.]+)%", table)]
    assert len(shares) == 5 and sum(shares) == pytest.approx(100.0, abs=0.2)

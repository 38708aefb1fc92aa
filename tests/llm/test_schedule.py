"""Pipeline schedules: the bubble the dependencies leave equals the closed forms."""

from __future__ import annotations

import pytest
import simpy

from simulator.llm.parallel import bubble_fraction
from simulator.llm.schedule import in_flight, stage_ops
from simulator.llm.step import StepPlan, StepSimulation


def run_pipeline(schedule: str, p: int, m: int, v: int = 1, tf: float = 1.0, tb: float = 2.0) -> float:
    """Step time of a pipeline with equal chunks and free transfers (no network)."""
    ops = [stage_ops(schedule, s, p, m, v) for s in range(p)]
    plan = StepPlan(
        stages=p, chunks=v, micro_batches=m, ops=ops,
        forward_s=[[tf / v] * v for _ in range(p)], backward_s=[[tb / v] * v for _ in range(p)],
        compute_s=[[(tf / v, tb / v, 0.0)] * v for _ in range(p)], tp_s=[[(0.0, 0.0)] * v for _ in range(p)],
        activation_bytes=0.0, p2p_pairs={}, dp_groups=[[[0]] for _ in range(p)],
        grad_bytes=[[0.0] * v for _ in range(p)], param_bytes=[[0.0] * v for _ in range(p)],
        optimizer_s=[0.0] * p, blocks_per_chunk=[[1] * v for _ in range(p)], zero_stage=0, overlap_grad_reduce=False,
    )
    env = simpy.Environment()
    return StepSimulation(env, None, {}, plan).run()


@pytest.mark.parametrize("schedule", ["1f1b", "gpipe"])
@pytest.mark.parametrize(("p", "m"), [(1, 4), (2, 4), (4, 8), (8, 8), (4, 32)])
def test_bubble_is_p_minus_1_over_m_plus_p_minus_1(schedule, p, m):
    step = run_pipeline(schedule, p, m)
    assert step == pytest.approx((m + p - 1) * 3.0, rel=1e-12)
    assert 1 - m * 3.0 / step == pytest.approx(bubble_fraction(schedule, p, m), abs=1e-12)


@pytest.mark.parametrize(("p", "m", "v"), [(2, 4, 2), (4, 8, 2), (4, 8, 4), (8, 16, 3)])
def test_interleaved_bubble_shrinks_by_the_virtual_stages(p, m, v):
    # Narayanan et al. (SC'21): bubble (p - 1) (tf + tb) / v; the step m (tf + tb) + that
    step = run_pipeline("interleaved", p, m, v)
    assert step == pytest.approx(m * 3.0 + (p - 1) * 3.0 / v, rel=1e-12)
    assert 1 - m * 3.0 / step == pytest.approx(bubble_fraction("interleaved", p, m, v), abs=1e-12)


@pytest.mark.parametrize(("p", "m"), [(4, 8), (8, 16)])
def test_1f1b_holds_p_minus_s_micro_batches_gpipe_all(p, m):
    assert [in_flight(stage_ops("1f1b", s, p, m)) for s in range(p)] == [p - s for s in range(p)]
    assert [in_flight(stage_ops("gpipe", s, p, m)) for s in range(p)] == [m] * p


def test_every_schedule_runs_each_micro_batch_once_each_way():
    for schedule, v in (("1f1b", 1), ("gpipe", 1), ("interleaved", 2)):
        for s in range(4):
            ops = stage_ops(schedule, s, 4, 8, v)
            assert sorted(o for o in ops if o[0] == "F") == [("F", c, i) for c in range(v) for i in range(8)]
            assert sorted(o for o in ops if o[0] == "B") == [("B", c, i) for c in range(v) for i in range(8)]

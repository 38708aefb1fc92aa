"""The opt-in timeline recorder: off changes nothing; on records phases and flows."""

from __future__ import annotations

import pytest

from simulator import load_scenario, simulate

from .conftest import SMALL_BASE


def test_recorder_off_by_default_and_results_identical_with_it_on():
    scenario = load_scenario(SMALL_BASE, ["simulation.iterations=2"])
    plain, recorded = simulate(scenario), simulate(scenario, record_timeline=True)
    assert "timeline" not in plain.extra
    assert recorded.iteration_times_s == plain.iteration_times_s and recorded.breakdown == plain.breakdown


def test_timeline_phases_add_up_to_each_iteration():
    result = simulate(load_scenario(SMALL_BASE, ["simulation.iterations=2"]), record_timeline=True)
    tl = result.extra["timeline"]
    assert len(tl["iterations"]) == 2 and len(tl["ranks"]) == 1  # fast path: rank 0 only
    intervals = tl["ranks"][0]["intervals"]
    for it, (lo, hi) in enumerate(tl["iterations"]):
        phases = [i for i in intervals if i["iteration"] == it and i["kind"] not in ("communication", "bucket copy")]
        assert phases[0]["start"] == lo and phases[-1]["end"] == pytest.approx(hi)
        assert sum(i["end"] - i["start"] for i in phases) == pytest.approx(hi - lo)
        compute = sum(i["end"] - i["start"] for i in phases if i["kind"] in ("forward", "backward", "optimizer"))
        waits = [(i["start"], i["end"]) for i in phases if i["kind"] == "sync wait"]
        copies_waiting = sum(max(0.0, min(c["end"], e) - max(c["start"], s)) for c in intervals
                             if c["kind"] == "bucket copy" for s, e in waits)
        # the compute phases last their compute plus what collectives beside them slowed it,
        # and the bucket copies (in during backward or in the sync wait, out before the optimizer)
        assert compute + copies_waiting == pytest.approx(
            result.breakdown["compute_s"] + result.breakdown.get("interference_s", 0.0)
            + result.breakdown.get("bucket_copy_s", 0.0))
        assert copies_waiting > 0 and result.breakdown["bucket_copy_s"] > copies_waiting


def test_flows_are_recorded_with_their_links_and_bytes():
    scenario = load_scenario(SMALL_BASE, ["simulation.mode=detailed"])
    result = simulate(scenario, record_timeline=True)
    flows = result.extra["timeline"]["flows"]
    assert len(flows) == result.flows and all(f["end"] >= f["start"] for f in flows)
    assert len(result.extra["timeline"]["ranks"]) == 4  # detailed: every rank
    ring = [f for f in flows if f["label"].startswith("ring")]
    # 4 ranks, 2(N-1) = 6 steps per bucket: each point-to-point flow crosses a route.
    assert ring and len(ring) % (4 * 6) == 0 and all(len(f["links"]) >= 1 for f in ring)

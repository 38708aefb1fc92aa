"""Chrome trace export: valid JSON, monotonic timestamps per track, slices that nest."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest

from simulator import load_scenario, simulate
from simulator.cli import main
from simulator.trace import chrome_trace

from .conftest import REPO_ROOT


def tracks_of(doc):
    names, slices = {}, defaultdict(list)
    for ev in doc["traceEvents"]:
        if ev["ph"] == "M" and ev["name"] == "thread_name":
            names[ev["pid"], ev["tid"]] = ev["args"]["name"]
        elif ev["ph"] == "X":
            slices[ev["pid"], ev["tid"]].append(ev)
    return names, slices


@pytest.mark.parametrize("mode", ["fast", "detailed"])
def test_trace_tracks_are_monotonic_and_slices_nest(mode):
    scenario = load_scenario(REPO_ROOT / "scenarios" / "ps_4x4_10gbe.yaml",
                             [f"simulation.mode={mode}", "simulation.iterations=1", "workload.model=resnet50",
                              "training.bucket_size_mib=25"])
    result = simulate(scenario, record_timeline=True, with_baseline=False)
    doc = json.loads(json.dumps(chrome_trace(result.extra["timeline"])))
    names, slices = tracks_of(doc)
    assert any("compute" in n for n in names.values())
    assert any(n.startswith("switch0->ps0.nic0") for n in names.values())
    assert any(n == "ps0 aggregation" for n in names.values())
    for key, events in slices.items():
        ts = [e["ts"] for e in events]
        assert ts == sorted(ts), names[key]
        for prev, nxt in zip(events, events[1:]):
            assert prev["dur"] >= 0
            assert nxt["ts"] >= prev["ts"] + prev["dur"] - 1e-6, names[key]  # no partial overlap
    # The rank-0 compute track covers forward + backward of both iterations.
    compute = next(events for key, events in slices.items() if names[key].startswith("rank 0") and "compute" in names[key])
    busy = sum(e["dur"] for e in compute if e["name"] in ("forward", "backward")) / 1e6
    assert busy == pytest.approx(2 * (result.breakdown["compute_s"]), rel=1e-6)


def test_simulate_writes_trace_file(tmp_path, capsys):
    out = tmp_path / "trace.json"
    main(["simulate", "--trace", str(out), "-q"])
    doc = json.loads(out.read_text())
    assert doc["displayTimeUnit"] == "ms" and len(doc["traceEvents"]) > 10

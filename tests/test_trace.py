"""Chrome/Perfetto trace export: strict JSON; flows grouped under their link and host
(not one flat track per lane); counters per link; one slice per gradient bucket with
its bytes and algorithm, an arrow from its gradients being ready; scenario and version."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest

from simulator import __version__, load_scenario, simulate
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


def processes_of(doc):
    return {ev["pid"]: ev["args"]["name"] for ev in doc["traceEvents"]
            if ev["ph"] == "M" and ev["name"] == "process_name"}


@pytest.fixture(scope="module", params=["fast", "detailed"])
def ps_run(request):
    scenario = load_scenario(REPO_ROOT / "scenarios" / "ps_4x4_10gbe.yaml",
                             [f"simulation.mode={request.param}", "simulation.iterations=1", "workload.model=resnet50",
                              "training.bucket_size_mib=25", "variability.iteration_cv=0"])
    result = simulate(scenario, record_timeline=True, with_baseline=False)
    text = json.dumps(chrome_trace(result.extra["timeline"]), allow_nan=False)  # strict JSON
    return request.param, result, json.loads(text)


def test_trace_tracks_are_monotonic_and_slices_nest(ps_run):
    _, result, doc = ps_run
    names, slices = tracks_of(doc)
    assert any("compute" in n for n in names.values())
    assert "ps0 aggregation" in names.values()
    for key, events in slices.items():
        ts = [e["ts"] for e in events]
        assert ts == sorted(ts), names[key]
        for prev, nxt in zip(events, events[1:]):
            assert prev["dur"] >= 0
            assert nxt["ts"] >= prev["ts"] + prev["dur"] - 1e-6, names[key]  # no partial overlap
    # The rank-0 compute track covers forward + backward of both iterations.
    compute = next(events for key, events in slices.items()
                   if names[key].startswith("rank 0") and "compute" in names[key])
    busy = sum(e["dur"] for e in compute if e["name"] in ("forward", "backward")) / 1e6
    assert busy == pytest.approx(2 * (result.breakdown["compute_s"]), rel=1e-6)


def test_flows_are_async_slices_grouped_by_link_under_their_host(ps_run):
    mode, result, doc = ps_run
    timeline = result.extra["timeline"]
    processes = processes_of(doc)
    hosts = {name for name in processes.values() if not name.startswith("GPUs")}
    assert {"n0", "ps0", "switch0"} <= hosts and not any("->" in h for h in hosts)
    begins = [e for e in doc["traceEvents"] if e["ph"] == "b"]
    ends = [e for e in doc["traceEvents"] if e["ph"] == "e"]
    assert len(begins) == len(ends) == sum(len(f["links"]) for f in timeline["flows"])
    assert len({e["id"] for e in begins}) == len(begins)
    links = {f"{e['name']}" for e in begins}
    assert "switch0->ps0.nic0" in links
    for e in begins:  # each link's flows live in the process of the host the link leaves
        assert processes[e["pid"]] == e["name"].split("->")[0].split(".")[0]
        assert e["args"]["bytes"] > 0 and e["args"]["flow"].split()[0] in ("push", "pull")
    # Bounded: one track per link (async), two counters per link, and per rank a compute
    # track and bucket lanes; the old export had one track per overlapping lane (3,156
    # thread tracks for the detailed run).
    threads, _ = tracks_of(doc)
    counters = {(e["pid"], e["name"]) for e in doc["traceEvents"] if e["ph"] == "C"}
    ranks, buckets = len(timeline["ranks"]), max(b["bucket"] for b in timeline["buckets"]) + 1
    assert len(counters) == 2 * len(links)
    assert len(threads) <= ranks * (2 + buckets) + len(timeline["servers"])
    assert len(threads) + len(links) + len(counters) < 400
    assert len(processes) <= 1 + len(hosts) and len(hosts) <= 9


def test_counters_for_link_utilization_and_bytes_in_flight(ps_run):
    _, result, doc = ps_run
    series = defaultdict(list)
    for e in doc["traceEvents"]:
        if e["ph"] == "C":
            series[e["name"]].append(e["args"]["value"])
    util = series["switch0->ps0.nic0 utilization %"]
    flight = series["switch0->ps0.nic0 MB in flight"]
    assert util and flight
    assert all(0 <= v <= 100 for v in util) and max(util) > 50  # the PS NIC: the bottleneck
    assert util[-1] == 0 and flight[-1] == 0 and max(flight) > 0


def test_bucket_slices_carry_bytes_and_algorithm_with_arrows_from_gradient_ready(ps_run):
    mode, result, doc = ps_run
    timeline = result.extra["timeline"]
    buckets = [e for e in doc["traceEvents"] if e["ph"] == "X" and e.get("cat") == "bucket"]
    per_rank = len({(b["iteration"], b["bucket"]) for b in timeline["buckets"]})
    assert per_rank == 2 * 4  # 2 iterations (1 warm-up) x 4 buckets of 25 MiB
    assert len(buckets) == len(timeline["buckets"]) == len(timeline["ranks"]) * per_rank
    assert all(e["args"]["bytes"] > 0 and e["args"]["algorithm"] == "parameter_server" for e in buckets)
    starts = {e["id"]: e for e in doc["traceEvents"] if e["ph"] == "s"}
    finishes = {e["id"]: e for e in doc["traceEvents"] if e["ph"] == "f"}
    assert starts.keys() == finishes.keys() and len(starts) == len(buckets)
    names, _ = tracks_of(doc)
    for ident, s in starts.items():
        f = finishes[ident]
        assert s["ts"] <= f["ts"] and f["bp"] == "e"
        assert names[s["pid"], s["tid"]].endswith("compute") and "gradient buckets" in names[f["pid"], f["tid"]]


def test_ring_buckets_name_the_collective_algorithm():
    scenario = load_scenario(REPO_ROOT / "scenarios" / "ring_4x4_ib100.yaml",
                             ["simulation.iterations=1", "workload.model=resnet50"])
    doc = chrome_trace(simulate(scenario, record_timeline=True, with_baseline=False).extra["timeline"])
    algorithms = {e["args"]["algorithm"] for e in doc["traceEvents"] if e.get("cat") == "bucket"}
    assert algorithms and all(a.startswith("ring_allreduce: ") for a in algorithms)
    queued = [e["args"]["queued_ms"] for e in doc["traceEvents"] if e.get("cat") == "bucket"]
    assert min(queued) >= 0 and max(queued) > 0  # one stream: later buckets wait their turn


def test_metadata_names_scenario_and_version(ps_run):
    _, result, doc = ps_run
    assert doc["metadata"]["scenario"] == result.scenario == "ps-4x4-10gbe-vgg16"
    assert doc["metadata"]["clustersim_version"] == __version__
    labels = [e for e in doc["traceEvents"] if e["ph"] == "M" and e["name"] == "process_labels"]
    assert result.scenario in labels[0]["args"]["labels"]


def test_trace_is_strict_json_even_with_non_finite_values():
    timeline = {"ranks": [], "flows": [], "scenario": "x", "version": __version__,
                "buckets": [], "servers": [], "weird": float("nan")}
    doc = chrome_trace({**timeline, "ranks": [{"rank": 0, "gpu": "g", "intervals": [
        {"kind": "forward", "iteration": 0, "start": 0.0, "end": float("inf")}]}]})
    json.dumps(doc, allow_nan=False)


def test_simulate_writes_trace_file(tmp_path, capsys):
    out = tmp_path / "trace.json"
    main(["simulate", "--trace", str(out), "-q"])
    doc = json.loads(out.read_text())
    assert doc["displayTimeUnit"] == "ms" and len(doc["traceEvents"]) > 10
    assert doc["metadata"]["clustersim_version"] == __version__

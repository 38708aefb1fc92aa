"""Chrome trace-event JSON (opens in Perfetto or chrome://tracing) from a recorded
timeline (``simulate(..., record_timeline=True)``).

Tracks: one process "GPUs" with, per simulated rank, a compute track (forward,
backward, sync wait, optimizer) and communication tracks; one process "links" with
tracks per directed link; one process "parameter servers" with a track per server.
Slices on one track must nest, so overlapping intervals (concurrent flows on a link,
concurrent bucket syncs of a rank) are dealt onto separate lanes of that resource:
the first lane whose last slice has ended. Timestamps are microseconds.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

_US = 1e6


def _lanes(intervals: Iterable[tuple[float, float, dict]]) -> list[list[tuple[float, float, dict]]]:
    """Greedy interval partitioning: no two slices of one lane overlap."""
    lanes: list[list[tuple[float, float, dict]]] = []
    for start, end, info in sorted(intervals, key=lambda x: (x[0], x[1])):
        for lane in lanes:
            if lane[-1][1] <= start:
                lane.append((start, end, info))
                break
        else:
            lanes.append([(start, end, info)])
    return lanes


class _Builder:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._tids: dict[tuple[int, str], int] = {}

    def process(self, pid: int, name: str) -> None:
        self.events.append({"ph": "M", "name": "process_name", "pid": pid, "tid": 0, "args": {"name": name}})

    def track(self, pid: int, name: str) -> int:
        key = (pid, name)
        if key not in self._tids:
            tid = self._tids[key] = len(self._tids) + 1
            self.events.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid, "args": {"name": name}})
            self.events.append({"ph": "M", "name": "thread_sort_index", "pid": pid, "tid": tid, "args": {"sort_index": tid}})
        return self._tids[key]

    def slices(self, pid: int, track: str, intervals: Iterable[tuple[float, float, dict]]) -> None:
        for lane_no, lane in enumerate(_lanes(intervals)):
            tid = self.track(pid, track if lane_no == 0 else f"{track} #{lane_no + 1}")
            for start, end, info in lane:
                self.events.append(
                    {
                        "ph": "X",
                        "name": info.get("name", track),
                        "pid": pid,
                        "tid": tid,
                        "ts": start * _US,
                        "dur": max(end - start, 0.0) * _US,
                        "args": {k: v for k, v in info.items() if k != "name"},
                    }
                )


def chrome_trace(timeline: dict[str, Any]) -> dict[str, Any]:
    """The trace-event document for one recorded timeline."""
    b = _Builder()
    b.process(1, "GPUs")
    for rank in timeline["ranks"]:
        compute, comm = [], []
        for iv in rank["intervals"]:
            info = {"name": iv["kind"], "iteration": iv["iteration"]}
            (comm if iv["kind"] == "communication" else compute).append((iv["start"], iv["end"], info))
        b.slices(1, f"rank {rank['rank']} {rank['gpu']} compute", compute)
        b.slices(1, f"rank {rank['rank']} {rank['gpu']} gradient sync", comm)
    b.process(2, "links")
    per_link: dict[str, list[tuple[float, float, dict]]] = {}
    for flow in timeline["flows"]:
        if flow["end"] is None:
            continue
        info = {"name": flow["label"] or "flow", "bytes": flow["bytes"]}
        for link in flow["links"]:
            per_link.setdefault(link, []).append((flow["start"], flow["end"], info))
    for link in sorted(per_link):
        b.slices(2, link, per_link[link])
    if timeline.get("servers"):
        b.process(3, "parameter servers")
        for server in timeline["servers"]:
            b.slices(3, f"ps{server['server']} aggregation", [(a, e, {"name": "aggregate"}) for a, e in server["busy"]])
    return {"traceEvents": b.events, "displayTimeUnit": "ms"}


def write_chrome_trace(timeline: dict[str, Any], path: str) -> None:
    with open(path, "w") as fh:
        json.dump(chrome_trace(timeline), fh)

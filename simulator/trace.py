"""Chrome trace-event JSON (opens in https://ui.perfetto.dev or chrome://tracing) from a
recorded timeline (``simulate(..., record_timeline=True)``). Timestamps are microseconds.

What it holds, grouped so that a run of any size stays a short list of processes:

* process **GPUs (simulated ranks)**: per rank, a ``compute`` track (forward, backward,
  sync wait, optimizer; for a transformer step one rank per pipeline stage, each
  forward and backward named by its micro-batch, with its model chunk) and a
  ``gradient buckets`` track: one slice per bucket's
  synchronization, from its collective's start to its end, with ``bytes``,
  ``algorithm``, ``iteration`` and how long it queued (``queued_ms``). A flow arrow
  goes from the moment backward made the bucket's gradients ready (on the compute
  track) to its synchronization. Overlapping buckets (parameter servers serve several
  at once) get a second lane.
* one process per **host or switch** (``n0``, ``ps0``, ``switch0``): each link leaving
  it is one track of async slices, one per flow on that link (``label``, ``bytes``,
  bundle ``members``); concurrent flows stack inside the link's track. Every link also
  has two counter tracks: ``utilization %`` (the sum of its flows' mean rates over its
  capacity, capped at 100: an estimate, each flow's rate varies under sharing) and
  ``MB in flight`` (bytes of the flows it is carrying). A parameter server's
  aggregation is a track of its host.
* ``metadata`` (and the GPUs process's labels): scenario, clustersim version, strategy
  and mode.

The document is strict JSON (no NaN or Infinity).
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable
from typing import Any

_US = 1e6
_GPUS_PID = 1

_Slice = tuple[float, float, dict[str, Any]]
"""(start, end, info) of one slice, in seconds."""


def _lanes(intervals: Iterable[_Slice]) -> list[list[_Slice]]:
    """Greedy interval partitioning: no two slices of one lane overlap."""
    lanes: list[list[_Slice]] = []
    for start, end, info in sorted(intervals, key=lambda x: (x[0], x[1])):
        for lane in lanes:
            if lane[-1][1] <= start:
                lane.append((start, end, info))
                break
        else:
            lanes.append([(start, end, info)])
    return lanes


def host_of(node: str) -> str:
    """The host or switch a node belongs to: ``n0.nic0`` -> ``n0``, ``switch0`` -> ``switch0``."""
    return node.split(".", 1)[0]


def _clean(value: Any) -> Any:
    """JSON-safe: non-finite floats become None (strict JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


class _Builder:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._tids: dict[tuple[int, str], int] = {}
        self._pids: dict[str, int] = {}
        self._ids = 0

    def next_id(self) -> int:
        self._ids += 1
        return self._ids

    def process(self, pid: int, name: str, sort_index: int | None = None) -> None:
        self.events.append({"ph": "M", "name": "process_name", "pid": pid, "tid": 0, "args": {"name": name}})
        self.events.append({"ph": "M", "name": "process_sort_index", "pid": pid, "tid": 0,
                            "args": {"sort_index": pid if sort_index is None else sort_index}})

    def host(self, name: str) -> int:
        """The process of a host or switch, created on first use."""
        if name not in self._pids:
            pid = self._pids[name] = 10 + len(self._pids)
            self.process(pid, name)
        return self._pids[name]

    def track(self, pid: int, name: str) -> int:
        key = (pid, name)
        if key not in self._tids:
            tid = self._tids[key] = len(self._tids) + 1
            self.events.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid, "args": {"name": name}})
            self.events.append({"ph": "M", "name": "thread_sort_index", "pid": pid, "tid": tid, "args": {"sort_index": tid}})
        return self._tids[key]

    def slices(self, pid: int, track: str, intervals: Iterable[_Slice]) -> dict[int, int]:
        """Complete slices on ``track`` (a second lane ``track #2`` where they overlap);
        returns the tid each slice went to, by ``id(info)``."""
        placed: dict[int, int] = {}
        for lane_no, lane in enumerate(_lanes(intervals)):
            tid = self.track(pid, track if lane_no == 0 else f"{track} #{lane_no + 1}")
            for start, end, info in lane:
                placed[id(info)] = tid
                self.events.append(
                    {
                        "ph": "X",
                        "cat": info.get("cat", "phase"),
                        "name": info.get("name", track),
                        "pid": pid,
                        "tid": tid,
                        "ts": start * _US,
                        "dur": max(end - start, 0.0) * _US,
                        "args": {k: v for k, v in info.items() if k not in ("name", "cat")},
                    }
                )
        return placed

    def async_slice(self, pid: int, track: str, start: float, end: float, args: dict[str, Any]) -> None:
        """One async slice; slices of one name (here: one link) share one track."""
        ident = self.next_id()
        base = {"cat": "flow", "name": track, "pid": pid, "tid": 0, "id": ident}
        self.events.append({**base, "ph": "b", "ts": start * _US, "args": args})
        self.events.append({**base, "ph": "e", "ts": end * _US})

    def counter(self, pid: int, name: str, points: list[tuple[float, float]]) -> None:
        for t, value in points:
            self.events.append({"ph": "C", "name": name, "pid": pid, "tid": 0, "ts": t * _US, "args": {"value": value}})


def _counters(spans: list[tuple[float, float, float]],
              capacity: float | None) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """(utilization %, MB in flight) step points from a link's (start, end, bytes) flows."""
    deltas: dict[float, list[float]] = {}
    for start, end, nbytes in spans:
        rate = nbytes / (end - start) if end > start else 0.0
        for t, sign in ((start, 1.0), (end, -1.0)):
            d = deltas.setdefault(t, [0.0, 0.0])
            d[0] += sign * rate
            d[1] += sign * nbytes
    util: list[tuple[float, float]] = []
    flight: list[tuple[float, float]] = []
    rate_sum = bytes_sum = 0.0
    for t in sorted(deltas):
        rate_sum += deltas[t][0]
        bytes_sum += deltas[t][1]
        rate_sum, bytes_sum = max(rate_sum, 0.0), max(bytes_sum, 0.0)  # rounding
        if capacity:
            util.append((t, round(min(100.0, 100.0 * rate_sum / capacity), 3)))
        flight.append((t, round(bytes_sum / 1e6, 6)))
    return util, flight


def chrome_trace(timeline: dict[str, Any]) -> dict[str, Any]:
    """The trace-event document for one recorded timeline."""
    b = _Builder()
    meta = {k: timeline.get(k) for k in ("scenario", "version", "strategy", "mode")}
    meta = {"scenario": meta["scenario"], "clustersim_version": meta["version"], "strategy": meta["strategy"],
            "mode": meta["mode"], "time_unit": "us"}
    b.process(_GPUS_PID, "GPUs (simulated ranks)", 0)
    labels = ", ".join(f"{k}={v}" for k, v in meta.items() if v is not None and k != "time_unit")
    b.events.append({"ph": "M", "name": "process_labels", "pid": _GPUS_PID, "tid": 0, "args": {"labels": labels}})

    buckets_by_rank: dict[int, list[dict[str, Any]]] = {}
    for bucket in timeline.get("buckets", []):
        if bucket["end"] is not None:
            buckets_by_rank.setdefault(bucket["rank"], []).append(bucket)
    for rank in timeline["ranks"]:
        name = f"rank {rank['rank']} {rank['gpu']}"
        compute: list[_Slice] = []
        comm: list[_Slice] = []
        copies: list[_Slice] = []  # training.bucket_copies: over the compute phases, a track of their own
        for iv in rank["intervals"]:
            info = {"name": iv["kind"], "iteration": iv["iteration"]}
            if "micro_batch" in iv:  # a pipeline stage's operation (transformer step)
                info.update(name=f"{iv['kind']} mb {iv['micro_batch']}", micro_batch=iv["micro_batch"],
                            chunk=iv["chunk"])
            track = {"communication": comm, "bucket copy": copies}.get(iv["kind"], compute)
            track.append((iv["start"], iv["end"], info))
        compute_tid = b.track(_GPUS_PID, f"{name} compute")
        b.slices(_GPUS_PID, f"{name} compute", compute)
        if copies:
            b.slices(_GPUS_PID, f"{name} bucket copies", copies)
        own = buckets_by_rank.get(rank["rank"])
        if own is None:  # no bucket record (older timelines): the sync intervals as they are
            b.slices(_GPUS_PID, f"{name} gradient sync", comm)
            continue
        slices: list[_Slice] = []
        for bucket in own:
            info = {
                "name": f"bucket {bucket['bucket']}",
                "cat": "bucket",
                "bucket": bucket["bucket"],
                "iteration": bucket["iteration"],
                "bytes": bucket["bytes"],
                "algorithm": bucket["algorithm"],
                "queued_ms": round((bucket["start"] - bucket["ready"]) * 1e3, 6),
            }
            slices.append((bucket["start"], bucket["end"], info))
        placed = b.slices(_GPUS_PID, f"{name} gradient buckets", slices)
        for (start, _end, info), bucket in zip(slices, own):
            ident = b.next_id()
            common = {"cat": "gradient ready", "name": f"bucket {bucket['bucket']} ready", "id": ident,
                      "pid": _GPUS_PID}
            b.events.append({**common, "ph": "s", "tid": compute_tid, "ts": bucket["ready"] * _US})
            b.events.append({**common, "ph": "f", "bp": "e", "tid": placed[id(info)], "ts": start * _US})

    capacities: dict[str, float] = timeline.get("links", {})
    per_link: dict[str, list[_Slice]] = {}
    for flow in timeline["flows"]:
        if flow["end"] is None:
            continue
        members = flow.get("members") or [1] * len(flow["links"])
        for link, count in zip(flow["links"], members):
            args = {"flow": flow["label"] or "flow", "bytes": flow["bytes"] * count, "members": count}
            per_link.setdefault(link, []).append((flow["start"], flow["end"], args))
    for link in sorted(per_link, key=lambda k: (host_of(k), k)):
        pid = b.host(host_of(link.split("->")[0]))
        for start, end, args in sorted(per_link[link], key=lambda x: (x[0], x[1])):
            b.async_slice(pid, link, start, end, args)
        util, flight = _counters([(s, e, a["bytes"]) for s, e, a in per_link[link]], capacities.get(link))
        if util:
            b.counter(pid, f"{link} utilization %", util)
        b.counter(pid, f"{link} MB in flight", flight)
    for server in timeline.get("servers", []):
        pid = b.host(host_of(server.get("host") or f"ps{server['server']}"))
        b.slices(pid, f"ps{server['server']} aggregation",
                 [(a, e, {"name": "aggregate", "cat": "server"}) for a, e in server["busy"]])
    doc: dict[str, Any] = _clean({"traceEvents": b.events, "displayTimeUnit": "ms", "metadata": meta})
    return doc


def write_chrome_trace(timeline: dict[str, Any], path: str) -> None:
    """Write the trace to ``path`` (``-``: standard output) as strict JSON."""
    doc = chrome_trace(timeline)
    if path == "-":
        json.dump(doc, sys.stdout, allow_nan=False)
        sys.stdout.write("\n")
        return
    with open(path, "w") as fh:
        json.dump(doc, fh, allow_nan=False)

"""Reading a PyTorch profiler (Kineto) trace: the Chrome trace JSON that
``torch.profiler.profile(...).export_chrome_trace(path)`` writes.

What this module relies on in the format (torch 2.x):

* ``traceEvents``: complete events (``"ph": "X"``) with ``name``, ``cat``, ``pid``,
  ``tid``, ``ts`` and ``dur`` in microseconds, and ``args``;
* ``ProfilerStep#N`` annotations (category ``user_annotation``; ``cpu_op`` in older
  versions) spanning each iteration between two ``prof.step()`` calls, on the thread
  that runs the training loop;
* operator events (``cpu_op``) nested by time on their thread, with ``Input Dims``
  (``record_shapes=True``), ``Concrete Inputs`` (scalar arguments) and ``Sequence
  number``: the autograd sequence number current when the operator ran, which the
  ``autograd::engine::evaluate_function: XBackward0`` event of the node it created
  carries too (the link from a forward operator to its backward);
* on GPUs, device events (``kernel``, ``gpu_memcpy``, ``gpu_memset``) whose
  ``correlation`` equals that of the CUDA runtime call (``cuda_runtime`` /
  ``cuda_driver``) that launched them on a CPU thread, and ``deviceProperties``.

A trace is read with the project's input limits (regular file, size, UTF-8) and every
problem is one :class:`~simulator.errors.CalibrationError` naming the file.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulator.errors import CalibrationError, excerpt
from simulator.safe_input import read_text_file

#: Largest trace read. A few iterations of a large model on a GPU make tens of MB; this
#: only stops runaway input (json holds about ten times the file size in memory).
MAX_TRACE_BYTES = 1 << 30
STEP_NAME = re.compile(r"ProfilerStep#(\d+)$")
BACKWARD_PREFIX = "autograd::engine::evaluate_function: "
OPTIMIZER_PREFIX = "Optimizer.step#"
ANNOTATIONS = ("Optimizer.", "## ", "DistributedDataParallel.")
DEVICE_CATEGORIES = frozenset({"kernel", "gpu_memcpy", "gpu_memset"})
LAUNCH_CATEGORIES = frozenset({"cuda_runtime", "cuda_driver", "runtime"})
STEP_CATEGORIES = frozenset({"user_annotation", "cpu_op", ""})  # not gpu_user_annotation: the device's copy


@dataclass(frozen=True, slots=True)
class Event:
    """One complete event; times in microseconds."""

    name: str
    cat: str
    pid: Any
    tid: Any
    ts: float
    dur: float
    args: dict[str, Any]

    @property
    def end(self) -> float:
        return self.ts + self.dur

    @property
    def thread(self) -> tuple[Any, Any]:
        return self.pid, self.tid

    @property
    def seq(self) -> int | None:
        value = self.args.get("Sequence number")
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


@dataclass
class Trace:
    """A parsed trace: its events by thread (time order), steps, and device events."""

    path: str
    metadata: dict[str, Any]
    threads: dict[tuple[Any, Any], list[Event]] = field(default_factory=dict)
    starts: dict[tuple[Any, Any], list[float]] = field(default_factory=dict)
    steps: list[Event] = field(default_factory=list)
    kernels: list[Event] = field(default_factory=list)  # device events, by launch time
    launches: dict[Any, Event] = field(default_factory=dict)  # correlation -> runtime call

    def on_thread(self, thread: tuple[Any, Any], start: float, end: float) -> list[Event]:
        """Events of ``thread`` that start within [start, end]."""
        times = self.starts.get(thread, [])
        events = self.threads.get(thread, [])
        return events[bisect_left(times, start):bisect_right(times, end)]

    def in_window(self, pid: Any, start: float, end: float) -> list[Event]:
        """Events of every thread of process ``pid`` that start within [start, end]."""
        return [e for thread in self.threads if thread[0] == pid for e in self.on_thread(thread, start, end)]

    def launch_of(self, kernel: Event) -> Event | None:
        return self.launches.get(kernel.args.get("correlation"))

    @property
    def on_device(self) -> bool:
        return bool(self.kernels)

    @property
    def device_name(self) -> str | None:
        props = self.metadata.get("deviceProperties")
        if isinstance(props, list) and props and isinstance(props[0], dict):
            name = props[0].get("name")
            return str(name) if name else None
        return None

    @property
    def torch_version(self) -> str | None:
        """The torch version, when the trace records it (``prof.add_metadata("torch_version", ...)``)."""
        for key in ("torch_version", "pytorch_version", "torchVersion"):
            value = self.metadata.get(key)
            if isinstance(value, str | int | float) and str(value).strip():
                return str(value).strip().strip('"')
        return None

    @property
    def date_utc(self) -> str | None:
        """When the first step began, from ``baseTimeNanoseconds`` + its timestamp."""
        base = self.metadata.get("baseTimeNanoseconds")
        if not isinstance(base, int | float) or not self.steps:
            return None
        try:
            when = dt.datetime.fromtimestamp(base / 1e9 + self.steps[0].ts / 1e6, dt.UTC)
        except (OverflowError, OSError, ValueError):
            return None
        return when.isoformat(timespec="seconds")


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a finite number")


def load_trace(path: str | Path) -> Trace:
    """Read and index a Kineto trace; a bad file is one :class:`CalibrationError`."""
    shown = str(path)
    if shown.endswith(".gz"):
        raise CalibrationError(f"{shown}: a gzip-compressed trace; decompress it first (gunzip -k {shown})")
    text = read_text_file(path, limit=MAX_TRACE_BYTES, error=CalibrationError, what="trace")
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        end = text.rstrip()
        hint = " (truncated?)" if exc.pos >= len(end) or not end.endswith(("}", "]")) else ""
        raise CalibrationError(f"{shown}: line {exc.lineno}: not valid JSON{hint}: {exc.msg}") from None
    except RecursionError:
        raise CalibrationError(f"{shown}: not a trace: nested too deeply") from None
    except ValueError as exc:
        raise CalibrationError(f"{shown}: not valid JSON: {excerpt(' '.join(str(exc).split()))}") from None
    if isinstance(data, list):  # the Chrome format also allows a bare list of events
        data = {"traceEvents": data}
    if not isinstance(data, dict) or not isinstance(data.get("traceEvents"), list):
        raise CalibrationError(f"{shown}: not a PyTorch profiler trace: no \"traceEvents\" list "
                               "(write one with prof.export_chrome_trace(path))")
    trace = Trace(path=shown, metadata={k: v for k, v in data.items() if k != "traceEvents"})
    for raw in data["traceEvents"]:
        event = _event(raw)
        if event is None:
            continue
        if event.cat in DEVICE_CATEGORIES:
            trace.kernels.append(event)
            continue
        if event.cat in LAUNCH_CATEGORIES and "correlation" in event.args:
            trace.launches[event.args["correlation"]] = event
        if STEP_NAME.match(event.name) and event.cat in STEP_CATEGORIES:
            trace.steps.append(event)
        trace.threads.setdefault(event.thread, []).append(event)
    for thread, events in trace.threads.items():
        events.sort(key=lambda e: (e.ts, -e.dur))
        trace.starts[thread] = [e.ts for e in events]
    trace.steps.sort(key=lambda e: e.ts)
    trace.kernels.sort(key=lambda e: e.ts)
    if not trace.steps:
        raise CalibrationError(
            f"{shown}: no ProfilerStep#N annotation: profile several training iterations with a schedule and call "
            "prof.step() after each (README \"Calibration\")")
    return trace


def _event(raw: Any) -> Event | None:
    """A complete event with finite times, or None (metadata, flows, malformed)."""
    if not isinstance(raw, dict) or raw.get("ph") != "X":
        return None
    ts, dur = raw.get("ts"), raw.get("dur", 0)
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (ts, dur)) or dur < 0:
        return None
    args = raw.get("args")
    return Event(name=str(raw.get("name", "")), cat=str(raw.get("cat", "")), pid=_key(raw.get("pid")),
                 tid=_key(raw.get("tid")), ts=float(ts), dur=float(dur), args=args if isinstance(args, dict) else {})


def _key(value: Any) -> Any:
    return value if isinstance(value, str | int | float) else str(value)


def top_level(events: list[Event]) -> list[Event]:
    """The operators (``cpu_op``) among time-ordered ``events`` of one thread that no
    other operator contains (annotations and Python frames are not containers, nor the
    step and optimizer annotations that older torch versions file as ``cpu_op``)."""
    out: list[Event] = []
    open_end = float("-inf")
    for event in events:
        if event.cat != "cpu_op" or event.name.startswith(ANNOTATIONS) or STEP_NAME.match(event.name):
            continue
        if event.ts >= open_end:
            out.append(event)
            open_end = event.end
    return out

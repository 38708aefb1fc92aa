"""Per-layer times from a PyTorch profiler (Kineto) trace the user already has.

``clustersim import-trace`` (:mod:`calibration.cli`) turns a trace of a few training
iterations into a calibration profile of the same schema as the probe's. Per profiler
step (``ProfilerStep#N``, every step the trace holds):

* **forward**: the top-level operators on the step's thread before the backward pass
  begins are matched to the model's layers by shape (:mod:`calibration.kineto_match`);
  a layer's forward time is its operator's;
* **backward**: every autograd node a layer's forward created (the sequence numbers
  recorded inside its operator) runs as an ``autograd::engine::evaluate_function``
  event with the same sequence number; a layer's backward time is the sum of its nodes'
  (``AccumulateGrad`` and the loss's nodes belong to no layer);
* **time** is the operators' CPU time on a CPU trace; on a GPU trace (device events
  present) the device time of the kernels, copies and memsets launched from inside the
  layer's operator or nodes (NCCL kernels are communication: not a layer's).

Each layer's samples are its times in every step (the profile keeps them as repeats,
so fits use the median over steps). The steps' whole forward-to-backward time becomes
the profile's whole-model sample; the optimizer step (``Optimizer.step#...``) its
optimizer step. What no layer gets (loss, optimizer, ``zero_grad``, ``AccumulateGrad``,
operators that are no layer, time between operators) is reported as unattributed, as
a share of the step.
"""

from __future__ import annotations

import statistics
from bisect import bisect_right
from dataclasses import dataclass, field

from simulator.errors import CalibrationError
from simulator.zoo import Model

from .kineto_match import OpShape, align, op_shape
from .kineto_trace import BACKWARD_PREFIX, OPTIMIZER_PREFIX, Event, Trace, top_level

#: Below this share of the model's layers matched, the trace is of another model.
MIN_MATCHED_SHARE = 0.5
#: Operators whose input element type tells the precision a layer ran in.
MATRIX_OPS = ("aten::conv", "aten::_conv", "aten::mkldnn_conv", "aten::cudnn_conv", "aten::linear", "aten::addmm",
              "aten::mm", "aten::bmm", "aten::matmul")


@dataclass
class StepTimes:
    """One profiler step's attribution; seconds."""

    name: str
    step_s: float
    forward: dict[int, float] = field(default_factory=dict)  # layer index -> time
    backward: dict[int, float] = field(default_factory=dict)
    batches: list[int] = field(default_factory=list)  # the matched operators' batch sizes
    forward_span_s: float = 0.0  # first matched forward operator's start to the last's end
    whole_s: float = 0.0  # first matched forward operator's start to the backward's end
    optimizer_s: float | None = None
    optimizer: str | None = None  # the optimizer's class, from Optimizer.step#SGD.step
    unattributed: dict[str, float] = field(default_factory=dict)  # what took the rest, by kind
    device_busy_s: float | None = None  # GPU: the step's kernels, copies and memsets
    dtypes: set[str] = field(default_factory=set)  # element types of the matched operators' inputs

    @property
    def attributed_s(self) -> float:
        return sum(self.forward.values()) + sum(self.backward.values())


@dataclass
class Imported:
    """A trace's per-layer times for one model."""

    trace: Trace
    model: Model
    batch: int
    steps: list[StepTimes]

    def layer_times(self, index: int, phase: str) -> list[float]:
        return [t for s in self.steps if (t := (s.forward if phase == "forward" else s.backward).get(index))]

    def median(self, attribute: str) -> float:
        values = [getattr(s, attribute) for s in self.steps if getattr(s, attribute) is not None]
        return statistics.median(values) if values else 0.0

    def share(self, part: str) -> float:
        """Median over steps of a part's share of the step: forward, backward or attributed."""
        def value(s: StepTimes) -> float:
            return {"forward": sum(s.forward.values()), "backward": sum(s.backward.values()),
                    "attributed": s.attributed_s}[part]
        return statistics.median(value(s) / s.step_s for s in self.steps if s.step_s > 0)

    def unmatched_layers(self) -> list[str]:
        return [layer.name for i, layer in enumerate(self.model.layers) if not self.layer_times(i, "forward")]


def import_trace(trace: Trace, model: Model, *, min_matched: float = MIN_MATCHED_SHARE) -> Imported:
    """Attribute every step of ``trace`` to ``model``'s layers; a trace that is not of
    ``model`` (too few layers match) or has no training step is one CalibrationError."""
    if not any("Input Dims" in e.args for s in trace.steps for e in trace.on_thread(s.thread, s.ts, s.end)):
        raise CalibrationError(f"{trace.path}: the trace records no operator shapes: profile with "
                               "torch.profiler.profile(record_shapes=True, ...)")
    cache: dict[tuple[OpShape | None, ...], dict[int, int]] = {}
    steps = []
    for step in trace.steps:
        times = _attribute_step(trace, step, model, cache)
        if times is not None:
            steps.append(times)
    if any(s.batches for s in steps):  # a step that matched nothing (a different phase) is left out
        steps = [s for s in steps if s.batches]
    if not steps:
        raise CalibrationError(
            f"{trace.path}: no ProfilerStep holds a backward pass (autograd::engine::evaluate_function events): "
            "profile training iterations (forward, loss.backward(), optimizer step), not inference")
    batches = [b for s in steps for b in s.batches]
    batch = statistics.mode(batches) if batches else 0
    imported = Imported(trace, model, batch, steps)
    matched = len(model.layers) - len(imported.unmatched_layers())
    if matched < min_matched * len(model.layers) or not batches:
        missing = imported.unmatched_layers()
        raise CalibrationError(
            f"{trace.path}: not a trace of {model.name}: {matched} of its {len(model.layers)} layers match a forward "
            f"operator by shape (at least {min_matched:.0%} needed); unmatched: {', '.join(missing[:5])}"
            + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            + " (profile with record_shapes=True; a model file must list the layers the module runs, in order)")
    return imported


def _attribute_step(trace: Trace, step: Event, model: Model,
                    cache: dict[tuple[OpShape | None, ...], dict[int, int]]) -> StepTimes | None:
    events = trace.on_thread(step.thread, step.ts, step.end)
    backward = [e for e in trace.in_window(step.pid, step.ts, step.end) if e.name.startswith(BACKWARD_PREFIX)]
    if not backward:
        return None
    backward_start = min(e.ts for e in backward)
    tops = [e for e in top_level(events) if e.ts < backward_start]
    shapes = tuple(op_shape(e) for e in tops)
    if shapes not in cache:
        cache[shapes] = align(model.layers, shapes)
    pairs = cache[shapes]
    if not pairs:
        return StepTimes(step.name, step.dur / 1e6)
    batch = statistics.mode(shapes[j].batch for j in pairs)  # type: ignore[union-attr]
    layer_of_top = {j: i for j, i in pairs.items() if shapes[j].batch == batch}  # type: ignore[union-attr]
    out = StepTimes(step.name, step.dur / 1e6, batches=[batch] * len(layer_of_top))

    # sequence number -> layer: the top-level operator holding the number's last use
    starts = [e.ts for e in tops]
    seq_layer: dict[int, int] = {}
    for e in events:
        if e.ts >= backward_start:
            continue
        j = bisect_right(starts, e.ts) - 1
        inside = j >= 0 and e.ts <= tops[j].end
        if inside and j in layer_of_top and e.name.startswith(MATRIX_OPS):  # autocast converts inside
            types = e.args.get("Input type")
            if isinstance(types, list) and types and isinstance(types[0], str) and types[0]:
                out.dtypes.add(types[0])
        if inside and e.seq is not None:
            if j in layer_of_top:
                seq_layer[e.seq] = layer_of_top[j]
            else:
                seq_layer.pop(e.seq, None)
    nodes = _outermost(backward)
    spans: dict[tuple[object, object], list[tuple[float, float, str, int | None]]] = {}
    for j, e in enumerate(tops):
        spans.setdefault(step.thread, []).append((e.ts, e.end, "forward", layer_of_top.get(j)))
    for e in nodes:
        layer = seq_layer.get(e.seq) if e.seq is not None else None
        spans.setdefault(e.thread, []).append((e.ts, e.end, "backward", layer))
    optimizers = [e for e in events if e.name.startswith(OPTIMIZER_PREFIX)]
    if optimizers:
        out.optimizer = optimizers[0].name[len(OPTIMIZER_PREFIX):].split(".")[0]
    if trace.on_device:
        _device_times(trace, step, spans, optimizers, out)
    else:
        _cpu_times(tops, nodes, layer_of_top, seq_layer, optimizers, out)
    matched = [tops[j] for j in layer_of_top]
    if matched and not trace.on_device:
        begin = min(e.ts for e in matched)
        out.forward_span_s = (max(e.end for e in matched) - begin) / 1e6
        out.whole_s = (max(e.end for e in nodes) - begin) / 1e6
    return out


def _outermost(events: list[Event]) -> list[Event]:
    """Events not nested in another of the list on their thread (reentrant backward)."""
    out, open_end = [], {}
    for e in sorted(events, key=lambda e: (e.ts, -e.dur)):
        if e.ts >= open_end.get(e.thread, float("-inf")):
            out.append(e)
            open_end[e.thread] = e.end
    return out


def _cpu_times(tops: list[Event], nodes: list[Event], layer_of_top: dict[int, int], seq_layer: dict[int, int],
               optimizers: list[Event], out: StepTimes) -> None:
    other_forward = other_backward = 0.0
    for j, e in enumerate(tops):
        if j in layer_of_top:
            out.forward[layer_of_top[j]] = out.forward.get(layer_of_top[j], 0.0) + e.dur / 1e6
        else:
            other_forward += e.dur / 1e6
    for e in nodes:
        layer = seq_layer.get(e.seq) if e.seq is not None else None
        if layer is None:
            other_backward += e.dur / 1e6
        else:
            out.backward[layer] = out.backward.get(layer, 0.0) + e.dur / 1e6
    if optimizers:
        out.optimizer_s = sum(e.dur for e in optimizers) / 1e6
    opt = out.optimizer_s or 0.0
    out.unattributed = {
        "forward operators that are no layer (loss, views, buffers)": other_forward,
        "backward nodes of no layer (AccumulateGrad, loss)": other_backward,
        "optimizer step": opt,
        "between operators (Python, framework, zero_grad)":
            max(out.step_s - out.attributed_s - other_forward - other_backward - opt, 0.0),
    }


def _device_times(trace: Trace, step: Event, spans: dict[tuple[object, object], list[tuple[float, float, str,
                  int | None]]], optimizers: list[Event], out: StepTimes) -> None:
    """GPU: each kernel's device time to the span (operator, node) that launched it."""
    for thread_spans in spans.values():
        thread_spans.sort()
    starts = {thread: [s[0] for s in thread_spans] for thread, thread_spans in spans.items()}
    opt_spans = [(e.ts, e.end) for e in optimizers]
    busy = other = comm = opt = 0.0
    first = last = None
    backward_end = None
    for kernel in trace.kernels:
        launch = trace.launch_of(kernel)
        if launch is None or launch.pid != step.pid or not step.ts <= launch.ts <= step.end:
            continue
        seconds = kernel.dur / 1e6
        busy += seconds
        if "nccl" in kernel.name.lower():
            comm += seconds
            continue
        if any(a <= launch.ts <= b for a, b in opt_spans):
            opt += seconds
            continue
        thread_spans = spans.get(launch.thread, [])
        k = bisect_right(starts.get(launch.thread, []), launch.ts) - 1
        span = thread_spans[k] if k >= 0 and launch.ts <= thread_spans[k][1] else None
        if span is None or span[3] is None:
            other += seconds
            continue
        phase, layer = span[2], span[3]
        target = out.forward if phase == "forward" else out.backward
        target[layer] = target.get(layer, 0.0) + seconds
        if phase == "forward":
            first = kernel.ts if first is None else min(first, kernel.ts)
            last = kernel.end if last is None else max(last, kernel.end)
        else:
            backward_end = kernel.end if backward_end is None else max(backward_end, kernel.end)
    out.device_busy_s = busy
    out.optimizer_s = opt if optimizers else None
    if first is not None and last is not None:
        out.forward_span_s = (last - first) / 1e6
        out.whole_s = (max(backward_end or last, last) - first) / 1e6
    out.unattributed = {
        "device time of no layer (loss, AccumulateGrad, views)": other,
        "communication kernels (NCCL)": comm,
        "optimizer step (device time)": opt,
        "device idle": max(out.step_s - busy, 0.0),
    }


def summary(imported: Imported) -> str:
    """A few lines on what was attributed, for the terminal."""
    n_layers = len(imported.model.layers)
    unmatched = imported.unmatched_layers()
    steps = imported.steps
    kind = "device time" if imported.trace.on_device else "CPU op time"
    lines = [
        f"{imported.trace.path}: {imported.model.name} at batch {imported.batch}, {len(steps)} step(s) "
        f"({steps[0].name}..{steps[-1].name}), {kind}: {n_layers - len(unmatched)}/{n_layers} layers timed",
        f"  attributed to layers: {imported.share('attributed'):.1%} of the step (forward "
        f"{imported.share('forward'):.1%}, backward {imported.share('backward'):.1%}; median over steps)",
    ]
    rest: dict[str, float] = {}
    for s in steps:
        for what, seconds in s.unattributed.items():
            rest[what] = rest.get(what, 0.0) + seconds / s.step_s / len(steps)
    if rest:
        lines.append("  unattributed: " + ", ".join(f"{what} {share:.1%}" for what, share in
                                                      sorted(rest.items(), key=lambda kv: -kv[1]) if share > 0))
    span = imported.median("forward_span_s")
    if span > 0:
        fwd = statistics.median(sum(s.forward.values()) for s in steps)
        lines.append(f"  forward layers sum to {fwd / span:.1%} of the forward span ({span * 1e3:.3g} ms)")
    if unmatched:
        lines.append(f"  no operator matched (estimated by the simulator): {', '.join(unmatched[:8])}"
                     + (f" and {len(unmatched) - 8} more" if len(unmatched) > 8 else ""))
    return "\n".join(lines)

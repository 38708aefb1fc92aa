"""A calibration profile from imported Kineto traces (:mod:`calibration.kineto`).

The profile has the probe's schema. Per model: every timed layer's forward and
backward samples (one repeat per profiler step, so the fits use the median over steps;
several traces at different batch sizes give several batches and a real linear fit),
the whole forward-to-backward time of each step, and the optimizer step when the trace
annotates one. The trace has no matmul/conv sweep or copy benchmark, so the
``efficiency`` section is read from the matched layers themselves: each convolution's
and linear layer's forward (its FLOPs from the zoo's shapes) is a work sample, each
ReLU's (it reads and writes its input once) a memory sample; the simulator needs them
to estimate layers the trace did not time on a device the catalog lacks (a CPU).
Provenance says where it came from: ``notes`` starts with ``source: kineto trace``,
then the trace's file name, steps, batch, the torch version when the trace records it,
and the share of step time attributed to layers.
"""

from __future__ import annotations

import os
from pathlib import Path

from simulator.catalog import match_device_name
from simulator.errors import CalibrationError
from simulator.profile import (
    Efficiency,
    Environment,
    LayerSample,
    MemorySample,
    ModelProfile,
    Profile,
    Provenance,
    Timing,
    WholeModelSample,
    WorkSample,
)

from .fit import refit
from .kineto import Imported

METHOD = (
    "imported from a PyTorch profiler (Kineto) trace: forward = the top-level operator matched to the layer by "
    "shape; backward = the autograd nodes that operator created (evaluate_function events with its sequence "
    "numbers); {time}; one repeat per ProfilerStep, median fitted"
)
NOT_RECORDED = "not recorded in the trace"
#: The optimizer's class (Optimizer.step#SGD.step) -> the scenario's optimizer name.
OPTIMIZERS = {"sgd": "momentum", "adam": "adam", "adamw": "adam"}
FP32_TYPES = frozenset({"float"})


def build_profile(imports: list[Imported], *, command: str, device_name: str | None = None,
                  catalog_gpu: str | None = None, threads: int | None = None, cpu_count: int | None = None,
                  optimizer: str | None = None, notes: str = "") -> tuple[Profile, list[str]]:
    """The profile of ``imports`` (one model; one or several traces) and warnings."""
    first = imports[0]
    model = first.model
    warnings: list[str] = []
    on_device = first.trace.on_device
    for other in imports[1:]:
        if other.trace.on_device != on_device:
            raise CalibrationError(f"{other.trace.path}: a {'GPU' if other.trace.on_device else 'CPU'} trace, "
                                   f"{first.trace.path} is not: import traces of one device at a time")
    for imp in imports:
        lower = sorted(t for s in imp.steps for t in s.dtypes if t not in FP32_TYPES)
        if lower:
            raise CalibrationError(
                f"{imp.trace.path}: the model's matrix operators ran in {', '.join(sorted(set(lower)))}: profiles "
                "hold fp32 timings only (trace a run without autocast)")
    samples: dict[tuple[str, str, int], list[float]] = {}
    work: list[WorkSample] = []
    memory: list[MemorySample] = []
    whole: dict[int, list[float]] = {}
    opt_times: list[float] = []
    opt_classes: set[str] = set()
    for imp in imports:
        b = imp.batch
        for i, layer in enumerate(model.layers):
            for phase in ("forward", "backward"):
                times = imp.layer_times(i, phase)
                if times:
                    samples.setdefault((layer.name, phase, b), []).extend(times)
            fwd = imp.layer_times(i, "forward")
            if fwd and layer.kind in ("conv", "linear") and layer.forward_flops > 0:
                work.append(WorkSample(op="conv" if layer.kind == "conv" else "matmul", flops=layer.forward_flops * b,
                                       shape=f"{layer.name} at batch {b}", timing=Timing(times_s=fwd)))
            if fwd and layer.kind == "relu":
                memory.append(MemorySample(bytes=layer.input_elements * 4 * b, timing=Timing(times_s=fwd)))
        whole.setdefault(b, []).extend(s.whole_s for s in imp.steps if s.whole_s > 0)
        opt_times += [s.optimizer_s for s in imp.steps if s.optimizer_s]
        opt_classes |= {s.optimizer for s in imp.steps if s.optimizer}
    layer_samples = [LayerSample(layer=name, phase=phase, batch=b, timing=Timing(times_s=t))  # type: ignore[arg-type]
                     for (name, phase, b), t in samples.items()]
    kind, step = _optimizer(opt_classes, optimizer, opt_times, warnings)
    threads, cpu_count = _host(on_device, threads, cpu_count, warnings)
    measured = ModelProfile(
        model=model.name, optimizer=kind, batches=sorted({imp.batch for imp in imports}), samples=layer_samples,
        method=METHOD.format(time="device time of the kernels each launched" if on_device else "CPU op time"),
        optimizer_step=step, threads=None if on_device else threads,
        whole_model=[WholeModelSample(batch=b, timing=Timing(times_s=t)) for b, t in sorted(whole.items()) if t],
    )
    profile = refit(Profile(
        environment=_environment(first, device_name, catalog_gpu, threads, cpu_count),
        provenance=Provenance(command=command, quick=False, complete=True,
                              wall_s=sum(s.step_s for imp in imports for s in imp.steps),
                              notes="; ".join(["source: kineto trace", *(_note(imp) for imp in imports),
                                               *([notes] if notes else [])])),
        models=[measured], efficiency=Efficiency(samples=work, memory=memory),
    ))
    env, eff = profile.environment, profile.efficiency
    if env.catalog_gpu is None and not ((eff.fit("matmul") or eff.fit("conv")) and eff.memory_bandwidth_bytes_per_s):
        warnings.append("the trace gives no matmul/conv throughput fit (two or more matched conv or linear sizes) "
                        "or memory bandwidth (a matched ReLU), which `clustersim simulate` needs for a device "
                        "the catalog lacks: it will refuse this profile"
                        + (" (name the GPU with --catalog-gpu)" if on_device else ""))
    return profile, warnings


def _note(imp: Imported) -> str:
    trace = imp.trace
    steps = imp.steps
    return (f"trace {Path(trace.path).name} ({steps[0].name}..{steps[-1].name}, {len(steps)} steps, batch "
            f"{imp.batch}, torch {trace.torch_version or NOT_RECORDED}, "
            f"{'device' if trace.on_device else 'CPU op'} time): {imp.share('attributed'):.1%} of the step "
            f"attributed to layers (forward {imp.share('forward'):.1%}, backward {imp.share('backward'):.1%}), "
            f"{len(imp.model.layers) - len(imp.unmatched_layers())}/{len(imp.model.layers)} layers timed")


def _optimizer(classes: set[str], chosen: str | None, times: list[float],
               warnings: list[str]) -> tuple[str, Timing | None]:
    """The profile's optimizer name and step timing (None when the trace has none)."""
    if not times:
        return chosen or "momentum", None
    if chosen is not None:
        return chosen, Timing(times_s=times)
    names = {OPTIMIZERS.get(c.lower()) for c in classes}
    if len(names) != 1 or None in names:
        warnings.append(f"optimizer {', '.join(sorted(classes))}: not one of SGD, Adam, AdamW; its step is left out "
                        "(name it with --optimizer to keep it)")
        return "momentum", None
    kind = names.pop()
    if "sgd" in {c.lower() for c in classes} and kind == "momentum":
        warnings.append("SGD step stored as `momentum` (the scenario default); pass --optimizer sgd if it had none")
    return kind or "momentum", Timing(times_s=times)


def _host(on_device: bool, threads: int | None, cpu_count: int | None, warnings: list[str]) -> tuple[int, int]:
    cores = os.cpu_count() or 1
    if not on_device and (threads is None or cpu_count is None):
        warnings.append(f"the trace does not record the CPU's cores or torch threads: assumed this machine's "
                        f"({cpu_count or cores} cores, {threads or cpu_count or cores} threads); pass --cpu-count "
                        "and --threads when the trace comes from another machine")
    cpu_count = cpu_count or cores
    return threads or cpu_count, cpu_count


def _environment(imp: Imported, device_name: str | None, catalog_gpu: str | None, threads: int,
                 cpu_count: int) -> Environment:
    trace, meta = imp.trace, imp.trace.metadata
    host = str(meta.get("host_name") or NOT_RECORDED)
    on_device = trace.on_device
    name = device_name or trace.device_name or (f"GPU ({NOT_RECORDED})" if on_device else f"CPU of host {host}")
    if on_device and catalog_gpu is None:
        catalog_gpu = match_device_name(name)
    info = meta.get("distributedInfo")
    nccl = info.get("nccl_version") if isinstance(info, dict) else None
    return Environment(
        device_kind="cuda" if on_device else "cpu", device_name=name, catalog_gpu=catalog_gpu if on_device else None,
        driver=_text(meta.get("cuda_driver_version")), cuda=_text(meta.get("cuda_runtime_version")),
        nccl=_text(nccl), torch=trace.torch_version or NOT_RECORDED, cpu=NOT_RECORDED, cpu_count=cpu_count,
        torch_threads=threads, hostname=host, platform=NOT_RECORDED, python=NOT_RECORDED,
        date_utc=trace.date_utc or NOT_RECORDED,
    )


def _text(value: object) -> str | None:
    return str(value) if isinstance(value, str | int | float) and str(value) else None

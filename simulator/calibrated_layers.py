"""The profiled device and the layers a profile did not time (split from
:mod:`simulator.calibrated`, which uses them).

* :class:`ProfiledDevice`: a device the catalog lacks (a CPU, an unrecognized GPU) as the
  layer-time model sees it: peak = the profile's fitted large-matmul rate, bandwidth =
  its measured copy bandwidth;
* :class:`HostShare` and :func:`timings_at`: a CPU host's cores shared by a node's ranks,
  and the per-layer timings at the rank's thread count;
* :func:`untimed_layer_estimate`: the scenario's model by the layer-time model with its
  device parameters fitted on every layer the profile timed (:mod:`simulator.layer_fit`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from .compute import ComputeCosts, roofline_costs
from .errors import CalibrationError
from .layer_fit import PARAMETERS, LayerModelFit, TimedLayers, fit_layer_model, timed_layers
from .profile import ModelProfile, Profile, ThreadTimings
from .resolved import Resolved
from .scenario import Scenario
from .zoo import Model, get_model


@dataclass(frozen=True)
class ProfiledDevice:
    """The profiled device as the roofline sees it (duck-types ``GPUSpec``)."""

    name: str
    peak_flops_per_s: float
    memory_bandwidth_gbytes_s: float

    def peak_flops(self, precision: str) -> float:
        return self.peak_flops_per_s


@dataclass(frozen=True)
class HostShare:
    """How one node's ranks share a CPU host's cores."""

    cores: int
    ranks: int
    threads: int  # torch threads per rank
    oversubscription: float  # ranks x threads / cores when above 1, else 1: time-shared cores

    @classmethod
    def of(cls, scenario: Scenario, profile: Profile) -> HostShare:
        c = scenario.cluster
        cores = c.host_cores if c.host_cores is not None else profile.environment.cpu_count
        ranks = c.gpus_per_node
        threads = max(1, cores // ranks)
        return cls(cores, ranks, threads, max(1.0, ranks * threads / cores))


def timings_at(measured: ModelProfile, share: HostShare | None,
               default_threads: int) -> tuple[ThreadTimings, float, str | None]:
    """The model's timings at the rank's thread count, a factor on them, and a note.

    Without a host share (GPUs) the main timings, unscaled. With one: the timings
    measured at ``share.threads`` if the profile has them, else the nearest measured
    thread count scaled by ``(nearest / threads) ** alpha``: ``alpha`` from the whole
    model's times at two measured thread counts (the largest common batch), else 1."""
    main = measured.at_threads(measured.threads or default_threads, default_threads)
    assert main is not None
    if share is None:
        return main, 1.0, None
    want = share.threads
    exact = measured.at_threads(want, default_threads)
    if exact is not None:
        how = "alone" if exact.processes == 1 else f"{exact.processes} processes timing at once"
        return exact, 1.0, f"layer times measured at {want} thread(s) ({how})"
    counts = measured.measured_threads(default_threads)
    nearest = min(counts, key=lambda t: (abs(t - want), -t))
    base = cast(ThreadTimings, measured.at_threads(nearest, default_threads))  # a measured count: never None
    alpha, source = 1.0, "linear in threads"
    if len(counts) >= 2:
        lo = cast(ThreadTimings, measured.at_threads(counts[0], default_threads))  # measured counts: never None
        hi = cast(ThreadTimings, measured.at_threads(counts[-1], default_threads))
        whole_lo = {s.batch: s.timing.median_s for s in lo.whole_model}
        whole_hi = {s.batch: s.timing.median_s for s in hi.whole_model}
        common = sorted(set(whole_lo) & set(whole_hi))
        if common and counts[-1] > counts[0]:
            b = common[-1]
            alpha = float(np.log(whole_lo[b] / whole_hi[b]) / np.log(counts[-1] / counts[0]))
            alpha = min(max(alpha, 0.0), 1.0)
            source = f"whole-model thread scaling {counts[0]}->{counts[-1]} threads, alpha {alpha:.2f}"
    scale = (nearest / want) ** alpha
    return base, scale, (f"estimated: not measured at {want} thread(s); the {nearest}-thread times x{scale:.3g} "
                         f"({source})")


def profiled_device(profile: Profile, path: str) -> ProfiledDevice:
    eff = profile.efficiency
    fit = eff.fit("matmul") or eff.fit("conv")
    if fit is None or eff.memory_bandwidth_bytes_per_s is None:
        raise CalibrationError(
            f"{path}: efficiency: the profile has no matmul/conv fit or memory bandwidth, needed to estimate "
            "the layers it did not time on the profiled device"
        )
    return ProfiledDevice(profile.environment.device_name, fit.peak_flops_per_s,
                          eff.memory_bandwidth_bytes_per_s / 1e9)


def roofline_on(view: Resolved, device: ProfiledDevice, compute_efficiency: float, memory_efficiency: float,
                 layer_overhead_s: float) -> ComputeCosts:
    """The scenario's model on the profiled device (peak = its fitted large-matmul rate,
    bandwidth = its measured copy bandwidth)."""
    w = view.scenario.workload
    return roofline_costs(view.model, device, precision=w.precision, batch=view.batch_per_gpu,  # type: ignore[arg-type]
                          compute_efficiency=compute_efficiency, memory_efficiency=memory_efficiency,
                          layer_overhead_s=layer_overhead_s, optimizer=w.optimizer, kernel_fusion=w.kernel_fusion,
                          fork_gradients=w.fork_gradients_style, activation_epilogues=w.activation_epilogues,
                          optimizer_kernels=w.optimizer_kernels, optimizer_compiled=w.optimizer_compiled)


#: Fits already made: (profile id, device, thread share, start, fitted, what the algorithms
#: follow) -> (profile, fit).
#: The profile is kept with its fit, so its id cannot be reused while the entry lives.
_FITS: dict[tuple[Any, ...], tuple[Profile, LayerModelFit | None]] = {}
FITS_KEPT = 32


def untimed_layer_estimate(
    view: Resolved, profile: Profile, stand_in: ProfiledDevice | None, share: HostShare | None,
    conv_algorithms: list[str | None],
) -> tuple[ComputeCosts, LayerModelFit, tuple[str, ...]] | str:
    """The scenario's model estimated with the layer-time model's device parameters
    fitted on every layer the profile timed, the fit, and which parameters were fitted;
    or, where nothing is fitted (the profile times too few layers, or the scenario sets
    all three parameters), the report's line saying so. Timings are taken as the rank
    runs them: at its thread count on a shared CPU host, stretched where its cores are
    time-shared. ``conv_algorithms``: the run's per layer (a catalog GPU's estimate uses them)."""
    from . import memory

    w = view.scenario.workload
    if stand_in is not None:
        device: Any = stand_in
        start = (1.0, 1.0, view.layer_overhead_s)
        fitted: tuple[str, ...] = PARAMETERS
    else:
        device = view.gpu
        start = (view.compute_efficiency, w.memory_efficiency, view.layer_overhead_s)
        named = {"compute_efficiency": "compute_efficiency", "memory_efficiency": "memory_efficiency",
                 "layer_overhead_s": "layer_overhead_us"}
        fitted = tuple(p for p in PARAMETERS if named[p] not in w.model_fields_set)
        if not fitted:
            return "layer-time model with the scenario's own parameters (it sets all three)"
    # (the convolution algorithms a catalog GPU would run follow the workload's choice)
    key = (id(profile), getattr(device, "name", ""), share.threads if share else None,
           share.oversubscription if share else None, start, fitted, w.optimizer, w.conv_algorithm, w.workspace,
           tuple(sorted(w.conv_algorithms.items())))
    if key not in _FITS:
        data: list[TimedLayers] = []
        algorithms: dict[tuple[str, int], list[str | None] | None] = {}
        for measured in profile.models:
            try:
                model = get_model(measured.model)
            except (KeyError, ValueError):
                continue  # a model this version's zoo does not have
            timings, scale, _ = timings_at(measured, share, profile.environment.torch_threads)
            stretch = scale * (share.oversubscription if share is not None else 1.0)
            for timed in timed_layers(model, timings.samples, stretch):
                data.append(timed)
                if stand_in is None:  # the convolution algorithms the scenario's GPU would run
                    other = view.scenario.model_copy(update={"workload": w.model_copy(update={
                        "model": model.name, "model_file": None, "batch_per_gpu": timed.batch,
                        "sequence_length": None})})
                    algorithms[(model.name, timed.batch)] = memory.scenario_algorithms(other)

        def estimate(model: Model, batch: int, ce: float, me: float, oh: float) -> tuple[np.ndarray, np.ndarray]:
            # the probe times layers as eager kernels: unfused, and a layer's backward without the
            # sum of its output's gradients (autograd runs that between the layers' hooks)
            costs = roofline_costs(model, device, precision="fp32", batch=batch, compute_efficiency=ce,
                                   memory_efficiency=me, layer_overhead_s=oh, optimizer=w.optimizer,
                                   conv_algorithms=algorithms.get((model.name, batch)), fork_gradients=None)
            return costs.forward_s, costs.backward_s

        _FITS[key] = (profile, fit_layer_model(data, estimate, start, fitted))
        if len(_FITS) > FITS_KEPT:
            del _FITS[next(iter(_FITS))]
    fit = _FITS[key][1]
    if fit is None:
        return "layer-time model at its defaults: the profile times too few layers to fit it"
    if stand_in is not None:
        costs = roofline_on(view, stand_in, fit.compute_efficiency, fit.memory_efficiency, fit.layer_overhead_s)
    else:
        costs = roofline_costs(view.model, view.gpu, precision=w.precision, batch=view.batch_per_gpu,
                               compute_efficiency=fit.compute_efficiency, memory_efficiency=fit.memory_efficiency,
                               layer_overhead_s=fit.layer_overhead_s, optimizer=w.optimizer,
                               conv_algorithms=conv_algorithms, kernel_fusion=w.kernel_fusion,
                               fork_gradients=w.fork_gradients_style,
                               activation_epilogues=w.activation_epilogues,
                               optimizer_kernels=w.optimizer_kernels, optimizer_compiled=w.optimizer_compiled)
    return costs, fit, fitted

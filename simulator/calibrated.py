"""Calibrated numbers: a profile's measurements in place of roofline and network estimates.

A scenario that names a profile (``calibration: path``) gets, in the build phase:

* **per-layer forward and backward times** from the profile's fit ``t = a + b x batch``
  of every layer the probe timed for the scenario's model, at the scenario's
  ``batch_per_gpu`` (linear extrapolation outside the measured batches, flagged in the
  report); layers the probe did not time keep the roofline estimate;
* **the optimizer step** measured by the probe, when the optimizer matches;
* **allreduce** time per bucket (any allreduce strategy: the backend's own algorithm
  was measured) from the profile's alpha-beta fit for the same world size and node
  count (piecewise over size ranges; see :class:`~simulator.profile.CollectiveFit`),
  in place of the flow-level collective. Other world sizes and the parameter-server
  strategy keep the network model.

Which device: a profile made on a catalog GPU (``environment.catalog_gpu``) is used
only by scenarios whose ``cluster.gpu`` is that GPU; any other ``cluster.gpu`` is
refused with a :class:`CalibrationError`. A profile of a device the catalog does not
have (a CPU, an unrecognized GPU) *stands in* for ``cluster.gpu``: its measured
layers are used as they are, and the roofline of untimed layers runs on the profiled
device itself (peak = the fitted large-matmul FLOP/s, bandwidth = the measured device
copy bandwidth, both at efficiency 1), never on the catalog GPU's datasheet. The
report says so. Profiles are fp32; other precisions are refused.

The report (``SimResult.extra["calibration"]``) lists which numbers are calibrated and
which are estimated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import simpy

from .compute import ComputeCosts, roofline_costs
from .errors import CalibrationError
from .profile import CollectiveFit, Profile, load_profile
from .scenario import Scenario
from .sync import SYNC_STRATEGIES, SyncContext, Synchronizer
from .zoo import Model

MAX_LISTED_LAYERS = 20


@dataclass(frozen=True)
class ProfiledDevice:
    """The profiled device as the roofline sees it (duck-types ``GPUSpec``)."""

    name: str
    peak_flops_per_s: float
    memory_bandwidth_gbytes_s: float

    def peak_flops(self, precision: str) -> float:
        return self.peak_flops_per_s


class CalibratedAllreduce(Synchronizer):
    """Allreduce whose time per bucket comes from the profile's measurements. As on
    NCCL's single stream, buckets run one at a time in order, and a bucket starts once
    every rank has it ready. Inside the measured sizes a bucket takes the measured
    median, interpolated linearly between the two nearest measured sizes (exact at
    measured sizes, noise and protocol steps included, and exact between them where
    time is affine in size, as alpha + bytes / beta is); outside them, the fitted
    alpha-beta line ``fit.time_s(bytes)``."""

    def __init__(self, ctx: SyncContext, fit: CollectiveFit, measured: dict[int, float] | None = None):
        super().__init__(ctx)
        self.fit = fit
        points = sorted((measured or {}).items())
        self._sizes = np.array([b for b, _ in points], dtype=float)
        self._times = np.array([t for _, t in points], dtype=float)
        self._arrived: dict[tuple[int, int], int] = {}
        self._queue: simpy.Store = simpy.Store(self.env)
        self.env.process(self._stream())

    def ready(self, rank: int, key: tuple[int, int], nbytes: float) -> simpy.Event:
        expected = self.n if self.ctx.detailed else 1
        self._arrived[key] = self._arrived.get(key, 0) + 1
        if self._arrived[key] == expected:
            self._queue.put((key, nbytes))
        return self._event("done", key)

    def _stream(self):
        while True:
            key, nbytes = yield self._queue.get()
            start = self.env.now
            if self.n > 1 and nbytes > 0:
                yield self.env.timeout(self.time_s(nbytes))
            for rank in range(self.n if self.ctx.detailed else 1):
                self.ctx.comm_intervals[rank].append((start, self.env.now))
            self._event("done", key).succeed()


    def time_s(self, nbytes: float) -> float:
        sizes = self._sizes
        if len(sizes) >= 2 and sizes[0] <= nbytes <= sizes[-1]:
            return float(np.interp(nbytes, sizes, self._times))
        return self.fit.time_s(nbytes)


def is_allreduce(strategy: str) -> bool:
    """Strategies that allreduce every bucket (any algorithm)."""
    return "allreduce" in strategy or strategy == "auto"


@dataclass
class Calibration:
    """A loaded profile and what it calibrates for one scenario."""

    path: str
    profile: Profile
    report: dict[str, Any] = field(default_factory=dict)

    def synchronizer(self, scenario: Scenario, strategy: str, context: SyncContext) -> Synchronizer:
        """The strategy, with measured allreduce times where the profile has them."""
        c = scenario.cluster
        if strategy == "none":
            return SYNC_STRATEGIES[strategy](context)
        collectives = self.profile.collectives
        fit = None
        if is_allreduce(strategy) and collectives is not None:
            fit = collectives.fit("allreduce", c.total_gpus, nodes=c.nodes)
        if fit is None:
            have = sorted({(f.world_size, f.nodes) for f in collectives.fits if f.collective == "allreduce"}) \
                if collectives else []
            why = f"strategy {strategy} is not an allreduce" if not is_allreduce(strategy) else (
                f"profile has no allreduce fit for {c.total_gpus} ranks on {c.nodes} node(s) "
                f"(has world size, nodes: {have or 'none'})")
            self.report["communication"] = f"estimated (network model): {why}"
            return SYNC_STRATEGIES[strategy](context)
        measured = {
            sample.bytes: sample.timing.median_s
            for sample in collectives.samples
            if sample.collective == "allreduce" and sample.world_size == fit.world_size and sample.nodes == fit.nodes
        }
        self.report["communication"] = (
            f"calibrated: measured {collectives.backend} allreduce ({fit.world_size} ranks on {fit.nodes} node(s): "
            f"measured medians interpolated over {fit.fit.min_bytes}-{fit.fit.max_bytes} B, alpha-beta fit "
            f"beyond) in place of {strategy}"
        )
        return CalibratedAllreduce(context, fit, measured)


def calibrate_compute(scenario: Scenario, model: Model, estimated: ComputeCosts, path: str) -> tuple[ComputeCosts, Calibration]:
    """Replace estimated per-layer and optimizer times with the profile's (see module doc)."""
    profile = load_profile(path)
    env, w, c = profile.environment, scenario.workload, scenario.cluster
    cal = Calibration(path=path, profile=profile)
    if env.catalog_gpu is not None and env.catalog_gpu != c.gpu:
        raise CalibrationError(
            f"{path}: environment.catalog_gpu: the profile was measured on {env.catalog_gpu}, the scenario's "
            f"cluster.gpu is {c.gpu}; use a profile of that GPU or drop `calibration`"
        )
    if w.precision != "fp32":
        raise CalibrationError(f"{path}: the profile holds fp32 timings; the scenario asks for {w.precision}")

    if env.catalog_gpu is None:
        estimated = _roofline_on_profiled_device(scenario, model, profile, path)
        device = f"profiled {profile.device_label} (stands in for cluster.gpu {c.gpu})"
    else:
        device = f"profiled {profile.device_label} = catalog {env.catalog_gpu}"

    forward, backward = estimated.forward_s.copy(), estimated.backward_s.copy()
    optimizer_s = estimated.optimizer_s
    measured = profile.model(model.name)
    calibrated_layers: list[str] = []
    estimated_layers: list[str] = []
    optimizer = "estimated (roofline)"
    batch_note = ""
    if measured is not None:
        fits = measured.fit_table()
        for i, layer in enumerate(model.layers):
            fwd, bwd = fits.get((layer.name, "forward")), fits.get((layer.name, "backward"))
            if fwd is None or bwd is None:
                estimated_layers.append(layer.name)
                continue
            forward[i] = max(fwd(w.batch_per_gpu), 0.0)
            backward[i] = max(bwd(w.batch_per_gpu), 0.0)
            calibrated_layers.append(layer.name)
        lo, hi = min(measured.batches), max(measured.batches)
        inside = lo <= w.batch_per_gpu <= hi
        batch_note = f"fit over batches {lo}-{hi}" + ("" if inside else f", extrapolated to {w.batch_per_gpu}")
        if measured.optimizer_step is not None and measured.optimizer == w.optimizer:
            optimizer_s = measured.optimizer_step.median_s
            optimizer = f"calibrated ({measured.optimizer}, measured)"
    else:
        batch_note = f"the profile has no per-layer timings of {model.name}"
        estimated_layers = [layer.name for layer in model.layers]

    cal.report.update({
        "profile": path,
        "device": device,
        "layers_calibrated": len(calibrated_layers),
        "layers_estimated": len(estimated_layers),
        "estimated_layer_names": estimated_layers[:MAX_LISTED_LAYERS] if calibrated_layers else [],
        "layer_times": batch_note,
        "optimizer_step": optimizer,
        "communication": "none (one GPU)",
    })
    costs = ComputeCosts(forward, backward, optimizer_s, estimated.gradient_bytes)
    return costs, cal


def _roofline_on_profiled_device(scenario: Scenario, model: Model, profile: Profile, path: str) -> ComputeCosts:
    eff = profile.efficiency
    fit = eff.fit("matmul") or eff.fit("conv")
    if fit is None or eff.memory_bandwidth_bytes_per_s is None:
        raise CalibrationError(
            f"{path}: efficiency: the profile has no matmul/conv fit or memory bandwidth, needed to estimate "
            "the layers it did not time on the profiled device"
        )
    device = ProfiledDevice(profile.environment.device_name, fit.peak_flops_per_s,
                            eff.memory_bandwidth_bytes_per_s / 1e9)
    w = scenario.workload
    return roofline_costs(
        model, device, precision=w.precision, batch=w.batch_per_gpu, compute_efficiency=1.0,  # type: ignore[arg-type]
        memory_efficiency=1.0, layer_overhead_s=w.layer_overhead_us * 1e-6, optimizer=w.optimizer,
    )


def layer_times(costs: ComputeCosts) -> np.ndarray:
    """Forward + backward per layer (for reports and tests)."""
    return costs.forward_s + costs.backward_s

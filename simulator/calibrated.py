"""Calibrated numbers: a profile's measurements in place of roofline and network estimates.

A scenario that names a profile (``calibration: path``) gets, in the build phase:

* **per-layer forward and backward times** from the profile's fit ``t = a + b x batch``
  of every layer the probe timed for the scenario's model, at the scenario's
  ``batch_per_gpu`` (linear extrapolation outside the measured batches, flagged in the
  report); layers the probe did not time keep the layer-time model's estimate, with its
  device parameters (compute and memory efficiency, per-kernel overhead) fitted on every
  layer the profile did time (:mod:`simulator.layer_fit`; a parameter the scenario sets
  is held);
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

**Ranks sharing a CPU host** (profiles with ``device_kind: cpu``). The ranks of one node
share the host's cores: ``cluster.host_cores`` when set, else the profile's
``environment.cpu_count``. Each rank runs ``threads = max(1, cores // ranks)`` torch
threads: what ``clustersim measure`` sets (``--threads`` default), and what torchrun's
default ``OMP_NUM_THREADS=1`` gives when there are as many ranks as cores (a process
left to torch's default would take every core, and the ranks would oversubscribe
them). Layer times, the whole model and the optimizer step then come from the profile's
timings at that thread count, taken with the host's cores shared the same way
(``ModelProfile.threads_sweep``: ``cores // threads`` processes timing at once, so
memory bandwidth and caches are shared as in the job). A thread count the profile did
not measure is scaled from the nearest one it did, by the thread scaling of the whole
model measured between two thread counts (``t ~ threads^-alpha``), else linearly
(``alpha = 1``), and the report says it is estimated. More ranks than cores time-share
them: every compute time is stretched by ``ranks x threads / cores``.

**Layer sum against the whole model.** Timing layers one by one leaves out what flows
between them (allocator, caches, large activations): where the profile timed the whole
model's forward + backward at the same thread count and the layer sum differs from it
by more than ``WHOLE_MODEL_TOLERANCE`` (ratio interpolated over batch, held at the
nearest measured batch outside), the calibrated layers are scaled so that they sum to
the whole model; the report gives the ratio either way.

**Layers against a training iteration as a job runs it** (version-3 profiles). Where
the profile timed whole training iterations in fresh processes at the rank's thread
count (``TrainingSteps``: DDP with a no-op communication hook when the job has several
ranks and allreduces, plain otherwise), the layers are scaled so that they plus the
optimizer step make that iteration, in place of the whole-model correction above: the
iteration holds the allocator's page faults of a job process, DDP's bucket copies and
the loss, which the probe's forward + backward leaves out (see
:func:`_training_step_correction`).

**Communication-compute interference.** While a calibrated allreduce runs on a rank's
device, that rank's compute runs ``compute_factor`` times slower, and while any rank of
the collective computes, the collective runs ``comm_factor`` times slower
(:class:`Overlap`: work-conserving rates, so a layer fully overlapped by a collective
takes exactly ``compute_factor`` times its time). Both come from the profile's
``interference`` measurement; without one, GPUs get 1 (no slowdown: every uncalibrated
or unmeasured GPU result is unchanged) and CPUs the defaults in
:mod:`simulator.calibrated_run`, measured on this project's machine.

The report (``SimResult.extra["calibration"]``) lists which numbers are calibrated and
which are estimated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from .calibrated_layers import (
    HostShare,
    profiled_device,
    roofline_on,
    timings_at,
    untimed_layer_estimate,
)
from .calibrated_run import CPU_COMM_INTERFERENCE, CPU_COMPUTE_INTERFERENCE, CalibratedAllreduce, Overlap
from .compute import ComputeCosts
from .errors import CalibrationError, excerpt
from .kernel_efficiency import activation_in_epilogue, fused_into_norm
from .profile import Profile, ThreadTimings, Timing, estimated_fields, load_profile
from .resolved import Resolved
from .sync import SYNC_STRATEGIES, SyncContext, Synchronizer
from .zoo import Model

MAX_LISTED_LAYERS = 20

#: Relative disagreement of the layer sum and the whole model above which the layers
#: are scaled to the whole model.
WHOLE_MODEL_TOLERANCE = 0.05

def is_allreduce(strategy: str) -> bool:
    """Strategies that allreduce every bucket (any algorithm)."""
    return "allreduce" in strategy or strategy == "auto"


@dataclass
class Calibration:
    """A loaded profile and what it calibrates for one scenario."""

    path: str
    profile: Profile
    report: dict[str, Any] = field(default_factory=dict)
    compute_interference: float = 1.0
    comm_interference: float = 1.0
    overlap: Overlap | None = None  # set by synchronizer() when the calibrated allreduce runs

    def synchronizer(self, view: Resolved, strategy: str, context: SyncContext) -> Synchronizer:
        """The strategy, with measured allreduce times where the profile has them."""
        gpus, nodes = view.total_gpus, view.scenario.cluster.nodes
        if strategy == "none":
            return SYNC_STRATEGIES[strategy](context)
        collectives = self.profile.collectives
        fit = None
        if is_allreduce(strategy) and collectives is not None:
            fit = collectives.fit("allreduce", gpus, nodes=nodes)
        if fit is None or collectives is None:  # (no collectives: no fit)
            have = sorted({(f.world_size, f.nodes) for f in collectives.fits if f.collective == "allreduce"}) \
                if collectives else []
            why = f"strategy {strategy} is not an allreduce" if not is_allreduce(strategy) else (
                f"profile has no allreduce fit for {gpus} ranks on {nodes} node(s) "
                f"(has world size, nodes: {have or 'none'})")
            self.report["communication"] = f"estimated (network model): {why}"
            if self.report.get("interference", "").startswith(("measured", "default")):
                self.report["interference"] = "not applied: communication is not the calibrated allreduce"
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
        if self.compute_interference != 1.0 or self.comm_interference != 1.0:
            self.overlap = Overlap(context.env, len(context.gpus) if context.detailed else 1,
                                   self.compute_interference, self.comm_interference)
        return CalibratedAllreduce(context, fit, measured, self.overlap)


def calibrate_compute(view: Resolved, estimated: ComputeCosts, path: str,
                      conv_algorithms: list[str | None]) -> tuple[ComputeCosts, Calibration]:
    """Replace estimated per-layer and optimizer times with the profile's (see module doc).
    ``conv_algorithms``: what each layer of the run uses (the estimate's, for untimed layers)."""
    profile, scenario, model, batch = load_profile(path), view.scenario, view.model, view.batch_per_gpu
    env, w, c = profile.environment, scenario.workload, scenario.cluster
    cal = Calibration(path=path, profile=profile)
    if env.catalog_gpu is not None and env.catalog_gpu != c.gpu:
        raise CalibrationError(
            f"{path}: environment.catalog_gpu: the profile was measured on {excerpt(env.catalog_gpu)}, the scenario's "
            f"cluster.gpu is {c.gpu}; use a profile of that GPU or drop `calibration`"
        )
    if w.precision != "fp32":
        raise CalibrationError(f"{path}: the profile holds fp32 timings; the scenario asks for {w.precision}")

    stand_in = profiled_device(profile, path) if env.catalog_gpu is None else None
    if stand_in is not None:
        estimated = roofline_on(view, stand_in, 1.0, 1.0, view.layer_overhead_s)
        device = f"profiled {profile.device_label} (stands in for cluster.gpu {c.gpu})"
    else:
        device = f"profiled {profile.device_label} = catalog {env.catalog_gpu}"

    forward, backward = estimated.forward_s.copy(), estimated.backward_s.copy()
    optimizer_s = estimated.optimizer_s
    measured = profile.model(model.name)
    calibrated_layers: list[str] = []
    estimated_layers: list[str] = []
    estimated_index: list[int] = []
    eager: dict[int, tuple[float, float]] = {}  # measured eager times of the layers the run fuses
    optimizer = "estimated (roofline)"
    batch_note = ""
    share = HostShare.of(scenario, profile) if env.device_kind == "cpu" else None
    threads_note = whole_note = step_note = None
    timings = None
    correction = 1.0
    if measured is not None:
        timings, scale, threads_note = timings_at(measured, share, env.torch_threads)
        stretch = scale * (share.oversubscription if share is not None else 1.0)
        correction, whole_note = _whole_model_correction(timings, model, batch)
        w_strategy = scenario.training.strategy
        step_opt = timings.optimizer_step if timings.optimizer_step is not None else measured.optimizer_step
        step = _training_step_correction(timings, model, batch, step_opt,
                                         view.total_gpus > 1 and is_allreduce(w_strategy))
        if step is not None:
            correction, step_note = step
        fits = timings.fit_table()
        for i, layer in enumerate(model.layers):
            fwd, bwd = fits.get((layer.name, "forward")), fits.get((layer.name, "backward"))
            # (a layer the run fuses keeps its fused estimate, not the probe's eager kernels)
            if fwd is None or bwd is None or fused_into_norm(model.layers, i, w.kernel_fusion) or (
                    w.activation_epilogues and activation_in_epilogue(model.layers, i)):
                estimated_layers.append(layer.name)
                estimated_index.append(i)
                if fwd is not None and bwd is not None:  # fused: never slower than its eager kernels
                    eager[i] = (max(fwd(batch), 0.0) * stretch * correction,
                                max(bwd(batch), 0.0) * stretch * correction)
                continue
            forward[i] = max(fwd(batch), 0.0) * stretch * correction
            backward[i] = max(bwd(batch), 0.0) * stretch * correction
            calibrated_layers.append(layer.name)
        lo, hi = min(measured.batches), max(measured.batches)
        batch_note = f"fit over batches {lo}-{hi}" + ("" if lo <= batch <= hi else f", extrapolated to {batch}")
        opt_step = timings.optimizer_step if timings.optimizer_step is not None else measured.optimizer_step
        if opt_step is not None and measured.optimizer == w.optimizer:
            optimizer_s = opt_step.median_s * stretch
            optimizer = f"calibrated ({measured.optimizer}, measured)"
    else:
        batch_note = f"the profile has no per-layer timings of {model.name}"
        estimated_layers = [layer.name for layer in model.layers]
        estimated_index = list(range(len(model.layers)))

    untimed_note = None
    if estimated_index:
        refit = untimed_layer_estimate(view, profile, stand_in, share, conv_algorithms)
        if isinstance(refit, str):  # not fitted, and why
            untimed_note = refit
        else:
            costs_fit, fit, fitted = refit
            for i in estimated_index:
                forward[i], backward[i] = costs_fit.forward_s[i], costs_fit.backward_s[i]
                if i in eager:
                    forward[i], backward[i] = min(forward[i], eager[i][0]), min(backward[i], eager[i][1])
            if optimizer.startswith("estimated"):
                optimizer_s = costs_fit.optimizer_s
            untimed_note = "layer-time model with " + fit.describe(fitted)

    cal.report.update({
        "profile": path, "device": device,
        "layers_calibrated": len(calibrated_layers),
        "layers_estimated": len(estimated_layers),
        "estimated_layer_names": estimated_layers[:MAX_LISTED_LAYERS] if calibrated_layers else [],
        "layer_times": batch_note,
        "optimizer_step": optimizer,
        "communication": "none (one GPU)",
    })
    if untimed_note is not None:
        cal.report["untimed_layers"] = untimed_note
    if share is not None:
        cal.report["host_share"] = (
            f"{share.ranks} rank(s) on {share.cores} core(s): {share.threads} torch thread(s) each"
            + (f", cores time-shared x{share.oversubscription:.3g}" if share.oversubscription > 1 else "")
            + (f"; {threads_note}" if threads_note else ""))
    if whole_note is not None:
        cal.report["whole_model"] = whole_note
        cal.report["whole_model_scale"] = correction
    if step_note is not None:
        cal.report["training_step"] = step_note
        cal.report["training_step_scale"] = correction
    elif measured is not None and env.device_kind == "cpu":
        cpu_timings = cast(ThreadTimings, timings)  # set above whenever measured is
        cal.report["training_step"] = (
            "not measured at this thread count: layers not checked against a whole training iteration"
            if cpu_timings.training_step is None else
            f"not used: the profile's iterations at this thread count are {'DDP' if cpu_timings.training_step.ddp else 'plain'}"
            f" ones, the job {'is' if view.total_gpus > 1 and is_allreduce(w_strategy) else 'is not'} a DDP allreduce job")
    cal.compute_interference, cal.comm_interference, cal.report["interference"] = _interference(profile)
    missing = estimated_fields(profile)
    if missing:
        cal.report["profile_estimated"] = missing
    costs = ComputeCosts(forward, backward, optimizer_s, estimated.gradient_bytes)
    return costs, cal


def _interference(profile: Profile) -> tuple[float, float, str]:
    """(compute factor, communication factor, report line)."""
    m = profile.interference
    if m is not None:
        return m.compute_factor, m.comm_factor, (
            f"measured: compute x{m.compute_factor:.3g} beside a {m.backend} allreduce, allreduce "
            f"x{m.comm_factor:.3g} beside compute ({m.processes} processes x {m.threads} thread(s), {m.work})")
    if profile.environment.device_kind == "cpu":
        return CPU_COMPUTE_INTERFERENCE, CPU_COMM_INTERFERENCE, (
            f"default (not in the profile): compute x{CPU_COMPUTE_INTERFERENCE:g} beside an allreduce, allreduce "
            f"x{CPU_COMM_INTERFERENCE:g} beside compute (measured on this project's 2-core machine)")
    return 1.0, 1.0, "none: the profile has no interference measurement (GPU default: no slowdown)"


def _layer_sums(timings: ThreadTimings, model: Model) -> dict[int, float]:
    """Per measured batch, the model's layer times as the simulator takes them: the fit
    (non-negative since fits are constrained, so no longer always through the medians),
    the median where a layer has no fit; corrections scale these to a measured total."""
    names, fits = {layer.name for layer in model.layers}, timings.fit_table()
    sums: dict[int, float] = {}
    for s in timings.samples:
        if s.layer in names:
            fit = fits.get((s.layer, s.phase))
            sums[s.batch] = sums.get(s.batch, 0.0) + (max(fit(s.batch), 0.0) if fit else s.timing.median_s)
    return sums


def _whole_model_correction(timings: ThreadTimings, model: Model, batch: int) -> tuple[float, str | None]:
    """The factor that makes the layers sum to the whole model (1 within tolerance), and a note."""
    if not timings.whole_model:
        return 1.0, None
    sums = _layer_sums(timings, model)
    points = sorted((w.batch, w.timing.median_s / sums[w.batch]) for w in timings.whole_model
                    if sums.get(w.batch, 0) > 0)
    if not points:
        return 1.0, None
    ratio = float(np.interp(batch, [b for b, _ in points], [r for _, r in points]))
    per_batch = ", ".join(f"{b}: {r:.3f}" for b, r in points)
    if abs(ratio - 1.0) <= WHOLE_MODEL_TOLERANCE:
        return 1.0, f"layer sum agrees with the whole model within {WHOLE_MODEL_TOLERANCE:.0%} (whole / sum per batch {per_batch})"
    return ratio, (f"layer sum disagrees with the whole model (whole / sum per batch {per_batch}): layer times "
                   f"scaled x{ratio:.3f} to the whole model at batch {batch}")


def _training_step_correction(timings: ThreadTimings, model: Model, batch: int, optimizer_step: Timing | None,
                              ddp_job: bool) -> tuple[float, str] | None:
    """The factor that makes the layers plus the optimizer step sum to the training
    iteration measured as a job runs it (``timings.training_step``), and a note; None
    when there is no such measurement, or it is of the other kind of job (DDP steps for
    one process, plain steps for an allreduce job of several ranks).

    The iteration holds what layers timed alone in the probe's long-lived process do not
    pay: the allocator handing freed activations and gradients back to the OS and
    page-faulting them in again every iteration (a fresh job process does; a probe
    process whose earlier work raised the allocator's thresholds does not), DDP's copies
    of every gradient into its bucket and back, the loss, zero_grad. The optimizer step
    was measured on its own (kept as measured: it runs after the allreduce); the rest of
    the difference goes to the forward and backward layers, in proportion. Always
    applied (no tolerance): it is the measurement of the quantity predicted. The ratio
    is interpolated over the measured batches and held at the nearest outside them."""
    steps = timings.training_step
    if steps is None or not steps.samples or steps.ddp != ddp_job:
        return None
    sums = _layer_sums(timings, model)
    opt = optimizer_step.median_s if optimizer_step is not None else 0.0
    points = sorted((s.batch, max(s.timing.median_s - opt, 0.0) / sums[s.batch]) for s in steps.samples
                    if sums.get(s.batch, 0) > 0)
    if not points:
        return None
    ratio = float(np.interp(batch, [b for b, _ in points], [r for _, r in points]))
    per_batch = ", ".join(f"{b}: {r:.3f}" for b, r in points)
    how = (f"{steps.processes} fresh process(es) x {steps.threads} thread(s)"
           + (", DDP with a no-op communication hook" if steps.ddp else ""))
    return ratio, (f"layer times scaled x{ratio:.3f} at batch {batch} so that layers + optimizer step make the "
                   f"training iteration measured as a job runs it ({how}; (iteration - optimizer) / layer sum per "
                   f"batch {per_batch})")


def layer_times(costs: ComputeCosts) -> np.ndarray:
    """Forward + backward per layer (for reports and tests)."""
    return cast(np.ndarray, costs.forward_s + costs.backward_s)  # numpy types the sum as Any

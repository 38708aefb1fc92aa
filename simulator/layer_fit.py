"""The layer-time model's device parameters fitted on a profile's timed layers.

A calibration profile times some layers of some models; every other layer (a model the
probe did not time, a layer it could not) is estimated by the layer-time model
(:mod:`simulator.compute`). Three of that model's parameters describe the device rather
than a layer: the **compute efficiency** (share of the peak a large GEMM reaches), the
**memory efficiency** (share of the memory bandwidth memory-bound kernels reach) and the
**per-kernel overhead**. They ship as defaults fitted on published measurements of many
GPUs (``benchmarks/accuracy_single_gpu.py``); the timed layers say what they are on the
profiled device, so :func:`fit_layer_model` fits them there and the untimed layers are
estimated with the device's own values.

Objective: the time-weighted mean ``|log(predicted / measured)|`` over every timed
layer pass (forward and backward) at every measured batch. A layer weighs what it
measured, so the fit follows where the time goes, and the log makes a prediction twice
too slow as wrong as one twice too fast. Search: coordinate descent over log-spaced
grids, starting from the values the estimate would use without a fit, three rounds;
deterministic. A parameter the user set in the scenario is held, not fitted.

Measured on the committed CPU profiles by leaving one model out (fit on the others,
predict the held-out model's layers): ``python benchmarks/untimed_layers.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from .profile import LayerSample
from .zoo import Model

#: Fewest timed layer passes a fit needs; with fewer the estimate keeps its parameters.
MIN_TIMED_PASSES = 8
PARAMETERS = ("compute_efficiency", "memory_efficiency", "layer_overhead_s")
#: Search grids (log-spaced; the overhead's also holds 0). Wide on purpose: on a CPU the
#: memory-bound operators reach a tenth of a plain copy's bandwidth or less.
GRIDS: dict[str, np.ndarray] = {
    "compute_efficiency": np.geomspace(0.05, 2.0, 33),
    "memory_efficiency": np.geomspace(0.02, 2.0, 33),
    "layer_overhead_s": np.concatenate([[0.0], np.geomspace(1e-7, 1e-3, 33)]),
}
ROUNDS = 3

#: (model, batch, compute efficiency, memory efficiency, overhead s) -> per-layer
#: (forward, backward) seconds of the layer-time model.
Estimator = Callable[[Model, int, float, float, float], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class TimedLayers:
    """One model's measured layer times at one batch (NaN where a layer was not timed)."""

    model: Model
    batch: int
    forward: np.ndarray
    backward: np.ndarray


@dataclass(frozen=True)
class LayerModelFit:
    compute_efficiency: float
    memory_efficiency: float
    layer_overhead_s: float
    passes: int  # timed layer passes fitted on
    models: tuple[str, ...]
    error: float  # the objective at the fitted values
    start_error: float  # ... and at the values the estimate used before

    def describe(self, fitted: Sequence[str]) -> str:
        values = {"compute_efficiency": f"compute efficiency {self.compute_efficiency:.3g}",
                  "memory_efficiency": f"memory efficiency {self.memory_efficiency:.3g}",
                  "layer_overhead_s": f"per-kernel overhead {self.layer_overhead_s * 1e6:.3g} us"}
        held = [values[p] + " (scenario)" for p in PARAMETERS if p not in fitted]
        # a value on the edge of its grid: the device is unlike what the model assumes
        edge = [p for p in PARAMETERS if p in fitted and getattr(self, p) in (GRIDS[p][0], GRIDS[p][-1])]
        values.update({p: values[p] + " (the edge of the search range)" for p in edge})
        return (", ".join([values[p] for p in PARAMETERS if p in fitted] + held)
                + f", fitted on {self.passes} timed layer passes of {', '.join(self.models)} (time-weighted mean "
                f"|log error| {self.error:.3f}, {self.start_error:.3f} before the fit)")


def timed_layers(model: Model, samples: Iterable[LayerSample], scale: float = 1.0) -> list[TimedLayers]:
    """The profile's per-layer medians of ``model`` per batch, times ``scale``."""
    index = {layer.name: i for i, layer in enumerate(model.layers)}
    by_batch: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for s in samples:
        i = index.get(s.layer)
        if i is None:
            continue
        fwd, bwd = by_batch.setdefault(s.batch, (np.full(len(index), np.nan), np.full(len(index), np.nan)))
        (fwd if s.phase == "forward" else bwd)[i] = s.timing.median_s * scale
    return [TimedLayers(model, b, f, bw) for b, (f, bw) in sorted(by_batch.items())]


def count_passes(data: Sequence[TimedLayers]) -> int:
    return sum(int(np.sum(np.isfinite(t) & (t > 0))) for d in data for t in (d.forward, d.backward))


def objective(data: Sequence[TimedLayers], estimate: Estimator, values: Sequence[float]) -> float:
    """Time-weighted mean |log(predicted / measured)| over the timed layer passes."""
    total = weight = 0.0
    for d in data:
        predicted = estimate(d.model, d.batch, *values)
        for measured, model in zip((d.forward, d.backward), predicted):
            ok = np.isfinite(measured) & (measured > 0) & (model > 0)
            total += float(np.sum(measured[ok] * np.abs(np.log(model[ok] / measured[ok]))))
            weight += float(np.sum(measured[ok]))
    return total / weight if weight > 0 else float("nan")


def fit_layer_model(data: Sequence[TimedLayers], estimate: Estimator, start: Sequence[float],
                    fitted: Sequence[str] = PARAMETERS) -> LayerModelFit | None:
    """The parameters (``fitted`` among :data:`PARAMETERS`; the rest stay at ``start``)
    that best predict the timed layers; None with fewer than :data:`MIN_TIMED_PASSES`."""
    passes = count_passes(data)
    if passes < MIN_TIMED_PASSES or not fitted:
        return None
    values = list(start)
    start_error = best = objective(data, estimate, values)
    for _ in range(ROUNDS):
        for k, name in enumerate(PARAMETERS):
            if name not in fitted:
                continue
            for v in GRIDS[name]:
                trial = [*values[:k], float(v), *values[k + 1:]]
                err = objective(data, estimate, trial)
                if err < best - 1e-12:
                    best, values = err, trial
    models = tuple(dict.fromkeys(d.model.name for d in data))
    return LayerModelFit(values[0], values[1], values[2], passes, models, best, start_error)

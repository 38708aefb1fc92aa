"""Fits: turn raw probe samples into the models a profile carries (numpy only).

Every fit minimizes *relative* error (each equation divided by its measured time):
times span decades (4 KB to 256 MB messages, batch 1 to 32), and an unweighted fit
would be decided by the largest points alone. Every fit is **constrained to physical
values**: a latency, an overhead or a layer's time at batch 0 is >= 0, and time does
not fall as bytes, flops or samples grow (seconds per byte, per flop, per sample >= 0).
A free least-squares line may break both (a negative alpha when the small sizes sit
above the line the large ones set; a falling line on noise), and then it predicts
negative or ever-cheaper times outside its points; the constrained fit (non-negative
least squares on two parameters, solved exactly by :func:`_constrained_line`) is the
best line among the physical ones, equal to the free fit whenever that is physical.

* **Per-layer time against batch**: ``t = a + b x batch`` on the per-batch medians
  (:func:`fit_linear`); with two batches it is exact by construction and says so
  (``exact``: ``max_rel_error`` 0 validates nothing).
* **Alpha-beta** (collectives, copies): ``t = alpha + bytes / beta``
  (:func:`fit_alpha_beta`); where time does not grow with size the fit is latency-only,
  ``beta`` null ("no measurable bandwidth term"), never a huge stand-in bandwidth.
  :func:`fit_alpha_beta_pieces` splits the size range where one line does not hold
  (backends change algorithm with size, as NCCL changes protocol): every piece spans at
  least :data:`MIN_PIECE_SIZES` measured sizes (a 2-point piece is exact by construction
  and tests nothing), each within ``tolerance`` relative error where possible.
* **Throughput against work**: ``t = overhead + flops / peak``, the same relative-error
  line with flops in place of bytes (:func:`fit_throughput`).

:func:`refit` recomputes every fit of a profile from its samples (``clustersim
calibrate``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from simulator.alpha_beta import (  # noqa: F401 (fit_alpha_beta* and MIN_PIECE_SIZES: part of this module's API)
    MIN_PIECE_SIZES,
    _constrained_line,
    _max_rel_error,
    _positive_times,
    fit_alpha_beta,
    fit_alpha_beta_pieces,
)
from simulator.profile import (
    CollectiveFit,
    CollectiveSample,
    CopyFit,
    LayerFit,
    LinearFit,
    ModelProfile,
    Profile,
    ThreadTimings,
    ThroughputFit,
)


def fit_linear(x: Sequence[float], t: Sequence[float]) -> LinearFit:
    """``t = a + b x`` on relative error with ``a, b >= 0`` (a layer takes no negative
    time at batch 0, nor less time for more samples); where the free line breaks that,
    the best line through the origin (or the best constant). A single batch gives a line
    through the origin (time proportional to batch). As many distinct points as free
    parameters (one, or two with a physical line) is an ``exact`` fit, reported with
    ``max_rel_error`` 0: it passes through its points by construction."""
    xs, ts = np.asarray(x, dtype=float), np.asarray(t, dtype=float)
    if len(xs) == 0:
        raise ValueError("no points to fit")
    ts = _positive_times(ts)
    distinct = len(np.unique(xs))
    if distinct < 2:
        a, b, free = 0.0, float(np.sum(xs / ts) / np.sum((xs / ts) ** 2)), True
    else:
        a, b, free = _constrained_line(xs, ts)
    exact = free and distinct == len(xs) <= 2
    return LinearFit(intercept_s=a, slope_s=b, points=len(xs), exact=exact,
                     max_rel_error=0.0 if exact else _max_rel_error(a + b * xs, ts))


def fit_throughput(op: str, flops: Sequence[float], t: Sequence[float]) -> ThroughputFit:
    """``t = overhead + flops / peak`` on relative error with ``overhead >= 0``. Work
    that takes time has a finite peak: where the best physical line would be flat
    (noise: a small size slower than the large ones), the best line through the origin."""
    xs, ts = np.asarray(flops, dtype=float), np.asarray(t, dtype=float)
    if len(np.unique(xs)) < 2:
        raise ValueError("a throughput fit needs at least two work sizes")
    overhead, inv_peak, _ = _constrained_line(xs, _positive_times(ts), slope=True)
    return ThroughputFit(
        op=op, overhead_s=overhead, peak_flops_per_s=1.0 / inv_peak, points=len(xs),
        max_rel_error=_max_rel_error(overhead + xs * inv_peak, ts),
    )


def nccl_bandwidths(collective: str, world_size: int, nbytes: float, time_s: float) -> tuple[float, float]:
    """nccl-tests ``(algbw, busbw)`` in bytes/s: algbw = size / time, busbw = algbw x
    2(n-1)/n for allreduce, (n-1)/n for all-gather and reduce-scatter, 1 otherwise."""
    from simulator.profile import BUS_FACTORS

    algbw = nbytes / time_s
    return algbw, algbw * BUS_FACTORS[collective](world_size)


def fit_model_layers(model: ModelProfile | ThreadTimings) -> list[LayerFit]:
    """One linear fit (seconds against batch) per layer and pass, on per-batch medians."""
    points: dict[tuple[str, str], list[tuple[int, float]]] = defaultdict(list)
    for s in model.samples:
        points[s.layer, s.phase].append((s.batch, s.timing.median_s))
    fits = []
    for (layer, phase), pts in points.items():
        batches, times = zip(*sorted(pts))
        fits.append(LayerFit(layer=layer, phase=phase, fit=fit_linear(batches, times)))
    return fits


def fit_collectives(samples: Sequence[CollectiveSample], tolerance: float = 0.05) -> list[CollectiveFit]:
    groups: dict[tuple[str, int, int], list[CollectiveSample]] = defaultdict(list)
    for s in samples:
        groups[s.collective, s.world_size, s.nodes].append(s)
    fits = []
    for (collective, world, nodes), group in sorted(groups.items()):
        sizes = [s.bytes for s in group]
        if len(set(sizes)) < 2:
            continue
        times = [s.timing.median_s for s in group]
        fits.append(CollectiveFit(
            collective=collective, world_size=world, nodes=nodes,
            fit=fit_alpha_beta(sizes, times), pieces=fit_alpha_beta_pieces(sizes, times, tolerance),
        ))
    return fits


def refit(profile: Profile) -> Profile:
    """The same profile with every fit recomputed from its raw samples."""
    models = [
        m.model_copy(update={
            "fits": fit_model_layers(m),
            "threads_sweep": [t.model_copy(update={"fits": fit_model_layers(t)}) for t in m.threads_sweep],
        })
        for m in profile.models
    ]

    eff = profile.efficiency
    fits = []
    for op in ("matmul", "conv"):
        pts = [(s.flops, s.timing.median_s) for s in eff.samples if s.op == op]
        if len({f for f, _ in pts}) >= 2:
            fits.append(fit_throughput(op, *zip(*pts)))
    bandwidth = None
    if eff.memory:
        largest = max(eff.memory, key=lambda m: m.bytes)
        bandwidth = 2 * largest.bytes / largest.timing.median_s
    efficiency = eff.model_copy(update={"fits": fits, "memory_bandwidth_bytes_per_s": bandwidth})

    copy_groups: dict[tuple[str, bool], list[tuple[int, float]]] = defaultdict(list)
    for c in profile.copies:
        copy_groups[c.direction, c.pinned].append((c.bytes, c.timing.median_s))
    copy_fits = [
        CopyFit(direction=d, pinned=p, fit=fit_alpha_beta(*zip(*pts)))
        for (d, p), pts in sorted(copy_groups.items())
        if len({b for b, _ in pts}) >= 2
    ]

    collectives = profile.collectives
    if collectives is not None:
        collectives = collectives.model_copy(update={"fits": fit_collectives(collectives.samples)})
    return profile.model_copy(update={
        "models": models, "efficiency": efficiency, "copy_fits": copy_fits, "collectives": collectives,
    })

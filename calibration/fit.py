"""Fits: turn raw probe samples into the models a profile carries (numpy only).

* **Per-layer time against batch**: ``t = a + b x batch``, ordinary least squares on
  the per-batch medians (:func:`fit_linear`).
* **Alpha-beta** (collectives, copies): ``t = alpha + bytes / beta``. Times over 4 KB to
  256 MB span five decades, so the fit minimizes *relative* error (each equation
  divided by its measured time); an unweighted fit would be decided by the largest
  messages alone (:func:`fit_alpha_beta`). :func:`fit_alpha_beta_pieces` splits the
  size range where one line does not hold (backends change algorithm with size, as
  NCCL changes protocol), each piece within ``tolerance`` relative error.
* **Throughput against work**: ``t = overhead + flops / peak``, the same relative-error
  line with flops in place of bytes (:func:`fit_throughput`).

:func:`refit` recomputes every fit of a profile from its samples (``clustersim
calibrate``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from simulator.profile import (
    AlphaBetaFit,
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


FLAT_INV_BETA = 1e-18  # seconds per byte of a piece with no bandwidth term (1 EB/s)


def _max_rel_error(predicted: np.ndarray, measured: np.ndarray) -> float:
    return float(np.max(np.abs(predicted - measured) / measured)) if len(measured) else 0.0


def fit_linear(x: Sequence[float], t: Sequence[float]) -> LinearFit:
    """Least-squares ``t = a + b x``; a single point gives a line through the origin
    (time proportional to batch)."""
    xs, ts = np.asarray(x, dtype=float), np.asarray(t, dtype=float)
    if len(xs) == 0:
        raise ValueError("no points to fit")
    if len(np.unique(xs)) < 2:
        slope = float(np.mean(ts / xs))
        return LinearFit(intercept_s=0.0, slope_s=slope, points=len(xs), max_rel_error=_max_rel_error(slope * xs, ts))
    design = np.column_stack([np.ones_like(xs), xs])
    (a, b), *_ = np.linalg.lstsq(design, ts, rcond=None)
    return LinearFit(
        intercept_s=float(a), slope_s=float(b), points=len(xs), max_rel_error=_max_rel_error(a + b * xs, ts)
    )


def _relative_line(x: np.ndarray, t: np.ndarray) -> tuple[float, float]:
    """``t = c0 + c1 x`` minimizing the sum of squared relative errors."""
    weights = 1.0 / t
    design = np.column_stack([weights, x * weights])
    (c0, c1), *_ = np.linalg.lstsq(design, np.ones_like(t), rcond=None)
    return float(c0), float(c1)


def fit_alpha_beta(nbytes: Sequence[float], t: Sequence[float]) -> AlphaBetaFit:
    """``t = alpha + bytes / beta`` on relative error. Needs two distinct sizes."""
    xs, ts = np.asarray(nbytes, dtype=float), np.asarray(t, dtype=float)
    if len(np.unique(xs)) < 2:
        raise ValueError("an alpha-beta fit needs at least two message sizes")
    alpha, inv_beta = _relative_line(xs, ts)
    if inv_beta <= 0:  # times fall with size (noise): no bandwidth term, the best constant
        alpha, inv_beta = float(np.sum(1 / ts) / np.sum(1 / ts**2)), FLAT_INV_BETA
    return AlphaBetaFit(
        alpha_s=alpha,
        beta_bytes_per_s=1.0 / inv_beta,
        min_bytes=int(xs.min()),
        max_bytes=int(xs.max()),
        points=len(xs),
        max_rel_error=_max_rel_error(alpha + xs * inv_beta, ts),
    )


def fit_alpha_beta_pieces(
    nbytes: Sequence[float], t: Sequence[float], tolerance: float = 0.05
) -> list[AlphaBetaFit]:
    """Split sizes (sorted) into consecutive ranges, each fitted by one alpha-beta line
    within ``tolerance`` relative error, greedily taking the longest range that holds."""
    order = np.argsort(nbytes)
    xs, ts = np.asarray(nbytes, dtype=float)[order], np.asarray(t, dtype=float)[order]
    pieces: list[AlphaBetaFit] = []
    start = 0
    while start < len(xs):
        end = start + 2  # a piece has at least two points, unless one is left
        if end > len(xs):
            if pieces:  # one last point: a piece from the previous piece's last point to it
                pieces.append(fit_alpha_beta(xs[start - 1:], ts[start - 1:]))
            else:
                x0, t0 = xs[start], ts[start]
                pieces.append(AlphaBetaFit(alpha_s=0.0, beta_bytes_per_s=x0 / t0, min_bytes=int(x0),
                                           max_bytes=int(x0), points=1, max_rel_error=0.0))
            break
        best = fit_alpha_beta(xs[start:end], ts[start:end])
        while end < len(xs):
            candidate = fit_alpha_beta(xs[start:end + 1], ts[start:end + 1])
            if candidate.max_rel_error > tolerance:
                break
            best, end = candidate, end + 1
        pieces.append(best)
        start = end
    return pieces


def fit_throughput(op: str, flops: Sequence[float], t: Sequence[float]) -> ThroughputFit:
    """``t = overhead + flops / peak`` on relative error."""
    ab = fit_alpha_beta(flops, t)
    return ThroughputFit(
        op=op, overhead_s=ab.alpha_s, peak_flops_per_s=ab.beta_bytes_per_s, points=ab.points,
        max_rel_error=ab.max_rel_error,
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

"""The alpha-beta fit of a collective's (or a copy's) time against its size.

``t = alpha + bytes / beta`` on *relative* error (times span decades), **constrained to
physical values**: ``alpha >= 0`` (a latency) and ``1 / beta >= 0`` (time does not fall
as messages grow); where the best physical line is flat the fit is latency-only
(``beta`` None). :func:`fit_alpha_beta_pieces` splits the size range where one line does
not hold (a library changes protocol with size). Used by calibration profiles
(:mod:`calibration.fit`, which owns the other fits and their documentation) and by a
scenario's measured nccl-tests allreduce (:mod:`simulator.measured_collectives`): one
fit, wherever the measurement came from.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .profile import AlphaBetaFit

#: Fewest measured sizes a piece of a piecewise alpha-beta fit spans: two would be an
#: exact fit of two parameters, which says nothing about whether a line holds there.
MIN_PIECE_SIZES = 3


def _max_rel_error(predicted: np.ndarray, measured: np.ndarray) -> float:
    return float(np.max(np.abs(predicted - measured) / measured)) if len(measured) else 0.0


def _positive_times(t: np.ndarray) -> np.ndarray:
    if np.any(t <= 0):
        raise ValueError("a measured time is not positive: relative errors are undefined")
    return t


def _constrained_line(x: np.ndarray, t: np.ndarray, *, slope: bool = False) -> tuple[float, float, bool]:
    """``t = c0 + c1 x`` minimizing the sum of squared relative errors subject to
    ``c0 >= 0`` and ``c1 >= 0``; the third value says whether the free (unconstrained)
    optimum was already physical. Two parameters: the optimum of this convex problem is
    the free one when feasible, else the better of the two one-parameter fits on the
    boundary (``c0 = 0``: through the origin; ``c1 = 0``: a constant). ``slope``: the
    line must grow (``c1 > 0``), so the constant is no candidate."""
    w = 1.0 / t
    a, b = w, x * w  # rows of the design matrix, divided by the measured time
    if len(np.unique(x)) >= 2:
        (c0, c1), *_ = np.linalg.lstsq(np.column_stack([a, b]), np.ones_like(t), rcond=None)
        if c0 >= 0 and (c1 > 0 or (c1 == 0 and not slope)):
            return float(c0), float(c1), True
    candidates = [(0.0, float(np.sum(b) / np.sum(b * b)))]
    if not slope:
        candidates.append((float(np.sum(a) / np.sum(a * a)), 0.0))
    c0, c1 = min(candidates, key=lambda c: float(np.sum((c[0] * a + c[1] * b - 1.0) ** 2)))
    return c0, c1, False


def fit_alpha_beta(nbytes: Sequence[float] | np.ndarray, t: Sequence[float] | np.ndarray) -> AlphaBetaFit:
    """``t = alpha + bytes / beta`` on relative error with ``alpha >= 0`` (a latency) and
    ``1 / beta >= 0`` (time does not fall as messages grow). Needs two distinct sizes.
    Where the best physical line is flat, ``beta`` is None: latency-only."""
    xs, ts = np.asarray(nbytes, dtype=float), np.asarray(t, dtype=float)
    if len(np.unique(xs)) < 2:
        raise ValueError("an alpha-beta fit needs at least two message sizes")
    alpha, inv_beta, free = _constrained_line(xs, _positive_times(ts))
    exact = free and len(np.unique(xs)) == len(xs) == 2
    return AlphaBetaFit(
        alpha_s=alpha,
        beta_bytes_per_s=1.0 / inv_beta if inv_beta > 0 else None,
        min_bytes=int(xs.min()),
        max_bytes=int(xs.max()),
        points=len(xs),
        exact=exact,
        max_rel_error=0.0 if exact else _max_rel_error(alpha + xs * inv_beta, ts),
    )


def fit_alpha_beta_pieces(
    nbytes: Sequence[float], t: Sequence[float], tolerance: float = 0.05
) -> list[AlphaBetaFit]:
    """Split the sizes (sorted) into consecutive ranges of at least
    :data:`MIN_PIECE_SIZES` sizes, each fitted by one alpha-beta line: the fewest pieces
    each within ``tolerance`` relative error; where no split holds that, the split whose
    worst piece is best, with the fewest pieces. Ties go to the smallest sum of the
    pieces' errors. Fewer than ``MIN_PIECE_SIZES`` sizes: no pieces (the one overall
    fit stands)."""
    order = np.argsort(nbytes, kind="stable")
    xs, ts = np.asarray(nbytes, dtype=float)[order], np.asarray(t, dtype=float)[order]
    n = len(xs)
    if n < MIN_PIECE_SIZES or len(np.unique(xs)) < MIN_PIECE_SIZES:
        return []
    # Every admissible piece [i, j): at least MIN_PIECE_SIZES points, not splitting a size.
    starts = [i for i in range(n) if i == 0 or xs[i] != xs[i - 1]]
    bounds = [*starts, n]
    segments: dict[tuple[int, int], AlphaBetaFit] = {}
    for a, i in enumerate(bounds):
        for j in bounds[a + 1:]:
            if len(np.unique(xs[i:j])) >= MIN_PIECE_SIZES:
                segments[i, j] = fit_alpha_beta(xs[i:j], ts[i:j])
    # The smallest threshold (tolerance, else a piece's error) some split meets: more
    # pieces become admissible as it grows, so bisect; the whole range always meets the
    # largest error.
    thresholds = sorted({e for e in (f.max_rel_error for f in segments.values()) if e > tolerance} | {tolerance})
    lo, hi = 0, len(thresholds) - 1
    found = _fewest_pieces(bounds, segments, thresholds[hi])
    while lo < hi:
        mid = (lo + hi) // 2
        split = _fewest_pieces(bounds, segments, thresholds[mid])
        if split is None:
            lo = mid + 1
        else:
            hi, found = mid, split
    assert found is not None  # the whole range is one admissible piece
    return found


def _fewest_pieces(bounds: list[int], segments: dict[tuple[int, int], AlphaBetaFit],
                   threshold: float) -> list[AlphaBetaFit] | None:
    """Dynamic programming over the split points: the partition into pieces each within
    ``threshold`` with the fewest pieces, then the smallest error sum; None if none."""
    best: dict[int, tuple[int, float, list[AlphaBetaFit]]] = {bounds[0]: (0, 0.0, [])}
    for j in bounds[1:]:
        options = [
            (best[i][0] + 1, best[i][1] + f.max_rel_error, [*best[i][2], f])
            for (i, end), f in segments.items()
            if end == j and i in best and f.max_rel_error <= threshold
        ]
        if options:
            best[j] = min(options, key=lambda o: (o[0], o[1]))
    found = best.get(bounds[-1])
    return found[2] if found is not None else None

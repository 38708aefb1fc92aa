"""Leave-one-source-out selection over a parameter grid, shared by the accuracy scripts.

Given every grid point's predictions of every case, the parameters for a held-out
source are the grid point with the smallest mean |log(predicted / measured)| over the
other sources' (trainable) cases; that point's predictions of the held-out cases are its
cross-validated predictions."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def leave_one_source_out(predictions: np.ndarray, measured: np.ndarray, sources: np.ndarray, names: Sequence[str],
                         combos: Sequence[tuple], trainable: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """(cross-validated prediction of every case, {held-out source: fitted values}), with
    "(all sources)" fitted on every trainable case. ``predictions`` is grid point x case."""
    logerr = np.abs(np.log(predictions / measured))
    trainable = np.ones(len(measured), dtype=bool) if trainable is None else trainable
    cv = np.full(len(measured), np.nan)
    fitted: dict = {}
    for source in sorted(set(sources)):
        held = sources == source
        best = int(np.argmin(logerr[:, ~held & trainable].mean(axis=1)))
        cv[held] = predictions[best, held]
        fitted[source] = dict(zip(names, combos[best]))
    fitted["(all sources)"] = dict(zip(names, combos[int(np.argmin(logerr[:, trainable].mean(axis=1)))]))
    return cv, fitted

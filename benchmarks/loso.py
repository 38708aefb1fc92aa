"""Leave-one-source-out selection over a parameter grid, shared by the accuracy scripts.

Given every grid point's predictions of every case, the parameters for a held-out
source are the grid point with the smallest objective over the other sources'
(trainable) cases; that point's predictions of the held-out cases are its
cross-validated predictions.

The objective is the mean over sources of each source's mean |log(predicted /
measured)|: every publication counts once. A source is one independent look at a
platform; how finely it swept message sizes or batch sizes (3 rows or 68) says nothing
about how much its platform should weigh. Counting cases instead let the two or three
largest sweeps choose every fold's parameters (collectives: a 68-row and a 63-row source
against twelve others), so a held-out platform was predicted with values fitted to
another platform's quirks (``weighting="case"`` keeps that older objective for
comparison)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _objective(logerr: np.ndarray, mask: np.ndarray, sources: np.ndarray, weighting: str) -> np.ndarray:
    """Per grid point: mean |log error| over ``mask``'s cases (``case``) or the mean of
    each source's mean (``source``)."""
    if weighting == "case":
        return logerr[:, mask].mean(axis=1)
    if weighting != "source":
        raise ValueError(f"weighting must be 'source' or 'case', got {weighting!r}")
    per_source = [logerr[:, mask & (sources == s)].mean(axis=1) for s in sorted(set(sources[mask]))]
    return np.mean(per_source, axis=0)


def leave_one_source_out(predictions: np.ndarray, measured: np.ndarray, sources: np.ndarray, names: Sequence[str],
                         combos: Sequence[tuple], trainable: np.ndarray | None = None,
                         weighting: str = "source") -> tuple[np.ndarray, dict]:
    """(cross-validated prediction of every case, {held-out source: fitted values}), with
    "(all sources)" fitted on every trainable case. ``predictions`` is grid point x case."""
    logerr = np.abs(np.log(predictions / measured))
    trainable = np.ones(len(measured), dtype=bool) if trainable is None else trainable
    cv = np.full(len(measured), np.nan)
    fitted: dict = {}
    for source in sorted(set(sources)):
        held = sources == source
        best = int(np.argmin(_objective(logerr, ~held & trainable, sources, weighting)))
        cv[held] = predictions[best, held]
        fitted[source] = dict(zip(names, combos[best]))
    best_all = int(np.argmin(_objective(logerr, trainable, sources, weighting)))
    fitted["(all sources)"] = dict(zip(names, combos[best_all]))
    return cv, fitted

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
                         weighting: str = "source", groups: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """(cross-validated prediction of every case, {held-out group: fitted values}), with
    "(all sources)" fitted on every trainable case. ``predictions`` is grid point x case.
    ``groups`` (default: the sources) says which cases are held out together, e.g. one
    system of a source that measured several; the objective still weighs each source once."""
    logerr = np.abs(np.log(predictions / measured))
    trainable = np.ones(len(measured), dtype=bool) if trainable is None else trainable
    groups = sources if groups is None else groups
    cv = np.full(len(measured), np.nan)
    fitted: dict = {}
    for group in sorted(set(groups)):
        held = groups == group
        best = int(np.argmin(_objective(logerr, ~held & trainable, sources, weighting)))
        cv[held] = predictions[best, held]
        fitted[group] = dict(zip(names, combos[best]))
    best_all = int(np.argmin(_objective(logerr, trainable, sources, weighting)))
    fitted["(all sources)"] = dict(zip(names, combos[best_all]))
    return cv, fitted


def close_calls(predictions: np.ndarray, measured: np.ndarray, sources: np.ndarray, names: Sequence[str],
                combos: Sequence[tuple], trainable: np.ndarray | None = None, weighting: str = "source",
                within: float = 0.01) -> list[dict]:
    """The folds a near-tie decided: per held-out source, the best grid point that predicts
    that source differently from the chosen one (the runner-up; points that differ only in
    parameters the source does not read predict it the same and do not count), when its
    objective over the other sources is within ``within`` (relative) of the chosen one's.
    Each entry gives both objectives, the parameters on which they differ, and the
    held-out source's mean |log error| under each: how much of a held-out figure a
    hair's difference on the other sources decided."""
    logerr = np.abs(np.log(predictions / measured))
    trainable = np.ones(len(measured), dtype=bool) if trainable is None else trainable
    calls = []
    for source in sorted(set(sources)):
        held = sources == source
        objective = _objective(logerr, ~held & trainable, sources, weighting)
        best = int(np.argmin(objective))
        differs = ~np.all(np.isclose(predictions[:, held], predictions[best, held], rtol=1e-9), axis=1)
        if not differs.any():
            continue
        runner_up = int(np.flatnonzero(differs)[np.argmin(objective[differs])])
        gap = objective[runner_up] - objective[best]
        margin = gap / objective[best] if objective[best] > 0 else (0.0 if gap == 0 else np.inf)
        if margin > within:
            continue
        calls.append({
            "source": source, "chosen": dict(zip(names, combos[best])),
            "runner_up": {n: v for n, v, w in zip(names, combos[runner_up], combos[best]) if v != w},
            "objective": float(objective[best]), "runner_up_objective": float(objective[runner_up]),
            "margin": float(margin), "held_out_logerr": float(logerr[best, held].mean()),
            "runner_up_held_out_logerr": float(logerr[runner_up, held].mean()),
        })
    return calls


def print_close_calls(calls: list[dict], within: float = 0.01) -> None:
    """Print :func:`close_calls`' folds, one line each (nothing when there are none)."""
    if not calls:
        print(f"\nno fold's choice was within {100 * within:g}% of its runner-up")
        return
    print(f"\nfolds decided by less than {100 * within:g}% of the objective over the other sources "
          "(held-out mean |log error| with the choice -> with the runner-up):")
    for c in calls:
        changed = ", ".join(f"{k} {c['chosen'][k]:g} over {v:g}" for k, v in c["runner_up"].items())
        print(f"  {c['source']}: {changed} by {100 * c['margin']:.2f}% "
              f"({c['objective']:.5f} vs {c['runner_up_objective']:.5f}); held out "
              f"{c['held_out_logerr']:.4f} -> {c['runner_up_held_out_logerr']:.4f}")


def with_runners_up(predictions: np.ndarray, cv: np.ndarray, sources: np.ndarray, names: Sequence[str],
                    combos: Sequence[tuple], calls: list[dict]) -> np.ndarray:
    """The cross-validated predictions had every fold in ``calls`` (:func:`close_calls`)
    gone to its runner-up: how far the held-out figures move on choices that the other
    sources barely made."""
    alt = cv.copy()
    for call in calls:
        point = {**call["chosen"], **call["runner_up"]}
        i = list(combos).index(tuple(point[n] for n in names))
        held = sources == call["source"]
        alt[held] = predictions[i, held]
    return alt

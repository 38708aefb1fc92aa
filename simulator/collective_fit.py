"""Fitting a scenario's measured collective figures to the user's own nccl-tests runs.

The collective backend's achievable bandwidths are fitted on other people's machines
(``simulator/data/backends``), and two of them vary 2-4x between machines (README,
"Where the model is weak"): how fast a hop staged through host memory goes
(``training.collectives.host_staging_gbytes_s``: GeForce cards without peer-to-peer,
hops across the socket link) and what share of the NICs' bandwidth the library reaches
(``training.collectives.network_efficiency``). Both are scenario fields, there to be set
from a measurement of the user's machine. :func:`fit_collective_fields` sets them from
nccl-tests runs (``clustersim collectives SCENARIO --nccl-tests FILE --fit``):

- a field is fitted only where it changes a prediction of the measured sizes (a cluster
  with no staged hop has no host-staging figure to learn; one node has no network);
- the objective is the mean over measured sizes of |log(predicted / measured)| (time
  spans decades; small, latency-bound sizes, which these fields do not move, only add
  a constant);
- each field is searched in log space within its physical range (host staging 0.1-100
  GB/s, network efficiency 0.05-1) by golden-section search, the fields in turn, twice
  around (coordinate descent), to a relative precision of 0.5%.

It is an in-sample fit: it makes the scenario describe the measured machine. Whether it
predicts what was not measured (another world size, another collective on the same
machine) is what ``benchmarks/nccl_tests_fit.py`` measures on the dev set.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .scenario import Scenario

#: Fitted fields of ``training.collectives`` and their search ranges.
FIELDS: dict[str, tuple[float, float]] = {
    "host_staging_gbytes_s": (0.1, 100.0),
    "network_efficiency": (0.05, 1.0),
}
TOLERANCE = 0.005  # relative precision of a fitted value
ROUNDS = 2  # coordinate-descent passes over the fields
_GOLDEN = (math.sqrt(5) - 1) / 2


@dataclass(frozen=True)
class CollectiveFitResult:
    """What :func:`fit_collective_fields` found."""

    fitted: dict[str, float]  # field -> value (only the fields that move a prediction)
    inapplicable: dict[str, str]  # field -> why it was not fitted
    before: float  # mean |log(predicted / measured)| at the scenario's values
    after: float  # the same at the fitted values
    evaluations: int

    def overrides(self) -> list[str]:
        """``--set`` arguments that put the fitted values in a scenario."""
        return [f"training.collectives.{k}={v:.4g}" for k, v in self.fitted.items()]


def with_fields(scenario: Scenario, values: Mapping[str, float]) -> Scenario:
    """``scenario`` with ``training.collectives`` fields set to ``values``."""
    data = scenario.model_dump()
    data["training"]["collectives"].update(values)
    return Scenario.model_validate(data)


def predicted_times(scenario: Scenario, calls: list[tuple[str, int]]) -> list[float]:
    """Predicted seconds of each (collective, bytes) call, alone on the idle cluster."""
    from .validation.run import collective_estimates

    return [e.time_s for e in collective_estimates(scenario, calls, scenario.training.strategy)]


def mean_log_error(predicted: list[float], measured: list[float]) -> float:
    return sum(abs(math.log(p / m)) for p, m in zip(predicted, measured)) / len(measured)


def _golden(f: Callable[[float], float], lo: float, hi: float) -> float:
    """The minimizer of a unimodal ``f`` on [lo, hi] (log-space argument) to TOLERANCE."""
    a, b = math.log(lo), math.log(hi)
    c, d = b - _GOLDEN * (b - a), a + _GOLDEN * (b - a)
    fc, fd = f(math.exp(c)), f(math.exp(d))
    while b - a > math.log1p(TOLERANCE):
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - _GOLDEN * (b - a)
            fc = f(math.exp(c))
        else:
            a, c, fc = c, d, fd
            d = a + _GOLDEN * (b - a)
            fd = f(math.exp(d))
    return math.exp((a + b) / 2)


def fit_collective_fields(scenario: Scenario, measured: Mapping[tuple[str, int], float],
                          fields: Mapping[str, tuple[float, float]] = FIELDS) -> CollectiveFitResult:
    """Fit ``fields`` of ``training.collectives`` to ``measured`` ((op, bytes) -> seconds)."""
    if not measured:
        raise ValueError("no measured times to fit")
    calls = sorted(measured)
    times = [measured[c] for c in calls]
    count = 0

    def objective(values: Mapping[str, float]) -> float:
        nonlocal count
        count += 1
        return mean_log_error(predicted_times(with_fields(scenario, values), calls), times)

    before = objective({})
    inapplicable: dict[str, str] = {}
    free: dict[str, tuple[float, float]] = {}
    for name, (lo, hi) in fields.items():
        low, high = (predicted_times(with_fields(scenario, {name: v}), calls) for v in (lo, hi))
        count += 2
        if all(abs(a - b) <= 1e-9 * max(a, b) for a, b in zip(low, high)):
            inapplicable[name] = ("no measured size depends on it (nothing of this cluster is staged through host "
                                  "memory)" if name == "host_staging_gbytes_s" else
                                  "no measured size depends on it (no hop of these runs crosses the network)")
        else:
            free[name] = (lo, hi)
    current = {name: getattr(scenario.training.collectives, name) for name in free}
    current = {k: v for k, v in current.items() if v is not None}
    def along(name: str) -> Callable[[float], float]:
        return lambda value: objective({**current, name: value})

    for _ in range(ROUNDS if len(free) > 1 else 1):
        for name, (lo, hi) in free.items():
            current[name] = _golden(along(name), lo, hi)
    after = objective(current) if free else before
    return CollectiveFitResult({k: current[k] for k in free}, inapplicable, before, after, count)

"""How much slower than nominal a rank computes: per-iteration factors (GPU speed,
stragglers, ``variability.iteration_cv``) and per-segment jitter, each drawn from the
rank's own random streams (split from :mod:`simulator.training`)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .built import BuiltSimulation


class ComputeVariation:
    """How much slower than nominal one rank computes: a per-iteration factor (its
    speed factor, times the straggler slowdown when it straggles) and a per-segment
    jitter multiplier (``jitter()``). Both are exactly 1 without variability, and draw
    nothing. ``rng`` and ``iteration_rng``: the rank's two streams, when made in bulk
    (:meth:`of_ranks`); by default each is made here."""

    def __init__(self, sim: BuiltSimulation, rank: int, rng: np.random.Generator | None = None,
                 iteration_rng: np.random.Generator | None = None):
        v = sim.scenario.variability
        self.speed = 1.0 / v.gpu_speed_factors.get(rank, 1.0)
        self.stragglers = v.stragglers
        self.rng = rng if rng is not None else sim.streams.stream(f"rank {rank} compute")
        self.jitter = _jitter_sampler(v.jitter.distribution, v.jitter.cv, self.rng)
        # iteration_cv on the detailed path: one normal factor per rank and iteration,
        # from a stream of its own (the fast path uses the expected slowest instead).
        self.iteration_cv = _iteration_cv(sim)
        self.iteration_rng = None
        if self.iteration_cv > 0:
            self.iteration_rng = (iteration_rng if iteration_rng is not None
                                  else sim.streams.stream(f"rank {rank} iteration"))

    @classmethod
    def of_ranks(cls, sim: BuiltSimulation) -> list[ComputeVariation]:
        """Every rank's variation, their streams seeded together (:meth:`RandomStreams.streams`)."""
        ranks = range(len(sim.timelines))
        names = [f"rank {r} compute" for r in ranks]
        if _iteration_cv(sim) > 0:
            names += [f"rank {r} iteration" for r in ranks]
        streams = sim.streams.streams(names)
        return [cls(sim, r, streams[r], streams[r + len(ranks)] if len(streams) > len(ranks) else None)
                for r in ranks]

    def iteration_factor(self) -> float:
        p = self.stragglers.probability
        straggling = p > 0 and self.rng.random() < p
        factor = self.speed * (self.stragglers.slowdown if straggling else 1.0)
        if self.iteration_rng is not None:
            factor *= max(0.05, 1.0 + self.iteration_cv * self.iteration_rng.standard_normal())
        return factor


def _iteration_cv(sim: BuiltSimulation) -> float:
    """The per-rank, per-iteration normal factor's cv (detailed path with 2+ GPUs; 0: none)."""
    return sim.scenario.variability.iteration_cv if sim.detailed and sim.resolved.total_gpus > 1 else 0.0


def _jitter_sampler(distribution: str, cv: float, rng: np.random.Generator) -> Callable[[], float]:
    """A function drawing one multiplier from ``rng`` with mean 1 and coefficient of variation cv."""
    if distribution == "none" or cv == 0:
        return lambda: 1.0
    if distribution == "normal":
        normal = rng.standard_normal
        return lambda: max(0.05, 1.0 + cv * normal())
    if distribution == "uniform":
        half = cv * np.sqrt(3.0)
        uniform = rng.uniform
        return lambda: uniform(1.0 - half, 1.0 + half)
    sigma = np.sqrt(np.log1p(cv * cv))
    lognormal, mean = rng.lognormal, -sigma * sigma / 2
    return lambda: lognormal(mean, sigma)

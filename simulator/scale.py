"""Losses that grow with scale, in closed form for the fast path.

**Waiting for the slowest of N.** When each of N ranks computes an iteration in
``C x (1 + cv Z_r)`` with independent standard normal ``Z_r``, a synchronous step ends
when the slowest has finished: on average ``C x (1 + cv E[max_r Z_r])``.
:func:`expected_max_standard_normal` computes ``E[max of N standard normals]``
exactly (to ~1e-10) by numeric integration of

    E[max] = integral of x N phi(x) Phi(x)^(N-1) dx

over [-12, 12] on a fine grid (the integrand is smooth and negligible outside it).
Values: 0.5642 (N=2, exactly 1/sqrt(pi)), 1.0294 (4), 1.4236 (8), 2.3437 (64),
3.2482 (1024) (Tippett 1925; Harter 1961 tables).

**Input pipeline.** With ``workload.data: real`` each sample costs ``s`` seconds of
one host core to decode and augment; the node's ``c`` cores are shared by its ``g``
ranks, so a rank prepares a batch of ``b`` in ``b s g / c`` (the pipeline prefetches
one batch ahead, so it overlaps the GPU's work). A node can never train faster than
``c / s`` samples per second.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np

# Default host CPU cost of one sample (ms on one core), and host cores per GPU when
# cluster.host_cores is not given; see README ("Input pipeline") for the sources.
IMAGE_INPUT_MS_PER_SAMPLE = 5.0
HOST_CORES_PER_GPU = 5


@cache
def expected_max_standard_normal(n: int) -> float:
    """E[max of n independent standard normal draws] (0 for n = 1)."""
    if n < 1:
        raise ValueError(f"need at least one draw, got {n}")
    if n == 1:
        return 0.0
    x = np.linspace(-12.0, 12.0, 48_001)
    cdf = 0.5 * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))
    pdf = np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
    integrand = x * n * pdf * cdf ** (n - 1)
    return float(np.trapezoid(integrand, x))


def slowest_of(n: int, cv: float) -> float:
    """Expected compute of the slowest of n ranks over the nominal: 1 + cv E[max Z]."""
    return 1.0 + cv * expected_max_standard_normal(n) if cv > 0 else 1.0


__all__ = ["HOST_CORES_PER_GPU", "IMAGE_INPUT_MS_PER_SAMPLE", "expected_max_standard_normal", "slowest_of"]

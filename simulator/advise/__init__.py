"""Configuration guidelines: three questions answered with a formula and a simulation.

* :func:`advise_batch` (:mod:`.batch`) - the per-GPU batch and per-layer convolution
  algorithms that fit in GPU memory (:mod:`simulator.memory`) with the best simulated
  throughput, the runners-up, and what stops a larger batch; for a shared workspace and
  per-layer ones.
* :func:`advise_ps` (:mod:`.ps`) - the fewest parameter servers at which the servers'
  NICs stop being the bottleneck: the closed form ``k >= N*S / (B_ps * T)``, confirmed
  by simulating k-1, k and k+1.
* :func:`advise_gpus` (:mod:`.gpus`) - the largest GPU count whose scaling efficiency
  stays at or above a target, what breaks it beyond, and what would move the limit.
* :func:`advise_accumulation` (:mod:`.accumulation`) - the fewest gradient-accumulation
  micro-batches per iteration at which scaling efficiency reaches a target.

Each returns a dataclass (:mod:`.answers`) with ``.to_dict()`` and ``.lines()`` (the
printed report: formula with the scenario's numbers, the simulated confirmation, the
next bottleneck).
"""

from .accumulation import advise_accumulation
from .answers import AccumulationAdvice, BatchAdvice, BatchChoice, GPUAdvice, PSAdvice
from .batch import BATCH_GRID, TIE, advise_batch, choose_algorithms
from .common import resource_label
from .gpus import NODE_GRID, advise_gpus
from .ps import advise_ps

__all__ = [
    "AccumulationAdvice",
    "BATCH_GRID",
    "NODE_GRID",
    "TIE",
    "BatchAdvice",
    "BatchChoice",
    "GPUAdvice",
    "PSAdvice",
    "advise_accumulation",
    "advise_batch",
    "advise_gpus",
    "advise_ps",
    "choose_algorithms",
    "resource_label",
]

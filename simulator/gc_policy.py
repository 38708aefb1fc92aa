"""When Python's cyclic garbage collector runs: the one place that decides it.

The simulator makes millions of long-lived objects (cluster graphs, routes) and almost
no cyclic garbage, so the collector's default rhythm (a young collection every 700
allocations, full ones as objects pile up) costs as much as the work itself at scale.
Two phases need it different:

- building (:func:`gc_paused`): collection off; what was made joins the oldest
  generation when it resumes;
- running (:func:`run_phase`): what was built is frozen out of the scans and young
  collections are made rarer while SimPy allocates events.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

# Objects made while collection was paused, above which they are moved to the oldest
# generation when it resumes (see gc_paused).
PROMOTE_AFTER = 100_000
RUN_GC_THRESHOLD = 1_000_000  # allocations between young collections during the run (Python's default: 700)


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Cyclic garbage collection off for a while (as it was, after): building a cluster
    of 65,536 GPUs makes millions of long-lived objects and no garbage, and the full
    collections their count triggers on the way cost as much as the building. Where
    more than PROMOTE_AFTER objects were made, they join the oldest generation when
    collection resumes (:func:`_promote_young`) instead of being walked by the next
    young collection (a quarter of a second at 65,536 GPUs)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            _promote_young()
            gc.enable()


def _promote_young() -> None:
    """Move every object the collector tracks to its oldest generation, where more than
    PROMOTE_AFTER are young: ``gc.freeze()`` then ``gc.unfreeze()`` (each a splice of
    the generations' lists), only where nothing is frozen (so no one's frozen objects
    are released), leaving nothing frozen."""
    if gc.get_count()[0] < PROMOTE_AFTER or gc.get_freeze_count():
        return
    try:
        gc.freeze()
    finally:
        gc.unfreeze()


@contextlib.contextmanager
def run_phase() -> Iterator[None]:
    """The collector during a run. What is built (graph, routes) lives through the run:
    kept out of the collector's full scans, which would revisit it ever more often as
    the run allocates events (time growing faster than the ranks at thousands of GPUs).
    The run's own allocations are almost all freed by reference counting (events,
    timers, generator frames), yet every 700 of them start a young collection that
    promotes the live ones (every rank's process) into generations whose scans grow
    with the ranks: 40% of the run at 16,384 GPUs. Young collections are made rarer
    while the processes are made and the clock runs (cyclic garbage is still collected,
    in larger batches); a run in another thread meanwhile finds objects frozen and
    leaves both alone."""
    freeze = gc.isenabled() and gc.get_freeze_count() == 0  # nobody else froze objects
    thresholds = gc.get_threshold()
    if freeze:
        gc.freeze()
        gc.set_threshold(max(thresholds[0], RUN_GC_THRESHOLD), *thresholds[1:])
    try:
        yield
    finally:
        if freeze:
            gc.set_threshold(*thresholds)
            gc.unfreeze()

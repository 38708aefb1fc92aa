"""When Python's cyclic garbage collector runs: the one place that decides it.

The simulator makes millions of long-lived objects (cluster graphs, routes) and almost
no cyclic garbage, so the collector's default rhythm (a young collection every 700
allocations, full ones as objects pile up) costs as much as the work itself at scale.
Two phases need it different:

- building (:func:`gc_paused`): collection off; what was made joins the oldest
  generation when it resumes;
- running (:func:`run_phase`): what was built is frozen out of the scans and young
  collections are made rarer while SimPy allocates events.

The command line adds two (:mod:`simulator.cli`): collection off while a command's
modules load (:func:`loading_modules`), and what is alive at exit frozen first
(:func:`freeze_at_exit`).
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import sys
from collections.abc import Iterator

# Objects made while collection was paused, above which they are moved to the oldest
# generation when it resumes (see gc_paused).
PROMOTE_AFTER = 100_000
RUN_GC_THRESHOLD = 1_000_000  # allocations between young collections during the run (Python's default: 700)
# A build starts with a full collection where the heap at the last run's start (the
# interpreter's allocated memory blocks) had grown this many times past the heap at the
# first run after the previous full collection.
HEAP_GROWTH = 2.0

# gc.freeze() then gc.unfreeze() (run_phase, and _promote_young after a large build) puts
# what they move into the oldest generation without counting it towards Python's next full
# collection. A finished run is cyclic garbage (its environment, processes, cluster and the
# graph's cached links refer to one another), by then in that generation: in a process that
# runs many simulations (a sweep, a cross-validation) it piled up, never collected (about
# 150 MB more at every pass over the dev set, until the kernel killed the process). So the heap is
# measured at each run's start (the interpreter's allocated memory blocks: free to read) and
# a full collection runs when it has grown HEAP_GROWTH times: garbage stays under what is alive.
_heap_at_last_run = 0
_heap_after_full = 0


@contextlib.contextmanager
def gc_paused(promote_after: int | None = None) -> Iterator[None]:
    """Cyclic garbage collection off for a while (as it was, after): building a cluster
    of 65,536 GPUs makes millions of long-lived objects and no garbage, and the full
    collections their count triggers on the way cost as much as the building. Where
    more than PROMOTE_AFTER objects were made, they join the oldest generation when
    collection resumes (:func:`_promote_young`) instead of being walked by the next
    young collection (a quarter of a second at 65,536 GPUs). ``promote_after``: that
    threshold instead of PROMOTE_AFTER."""
    enabled = gc.isenabled()
    if enabled:
        _collect_finished_runs()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            _promote_young(PROMOTE_AFTER if promote_after is None else promote_after)
            gc.enable()


def _promote_young(at_least: int) -> None:
    """Move every object the collector tracks to its oldest generation, where at least
    ``at_least`` are young: ``gc.freeze()`` then ``gc.unfreeze()`` (each a splice of
    the generations' lists), only where nothing is frozen (so no one's frozen objects
    are released), leaving nothing frozen."""
    if gc.get_count()[0] < at_least or gc.get_freeze_count():
        return
    try:
        gc.freeze()
    finally:
        gc.unfreeze()


def _collect_finished_runs() -> None:
    """A full collection where the heap at the last run's start had grown HEAP_GROWTH
    times since the first run after the previous one (nothing before a process's second
    build: one command, one run, pays nothing)."""
    global _heap_after_full, _heap_at_last_run
    if _heap_after_full and _heap_at_last_run > HEAP_GROWTH * _heap_after_full:
        gc.collect()
        _heap_after_full = 0  # measured again at the next run's start


def loading_modules() -> contextlib.AbstractContextManager[None]:
    """Collection off while a command's modules load: numpy, networkx, pydantic and the
    schema's models make some hundred thousand objects that live as long as the process,
    and almost no garbage; the hundred-odd collections their count would trigger cost a
    tenth of `clustersim simulate`. What was made joins the oldest generation after."""
    return gc_paused(promote_after=0)


def freeze_at_exit() -> None:
    """At exit, freeze what is still alive, so that the interpreter's last collection
    skips it instead of walking every object of the finished command (a twentieth of
    `clustersim simulate`). Only for a process that ends with its command (the console
    script): frozen objects are never collected."""
    atexit.register(gc.freeze)  # registered first, so run after the other exit handlers


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
        global _heap_at_last_run, _heap_after_full
        _heap_at_last_run = sys.getallocatedblocks()  # O(1), where gc.get_freeze_count() walks the heap
        _heap_after_full = _heap_after_full or _heap_at_last_run
        gc.set_threshold(max(thresholds[0], RUN_GC_THRESHOLD), *thresholds[1:])
    try:
        yield
    finally:
        if freeze:
            gc.set_threshold(*thresholds)
            gc.unfreeze()

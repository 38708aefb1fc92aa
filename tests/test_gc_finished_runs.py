"""A process that runs many simulations (a sweep, a cross-validation) frees the finished
ones: the run phase's freeze and unfreeze put a run's objects in the collector's oldest
generation without counting them towards Python's next full collection, so
``simulator.gc_policy`` starts a build with one once the heap has grown HEAP_GROWTH times."""

from __future__ import annotations

import gc
import weakref

import simulator.gc_policy as gc_policy
from simulator import load_scenario
from simulator.build import build, forget_shared_clusters
from simulator.training import run


def _finished_run_graph() -> weakref.ref:
    sim = build(load_scenario(None, []))
    run(sim)
    graph = weakref.ref(sim.cluster.graph)
    del sim
    forget_shared_clusters()  # nothing holds the cluster any more but its own cycles
    return graph


def test_a_later_build_collects_the_finished_runs(monkeypatch):
    assert gc.isenabled() and gc.get_freeze_count() == 0
    graph = _finished_run_graph()
    # the graph and its cached links refer to each other: only a full collection frees them
    assert graph() is not None
    assert gc_policy._heap_after_full > 0 and gc_policy._heap_at_last_run > 0  # measured at the run's start
    # as if the heap had doubled since the first run after the last full collection
    monkeypatch.setattr(gc_policy, "_heap_after_full", gc_policy._heap_at_last_run / 2.5)
    build(load_scenario(None, []))
    assert graph() is None and gc_policy._heap_after_full == 0  # measured again at the next run


def test_a_heap_that_has_not_grown_is_not_walked(monkeypatch):
    monkeypatch.setattr(gc_policy, "HEAP_GROWTH", 1e9)
    collections = []
    monkeypatch.setattr(gc_policy.gc, "collect", lambda *args: collections.append(args))
    graph = _finished_run_graph()
    build(load_scenario(None, []))
    assert collections == [] and graph() is not None
    monkeypatch.undo()
    gc.collect()
    assert graph() is None

"""The collect phase's busiest links picked from the links near the top only, and the
objects made while collection is paused promoted to the oldest generation (issue #19):
the same report as ranking every link, and the collector's state left as it was."""

from __future__ import annotations

import gc
import heapq
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import simulator.gc_policy as gc_policy
from simulator.results import TOP_RESOURCES, Utilization, _busiest_links


def _every_link(sim, window: float) -> list[Utilization]:
    """_busiest_links as it was: every link that moved bytes rounded, the ones at or
    above the cut named and sorted."""
    start = sim.edge_bytes_at_window_start
    moved = sim.network.edge_bytes() - (0.0 if start is None else start)
    used = np.flatnonzero(moved > 0)
    if used.size == 0:
        return []
    utils = (moved[used] / (sim.network.capacity[used] * window)).tolist()
    rounded = [round(u, 12) for u in utils]
    cut = heapq.nlargest(TOP_RESOURCES, rounded)[-1]
    edges = sim.network.edges
    named = sorted((-r, f"{edges[i][0]}->{edges[i][1]}", k) for k, (i, r) in enumerate(zip(used.tolist(), rounded))
                   if r >= cut)
    out = []
    for _, name, k in named[:TOP_RESOURCES]:
        u, v = edges[int(used[k])]
        out.append(Utilization(name, sim.cluster.graph.edges[u, v]["link"], float(utils[k])))
    return out


class _Graph:
    def __init__(self, links: list[str]):
        self.edges = {(f"n{i}", f"m{i}"): {"link": link} for i, link in enumerate(links)}


def _sim(moved: list[float], capacity: list[float]):
    n = len(moved)
    network = SimpleNamespace(edge_bytes=lambda: np.array(moved, dtype=float), capacity=np.array(capacity),
                              edges=[(f"n{i}", f"m{i}") for i in range(n)])
    return SimpleNamespace(edge_bytes_at_window_start=None, network=network,
                           cluster=SimpleNamespace(graph=_Graph(["network" if i % 2 else "pcie" for i in range(n)])))


# Values that tie, tie after rounding to 12 digits, or straddle a rounding boundary.
_VALUES = st.one_of(
    st.sampled_from([0.0, 0.5, 0.5 + 4e-13, 0.5 + 5e-13, 0.5 + 6e-13, 0.5 - 5e-13, 1.0, 1.0 - 1e-13, 2.5e-13, 1e-12]),
    st.floats(0, 10, allow_nan=False),
    st.integers(0, 4).map(lambda k: k / 7),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_VALUES, min_size=0, max_size=40), st.sampled_from([1.0, 3.0, 1e-3]))
def test_the_busiest_links_are_those_of_every_link_ranked(values, window):
    sim = _sim([v * window for v in values], [1.0] * len(values))
    assert _busiest_links(sim, window) == _every_link(sim, window)


@pytest.mark.parametrize("window", [0.0, 1.0])
def test_links_that_are_not_finite_are_ranked_as_before(window):
    sim = _sim([1.0, 2.0, 0.0, 3.0, 1.0, 5.0, 2.0, 8.0], [1.0, 0.0, 1.0, 1.0, 2.0, 1.0, 1.0, 1.0])
    with np.errstate(divide="ignore", invalid="ignore"):
        assert _busiest_links(sim, window) == _every_link(sim, window)


def test_many_tied_links_give_the_first_names():
    sim = _sim([2.0] * 500 + [1.0] * 500, [1.0] * 1000)
    assert _busiest_links(sim, 1.0) == _every_link(sim, 1.0)


def _made_young(count: int) -> list[list[int]]:
    return [[i] for i in range(count)]


def test_paused_collection_promotes_many_young_objects_and_leaves_the_state(monkeypatch):
    monkeypatch.setattr(gc_policy, "PROMOTE_AFTER", 1_000)
    assert gc.isenabled() and gc.get_freeze_count() == 0
    with gc_policy.gc_paused():
        assert not gc.isenabled()
        kept = _made_young(5_000)
    assert gc.isenabled() and gc.get_freeze_count() == 0
    assert gc.get_count()[0] < 1_000  # moved to the oldest generation: nothing young to walk
    tracked = {id(o) for o in gc.get_objects(generation=2)}
    assert id(kept[0]) in tracked and id(kept) in tracked


def test_few_young_objects_or_frozen_ones_are_left_alone(monkeypatch):
    monkeypatch.setattr(gc_policy, "PROMOTE_AFTER", 10**9)
    with gc_policy.gc_paused():
        few = _made_young(100)
    assert gc.isenabled() and id(few) not in {id(o) for o in gc.get_objects(generation=2)}
    monkeypatch.setattr(gc_policy, "PROMOTE_AFTER", 1_000)
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with gc_policy.gc_paused():
            more = _made_young(5_000)
        assert gc.get_freeze_count() == frozen  # someone else's frozen objects stay frozen
        assert more
    finally:
        gc.unfreeze()


def test_a_nested_pause_does_not_promote(monkeypatch):
    monkeypatch.setattr(gc_policy, "PROMOTE_AFTER", 1_000)
    calls = []
    monkeypatch.setattr(gc_policy, "_promote_young", lambda at_least: calls.append(1))
    with gc_policy.gc_paused():
        with gc_policy.gc_paused():
            _made_young(5_000)
        assert calls == [] and not gc.isenabled()
    assert calls == [1] and gc.isenabled()

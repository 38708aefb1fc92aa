"""The two max-min cores (pure Python for small active sets, numpy for large ones) give
the same rates to the last bit, and a network run gives the same times to the last bit
whichever core its recomputations use and whether it recomputes only the components
that changed or every flow at every change (the definition)."""

from __future__ import annotations

import networkx as nx
import pytest
import simpy
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator import finishing, flows, graph_links, maxmin, network_sharing
from simulator import network as network_module
from simulator.network import EdgeUsage, Network, max_min_rates_numpy, max_min_rates_python
from topologies import add_duplex_link

# Capacities from a small set, some within a relative 1e-12 of each other, so that ties
# and near-ties between fair shares (merged into one round by the tolerance) happen often.
CAPACITIES = [1.0, 3.0, 7.5, 10.0, 10.0 * (1 + 4e-13), 10.0 * (1 + 3e-12), 12.5e9, 0.1]

usage_strategy = st.dictionaries(st.integers(0, 9), st.integers(1, 4), max_size=5)


def bits(values) -> list[str]:
    return [float(v).hex() for v in values]


@settings(max_examples=400, deadline=None)
@given(
    capacity=st.lists(st.sampled_from(CAPACITIES), min_size=10, max_size=10),
    usages=st.lists(usage_strategy, min_size=1, max_size=12),
    counts=st.lists(st.integers(1, 5), min_size=12, max_size=12),
)
def test_python_and_numpy_give_identical_rates(capacity, usages, counts):
    prepared = [EdgeUsage(u) for u in usages]
    counts = counts[: len(usages)]
    python = max_min_rates_python(prepared, capacity, counts)
    vectorized = max_min_rates_numpy(prepared, capacity, counts)
    assert bits(python) == bits(vectorized)


def test_a_near_tie_is_fixed_in_one_round_by_both():
    # Two separate links whose fair shares differ by less than the 1e-12 tolerance: both
    # flows are fixed at the smaller share in the same round, in either core.
    capacity = [10.0, 10.0 * (1 + 4e-13)]
    prepared = [EdgeUsage({0: 1}), EdgeUsage({1: 1})]
    python = max_min_rates_python(prepared, capacity, [1, 1])
    assert python == [10.0, 10.0]
    assert bits(python) == bits(max_min_rates_numpy(prepared, capacity, [1, 1]))


def chain(n: int) -> nx.DiGraph:
    """Hosts h0..h{n-1} in a line of links of different bandwidths."""
    graph = nx.DiGraph()
    for i in range(n - 1):
        add_duplex_link(graph, f"h{i}", f"h{i + 1}", bandwidth=(1 + i % 3) * 1e9, latency=1e-6 * (i % 2),
                        link="network")
    return graph


def twins(n: int) -> nx.DiGraph:
    """A star whose links differ by less than the 1e-12 tolerance of max-min: separate
    components then fix their levels in one round, which only a whole computation does."""
    graph = nx.DiGraph()
    for i in range(n):
        add_duplex_link(graph, f"h{i}", "sw", bandwidth=1e9 * (1 + (i % 4) * 3e-13), latency=0.0, link="network")
    return graph


def finish_times(starts, graph: nx.DiGraph, small_entries: int, whole: bool = False, steps_kept: int = 64,
                 memo: bool = False, pairwise: bool = False, every_finish: bool = False,
                 gathered: bool = False, fresh_components: bool = False) -> list[str]:
    """Finish times, bottleneck log and edge bytes of a run. ``small_entries`` -1: every
    recomputation in numpy (one group alone too); ``memo``: max-min solutions kept per
    graph (off: solved afresh every time); ``pairwise``: components found by testing
    pairs of groups (off: by walking edges); ``every_finish``: every group's finish
    computed afresh at every recomputation and every group asked at every timer (off:
    only those near the soonest, :mod:`simulator.finishing`); ``gathered``: bytes added
    only to the loaded edges (off: to every edge of these small graphs at once);
    ``fresh_components``: a group alone solved afresh every time (off: its last
    component alone taken back when it has as many members)."""
    with pytest.MonkeyPatch.context() as patch:
        if every_finish:
            patch.setattr(finishing, "FINISH_MARGIN", 1e300)
            patch.setattr(network_module, "RECKONED_ADVANCES", 1)
        if gathered:
            patch.setattr(flows, "WHOLE_ARRAY_EDGES", -1)
        if fresh_components:
            patch.setattr(flows, "KEEP_ALONE", False)
        patch.setattr(maxmin, "SMALL_ENTRIES", small_entries)
        patch.setattr(maxmin, "SINGLE_GROUP_PYTHON", small_entries >= 0)
        patch.setattr(network_module, "_STEPS_KEPT", steps_kept)
        patch.setattr(network_module, "_FLUSH_EVERY", 1 if steps_kept < 64 else 16)
        patch.setattr(graph_links, "SOLVED_ENTRIES_KEPT", 1_000_000 if memo else 0)
        patch.setattr(network_sharing, "PAIRWISE_GROUPS", 10**9 if pairwise else -1)
        if whole:
            patch.setattr(network_sharing, "levels_apart", lambda components: False)
        return _finish_times(starts, graph)


def _finish_times(starts, graph: nx.DiGraph) -> list[str]:
    env = simpy.Environment()
    net = Network(env, graph)
    finished = [""] * len(starts)

    def launcher(i, at, src, dst, nbytes, bundle):
        yield env.timeout(at)
        if bundle:
            yield net.transfer_bundle([(f"h{src}", f"h{dst}"), (f"h{dst}", f"h{src}")], nbytes)
        else:
            yield net.transfer(f"h{src}", f"h{dst}", nbytes)
        finished[i] = env.now.hex()

    for i, spec in enumerate(starts):
        env.process(launcher(i, *spec))
    env.run()
    return finished + [f"{float(t).hex()} {e}" for t, e in net.bottleneck_log] + bits(net.edge_bytes())


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([0.0, 0.0, 0.25, 0.5, 1.0]),
            st.integers(0, 5),
            st.integers(0, 5),
            st.sampled_from([1e3, 5e8, 1e9, 2e9, 3.3e9]),
            st.booleans(),
        ),
        min_size=1,
        max_size=14,
    )
)
def test_network_runs_identically_on_either_core_and_incrementally(starts):
    for graph in (chain(6), twins(6)):
        # numpy, every flow, every finish, every time
        reference = finish_times(starts, graph, -1, whole=True, every_finish=True, fresh_components=True)
        assert finish_times(starts, graph, -1, whole=True, gathered=True) == reference
        assert finish_times(starts, graph, 10**9, every_finish=True, gathered=True) == reference
        assert finish_times(starts, graph, 10**9, fresh_components=True) == reference
        assert finish_times(starts, graph, 10**9, whole=True) == reference
        assert finish_times(starts, graph, 10**9) == reference
        assert finish_times(starts, graph, 10**9, steps_kept=1) == reference  # progress applied at once
        assert finish_times(starts, graph, -1) == reference
        assert finish_times(starts, graph, 10**9, pairwise=True) == reference
        assert finish_times(starts, graph, -1, pairwise=True, whole=True) == reference
        # Kept solutions: the first run fills them, the second takes them.
        assert finish_times(starts, graph, 10**9, memo=True) == reference
        assert finish_times(starts, graph, 10**9, memo=True, pairwise=True) == reference


def test_a_group_with_many_members_finishes_them_in_order_of_bytes_left():
    # Flows over one route share one group; they start at different times with different
    # sizes, so the member with the fewest bytes left is not the oldest. Every finish is
    # where bytes / (its share) puts it, and the kept solutions give the same run again.
    graph = chain(2)
    starts = [(0.0, 0, 1, size, False) for size in (3.3e9, 1e3, 2e9, 5e8, 1e9)] + [
        (0.25, 0, 1, 1e9, False), (0.5, 0, 1, 1e3, False), (1.0, 0, 1, 5e8, False)]
    reference = finish_times(starts, graph, -1, whole=True)
    assert finish_times(starts, graph, 10**9) == reference
    assert finish_times(starts, graph, 10**9, memo=True) == finish_times(starts, graph, 10**9, memo=True) == reference
    done = [float.fromhex(t) for t in reference[: len(starts)]]
    assert done.index(min(done)) == 1  # the 1 kB flow first, though started second
    assert sorted(done[:5]) == [done[1], done[3], done[4], done[2], done[0]]  # smallest first


def test_kept_solutions_belong_to_their_graph_and_are_not_changed():
    graph = chain(3)
    env = simpy.Environment()
    net = Network(env, graph)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(graph_links, "SOLVED_ENTRIES_KEPT", 1_000_000)
        env.process(_one_transfer(env, net, "h0", "h2", 1e9))
        env.run()
    solved = graph_links.GraphLinks.of(graph).solved
    assert solved  # a solution was kept for the graph...
    rates, edges, loads, _ = next(iter(solved.values()))
    assert not edges.flags.writeable and not loads.flags.writeable  # ...read-only, as it is shared
    assert graph_links.GraphLinks.of(chain(3)).solved == {}  # another graph starts with none


def _one_transfer(env, net, src, dst, nbytes):
    yield net.transfer(src, dst, nbytes)


@settings(max_examples=300, deadline=None)
@given(
    lefts=st.lists(st.sampled_from([1e3, 5e8, 1e9, 1e9 * (1 + 3e-10), 2e9, 3.3e9]), min_size=1, max_size=8),
    rates=st.lists(st.sampled_from([0.0, 1e9, 2e9, 2e9 * (1 + 4e-13), 12.5e9]), min_size=8, max_size=8),
    advances=st.lists(st.sampled_from([1e-9, 0.01, 0.1, 0.123456789]), max_size=6),
    start=st.sampled_from([0.0, 1.0, 12345.678]),
)
def test_the_soonest_finish_is_that_of_every_group_computed_afresh(lefts, rates, advances, start):
    # Groups reckoned at ``start``, then moved on by a few advances (steps of rate x dt,
    # as the network takes them): the soonest finish and the groups that may be done
    # agree with asking every group its bytes left over its rate.
    groups = []
    for i, left in enumerate(lefts):
        group = flows.FlowGroup(EdgeUsage({i: 1}))
        group.join(flows.Flow(group.usage, left, left, simpy.Environment().event(), ""))
        group.set_rate(rates[i])
        groups.append(group)
    now = start
    for dt in [0.0, *advances]:
        for group in groups:
            group.steps.append(group.rate * dt)
        now += dt
        delays = [group.lead.remaining_bytes / group.rate for group in groups if group.rate > 0]
        assert bits([finishing.soonest_finish(groups, now)]) == bits([min(delays, default=float("inf"))])
        for group in groups:
            if group.done_by > now:  # not asked at a timer now: none of it is done
                assert group.take_finished(now) == []


def test_kept_bookkeeping_is_what_it_stands_for():
    # Levels counted per active component are the distinct levels of the components
    # (NaN levels, each its own object, included); joined arrays kept per tuple of
    # components are their concatenation, whether kept or made afresh.
    import numpy as np

    nan = float("nan")
    rates = [[1e9], [1e9, 2e9], [nan], [2e9 * (1 + 4e-13)], [nan, 1e9], [0.0], [-0.0]]
    made = [flows.Component([], r, np.arange(i, i + 3), np.full(3, float(i)), (0.0, i)) for i, r in enumerate(rates)]
    active = flows.ActiveComponents()
    for step, component in enumerate(made * 2):  # each added, then each taken away
        (active.discard if step >= len(made) else active.add)(component)
        expected = {level for c in active.all for level in c.levels}
        assert len(active.levels) == len(expected) and all(level in expected for level in active.levels)
        assert flows.levels_apart(active) == _levels_apart_by_set(active.all)
    joined = flows.JoinedArrays()
    for components in (made[:1], made[:3], made[2:5], made[:3], made[::-1]):
        for _ in range(2):
            edges, loads = joined.of(components)
            assert edges.tolist() == np.concatenate([c.edges for c in components]).tolist()
            assert loads.tolist() == np.concatenate([c.loads for c in components]).tolist()


def _levels_apart_by_set(components) -> bool:
    """Levels apart as before levels were counted: from the set of every component's levels."""
    if len(components) < 2:
        return True
    levels = sorted({level for component in components for level in component.levels})
    total = sum(levels)
    if total == total and not any(upper <= lower * (1 + 1e-12) for lower, upper in zip(levels, levels[1:])):
        return True
    return maxmin.level_sets_apart([component.levels for component in components])


def test_a_group_alone_on_its_edges_is_a_component_of_its_own_as_the_walk_finds_it():
    """maxmin.connected with ``alone`` (groups no other crosses, as the network knows
    them) gives the components and stale set of the walk over edges."""

    class Group:
        def __init__(self, name, edges, component=None):
            self.name, self.edges, self.component = name, edges, component

        def __repr__(self):
            return self.name

    a, b, c, d = Group("a", {1, 2}, "old-a"), Group("b", {3}), Group("c", {3, 4}, "old-c"), Group("d", {5})
    groups = [a, b, c, d]

    def neighbours(group):
        return [other for other in groups if other.edges & group.edges]

    def alone(group):
        return all(other is group or not (other.edges & group.edges) for other in groups)

    for seeds in ([a, b, d], [c, a], [d, c, b, a]):
        walked, stale_walked = maxmin.connected(seeds, set(), neighbours), set()
        maxmin.connected(seeds, stale_walked, neighbours)
        stale_skipped = set()
        assert maxmin.connected(seeds, stale_skipped, neighbours, alone) == walked
        assert stale_skipped == stale_walked

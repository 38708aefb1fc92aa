"""Weighted max-min fair rates by progressive filling, the arithmetic of
:class:`simulator.network.Network`.

While flows are active, every edge's capacity is shared among the flows crossing it
by weighted max-min fairness: the most contended edge fixes the rate of its flows,
their use is taken off every edge they cross, and so on. Small sets run in pure
Python, large ones in numpy, with the same arithmetic in the same order: the rates
are the same to the last bit (``tests/test_maxmin.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

Usage = Mapping[int, int]  # edge index -> multiplicity


class EdgeUsage:
    """The edges a flow crosses, each with a multiplicity; shared by identical flows.

    Usages are cached per route and per bundle, so flows over the same path share one
    object; max-min sharing then treats them as one group (flows with the same edges
    always get the same rate), which keeps recomputation cheap when a strategy keeps
    many identical flows in flight.
    """

    __slots__ = ("mapping", "index", "multiplicity", "edges", "weights", "_edge_set")

    def __init__(self, mapping: Mapping[int, int]):
        self.mapping = dict(mapping)
        self.index = np.fromiter(self.mapping.keys(), dtype=np.int64, count=len(self.mapping))
        self.multiplicity = np.fromiter(self.mapping.values(), dtype=float, count=len(self.mapping))
        # The same as Python numbers, for the pure-Python path of small active sets.
        self.edges: list[int] = self.index.tolist()
        self.weights: list[float] = self.multiplicity.tolist()
        self._edge_set: frozenset[int] | None = None

    def shares_edge_with(self, other: EdgeUsage) -> bool:
        if self._edge_set is None:
            self._edge_set = frozenset(self.edges)
        if other._edge_set is None:
            other._edge_set = frozenset(other.edges)
        return not self._edge_set.isdisjoint(other._edge_set)


# Up to this many (flow, edge) entries max-min runs in pure Python, above it vectorized
# with numpy (whose per-call overhead dominates on small sets). Both give identical rates.
SMALL_ENTRIES = 256
# One group alone is one round of progressive filling (a minimum over its edges):
# pure Python at any size, as fast as numpy's set-up alone.
SINGLE_GROUP_PYTHON = True
def max_min_rates(
    usages: Sequence[Usage], capacity: Sequence[float], counts: Sequence[int] | None = None
) -> list[float]:
    """Weighted max-min fair rates by progressive filling.

    ``usages[f]`` maps the edges flow ``f`` crosses to its multiplicity there;
    ``counts[f]`` (default 1) says how many identical flows ``f`` stands for. Returns
    each flow's rate (per member) such that no edge carries more than its capacity and
    no flow can go faster without slowing a flow that is no faster. A flow that crosses
    no edge is unconstrained and gets ``inf``.

    Each round finds the edges with the smallest fair share (within a relative 1e-12
    of it), fixes the rate of every flow crossing them and takes that flow's use off
    all its edges.
    """
    if counts is None:
        counts = [1] * len(usages)
    return max_min_rates_of([EdgeUsage(u) for u in usages], capacity, counts)


def max_min_rates_of(usages: Sequence[EdgeUsage], capacity: Sequence[float], counts: Sequence[int]) -> list[float]:
    """:func:`max_min_rates` on prepared :class:`EdgeUsage` objects: pure Python for
    small sets, numpy for large ones (the same arithmetic in the same order, so the
    same rates to the last bit)."""
    if sum(len(u.edges) for u in usages) <= SMALL_ENTRIES:
        return max_min_rates_python(usages, capacity, counts)
    rates: list[float] = max_min_rates_numpy(usages, capacity, counts).tolist()
    return rates


def max_min_rates_numpy(usages: Sequence[EdgeUsage], capacity: Sequence[float] | np.ndarray,
                        counts: Sequence[int]) -> np.ndarray:
    """Progressive filling vectorized over (flow, edge) entries, since a bundled
    collective can cross thousands of edges."""
    n = len(usages)
    rates = np.full(n, np.inf)
    sizes = [len(u.index) for u in usages]
    if sum(sizes) == 0:
        return rates
    flow_of: np.ndarray = np.repeat(np.arange(n), sizes)
    edge_of = np.concatenate([u.index for u in usages])
    weight_of = np.concatenate([u.multiplicity for u in usages]) * np.asarray(counts, dtype=float)[flow_of]
    # Renumber the edges in use 0..k-1 so per-round work is O(entries), not O(all edges).
    used_edges, local_edge = np.unique(edge_of, return_inverse=True)
    spare = np.asarray(capacity, dtype=float)[used_edges].copy()
    weight = np.bincount(local_edge, weight_of, minlength=len(used_edges))
    active: np.ndarray = np.ones(len(flow_of), dtype=bool)
    while active.any():
        loaded = weight > 1e-12
        share = np.full(len(used_edges), np.inf)
        share[loaded] = np.maximum(spare[loaded], 0.0) / weight[loaded]
        level = share.min()
        bottlenecks = share <= level * (1 + 1e-12)
        newly = np.unique(flow_of[active & bottlenecks[local_edge]])
        rates[newly] = level
        entries = active & np.isin(flow_of, newly)
        spare -= np.bincount(local_edge[entries], weight_of[entries] * level, minlength=len(used_edges))
        weight -= np.bincount(local_edge[entries], weight_of[entries], minlength=len(used_edges))
        active &= ~entries
    return rates


def single_group_rate(usage: EdgeUsage, capacity: np.ndarray, count: int) -> float:
    """The rate of one group alone (``count`` members), as :func:`max_min_rates_python`
    finds it (its one round: the smallest share of its edges), vectorized for a group
    over many edges: the same weights and quotients, NaN shares skipped as its
    comparisons skip them."""
    weight = usage.multiplicity * float(count) + 0.0
    loaded = weight > 1e-12
    spare = capacity[usage.index[loaded]]
    shares = np.where(spare <= 0.0, 0.0, spare) / weight[loaded]
    shares = shares[~np.isnan(shares)]
    return float(shares.min()) if shares.size else float("inf")


def max_min_rates_python(usages: Sequence[EdgeUsage], capacity: Sequence[float], counts: Sequence[int]) -> list[float]:
    """Progressive filling in plain Python, operation for operation as
    :func:`max_min_rates_numpy` (per-edge sums accumulate from 0.0 in (flow, edge)
    order, as ``np.bincount`` does), without its per-call overhead."""
    inf = float("inf")
    n = len(usages)
    if n == 1:  # one round: the smallest share of its edges (each summed from 0.0)
        count = float(counts[0])
        level = inf
        for e, m in zip(usages[0].edges, usages[0].weights):
            w = 0.0 + m * count
            if w > 1e-12:
                s = float(capacity[e])
                edge_share = (s if not s <= 0.0 else 0.0) / w
                if edge_share < level:
                    level = edge_share
        return [level]
    rates = [inf] * n
    slot: dict[int, int] = {}  # edge -> local index
    spare: list[float] = []
    weight: list[float] = []
    crossing: list[list[int]] = []  # local edge -> flows crossing it, in order
    entries: list[list[tuple[int, float]]] = []  # flow -> (local edge, weight), in order
    active = 0
    for f, usage in enumerate(usages):
        count = float(counts[f])
        mine = []
        for e, m in zip(usage.edges, usage.weights):
            j = slot.get(e)
            if j is None:
                j = slot[e] = len(spare)
                spare.append(float(capacity[e]))
                weight.append(0.0)
                crossing.append([])
            w = m * count
            weight[j] += w
            crossing[j].append(f)
            mine.append((j, w))
        entries.append(mine)
        if mine:
            active += 1
    if not active:
        return rates
    share = [inf] * len(spare)
    for j, w in enumerate(weight):
        if w > 1e-12:
            s = spare[j]
            share[j] = (s if not s <= 0.0 else 0.0) / w
    fixed = [not mine for mine in entries]
    while active:
        level = min(share)
        threshold = level * (1 + 1e-12)
        bottlenecked: set[int] = set()
        for j, s in enumerate(share):
            if s <= threshold:
                bottlenecked.update(crossing[j])
        newly = sorted(f for f in bottlenecked if not fixed[f])
        taken: dict[int, float] = {}
        lightened: dict[int, float] = {}
        for f in newly:
            rates[f] = level
            fixed[f] = True
            for j, w in entries[f]:
                taken[j] = taken.get(j, 0.0) + w * level
                lightened[j] = lightened.get(j, 0.0) + w
        active -= len(newly)
        for j, amount in taken.items():
            s = spare[j] = spare[j] - amount
            w = weight[j] = weight[j] - lightened[j]
            share[j] = (s if not s <= 0.0 else 0.0) / w if w > 1e-12 else inf
    return rates


def level_sets_apart(level_sets: Sequence[set[Any]]) -> bool:
    """Whether no level of one set (the levels a component fixes alone) lies above a
    level of another within the 1e-12 tolerance of progressive filling (equal levels
    are fine): level by level, with the sets owning each."""
    owners: dict[Any, set[int]] = {}  # (Any: a NaN level is found by identity; see flows.Component)
    for owner, levels in enumerate(level_sets):
        for level in levels:
            owners.setdefault(level, set()).add(owner)
    ordered = sorted(owners)
    for i in range(1, len(ordered)):
        level = ordered[i]
        j = i - 1
        while j >= 0 and level <= ordered[j] * (1 + 1e-12):
            mine, theirs = owners[level], owners[ordered[j]]
            if len(mine) > 1 or mine != theirs:
                return False
            j -= 1
    return True


def connected(seeds: list[Any], stale: set[Any], neighbours: Callable[[Any], Iterable[Any]],
              alone: Callable[[Any], bool] | None = None) -> list[list[Any]]:
    """The flow groups whose max-min rates are computed together with the seeds': those
    joined to them by shared edges (``neighbours`` of a group: the active groups sharing
    an edge with it), a list per component, each in the order found; the components they
    were in are noted in ``stale`` (see :meth:`simulator.network_sharing.ComponentSharing`).
    A seed for which ``alone`` holds shares no edge with any group: a component of its own,
    its neighbours not asked for."""
    # (Groups and components of simulator.flows, which imports this module: not named here.)
    seen: set[Any] = set()
    fresh: list[list[Any]] = []
    for seed in seeds:
        if seed in seen:
            continue
        seen.add(seed)
        if alone is not None and alone(seed):  # (what the walk below finds for it, without the walk)
            if seed.component is not None:
                stale.add(seed.component)
            fresh.append([seed])
            continue
        members, stack = [], [seed]
        while stack:
            group = stack.pop()
            members.append(group)
            if group.component is not None:
                stale.add(group.component)
            for other in neighbours(group):
                if other not in seen:
                    seen.add(other)
                    stack.append(other)
        fresh.append(members)
    return fresh

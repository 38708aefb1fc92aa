"""What moves on a :class:`simulator.network.Network`: flows (over the routes of
:mod:`simulator.route`), the groups of flows that share a rate and the components of
groups joined by shared edges."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from .maxmin import EdgeUsage, level_sets_apart
from .route import Node as Node
from .route import Route as Route  # (re-exported: it lived here)

# Max-min rates of groups, the edges they load with the load on each, and the most
# loaded edge's score and edge (:meth:`simulator.graph_links.GraphLinks.solve`).
Solution = tuple[list[float], np.ndarray, np.ndarray, tuple[float, int]]

# A flow is finished when fewer than this fraction of its bytes remain (float round-off).
_RELATIVE_TOLERANCE = 1e-9
# Tuples of components whose joined arrays are kept (then all forgotten), and the most edges kept for one.
JOINED_KEPT, JOINED_EDGES_KEPT = 1024, 256
_UNRECKONED = -float("inf")  # (a group's finish, not reckoned since it changed)
# Up to this many edges a network's advance adds bytes to every edge at once, cheaper
# than gathering the loaded ones.
WHOLE_ARRAY_EDGES = 4096
# A group keeps its last component alone, taken back when it is alone again with as
# many members (see component_of).
KEEP_ALONE = True


class Flow:
    """One active flow (or a bundle of identical flows moving in lockstep).

    Active flows over the same :class:`EdgeUsage` form a :class:`FlowGroup` and share its
    rate; a flow admitted since the last recomputation belongs to no group yet and
    does not move (rate 0).
    """

    __slots__ = ("usage", "total_bytes", "left", "applied", "done", "label", "seq", "group", "tolerance")

    def __init__(self, usage: EdgeUsage, total_bytes: float, remaining_bytes: float, done: Any, label: str):
        self.usage = usage
        self.total_bytes = total_bytes
        self.left = remaining_bytes  # before the group's steps from ``applied`` on
        self.applied = 0
        self.done = done
        self.label = label
        self.seq = -1  # admission order
        self.group: FlowGroup | None = None
        # Bytes left below which it counts as finished (float round-off).
        self.tolerance = _RELATIVE_TOLERANCE * (1.0 if 1.0 > total_bytes else total_bytes)  # (max, inlined)

    @property
    def remaining_bytes(self) -> float:
        """Bytes still to move, up to the network's last advance."""
        group = self.group
        if group is not None and self.applied < len(group.steps):
            left = self.left
            for step in group.steps[self.applied:]:
                left -= step
            self.left = left
            self.applied = len(group.steps)
        return self.left

    @remaining_bytes.setter
    def remaining_bytes(self, value: float) -> None:
        self.left = value
        if self.group is not None:
            self.applied = len(self.group.steps)

    @property
    def rate(self) -> float:
        """Bytes/s of one member of the bundle."""
        return 0.0 if self.group is None else self.group.rate


class FlowGroup:
    """Active flows over one usage object, in admission order; they share a rate.

    A network keeps a group (and its place in the edge index) when its last flow
    leaves, and reuses it when a flow over the same usage comes again: a bundle over
    thousands of edges is indexed once, not at every start."""

    __slots__ = ("usage", "flows", "rate", "component", "alone", "by_left", "tolerance", "steps", "finish_at",
                 "done_by", "delay", "reckoned_now")

    def __init__(self, usage: EdgeUsage):
        self.usage = usage
        self.flows: list[Flow] = []
        self.rate = 0.0
        self.component: Component | None = None
        self.alone: tuple[int, Component] | None = None  # its last component alone, and its members then
        # Members lose the same bytes at every step, and subtracting the same number
        # never reverses the order of two floats: sorted by bytes left once, they stay
        # sorted, and the first (the lead) finishes first. And the largest of the
        # members' finishing tolerances (an upper bound once members leave).
        self.by_left: list[Flow] = []
        self.tolerance = 0.0
        # Bytes every member has lost at each advance of the network, applied to a
        # member when it is looked at (the same subtractions in the same order).
        self.steps: list[float] = []
        # When the lead will finish at this rate (inf: never), as last reckoned, and a
        # time before which no member can be done (-inf, -inf: to reckon again, as the
        # rate or the lead changed); see :mod:`simulator.finishing`.
        self.finish_at = -float("inf")
        self.done_by = -float("inf")
        self.delay, self.reckoned_now = float("inf"), float("nan")  # (the last reckoning's, and when)

    def set_rate(self, rate: float) -> None:
        if rate != self.rate:
            self.rate = rate
            self.forget_finish()

    def forget_finish(self) -> None:
        self.finish_at = self.done_by = _UNRECKONED

    @property
    def lead(self) -> Flow:
        return self.by_left[0]

    def join(self, flow: Flow) -> None:
        self.forget_finish()
        self.flows.append(flow)
        flow.group = self
        flow.applied = len(self.steps)
        by_left, left = self.by_left, flow.left
        lo, hi = 0, len(by_left)
        while lo < hi:  # after the members with as many bytes left
            mid = (lo + hi) // 2
            if left < by_left[mid].remaining_bytes:
                hi = mid
            else:
                lo = mid + 1
        by_left.insert(lo, flow)
        if flow.tolerance > self.tolerance:
            self.tolerance = flow.tolerance

    def take_finished(self, now: float) -> list[Flow]:
        """Remove and return the members done at ``now``, fewest bytes left first (the
        group is reset when its last member leaves)."""
        rate = self.rate
        by_left = self.by_left
        done: list[Flow] = []
        scanned = 0
        for flow in by_left:  # fewest bytes left first
            left = flow.remaining_bytes
            # Also done when what is left takes less time than the clock can
            # resolve at this instant: waiting for it would not advance time at all.
            if left <= flow.tolerance or (rate > 0 and now + left / rate <= now):
                done.append(flow)
            elif left > self.tolerance:
                break  # every later member has as much left and is not done either
            scanned += 1
        if not done:
            return done
        self.forget_finish()
        if len(done) == len(self.flows):
            self.flows, self.by_left = [], []
            self.reset()
        else:
            gone = set(done)
            self.flows = [flow for flow in self.flows if flow not in gone]
            self.by_left = [flow for flow in by_left[:scanned] if flow not in gone] + by_left[scanned:]
        return done

    def reset(self) -> None:
        """Empty again (its last member left): as a new group over the same usage."""
        self.rate = 0.0
        self.tolerance = 0.0
        self.steps = []
        self.forget_finish()


class Component:
    """Groups joined by the edges they share, with their max-min rates computed alone.

    No flow outside a component crosses its edges, so its rates (and its edges' load)
    are those of the whole network whenever no level it fixes lies within the 1e-12
    tolerance of a different level of another component (progressive filling would
    then fix both in one round); see :meth:`simulator.network.Network._share`.
    """

    __slots__ = ("groups", "rates", "levels", "ordered", "edges", "loads", "best")

    def __init__(self, groups: list[FlowGroup], rates: list[float], edges: np.ndarray, loads: np.ndarray,
                 best: tuple[float, int]):
        self.groups = groups
        self.rates = rates
        # (Levels held as the objects they are, Any: a NaN level is found by identity, and a
        # compiled core would make a new float object of a value typed float.)
        self.levels: set[Any] = set(rates)
        total = sum(rates)
        self.ordered = total == total  # no NaN level (levels can be ordered)
        self.edges = edges  # the edges it loads, and their load in bytes/s
        self.loads = loads
        self.best = best  # (load / capacity + tie break, edge) of its most loaded edge


def component_of(members: list[FlowGroup], solve: Callable[[list[FlowGroup]], Solution]) -> Component:
    """The component of ``members`` (in order) with its max-min solution. A group alone
    again with as many members as when last alone takes that component back: the same
    solution, without asking for it (most components are one group, over and over)."""
    alone = members[0] if len(members) == 1 and KEEP_ALONE else None
    if alone is not None and alone.alone is not None and alone.alone[0] == len(alone.flows):
        return alone.alone[1]
    component = Component(members, *solve(members))
    if alone is not None:
        alone.alone = (len(alone.flows), component)
    return component


def levels_apart(components: ActiveComponents) -> bool:
    """Whether no level of one component lies above a level of another within the
    1e-12 tolerance of progressive filling (equal levels are fine)."""
    if len(components.all) < 2:
        return True
    # Only distinct levels within the tolerance of each other can break it: where none
    # are (the rule), the answer needs no owners. (A NaN level has no order: asked in full.)
    levels = sorted(components.levels)
    total = sum(levels)
    if total == total and not any(upper <= lower * (1 + 1e-12) for lower, upper in zip(levels, levels[1:])):
        return True
    return level_sets_apart([component.levels for component in components.all])


class ActiveComponents:
    """The active components, and what is kept about them from one recomputation to the
    next: whether their levels were apart, and their most loaded edge."""

    def __init__(self) -> None:
        self.all: set[Component] = set()
        self.levels: dict[Any, int] = {}  # every distinct level, with how many components fix it (Any: above)
        self.apart = True  # (at the last recomputation)
        self.unordered = 0  # components with a NaN level
        self._best: tuple[float, int] = (-float("inf"), -1)  # score and edge,
        self._best_owner: Component | None = None  # and the component it belongs to

    def add(self, component: Component) -> None:
        self.all.add(component)
        self.unordered += not component.ordered
        levels = self.levels
        for level in component.levels:
            levels[level] = levels.get(level, 0) + 1

    def discard(self, component: Component) -> None:
        if component in self.all:
            self.all.remove(component)
            self.unordered -= not component.ordered
            levels = self.levels
            for level in component.levels:  # (a NaN level is found as the same object)
                if levels[level] == 1:
                    del levels[level]
                else:
                    levels[level] -= 1

    def need_levels_checked(self, made: list[Component]) -> bool:
        """Levels apart stay apart as components go (a clash needs two distinct levels
        within the tolerance, so it would have been there already): only new components
        (or NaN levels, which have no order) call for a check."""
        return bool(made) or not self.apart or bool(self.unordered)

    def edges_loaded(self, edge_count: int) -> np.ndarray | None:
        """The edges a network's advances add bytes to: every edge of a small network
        (None), else the components' edges. (An edge at load 0 gains 0.0 bytes either way.)"""
        if edge_count <= WHOLE_ARRAY_EDGES:
            return None
        return joined([component.edges for component in self.all])

    def forget_most_loaded(self) -> None:
        self._best_owner = None

    def most_loaded(self, made: list[Component]) -> tuple[float, int]:
        """The most loaded edge of the components, with its score: that of the last
        recomputation while the component holding it stays, compared with the new ones
        (the same edge as looking at every component: largest score, lowest edge)."""
        components: Iterable[Component] = made
        best, edge = self._best
        if self._best_owner not in self.all:
            components, best, edge = self.all, -float("inf"), -1
            self._best_owner = None
        for component in components:
            value, e = component.best
            if value > best or (value == best and e < edge):
                best, edge, self._best_owner = value, e, component
        self._best = best, edge
        return best, edge


def edge_neighbours(edge_groups: dict[int, dict[FlowGroup, None]]) -> Callable[[FlowGroup], Iterable[FlowGroup]]:
    """Groups sharing an edge with a group, found edge by edge (each edge walked
    once per recomputation): the way for many small groups."""
    crossed: set[int] = set()

    def neighbours(group: FlowGroup) -> list[FlowGroup]:
        found: list[FlowGroup] = []
        for e in group.usage.edges:
            if e not in crossed:
                crossed.add(e)
                for other in edge_groups[e]:
                    if other.flows:  # (groups without flows stay indexed)
                        found.append(other)
        return found

    return neighbours


class GroupsByEdge:
    """The groups crossing each edge (in the order they were added), for
    :func:`edge_neighbours`: indexed only once asked for, as a few groups over many
    edges (bundled collectives at 65,536 GPUs: 200,000 edges each) are compared pair
    by pair instead and never need it."""

    def __init__(self) -> None:
        self._by_edge: dict[int, dict[FlowGroup, None]] = {}
        self._new: list[FlowGroup] = []  # added since the index was last brought up to date

    def add(self, group: FlowGroup) -> None:
        self._new.append(group)

    def neighbours(self) -> Callable[[FlowGroup], Iterable[FlowGroup]]:
        """:func:`edge_neighbours` over every group added so far."""
        by_edge = self._by_edge
        for group in self._new:
            for e in group.usage.edges:
                by_edge.setdefault(e, {})[group] = None
        self._new = []
        return edge_neighbours(by_edge)


def pairwise_neighbours(group: FlowGroup, groups: dict[int, FlowGroup],
                        overlaps: dict[tuple[EdgeUsage, EdgeUsage], bool]) -> list[FlowGroup]:
    """Groups sharing an edge with ``group``, tested pair by pair against every
    active group (the answer cached per pair of usages in ``overlaps``): the way for
    a few groups over many edges, as bundled collectives and parameter-server phases are."""
    usage = group.usage
    found = []
    for other in groups.values():
        if other is group:
            continue
        key = (usage, other.usage)
        shared = overlaps.get(key)
        if shared is None:
            if len(overlaps) > 100_000:  # usages made afresh per flow: keep it bounded
                overlaps.clear()
            shared = overlaps[key] = usage.shares_edge_with(other.usage)
        if shared:
            found.append(other)
    return found


class JoinedArrays:
    """Components' edges and loads end to end, kept per tuple of components while small: the
    same few come and go together again and again, and a lookup costs less than concatenating."""

    def __init__(self) -> None:
        self._kept: dict[tuple[Component, ...], tuple[np.ndarray, np.ndarray]] = {}

    def of(self, components: Iterable[Component]) -> tuple[np.ndarray, np.ndarray]:
        key = tuple(components)
        found = self._kept.get(key)
        if found is None:
            found = joined([component.edges for component in key]), joined([component.loads for component in key])
            if len(found[0]) <= JOINED_EDGES_KEPT:
                if len(self._kept) >= JOINED_KEPT:
                    self._kept.clear()
                self._kept[key] = found
        return found


def joined(arrays: list[np.ndarray]) -> np.ndarray:
    """The arrays end to end (one alone as it is: numpy's calls cost more than small
    arrays' work)."""
    if len(arrays) == 1:
        return arrays[0]
    return np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int64)


def admission(flow: Flow) -> int:
    return flow.seq


def oldest(group: FlowGroup) -> int:
    return group.flows[0].seq

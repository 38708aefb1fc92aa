"""Max-min sharing by components, the half of :class:`simulator.network.Network` that
turns the groups of flows that changed into rates, edge loads and the bottleneck.

Groups joined by shared edges form components, and only the components whose flows
changed are recomputed, unless two components fix levels within the tolerance of each
other, where every group is recomputed together as progressive filling over the whole
network would: the rates are those of the whole computation to the last bit
(``tests/test_maxmin.py``). A mixin of :class:`~simulator.network.Network`, which holds
the state named below.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import simpy

from . import flows
from .flows import ActiveComponents, Component, FlowGroup, Node, levels_apart, oldest
from .maxmin import connected as connected_groups

if TYPE_CHECKING:
    from .graph_links import GraphLinks

# Up to this many active groups, components are found by testing pairs of groups for a
# shared edge (cached per pair of usages) instead of walking every edge of every group.
PAIRWISE_GROUPS = 12


@dataclass
class EdgeCounters:
    """Per-edge bytes moved, integrated as flows progress."""

    edge_bytes: np.ndarray
    edge_load: np.ndarray  # bytes/s currently crossing each edge
    last_time: float = 0.0


class ComponentSharing:
    """The network's max-min bookkeeping by components (see the module docstring)."""

    env: simpy.Environment
    edges: Sequence[tuple[Node, Node]]
    capacity: np.ndarray
    links: GraphLinks
    bottleneck_log: list[tuple[float, int]]
    _groups: dict[int, FlowGroup]
    _components: ActiveComponents
    _edge_groups: flows.GroupsByEdge
    _edge_user: dict[int, FlowGroup | None]
    _alone: dict[FlowGroup, bool]
    _unindexed: list[FlowGroup]
    _joined: flows.JoinedArrays
    _touched: dict[FlowGroup, None]
    _stale: set[Component]
    _whole: bool
    _loaded: np.ndarray | None
    _counters: EdgeCounters
    _tie_break: np.ndarray
    _max_tie_break: float
    _positive_capacity: bool

    def _share(self) -> None:
        """Max-min rates of the active groups, the load they put on each edge, and the
        bottleneck.

        Progressive filling over every group (ordered by their oldest flow's admission,
        as per-edge sums depend on the order) gives the same rates as running it on
        each component alone as long as no two components fix levels within the 1e-12
        tolerance of each other: each round then involves one level, and on every edge
        only the groups of one component, in the same order. So only the components
        whose groups changed are recomputed; where that condition fails, every group is
        recomputed together, as the definition says.
        """
        made = self._update_components()
        components = self._components
        if components.need_levels_checked(made):
            components.apart = levels_apart(components)
        if components.apart:
            if self._whole:  # the rates in force came from one whole computation
                self._counters.edge_load[:] = 0.0
                self._apply(components.all)
                self._whole = False
                components.forget_most_loaded()
            self._loaded = components.edges_loaded(len(self.edges))
            best, edge = components.most_loaded(made)
            if not (self._groups and self._positive_capacity and best > self._max_tie_break):
                edge = self._most_loaded()
            self._note_bottleneck(edge)
            return
        self._whole = True
        self._components.forget_most_loaded()
        members = sorted(self._groups.values(), key=oldest)
        rates, edges, loads, _ = self.links.solve(members)
        edge_load = self._counters.edge_load
        edge_load[:] = 0.0
        edge_load[edges] = loads
        for group, rate in zip(members, rates):
            group.set_rate(rate)
        self._loaded = None if len(edge_load) <= flows.WHOLE_ARRAY_EDGES else np.flatnonzero(edge_load)
        self._note_bottleneck(self._most_loaded())

    def _update_components(self) -> list[Component]:
        """Recompute the components the groups that changed belong to (or now join);
        returns the new ones."""
        stale, touched, groups = self._stale, self._touched, self._groups
        self._stale, self._touched = set(), {}
        seeds: list[FlowGroup] = []
        for group in touched:
            if groups.get(id(group.usage)) is group:  # (still active)
                seeds.append(group)
                if group.component is not None:
                    stale.add(group.component)
        for component in stale:  # (its groups still in it; loops, not comprehensions: one call less each)
            for group in component.groups:
                if group.component is component:
                    seeds.append(group)
        fresh = self._connected(seeds, stale) if seeds else []  # (none when groups only left)
        components = self._components
        for component in stale:
            components.discard(component)
        if stale and not self._whole:  # (their edges cleared at once, then the new loads set)
            self._counters.edge_load[self._joined.of(stale)[0]] = 0.0
        made = []
        solve = self.links.solve
        for members in fresh:
            if len(members) > 1:
                members.sort(key=oldest)
            component = flows.component_of(members, solve)
            for group in members:
                group.component = component
            components.add(component)
            made.append(component)
        if not self._whole:
            self._apply(made)
        return made

    def _connected(self, seeds: list[FlowGroup], stale: set[Component]) -> list[list[FlowGroup]]:
        """The groups joined to the seeds by shared edges, a list per component (the
        components they were in noted as stale)."""
        neighbours: Callable[[FlowGroup], Iterable[FlowGroup]]
        if len(self._groups) <= PAIRWISE_GROUPS:
            neighbours = functools.partial(flows.pairwise_neighbours, groups=self._groups,
                                           overlaps=self.links.overlaps)
            return connected_groups(seeds, stale, neighbours)
        return connected_groups(seeds, stale, self._edge_groups.neighbours(), self._alone_of)

    def _alone_of(self, group: FlowGroup) -> bool:
        """Whether no other group made so far crosses an edge of ``group``'s: then none
        can share a component with it, and walking its edges can be skipped (a detailed
        ring's flows, each over links of its own). Found from the one group made over
        each edge (None: several), indexed when asked; the answers kept until another
        group is indexed."""
        if self._unindexed:
            users = self._edge_user
            for made in self._unindexed:
                for e in made.usage.edges:
                    users[e] = made if users.get(e, made) is made else None
            self._unindexed = []
            self._alone.clear()
        alone = self._alone.get(group)
        if alone is None:
            users = self._edge_user
            alone = self._alone[group] = all(users[e] is group for e in group.usage.edges)
        return alone

    def _apply(self, components: Collection[Component]) -> None:
        """Put components' rates and load in force (their edges set at once)."""
        if not components:
            return
        for component in components:
            for group, rate in zip(component.groups, component.rates):
                group.set_rate(rate)
        edges, loads = self._joined.of(components)
        self._counters.edge_load[edges] = loads

    def _most_loaded(self) -> int:
        """The edge whose load is the largest fraction of its capacity (first of equals,
        ties broken by link kind), or -1 when idle."""
        if not self._groups:
            return -1
        return int(np.argmax(self._counters.edge_load / self.capacity + self._tie_break))

    def _note_bottleneck(self, edge: int) -> None:
        if not self.bottleneck_log or self.bottleneck_log[-1][1] != edge:
            self.bottleneck_log.append((self.env._now, edge))


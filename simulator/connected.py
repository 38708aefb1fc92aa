"""The components of a :class:`simulator.network.Network`'s flow groups that a change
touches: the groups joined to the changed ones by shared edges (see
:meth:`simulator.network.Network._update_components`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from .flows import Component, FlowGroup


def connected(seeds: list[FlowGroup], stale: set[Component],
              neighbours: Callable[[FlowGroup], Iterable[FlowGroup]]) -> list[list[FlowGroup]]:
    """The groups joined to the seeds by shared edges (``neighbours`` of a group: the
    active groups sharing an edge with it), a list per component, each in the order
    found; the components they were in are noted in ``stale``."""
    seen: set[FlowGroup] = set()
    fresh: list[list[FlowGroup]] = []
    for seed in seeds:
        if seed in seen:
            continue
        seen.add(seed)
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

"""Bundles of routes counted by their structure where routes are compositions
(``Router.templates``), at a cost that grows with the distinct route shapes and the
ends, not with per-pair searches: :func:`compose_pairs` (any sequence of pairs, e.g.
a ring's neighbours: each route shape composed once and translated per server) and
:func:`compose_product` (every (source, destination) pair of two sets of ends: each
source's way to its switch once per destination it reaches, the switch paths between
switches, and so on; over a leaf-spine per switch and spine, not per pair of switches:
:mod:`simulator.spine_product`)."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import cast

import numpy as np

from topologies.arrays import EdgeNumbers

from .flows import Node, Route
from .routing import Router
from .server_shapes import SWITCH, ShapeTemplate
from .server_templates import ServerTemplates
from .spine_product import ThroughSpines, common_spines, crc32_continued

# Fewer pairs than this are routed one by one: numpy's set-up would cost more.
COMPOSE_PAIRS = 64

# Each end of one side (sources or destinations): its (server, server's switch, edges of
# its head to that switch or tail from it).
_Ends = dict[Node, tuple[object, Node, list[int]]]


class ComposedRoutes:
    """The routes of a sequence of pairs, in groups: per group the positions of its
    pairs in the sequence and their edges, a row per pair (of one length per group)."""

    def __init__(self, count: int, groups: list[tuple[np.ndarray, np.ndarray]]):
        self.count = count
        self.groups = groups

    def rows(self) -> Iterator[np.ndarray]:
        """Each group's edges, a row per route."""
        return (edges for _, edges in self.groups)

    def usage(self) -> dict[int, int]:
        """Edge -> routes crossing it, in the order in which counting route after route
        (as :meth:`simulator.graph_links.GraphLinks.bundle` did) first meets each edge."""
        lengths = np.zeros(self.count, dtype=np.int64)
        for where, edges in self.groups:
            lengths[where] = edges.shape[1]
        starts = np.cumsum(lengths) - lengths
        flat = np.empty(int(lengths.sum()), dtype=np.int64)
        for where, edges in self.groups:
            flat[(starts[where][:, None] + np.arange(edges.shape[1])).ravel()] = edges.ravel()
        edges, first, counts = np.unique(flat, return_index=True, return_counts=True)
        order = np.argsort(first)
        return dict(zip(edges[order].tolist(), counts[order].tolist()))

    def worst_latency(self, latency: np.ndarray) -> float:
        """The largest route latency, each summed edge after edge from its source as
        :class:`simulator.route.Route`'s (so to the same bits)."""
        worst = 0.0
        for edges in self.rows():
            sums = np.zeros(len(edges))
            for column in edges.T:
                sums += latency[column]
            if len(sums):
                worst = max(worst, float(sums.max()))
        return worst


def compose_pairs(router: Router, edge_id: EdgeNumbers, route: Callable[[Node, Node], Route],
                  pairs: Sequence[tuple[Node, Node]]) -> ComposedRoutes | None:
    """The route of every pair, as :meth:`Router.path` finds it, composed once per
    shape (the ends' local names, server shapes and switches) and translated to each
    pair's servers: a ring over 65,536 GPUs has a handful of shapes. Pairs that are not
    such compositions (an end outside every server, a tie only a search settles) take
    ``route``. None where routes are not compositions at all."""
    templates = router.templates
    if templates is None:
        return None
    servers = templates.server  # node -> its server (None: a switch)
    # Per server: its template, the length of its names' prefix, its switch (None: several).
    ends: dict[object, tuple[ShapeTemplate, int, Node | None] | None] = {None: None}

    def end(server: object) -> tuple[ShapeTemplate, int, Node | None] | None:
        found = ends[server] = (templates.template(server), len(str(server)) + 1, templates.switch_of(server))
        return found

    groups: dict[tuple[object, ...], list[int]] = {}
    alone: list[int] = []  # positions of pairs routed one by one
    ends_of: list[tuple[object, object]] = []  # each pair's (source's server, destination's)
    # Members of servers are named "{server}.{local}" (ServerTemplates checks): strings.
    for i, (src, dst) in enumerate(cast("Sequence[tuple[str, str]]", pairs)):
        s, t = servers.get(src), servers.get(dst)
        ends_of.append((s, t))
        es = ends[s] if s in ends else end(s)
        et = ends[t] if t in ends else end(t)
        if es is None or et is None or src == dst:
            alone.append(i)
            continue
        if s == t:
            key: tuple[object, ...] = (es[0], src[es[1]:], dst[es[1]:])
        elif es[2] is None or et[2] is None:
            alone.append(i)
            continue
        else:
            key = (es[0], src[es[1]:], et[0], dst[et[1]:], es[2], et[2])
        members = groups.get(key)
        if members is None:
            groups[key] = [i]
        else:
            members.append(i)
    out: list[tuple[np.ndarray, np.ndarray]] = []
    layouts = _Layouts(templates, edge_id)
    for key, members in groups.items():
        edges = _translated(router, edge_id, key, [ends_of[i] for i in members], [pairs[i] for i in members],
                            layouts)
        if edges is None:
            alone += members
        else:
            out.append((np.array(members, dtype=np.int64), edges))
    for i in alone:
        out.append((np.array([i], dtype=np.int64), np.array([route(*pairs[i]).edges], dtype=np.int64).reshape(1, -1)))
    return ComposedRoutes(len(pairs), out)


def _translated(router: Router, edge_id: EdgeNumbers, key: tuple[object, ...],
                ends: list[tuple[object, object]], pairs: list[tuple[Node, Node]], layouts: _Layouts
                ) -> np.ndarray | None:
    """The edges of the routes of ``pairs``, all of one shape ``key`` (see
    :func:`compose_pairs`), a row per pair: the shape's local path in each pair's
    server, or its way out + the switch path (the pair's hash's choice with ECMP) + its
    way in; None where :meth:`ServerTemplates.shortest` would not compose them so.
    ``ends``: each pair's servers."""
    templates = router.templates
    assert templates is not None
    if len(key) == 3:
        template, a, b = cast(tuple[ShapeTemplate, str, str], key)
        local = templates.inside(template, a, b)
        if len(local) != 1:
            return None  # a search, or the pair's hash, picks: pair by pair
        return layouts.columns(template, local[0], [s for s, _ in ends])
    ts, a, tt, b = cast(tuple[ShapeTemplate, str, ShapeTemplate, str], key[:4])
    found = templates.one_switch(ends[0][0], ends[0][1], a, b)
    if found is None:
        return None
    heads, middles, tails = found
    if len(heads) != 1 or len(tails) != 1 or (len(middles) > 1 and not router.ecmp):
        return None  # several ways out or in tie: a replay of the search, or the hash, picks
    head = layouts.columns(ts, heads[0], [s for s, _ in ends])
    tail = layouts.columns(tt, tails[0], [t for _, t in ends])
    paths = np.array([[edge_id[u][v] for u, v in zip(m, m[1:])] for m in middles], dtype=np.int64)
    paths = paths.reshape(len(middles), len(middles[0]) - 1)
    if len(middles) == 1:
        middle = np.repeat(paths, len(pairs), axis=0)
    else:  # the pair's hash picks among the sorted switch paths, as ServerTemplates.shortest
        middle = paths[[zlib.crc32(f"{s}->{d}".encode()) % len(middles) for s, d in pairs]]
    return np.hstack([head, middle, tail])


class _Layouts:
    """Edge ids of a template's local edges in its servers. A graph's edges are numbered
    in its adjacency order (GraphLinks), and a shape lists each member's successors in
    that order, so where a server's members are numbered in one run (no other node's
    edges between its first and its last member, checked per server) the edge u -> v
    of a server is its first edge + the template's edges before u's + v's place among
    u's successors: arithmetic on arrays instead of dict lookups per edge and server
    (each a likely cache miss at 65,536 GPUs). Else, and for edges out of a switch
    (numbered in the switch's run), a lookup of the real nodes (a server's members are
    listed in its template's order, its switches in the template's numbering)."""

    def __init__(self, templates: ServerTemplates, edge_id: EdgeNumbers):
        self.templates, self.edge_id = templates, edge_id
        self._offsets: dict[ShapeTemplate, dict[tuple[str, str], int]] = {}  # (u, v) -> its place in the run
        self._places: dict[ShapeTemplate, dict[str, int]] = {}  # member -> its place among the members
        self._base: dict[object, int | None] = {}  # server -> its first edge (None: not one run)

    def offsets(self, template: ShapeTemplate) -> dict[tuple[str, str], int]:
        found = self._offsets.get(template)
        if found is None:
            found = self._offsets[template] = {}
            for u, succ in template.succ.items():
                for v, _ in succ:
                    found[(u, v)] = len(found)
            self._places[template] = {u: k for k, u in enumerate(template.succ)}
        return found

    def base(self, template: ShapeTemplate, server: object) -> int | None:
        members, offsets = self.templates.members[server], self.offsets(template)
        base, last = self.edge_id.first(members[0]), self.edge_id.first(members[-1])
        if base is not None and last is not None:  # the last member's edges start where the run says
            local = members[-1][len(str(server)) + 1:]
            place = offsets[(local, template.succ[local][0][0])]
            base = base if last == base + place else None
        else:
            base = None
        self._base[server] = base
        return base

    def nodes(self, template: ShapeTemplate, name: str, servers: list[object]) -> list[Node]:
        """The node of local ``name`` in each of ``servers``."""
        if name.startswith(SWITCH):
            number, switches = template.number[name], self.templates.switches
            return [switches[server][number] for server in servers]
        self.offsets(template)
        place, members = self._places[template][name], self.templates.members
        return [members[server][place] for server in servers]

    def columns(self, template: ShapeTemplate, path: list[str], servers: list[object]) -> np.ndarray:
        """The edges of local ``path`` in each of ``servers``, a row per server."""
        known = self._base
        bases = [known[server] if server in known else self.base(template, server) for server in servers]
        offsets = self.offsets(template)
        base = np.array(bases, dtype=np.int64) if None not in bases else None
        found = np.empty((len(servers), len(path) - 1), dtype=np.int64)
        for j, (u, v) in enumerate(zip(path, path[1:])):
            if base is not None and not u.startswith(SWITCH):
                found[:, j] = base + offsets[(u, v)]
            else:
                edge_id = self.edge_id
                found[:, j] = [edge_id[a][b] for a, b in zip(self.nodes(template, u, servers),
                                                             self.nodes(template, v, servers))]
        return found


def compose_product(router: Router, edge_id: EdgeNumbers, latency: list[float],
                    route: Callable[[Node, Node], Route], sources: Sequence[Node], destinations: Sequence[Node]
                    ) -> tuple[dict[int, int], float] | None:
    """Usage and worst route latency of every (source, destination) pair, from each
    end's head (to its switch) or tail (from it), the switch paths between switches
    and the routes of pairs inside one server; None where routes are not such
    compositions. Latency: a route's is summed edge after edge from its source, and
    adding the same numbers to a larger start never gives less, so the worst pair
    through a given switch path and tail starts from the slowest head. ``route`` gives
    the route of a pair inside one server."""
    templates = router.templates
    if templates is None:
        return None
    eid, lat = edge_id, latency

    def edges_of(path: list[Node]) -> list[int]:
        return [eid[u][v] for u, v in zip(path, path[1:])]

    def fold(start: float, edges: Iterable[int]) -> float:
        for e in edges:
            start += lat[e]
        return start

    ends = []
    for nodes, part in ((sources, templates.head), (destinations, templates.tail)):
        counts: dict[Node, int] = {}
        for node in nodes:
            counts[node] = counts.get(node, 0) + 1
        info: _Ends = {}
        for node in counts:
            path = part(node)
            if path is None:
                return None
            server = templates.server_of(node)
            info[node] = (server, templates.switch_of(server), edges_of(path))
        ends.append((counts, info))
    (s_count, s_info), (d_count, d_info) = ends
    s_at: dict[object, int] = {}  # sources per server, and per switch
    d_at: dict[object, int] = {}
    s_at_switch: dict[Node, int] = {}
    d_at_switch: dict[Node, int] = {}
    for count, info, per_server, per_switch in ((s_count, s_info, s_at, s_at_switch),
                                                (d_count, d_info, d_at, d_at_switch)):
        for node, (server, switch, _) in info.items():
            per_server[server] = per_server.get(server, 0) + count[node]
            per_switch[switch] = per_switch.get(switch, 0) + count[node]

    mapping: dict[int, int] = {}
    worst = 0.0

    def add(edges: Iterable[int], times: int) -> None:
        if times:
            for e in edges:
                mapping[e] = mapping.get(e, 0) + times

    for s, (server, _, edges) in s_info.items():  # a head, once per destination in another server
        add(edges, s_count[s] * (len(destinations) - d_at.get(server, 0)))
    for d, (server, _, edges) in d_info.items():  # a tail, once per source in another server
        add(edges, d_count[d] * (len(sources) - s_at.get(server, 0)))
    s_in: dict[object, list[Node]] = {}
    for s, (server, _, _) in s_info.items():
        s_in.setdefault(server, []).append(s)
    for d, (server, _, _) in d_info.items():  # pairs inside one server: their own routes
        for s in s_in.get(server, ()):
            found_route = route(s, d)
            add(found_route.edges, s_count[s] * d_count[d])
            worst = max(worst, found_route.latency_s)
    heads = {s: fold(0, edges) for s, (_, _, edges) in s_info.items()}
    slowest_at: dict[Node, list[tuple[float, object]]] = {}  # switch -> (head, server), slowest first
    for s, (server, switch, _) in s_info.items():
        slowest_at.setdefault(switch, []).append((heads[s], server))
    for members in slowest_at.values():
        members.sort(key=lambda hs: -hs[0])
    # Between switches: per switch where they all hang off the same spines, else per pair of switches.
    spines = common_spines(templates.switch_links, [*s_at_switch, *d_at_switch])
    through = None if spines is None else ThroughSpines(spines, eid, lat, s_info, s_count, d_info, d_count)
    if through is not None and through.exact(heads.values()):
        if not through.composable(router.ecmp):
            return None
        for edges, times in through.usage():
            add(edges, times)
        into_switch = through.into_switch(slowest_at)
    else:
        found_paths = _switch_paths(router, templates, s_at_switch, d_at_switch, edges_of, lat)
        if found_paths is None:
            return None
        paths = found_paths  # (narrowed for the closure)
        for key, times in _pairs_per_switch_path(paths, s_count, s_info, d_count, d_info, s_at_switch,
                                                 d_at_switch):
            add(key, times)

        def into_switch(d_switch: Node, d_server: object) -> float:
            into = -1.0
            for s_switch, members in slowest_at.items():
                head = next((h for h, server in members if server != d_server), None)
                if head is not None:
                    into = max(into, fold(head, paths[(s_switch, d_switch)][0]))
            return into
    # Worst latency: per destination (switch, server), the slowest head from another
    # server plus the switch path (each of equal latency), then the destination's tail.
    worst_into: dict[tuple[Node, object], float] = {}
    for d_server, d_switch, tail in d_info.values():
        into = worst_into.get((d_switch, d_server))
        if into is None:
            into = worst_into[(d_switch, d_server)] = into_switch(d_switch, d_server)
        if into >= 0:
            worst = max(worst, fold(into, tail))
    return mapping, worst


def _switch_paths(router: Router, templates: ServerTemplates, s_at_switch: dict[Node, int],
                  d_at_switch: dict[Node, int], edges_of: Callable[[list[Node]], list[int]], lat: list[float]
                  ) -> dict[tuple[Node, Node], list[list[int]]] | None:
    """The edges of the switch paths from every source switch to every destination switch:
    one, or equal-cost ones that each pair's hash picks among; None where a search would
    break a tie, or equal-cost paths differ in latency (the worst would need every pair)."""
    paths: dict[tuple[Node, Node], list[list[int]]] = {}
    for d_switch in d_at_switch:
        for s_switch in s_at_switch:
            found = templates.switch_paths(s_switch, d_switch)
            if not found or (len(found) > 1 and not router.ecmp):
                return None
            paths[(s_switch, d_switch)] = [edges_of(p) for p in found]
            if len({tuple(lat[e] for e in edges) for edges in paths[(s_switch, d_switch)]}) > 1:
                return None
    return paths


def _pairs_per_switch_path(paths: dict[tuple[Node, Node], list[list[int]]], s_count: dict[Node, int],
                           s_info: _Ends, d_count: dict[Node, int], d_info: _Ends, s_at_switch: dict[Node, int],
                           d_at_switch: dict[Node, int]) -> Iterable[tuple[list[int], int]]:
    """(switch path edges, pairs that take it) over every pair between two switches.
    Where there are several, the pair's hash picks (crc32 of "src->dst", as
    :func:`simulator.server_templates.ecmp_choice`): computed for every source at once per destination,
    continuing each source's crc of "src->" over the destination's name."""
    hashed = {key for key, choices in paths.items() if len(choices) > 1}
    for key, choices in paths.items():
        if key not in hashed and key[0] != key[1]:
            yield choices[0], s_at_switch[key[0]] * d_at_switch[key[1]]
    if not hashed:
        return
    order = list(s_info)
    row_of = {switch: row for row, switch in enumerate(s_at_switch)}
    where = np.array([row_of[s_info[s][1]] for s in order], dtype=np.int64)
    weights = np.array([s_count[s] for s in order], dtype=float)
    starts = np.array([zlib.crc32(f"{s}->".encode()) for s in order], dtype=np.uint32)
    widths: dict[Node, set[int]] = {}  # destination switch -> numbers of choices into it
    for s_switch, d_switch in hashed:
        widths.setdefault(d_switch, set()).add(len(paths[(s_switch, d_switch)]))
    taken: dict[tuple[Node, int], np.ndarray] = {}  # (destination switch, n) -> pairs per (switch, choice)
    for d, (_, d_switch, _) in d_info.items():
        if d_switch not in widths:
            continue
        crc = crc32_continued(str(d).encode(), starts)
        for n in widths[d_switch]:
            counted = np.bincount(where * n + (crc % n).astype(np.int64), weights=weights,
                                  minlength=len(row_of) * n) * d_count[d]
            key = (d_switch, n)
            taken[key] = counted if key not in taken else taken[key] + counted
    for s_switch, d_switch in hashed:
        choices = paths[(s_switch, d_switch)]
        n, row = len(choices), row_of[s_switch]
        for middle, times in zip(choices, taken[(d_switch, n)][row * n:(row + 1) * n]):
            yield middle, int(times)

"""The edge usage of every (source, destination) pair of two sets of ends, counted
end by end where routes are compositions (``Router.templates``): each source's way to
its switch once per destination it reaches, the switch paths between switches, and
so on, at a cost that grows with the ends, not with their product."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from .flows import Node, Route
from .routing import Router

# Each end of one side (sources or destinations): its (server, server's switch, edges of
# its head to that switch or tail from it).
_Ends = dict[Node, tuple[object, Node, list[int]]]


def compose_product(router: Router, edge_id: dict[Node, dict[Node, int]], latency: list[float],
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
    # Between switches: one switch path per pair of switches, or equal-cost ones that
    # each pair's hash picks among.
    paths: dict[tuple[Node, Node], list[list[int]]] = {}
    for d_switch in d_at_switch:
        for s_switch in s_at_switch:
            found = templates.switch_paths(s_switch, d_switch)
            if not found or (len(found) > 1 and not router.ecmp):
                return None  # a search would break the tie
            paths[(s_switch, d_switch)] = [edges_of(p) for p in found]
            if len({tuple(lat[e] for e in edges) for edges in paths[(s_switch, d_switch)]}) > 1:
                return None  # equal-cost paths of unequal latency: the worst needs every pair
    for key, times in _pairs_per_switch_path(paths, s_count, s_info, d_count, d_info, s_at_switch, d_at_switch):
        add(key, times)
    # Worst latency: per destination (switch, server), the slowest head from another
    # server plus the switch path (each of equal latency), then the destination's tail.
    heads = {s: fold(0, edges) for s, (_, _, edges) in s_info.items()}
    slowest_at: dict[Node, list[tuple[float, object]]] = {}  # switch -> (head, server), slowest first
    for s, (server, switch, _) in s_info.items():
        slowest_at.setdefault(switch, []).append((heads[s], server))
    for members in slowest_at.values():
        members.sort(key=lambda hs: -hs[0])
    worst_into: dict[tuple[Node, object], float] = {}
    for d_server, d_switch, tail in d_info.values():
        into = worst_into.get((d_switch, d_server))
        if into is None:
            into = -1.0
            for s_switch, members in slowest_at.items():
                head = next((h for h, server in members if server != d_server), None)
                if head is not None:
                    into = max(into, fold(head, paths[(s_switch, d_switch)][0]))
            worst_into[(d_switch, d_server)] = into
        if into >= 0:
            worst = max(worst, fold(into, tail))
    return mapping, worst


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
        crc = _crc32_continued(str(d).encode(), starts)
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


def _crc32_table() -> np.ndarray:
    """The byte table of CRC-32 (reflected polynomial 0xEDB88320, zlib's)."""
    table = []
    for byte in range(256):
        c = byte
        for _ in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
        table.append(c)
    return np.array(table, dtype=np.uint32)


_CRC32 = _crc32_table()


def _crc32_continued(data: bytes, starts: np.ndarray) -> np.ndarray:
    """``zlib.crc32(data, start)`` for every start (uint32), vectorized over starts."""
    c = starts ^ np.uint32(0xFFFFFFFF)
    for byte in data:
        c = _CRC32[(c ^ np.uint32(byte)) & np.uint32(0xFF)] ^ (c >> np.uint32(8))
    return c ^ np.uint32(0xFFFFFFFF)

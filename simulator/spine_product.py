"""The switch paths of a product bundle (:func:`simulator.route_product.compose_product`)
over a two-level fabric, counted per switch instead of per pair of switches.

Where every switch the ends hang off links to the same spines and to nothing else, and
every spine links back to each of those switches (a leaf-spine fabric), the shortest
paths between two of those switches are one through each spine, in the spines' name
order (as :meth:`simulator.server_templates.ServerTemplates.switch_paths` sorts them).
Then a pair's route between switches is known from its spine alone, and each edge's
count is a sum over switches, not over pairs of them (a leaf-spine of 512 leaves has a
quarter of a million pairs of leaves).

ECMP picks a pair's spine as ``crc32("src->dst") % spines``. CRC-32 is affine in its
start value over GF(2): ``crc32(dst, crc32("src->"))`` is ``crc32(zeros, start) ^
crc32(zeros, 0) ^ crc32(dst, 0)`` for ``zeros`` as long as ``dst``. With a power of two
of spines the choice is the low bits of that, so it is a source's bits XOR a
destination's: sources are counted per (switch, bits), destinations per (switch, name
length, bits), and never pair by pair. With other spine counts each destination's
choices over every source are hashed at once (numpy), still without pairs of switches.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from topologies.arrays import EdgeNumbers

from .flows import Node

# Each end of one side: (server, its switch, edges of its head or tail), as route_product's _Ends.
Ends = dict[Node, tuple[object, Node, list[int]]]


def common_spines(links: dict[Node, set[Node]], switches: Iterable[Node]) -> list[Node] | None:
    """The spines, in name order, where each of ``switches`` links to exactly them (and
    is none of them) and each of them links to every one of ``switches``; else None."""
    in_play = set(switches)
    first = next(iter(in_play), None)
    spines = links.get(first) if first is not None else None
    if not spines or not in_play.isdisjoint(spines) or any(links.get(x) != spines for x in in_play):
        return None
    if any(not in_play <= links.get(m, set()) for m in spines):
        return None
    return sorted(spines, key=str)


class ThroughSpines:
    """Every (source, destination) pair between two switches of a two-level fabric (see
    the module doc): the edges into and out of the spines with the pairs crossing each,
    and the latency of the way from a slowest head to each destination switch."""

    def __init__(self, spines: list[Node], edge_id: EdgeNumbers, latency: Sequence[float],
                 s_info: Ends, s_count: dict[Node, int], d_info: Ends, d_count: dict[Node, int]):
        self.spines, self.s_info, self.s_count, self.d_info, self.d_count = spines, s_info, s_count, d_info, d_count
        switches = dict.fromkeys([switch for _, switch, _ in s_info.values()])
        switches.update(dict.fromkeys([switch for _, switch, _ in d_info.values()]))
        self.switches = list(switches)  # rows of the counts: source switches first
        self.row = {switch: row for row, switch in enumerate(self.switches)}
        self.up = [[edge_id[a][m] for m in spines] for a in self.switches]  # per row, per spine
        self.down = [[edge_id[m][b] for m in spines] for b in self.switches]
        self.latency = latency
        self.s_rows = {s_info[s][1] for s in s_info}
        self.d_rows = {d_info[d][1] for d in d_info}

    def exact(self, heads: Iterable[float]) -> bool:
        """Whether the spine links' latencies and the ``heads`` are finite and of positive
        sign (no NaN, no -0.0): then the slowest of sums is the sum on the slowest (adding
        a number is monotone), a maximum is one in any order, and equal latencies are
        equal floats. Else the count per pair of switches decides."""
        lat = self.latency
        spine_links = (lat[e] for edges in (self.up, self.down) for row in edges for e in row)
        return all(math.isfinite(x) and math.copysign(1.0, x) > 0 for values in (spine_links, heads) for x in values)

    def composable(self, ecmp: bool) -> bool:
        """False where compose_product gives up on some pair of distinct switches: several
        spines without ECMP, or spine paths of unequal latencies."""
        if not self.s_rows or not self.d_rows or len(self.s_rows | self.d_rows) == 1:
            return True  # every pair on one switch: no switch path at all
        if len(self.spines) > 1 and not ecmp:
            return False
        lat = self.latency
        uneven_up = {a for a in self.s_rows if len({lat[e] for e in self.up[self.row[a]]}) > 1}
        uneven_down = {b for b in self.d_rows if len({lat[e] for e in self.down[self.row[b]]}) > 1}
        return not any(self.d_rows - {a} for a in uneven_up) and not any(self.s_rows - {b} for b in uneven_down)

    def usage(self) -> Iterable[tuple[list[int], int]]:
        """(edges, pairs crossing them) for every edge between a switch and a spine that a
        pair between two distinct switches crosses: the switches' uplinks, then downlinks."""
        up, down = self._counts()
        for edges, counts in ((self.up, up), (self.down, down)):
            for row_edges, row_counts in zip(edges, counts.tolist()):
                for e, times in zip(row_edges, row_counts):
                    if times:
                        yield [e], times

    def into_switch(self, slowest_at: dict[Node, list[tuple[float, object]]]) -> Callable[[Node, object], float]:
        """The latency of the slowest way from a head of a server other than ``d_server``
        to switch ``d_switch`` (-1.0: none), as a function of the two: from another switch
        through the first spine (every spine's is equal), or from ``d_switch`` itself.
        ``slowest_at``: per source switch, its (head, server)s, slowest first."""
        lat, first = self.latency, 0
        ups = sorted(((members[0][0] + lat[self.up[self.row[a]][first]], a) for a, members in slowest_at.items()),
                     key=lambda ua: -ua[0])[:2]  # the slowest two switches: one is not the destination's
        across = {}
        for b in self.d_rows:
            up = next((value for value, a in ups if a != b), None)
            if up is not None:
                across[b] = up + lat[self.down[self.row[b]][first]]

        def into_switch(d_switch: Node, d_server: object) -> float:
            into = max(-1.0, across.get(d_switch, -1.0))
            head = next((h for h, server in slowest_at.get(d_switch, ()) if server != d_server), None)
            return into if head is None else max(into, head)
        return into_switch

    def _counts(self) -> tuple[np.ndarray, np.ndarray]:
        """Pairs per (switch, spine) up, and per (switch, spine) down, between distinct switches."""
        n = len(self.spines)
        if n & (n - 1) == 0:
            return self._counts_by_bits(n - 1)
        return self._counts_by_destination()

    def _counts_by_bits(self, mask: int) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`_counts` where the spine is the low bits of the hash (see the module doc)."""
        n, rows = mask + 1, len(self.switches)
        lengths = {len(str(d).encode()) for d in self.d_info} if mask else {0}
        # Sources per (switch, bits of their start for destinations of each name length).
        where = np.array([self.row[switch] for _, switch, _ in self.s_info.values()], dtype=np.int64)
        weights = np.array([self.s_count[s] for s in self.s_info], dtype=np.int64)
        starts = [zlib.crc32(f"{s}->".encode()) for s in self.s_info] if mask else [0] * len(where)
        sources = {}
        for length in lengths:
            zeros = bytes(length)
            bits = np.array([zlib.crc32(zeros, start) for start in starts], dtype=np.int64) ^ zlib.crc32(zeros)
            sources[length] = np.zeros((rows, n), dtype=np.int64)
            np.add.at(sources[length], (where, bits & mask), weights)
        # Destinations per (switch, name length, bits of their own crc).
        classes = sorted({(length, bits) for length in lengths for bits in range(n)})
        column = {c: k for k, c in enumerate(classes)}
        destinations = np.zeros((rows, len(classes)), dtype=np.int64)
        for d, (_, switch, _) in self.d_info.items():
            name = str(d).encode()
            key = (len(name), zlib.crc32(name) & mask) if mask else (0, 0)
            destinations[self.row[switch], column[key]] += self.d_count[d]
        all_destinations = destinations.sum(axis=0)
        up, down = np.zeros((rows, n), dtype=np.int64), np.zeros((rows, n), dtype=np.int64)
        spine = np.arange(n)
        for k, (length, own_bits) in enumerate(classes):
            by_source = sources[length][:, spine ^ own_bits]  # [switch, spine]: sources whose pair takes it
            up += (all_destinations[k] - destinations[:, k])[:, None] * by_source  # to other switches
            down += destinations[:, [k]] * (by_source.sum(axis=0)[None, :] - by_source)  # from other switches
        return up, down

    def _counts_by_destination(self) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`_counts` hashing each destination with every source at once."""
        n, rows = len(self.spines), len(self.switches)
        order = list(self.s_info)
        where = np.array([self.row[self.s_info[s][1]] for s in order], dtype=np.int64)
        weights = np.array([self.s_count[s] for s in order], dtype=np.int64)
        starts = np.array([zlib.crc32(f"{s}->".encode()) for s in order], dtype=np.uint32)
        up, down = np.zeros((rows, n), dtype=np.int64), np.zeros((rows, n), dtype=np.int64)
        for d, (_, switch, _) in self.d_info.items():
            choice = (crc32_continued(str(d).encode(), starts) % n).astype(np.int64)
            taken = np.bincount(where * n + choice, weights=weights, minlength=rows * n).astype(np.int64)
            taken = taken.reshape(rows, n) * self.d_count[d]
            b = self.row[switch]
            down[b] += taken.sum(axis=0) - taken[b]
            taken[b] = 0
            up += taken
        return up, down


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


def crc32_continued(data: bytes, starts: np.ndarray) -> np.ndarray:
    """``zlib.crc32(data, start)`` for every start (uint32), vectorized over starts."""
    c = starts ^ np.uint32(0xFFFFFFFF)
    for byte in data:
        c = _CRC32[(c ^ np.uint32(byte)) & np.uint32(0xFF)] ^ (c >> np.uint32(8))
    return c ^ np.uint32(0xFFFFFFFF)

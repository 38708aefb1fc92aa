"""Collective algorithms as programs of point-to-point flows over the real topology.

These are the per-algorithm plans, kept apart from the shared flow plumbing
(:mod:`simulator.collectives.fabric`) and from the library that picks between them
(:mod:`simulator.collectives.library`): the closed forms below are what the tests
check them against, and what the ``ideal`` backend reproduces exactly.

Each algorithm is a generator to run inside a SimPy process; it returns when every
rank holds the reduced result. All of them have two paths over the same network:

* **detailed**: every flow of every rank, with its data dependencies;
* **fast**: each phase in which all ranks move the same bytes at the same time is one
  bundled flow over every rank's edges (advancing at its most contended member's rate).

Closed forms on N ranks with per-step latency a and bandwidth B, message S:

* ``ring``: reduce-scatter then all-gather, 2(N-1) steps of S/N:
  2(N-1)/N * S/B + 2(N-1) a.
* ``tree``: NCCL's double binary tree: two binary trees over the ranks, each carrying
  half the data, built so that a rank is interior in at most one of them. A reduce
  phase streams every child's half up to its parent while a broadcast phase streams it
  back down (chunks pipeline through the levels, so each phase costs its busiest link
  plus one latency per level): about 2 S/B + 2 depth a, depth = ceil(log2(N+1)).
  Fewer latency terms than ring, so it wins for small messages on many ranks.
* ``halving_doubling``: Rabenseifner: reduce-scatter by recursive halving, all-gather
  by recursive doubling, log2(N) pairwise exchanges each way:
  2(N-1)/N * S/B + 2 log2(N) a (N a power of two; otherwise the extra ranks first fold
  their data into a partner and get the result back at the end: + 2 (S/B + a)).
* ``hierarchical``: reduce-scatter inside each node over its fast links, allreduce of
  each 1/L shard across nodes (L concurrent rings, one per local GPU index), all-gather
  inside each node. The slow inter-node links carry 2(M-1)/M * S per node instead of
  2(N-1)/N * S, over 2(M-1) instead of 2(N-1) latency-bound steps.

Plain allgather, reduce-scatter and broadcast (:func:`plain_collective`) run here too,
as a backend without a latency table runs them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

import simpy

from ..network import Network
from .fabric import Fabric, Program, concurrent_flows, ring_steps

#: Whatever a tree is built over: ranks, or node indices (the library's tree of nodes).
R = TypeVar("R", bound=Hashable)


def ring_allreduce(f: Fabric, nbytes: float) -> Program:
    ranks = f.ranks
    n = len(ranks)
    yield from ring_steps(f, [ranks], nbytes / n, 2 * (n - 1))


def binary_tree(ranks: Sequence[R]) -> list[tuple[R, R]]:
    """(child, parent) edges of a balanced binary tree over ``ranks``.

    Rank ``i`` sits at position p = i + 1; the root is the largest power of two <= N and
    a node whose lowest set bit is b > 1 has children p - b/2 and p + b/2 (or the
    nearest p + b/4, p + b/8, ... that exists). Odd positions are exactly the leaves,
    which is what lets a shifted copy of the tree use the leaves as interior nodes.
    """
    n = len(ranks)
    edges: list[tuple[R, R]] = []

    def children(p: int) -> list[int]:
        b = p & -p
        if b == 1:
            return []
        kids = [p - b // 2]
        step = b // 2
        while step >= 1 and p + step > n:
            step //= 2
        if step >= 1:
            kids.append(p + step)
        return kids

    stack = [1 << (n.bit_length() - 1)]
    while stack:
        p = stack.pop()
        for c in children(p):
            edges.append((ranks[c - 1], ranks[p - 1]))
            stack.append(c)
    return edges


def double_binary_tree(ranks: Sequence[R]) -> tuple[list[tuple[R, R]], list[tuple[R, R]]]:
    """Two trees; the second is the first over the ranks shifted by one position, so
    the first tree's interior nodes (even positions) are the second's leaves."""
    shifted = list(ranks[-1:]) + list(ranks[:-1])
    return binary_tree(ranks), binary_tree(shifted)


def tree_depth(n: int) -> int:
    """Levels of :func:`binary_tree` over ``n`` ranks."""
    return math.ceil(math.log2(n + 1))


def tree_allreduce(f: Fabric, nbytes: float) -> Program:
    ranks = f.ranks
    if len(ranks) < 2 or nbytes == 0:
        return
    first, second = double_binary_tree(ranks)
    up = first + second
    down = [(parent, child) for child, parent in up]
    # Each level of the pipeline adds one hop's latency beyond the first.
    levels = tree_depth(len(ranks)) - 1
    level_latency = max(f.network.route(a, b).latency_s for a, b in up) * levels
    yield from concurrent_flows(f, up, nbytes / 2, level_latency)
    yield from concurrent_flows(f, down, nbytes / 2, level_latency)


def halving_doubling_allreduce(f: Fabric, nbytes: float) -> Program:
    ranks = f.ranks
    n = len(ranks)
    if n < 2 or nbytes == 0:
        return
    p = 1 << (n.bit_length() - 1)  # largest power of two <= n
    extra = [(ranks[p + i], ranks[i]) for i in range(n - p)]
    yield from concurrent_flows(f, extra, nbytes)  # fold the extra ranks in
    core = ranks[:p]
    size = nbytes
    distances = [p >> (k + 1) for k in range(int(math.log2(p)))]
    for d in distances:  # recursive halving: exchange half of what is left
        size /= 2
        yield from concurrent_flows(f, [(core[i], core[i ^ d]) for i in range(p)], size)
    for d in reversed(distances):  # recursive doubling: gather it back
        yield from concurrent_flows(f, [(core[i], core[i ^ d]) for i in range(p)], size)
        size *= 2
    yield from concurrent_flows(f, [(b, a) for a, b in extra], nbytes)  # hand results back


def hierarchical_allreduce(f: Fabric, nbytes: float) -> Program:
    local = len(f.nodes[0])
    if any(len(node) != local for node in f.nodes):
        raise ValueError("hierarchical allreduce needs the same number of GPUs in every node")
    if len(f.nodes) == 1 or local == 1:
        yield from ring_allreduce(f, nbytes)
        return
    m = len(f.nodes)
    shard = nbytes / local
    yield from ring_steps(f, f.nodes, shard, local - 1)  # reduce-scatter inside nodes
    across = [[node[j] for node in f.nodes] for j in range(local)]
    yield from ring_steps(f, across, shard / m, 2 * (m - 1))  # allreduce each shard across nodes
    yield from ring_steps(f, f.nodes, shard, local - 1)  # all-gather inside nodes


ALLREDUCE_ALGORITHMS: dict[str, Callable[[Fabric, float], Program]] = {
    "ring": ring_allreduce,
    "tree": tree_allreduce,
    "halving_doubling": halving_doubling_allreduce,
    "hierarchical": hierarchical_allreduce,
}


def fastest_algorithm(f: Fabric, nbytes: float) -> str:
    """The algorithm ``auto`` uses for one message size: each candidate is simulated
    alone on an idle copy of the network (fast path) and the quickest wins, ties to
    the earlier name in :data:`ALLREDUCE_ALGORITHMS`. This is the same selection NCCL
    makes from its cost model, made with the simulator's own model of this topology."""
    best, best_time = "ring", math.inf
    for name, algorithm in ALLREDUCE_ALGORITHMS.items():
        env = simpy.Environment()
        scratch = Fabric(env, Network(env, f.network.structure, f.network.links.scale), f.nodes, detailed=False)
        env.process(algorithm(scratch, nbytes))
        env.run()
        if env.now < best_time * (1 - 1e-9):
            best, best_time = name, env.now
    return best


def plain_collective(f: Fabric, collective: str, nbytes: float) -> Program:
    """allgather / reduce_scatter as n-1 ring steps of S/n; broadcast as a pipelined
    chain root -> 1 -> ... -> n-1 moving S over every hop at once."""
    n = len(f.ranks)
    if collective in ("allgather", "reduce_scatter"):
        yield from ring_steps(f, [f.ranks], nbytes / n, n - 1)
    else:
        yield from concurrent_flows(f, list(zip(f.ranks[:-1], f.ranks[1:])), nbytes)

"""Allreduce algorithms against their closed forms, and against each other."""

from __future__ import annotations

import math

import networkx as nx
import pytest
import simpy

from simulator.collectives.algorithms import ALLREDUCE_ALGORITHMS, double_binary_tree, fastest_algorithm, tree_depth
from simulator.collectives.fabric import Fabric
from simulator.network import Network
from topologies import add_duplex_link

from .conftest import star

GB = 1e9


def run(graph: nx.DiGraph, nodes, algorithm: str, nbytes: float, detailed: bool) -> float:
    env = simpy.Environment()
    fabric = Fabric(env, Network(env, graph), nodes, detailed)
    env.process(ALLREDUCE_ALGORITHMS[algorithm](fabric, nbytes))
    env.run()
    return env.now


def flat(n: int, bandwidth: float = 10 * GB, hop: float = 5e-6):
    """n ranks on one switch: every pair is two hops (alpha = 2 x hop) at ``bandwidth``."""
    return star(n, bandwidth, hop), [[f"h{i}"] for i in range(n)]


def two_level(m: int, local: int, fast: float, slow: float, hop: float = 1e-6):
    """m nodes of ``local`` GPUs on a node switch (fast links); node switches joined by
    one slow link each to a top switch."""
    g = nx.DiGraph()
    nodes = []
    for k in range(m):
        g.add_node(f"ns{k}", kind="pcie_switch")
        add_duplex_link(g, f"ns{k}", "top", bandwidth=slow, latency=hop, link="network")
        members = []
        for j in range(local):
            gpu = f"n{k}g{j}"
            g.add_node(gpu, kind="gpu")
            add_duplex_link(g, gpu, f"ns{k}", bandwidth=fast, latency=hop, link="pcie")
            members.append(gpu)
        nodes.append(members)
    return g, nodes


@pytest.mark.parametrize("n", [2, 5, 8, 16])
@pytest.mark.parametrize("detailed", [False, True])
def test_halving_doubling_matches_closed_form(n, detailed):
    size, bw, hop = 64e6, 10 * GB, 5e-6
    graph, nodes = flat(n, bw, hop)
    alpha = 2 * hop
    p = 1 << (n.bit_length() - 1)
    expected = 2 * (p - 1) / p * size / bw + 2 * math.log2(p) * alpha
    if p != n:  # fold in and hand back the extra ranks' full vectors
        expected += 2 * (size / bw + alpha)
    assert run(graph, nodes, "halving_doubling", size, detailed) == pytest.approx(expected, rel=0.01)


@pytest.mark.parametrize("n", [3, 7, 8, 16])
@pytest.mark.parametrize("detailed", [False, True])
def test_double_binary_tree_matches_closed_form(n, detailed):
    # On a star every rank sends both halves up (child in both trees) and an interior
    # node receives two halves: each phase moves S/2 at B/2, plus a latency per level.
    size, bw, hop = 64e6, 10 * GB, 5e-6
    graph, nodes = flat(n, bw, hop)
    expected = 2 * size / bw + 2 * tree_depth(n) * 2 * hop
    assert run(graph, nodes, "tree", size, detailed) == pytest.approx(expected, rel=0.01)


def test_double_binary_tree_interior_nodes_are_leaves_in_the_other_tree():
    interior = lambda edges: {parent for _, parent in edges}  # noqa: E731
    for n in (2, 7, 8, 16, 33):
        first, second = double_binary_tree(list(range(n)))
        assert len(first) == len(second) == n - 1
        assert interior(first) & interior(second) == set()
        depth = {}
        parent = dict(first)
        for r in range(n):
            d, x = 1, r
            while x in parent:
                x, d = parent[x], d + 1
            depth[r] = d
        assert max(depth.values()) == tree_depth(n)


def test_tree_beats_ring_for_small_messages_on_many_ranks_ring_wins_large():
    # 64 ranks, 64 KB: ring pays 126 latencies, the tree 14.
    graph, nodes = flat(64, 10 * GB, 5e-6)
    assert run(graph, nodes, "tree", 64e3, False) < run(graph, nodes, "ring", 64e3, False) / 5
    # 16 ranks, 1 GB: bandwidth bound; ring moves 2(N-1)/N * S = 1.875 GB per rank link,
    # the tree 2 GB: ring 0.1878 s against 0.2001 s.
    graph, nodes = flat(16, 10 * GB, 5e-6)
    ring, tree = run(graph, nodes, "ring", 1e9, False), run(graph, nodes, "tree", 1e9, False)
    assert ring == pytest.approx(0.1875 + 30 * 1e-5, rel=1e-6)
    assert tree == pytest.approx(0.2 + 2 * 5 * 1e-5, rel=1e-6)


def test_hierarchical_beats_flat_ring_with_slow_inter_node_links():
    m, local, fast, slow, hop = 4, 4, 100 * GB, 1.25 * GB, 1e-6
    graph, nodes = two_level(m, local, fast, slow, hop)
    size = 100e6
    n = m * local
    ring = run(graph, nodes, "ring", size, False)
    hier = run(graph, nodes, "hierarchical", size, False)
    # Flat ring: every step crosses a slow link; 2(N-1)/N * S / B_slow dominates.
    assert ring == pytest.approx(2 * (n - 1) / n * size / slow, rel=0.01)
    # Hierarchical: intra phases over fast links, then L concurrent rings of S/L share
    # each slow link: 2(M-1)/M * S / B_slow.
    intra = 2 * (local - 1) / local * size / fast
    inter = 2 * (m - 1) / m * size / slow
    assert hier == pytest.approx(intra + inter, rel=0.01)
    assert hier < ring * 0.85


@pytest.mark.parametrize("algorithm", sorted(ALLREDUCE_ALGORITHMS))
def test_fast_and_detailed_paths_agree(algorithm):
    graph, nodes = two_level(3, 2, 50 * GB, 5 * GB)
    fast = run(graph, nodes, algorithm, 30e6, False)
    detailed = run(graph, nodes, algorithm, 30e6, True)
    assert fast == pytest.approx(detailed, rel=1e-6)


def test_auto_picks_the_fastest_algorithm_for_each_size():
    # On 64 ranks, 64 KB is latency bound: halving-doubling (12 alpha) beats the tree
    # (14 alpha) and both beat the ring (126 alpha); 256 MB is bandwidth bound.
    graph, nodes = flat(64, 10 * GB, 5e-6)
    env = simpy.Environment()
    fabric = Fabric(env, Network(env, graph), nodes, False)
    for size in (64e3, 256e6):
        times = {name: run(graph, nodes, name, size, False) for name in ALLREDUCE_ALGORITHMS}
        assert fastest_algorithm(fabric, size) == min(times, key=times.get)
    assert fastest_algorithm(fabric, 64e3) == "halving_doubling"
    assert fastest_algorithm(fabric, 256e6) in {"ring", "halving_doubling"}

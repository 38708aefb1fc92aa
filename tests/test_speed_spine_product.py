"""A product bundle over a leaf-spine is counted per switch (simulator.spine_product),
not per pair of switches: it must give exactly the usage and worst latency of the
pair-by-pair bundle whose routes networkx searches, and of the count per pair of
switches it replaces, ECMP's hash included, for any number of spines (a power of two
hashed by bits, others per destination), and give up exactly where that count does."""

from __future__ import annotations

import random
import zlib

import pytest
import simpy

import simulator.route_product as route_product
from simulator import load_scenario
from simulator.build import build
from simulator.network import Network
from simulator.spine_product import common_spines

BASE = ["cluster.nodes=9", "cluster.gpus_per_node=2", "cluster.server.gpus_per_switch=null",
        "cluster.fabric.topology=leaf_spine", "cluster.fabric.nodes_per_leaf=2",
        "training.strategy=parameter_server", "training.parameter_servers.count=3",
        "simulation.iterations=1", "simulation.warmup_iterations=0"]


def _context(spines: int, extra: tuple[str, ...] = ()):
    sim = build(load_scenario(None, BASE + [f"cluster.fabric.spines={spines}", *extra]))
    return sim.context, sim.network.graph


def _ends(ctx) -> list[tuple[list, list]]:
    gpus, servers, hosts = list(ctx.gpus), list(ctx.server_hosts), list(ctx.node_hosts)
    return [(gpus, servers), (servers, gpus), (hosts, servers), (gpus[:3] * 2, servers), (gpus, servers[:1]),
            (gpus[:2], hosts[1:2]),  # every pair on one leaf: no switch path
            (gpus[::3], hosts[::2] + gpus[-2:])]


def _searched(graph, sources, destinations):
    """The pair-by-pair bundle, every route searched by networkx (no templates)."""
    net = Network(simpy.Environment(), graph.copy())
    net.links.router._templates = net.links.router.templates = None
    return net.bundle(tuple((s, d) for d in destinations for s in sources))


def _composed(graph, sources, destinations, per_pair_of_switches=False, monkeypatch=None):
    net = Network(simpy.Environment(), graph.copy())
    if per_pair_of_switches:
        monkeypatch.setattr(route_product, "common_spines", lambda links, switches: None)
    links = net.links
    found = route_product.compose_product(links.router, links.edge_id, links.latency_list, links.route,
                                          sources, destinations)
    return found, net.bundle_product(sources, destinations)


@pytest.mark.parametrize("spines", [1, 2, 3, 4, 8])
@pytest.mark.parametrize("extra", [(), ("training.parameter_servers.placement=dedicated",)])
def test_counted_per_switch_equals_the_searched_bundle_and_the_count_per_pair_of_switches(spines, extra, monkeypatch):
    ctx, graph = _context(spines, extra)
    links = Network(simpy.Environment(), graph).links
    assert common_spines(links.router.templates.switch_links, ["leaf0", "leaf1", "leaf4"]) == \
        [f"spine{k}" for k in sorted(range(spines), key=str)]
    for sources, destinations in _ends(ctx):
        usage, latency = _searched(graph, sources, destinations)
        found, (usage_c, latency_c) = _composed(graph, sources, destinations)
        assert found is not None
        assert usage_c.mapping == usage.mapping
        assert latency_c == latency
        with monkeypatch.context() as patch:
            old, _ = _composed(graph, sources, destinations, True, patch)
        assert found == old


def test_without_ecmp_or_with_uneven_spine_links_both_counts_give_up_alike(monkeypatch):
    ctx, graph = _context(4)
    no_ecmp = graph.copy()
    no_ecmp.graph["ecmp"] = False
    uneven = graph.copy()
    uneven.edges["leaf1", "spine2"]["latency"] *= 2  # uneven where leaf1 has sources
    for changed in (no_ecmp, uneven):
        gave_up = 0
        for sources, destinations in _ends(ctx):
            found, (usage_c, latency_c) = _composed(changed, sources, destinations)
            with monkeypatch.context() as patch:
                old, _ = _composed(changed, sources, destinations, True, patch)
            assert found == old
            gave_up += found is None
            if changed is uneven:  # (without ECMP the searched routes tie another way)
                usage, latency = _searched(changed, sources, destinations)
                assert (usage_c.mapping, latency_c) == (usage.mapping, latency)
        assert gave_up >= 3


def test_common_spines_only_where_every_switch_has_the_same_ones():
    links = {"l0": {"s0", "s1"}, "l1": {"s0", "s1"}, "s0": {"l0", "l1"}, "s1": {"l0", "l1"}, "l2": {"s0"}}
    assert common_spines(links, ["l0", "l1"]) == ["s0", "s1"]
    assert common_spines(links, ["l0", "l2"]) is None  # l2 misses s1
    assert common_spines(links, ["l0", "s0"]) is None  # a spine among the switches
    assert common_spines({**links, "s1": {"l0"}}, ["l0", "l1"]) is None  # s1 misses l1
    assert common_spines(links, ["l0", None]) is None  # an end off several switches


def test_the_hash_is_affine_in_its_start():
    """What the count by bits rests on: crc32(b, x) = crc32(zeros, x) ^ crc32(zeros, 0) ^ crc32(b, 0)."""
    rng = random.Random(19)
    for _ in range(2000):
        a = bytes(rng.randrange(256) for _ in range(rng.randrange(20)))
        b = bytes(rng.randrange(256) for _ in range(rng.randrange(20)))
        zeros, start = bytes(len(b)), zlib.crc32(a)
        assert zlib.crc32(a + b) == zlib.crc32(b, start) == zlib.crc32(zeros, start) ^ zlib.crc32(zeros) ^ zlib.crc32(b)

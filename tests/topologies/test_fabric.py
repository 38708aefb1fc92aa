"""Fabrics: leaf-spine with oversubscription and equal-cost paths; several NICs per node."""

from __future__ import annotations

import networkx as nx
import pytest

from topologies import FABRICS

from .helpers import NIC, cluster, kinds


def leaf_spine(nodes=8, layout="pcie_tree", server_params=None, gpus=4, **fabric_params):
    params = {"switch_latency": 1e-7, "nodes_per_leaf": 2, "spines": 4, "oversubscription": 4, **fabric_params}
    return cluster(
        layout, {"pcie_switches": 2} if server_params is None else server_params, nodes=nodes, gpus=gpus,
        fabric="leaf_spine", fabric_params=params,
    ).graph


def test_leaf_spine_counts_and_ecmp_flag():
    g = leaf_spine()
    assert kinds(g)["switch"] == 4 + 4  # 8 nodes / 2 per leaf, 4 spines
    assert g.graph["ecmp"] is True
    # Per node 7 PCIe links; 8 NIC cables; 4 leaves x 4 spines.
    assert g.number_of_edges() == 2 * (8 * 7 + 8 + 16)


def test_oversubscription_4_leaves_a_quarter_of_the_downlink_bandwidth_up():
    g = leaf_spine(oversubscription=4)
    for leaf in (n for n, d in g.nodes(data=True) if d.get("tier") == "leaf"):
        down = sum(g.edges[leaf, v]["bandwidth"] for v in g.successors(leaf) if g.nodes[v]["kind"] == "nic")
        up = [g.edges[leaf, v]["bandwidth"] for v in g.successors(leaf) if g.nodes[v].get("tier") == "spine"]
        assert down == 2 * NIC
        assert len(up) == 4 and len(set(up)) == 1  # split evenly over the spines
        assert sum(up) == down / 4
        assert all(g.edges[v, leaf]["bandwidth"] == up[0] for v in g.successors(leaf) if v.startswith("spine"))


def test_nodes_on_different_leaves_have_one_shortest_path_per_spine():
    g = leaf_spine(spines=4)
    paths = list(nx.all_shortest_paths(g, "n0.nic0", "n7.nic0"))
    assert len(paths) == 4
    assert sorted(p[2] for p in paths) == ["spine0", "spine1", "spine2", "spine3"]
    # Same leaf: one path, through the leaf only.
    assert list(nx.all_shortest_paths(g, "n0.nic0", "n1.nic0")) == [["n0.nic0", "leaf0", "n1.nic0"]]


def test_cross_leaf_latency_is_two_cables_two_uplinks_three_switches():
    g = leaf_spine(uplink_latency=5e-7)
    path = ["n0.nic0", "leaf0", "spine2", "leaf3", "n7.nic0"]
    total = sum(g.edges[e]["latency"] for e in zip(path, path[1:]))
    assert total == pytest.approx(2 * 1e-6 + 2 * 5e-7 + 3 * 1e-7)


def test_all_nics_of_a_node_share_its_leaf_unless_rails():
    g = leaf_spine(nodes=4, layout="dgx1", server_params={}, gpus=8, nodes_per_leaf=2)
    for n in range(4):
        leaves = {v for k in range(4) for v in g.successors(f"n{n}.nic{k}") if v.startswith("leaf")}
        assert leaves == {f"leaf{n // 2}"}
    g = leaf_spine(nodes=4, layout="dgx1", server_params={}, gpus=8, nodes_per_leaf=2, rails=True)
    assert kinds(g)["switch"] == 2 * 4 + 4  # one leaf per rail per group of 2 nodes
    for n in range(4):
        for k in range(4):
            assert f"leaf{(n // 2) * 4 + k}" in g.successors(f"n{n}.nic{k}")


def test_parameter_servers_get_leaves_after_the_workers():
    c = cluster("pcie_tree", {"pcie_switches": 1}, nodes=4, gpus=2, fabric="leaf_spine", dedicated_ps=2,
                fabric_params={"switch_latency": 0.0, "nodes_per_leaf": 2, "spines": 2})
    assert "leaf2" in c.graph.successors("ps0.nic0") and "leaf2" in c.graph.successors("ps1.nic0")


def test_single_switch_cables_every_nic_of_multi_nic_servers():
    g = cluster("dgx1", {}, nodes=2, gpus=8).graph
    assert sum(1 for v in g.successors("switch0")) == 8


def test_fat_tree_is_an_alias_and_bad_parameters_are_refused():
    assert FABRICS["fat_tree"] is FABRICS["leaf_spine"]
    for bad, message in (({"oversubscription": 0.5}, "oversubscription"), ({"spines": 0}, "spines"),
                         ({"nodes_per_leaf": 0}, "nodes_per_leaf")):
        with pytest.raises(ValueError, match=message):
            leaf_spine(**bad)

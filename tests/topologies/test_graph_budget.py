"""The cluster graph's size, counted before it is built (issue 18): ``build_cluster``
with ``max_edges`` refuses a cluster whose graph would exceed it after building one
server, and the count it refuses by is the graph's exact edge count."""

from __future__ import annotations

import pytest

from topologies.cluster import ClusterTooLarge

from .helpers import cluster

CASES = [
    ("pcie_tree", {"pcie_switches": 2}, 8, "single_switch", {"switch_latency": 1e-7}, 0),
    ("pcie_tree", {"pcie_switches": 2}, 8, "single_switch", {"switch_latency": 1e-7}, 3),
    ("dgx1", {}, 8, "single_switch", {"switch_latency": 1e-7}, 0),
    ("pcie_tree", {"pcie_switches": 2, "nics": 2}, 4, "leaf_spine",
     {"switch_latency": 1e-7, "nodes_per_leaf": 3, "spines": 5}, 2),
    ("pcie_tree", {"pcie_switches": 2, "nics": 2}, 4, "leaf_spine",
     {"switch_latency": 1e-7, "nodes_per_leaf": 2, "spines": 3, "rails": True}, 0),
]


@pytest.mark.parametrize(("layout", "server", "gpus", "fabric", "fabric_params", "ps"), CASES)
def test_the_count_before_building_is_the_built_graphs_edge_count(layout, server, gpus, fabric, fabric_params, ps):
    def build(max_edges=None):
        return cluster(layout, server, nodes=7, gpus=gpus, fabric=fabric, fabric_params=fabric_params,
                       dedicated_ps=ps, max_edges=max_edges)

    edges = build().graph.number_of_edges()
    assert build(max_edges=edges).graph.number_of_edges() == edges  # exactly at the limit: built
    with pytest.raises(ClusterTooLarge, match=f"would have {edges:,} edges \\(7 servers of "):
        build(max_edges=edges - 1)


def test_a_leaf_spine_of_many_leaves_and_spines_is_refused_before_its_cables_are_made():
    # 16,384 leaves x 4,096 spines: 134 million edges, refused after one server is built.
    with pytest.raises(ClusterTooLarge, match="134,479,872 edges"):
        cluster("pcie_tree", {"pcie_switches": 2}, nodes=16_384, gpus=4, fabric="leaf_spine",
                fabric_params={"switch_latency": 1e-7, "nodes_per_leaf": 1, "spines": 4096}, max_edges=400_000)

"""Conventions every layout and fabric keeps: duplex links, kinds, GPU attributes."""

from __future__ import annotations

import pytest

from topologies import FABRICS, SERVER_LAYOUTS

from .helpers import cluster

LAYOUTS = {
    "pcie_tree": {"pcie_switches": 4, "sockets": 2, "nics": 2, "nic_placement": "switch"},
    "dgx1": {},
    "nvswitch": {"nvlink_bandwidth": 300e9},
}
FABRIC_PARAMS = {
    "single_switch": {"switch_latency": 1e-7},
    "leaf_spine": {"switch_latency": 1e-7, "nodes_per_leaf": 1, "spines": 2, "oversubscription": 2},
}
NODE_KINDS = {"gpu", "pcie_switch", "cpu", "nic", "switch", "nvswitch", "ps_host"}
LINK_KINDS = {"pcie", "nvlink", "qpi", "network"}


def test_registered_names():
    assert {"pcie_tree", "dgx1", "nvswitch"} <= set(SERVER_LAYOUTS)
    assert {"single_switch", "leaf_spine", "fat_tree"} <= set(FABRICS)


@pytest.mark.parametrize("fabric", sorted(FABRIC_PARAMS))
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_every_link_is_duplex_and_every_gpu_knows_its_host(layout, fabric):
    c = cluster(layout, LAYOUTS[layout], nodes=3, gpus=8, fabric=fabric, fabric_params=FABRIC_PARAMS[fabric],
                dedicated_ps=1)
    g = c.graph
    for u, v, d in g.edges(data=True):
        back = g.edges[v, u]
        assert (back["bandwidth"], back["link"], back.get("links", 1)) == (d["bandwidth"], d["link"], d.get("links", 1))
        assert d["bandwidth"] > 0 and d["latency"] >= 0 and d["link"] in LINK_KINDS
    assert {d["kind"] for _, d in g.nodes(data=True)} <= NODE_KINDS
    assert len(c.gpus) == 24 and len(c.hosts) == 3
    for gpu in c.gpus:
        data = g.nodes[gpu]
        assert g.nodes[data["host"]]["kind"] == "cpu" and data["host"].startswith(data["server"] + ".")
        assert data["p2p"] is True and data["gdr"] is True
    assert c.hosts == ("n0.cpu", "n1.cpu", "n2.cpu")

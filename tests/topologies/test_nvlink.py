"""NVLink servers: the DGX-1 hybrid cube mesh and NVSwitch servers."""

from __future__ import annotations

import itertools

import networkx as nx
import pytest

from topologies.nvlink import DGX1_NVLINKS

from .helpers import cluster, hop_path, kinds

GB = 1e9


def nvlink_edges(g: nx.DiGraph, node: str) -> list[dict]:
    return [d for _, _, d in g.out_edges(node, data=True) if d["link"] == "nvlink"]


def dgx1(**params) -> nx.DiGraph:
    return cluster("dgx1", params, gpus=8).graph


def test_dgx1_counts():
    g = dgx1()
    assert kinds(g) == {"cpu": 2, "pcie_switch": 4, "gpu": 8, "nic": 4}
    # 8 GPU-switch + 4 uplinks + 4 NIC-switch + 1 QPI + 16 NVLink GPU pairs.
    assert g.number_of_edges() == 2 * 33


def test_dgx1_has_24_nvlinks_six_per_v100():
    assert sum(links for _, _, links in DGX1_NVLINKS) == 24
    assert len({(a, b) for a, b, _ in DGX1_NVLINKS}) == 16
    g = dgx1()
    for i in range(8):
        edges = nvlink_edges(g, f"n0.gpu{i}")
        assert sum(d["links"] for d in edges) == 6
        assert sum(d["bandwidth"] for d in edges) == 6 * 25 * GB  # 150 GB/s per direction


def test_dgx1_doubled_pairs_and_the_cube_edges_between_quads():
    g = dgx1()
    assert g.edges["n0.gpu0", "n0.gpu3"]["bandwidth"] == 50 * GB and g.edges["n0.gpu3", "n0.gpu0"]["links"] == 2
    assert g.edges["n0.gpu0", "n0.gpu1"]["bandwidth"] == 25 * GB
    # Each GPU of quad 0-3 has exactly one NVLink neighbour in quad 4-7 (GPU i+4).
    for i in range(4):
        across = [v for _, v, d in g.out_edges(f"n0.gpu{i}", data=True) if d["link"] == "nvlink" and int(v[-1]) >= 4]
        assert across == [f"n0.gpu{i + 4}"]


def test_dgx1_pcie_tree_pairs_gpus_with_a_nic_per_switch():
    g = dgx1()
    for j in range(4):
        assert set(g.successors(f"n0.pcie{j}")) >= {f"n0.gpu{2 * j}", f"n0.gpu{2 * j + 1}", f"n0.nic{j}"}
    assert [g.nodes[f"n0.gpu{i}"]["host"] for i in range(8)] == ["n0.cpu"] * 4 + ["n0.cpu1"] * 4
    # GPUs 0 and 5 share no NVLink: without forwarding through a GPU, PCIe and QPI.
    path = hop_path(g, "n0.gpu0", "n0.gpu5")
    assert [g.edges[e]["link"] for e in zip(path, path[1:])] == ["pcie", "pcie", "qpi", "pcie", "pcie"]


def test_dgx1_runs_fewer_ranks_on_the_same_eight_gpu_server():
    c = cluster("dgx1", {}, gpus=4)
    assert c.gpus == ("n0.gpu0", "n0.gpu1", "n0.gpu2", "n0.gpu3")
    assert kinds(c.graph)["gpu"] == 8
    with pytest.raises(ValueError, match="has 8 GPUs"):
        cluster("dgx1", {}, gpus=16)


def test_dgx1_nvlink_speed_and_flags_are_configurable():
    g = dgx1(nvlink_bandwidth=22.5 * GB, p2p=False, gdr=False)
    assert sum(d["bandwidth"] for d in nvlink_edges(g, "n0.gpu5")) == pytest.approx(6 * 22.5 * GB)
    assert not any(g.nodes[f"n0.gpu{i}"]["p2p"] or g.nodes[f"n0.gpu{i}"]["gdr"] for i in range(8))


def nvswitch(**params) -> nx.DiGraph:
    return cluster("nvswitch", {"nvlink_bandwidth": 300 * GB, **params}, gpus=8).graph


def test_nvswitch_counts():
    g = nvswitch()
    assert kinds(g) == {"cpu": 2, "pcie_switch": 4, "gpu": 8, "nic": 8, "nvswitch": 1}
    # 8 GPU-switch + 4 uplinks + 8 NIC-switch + 1 QPI + 8 GPU-NVSwitch.
    assert g.number_of_edges() == 2 * 29


def test_nvswitch_every_gpu_pair_is_two_nvlink_hops_via_the_switch():
    g = nvswitch()
    nvlink = g.edge_subgraph([(u, v) for u, v, d in g.edges(data=True) if d["link"] == "nvlink"])
    for a, b in itertools.permutations(range(8), 2):
        assert nx.shortest_path(nvlink, f"n0.gpu{a}", f"n0.gpu{b}") == [f"n0.gpu{a}", "n0.nvswitch0", f"n0.gpu{b}"]
    assert all(g.edges[f"n0.gpu{i}", "n0.nvswitch0"]["bandwidth"] == 300 * GB for i in range(8))


def test_nvswitch_rails_one_nic_per_gpu_or_per_pair():
    g = nvswitch()
    assert [next(iter(g.successors(f"n0.nic{k}"))) for k in range(8)] == [f"n0.pcie{k // 2}" for k in range(8)]
    g = nvswitch(nics=4)
    assert kinds(g)["nic"] == 4
    assert [next(iter(g.successors(f"n0.nic{k}"))) for k in range(4)] == [f"n0.pcie{k}" for k in range(4)]


def test_nvswitch_records_link_count_when_given():
    g = nvswitch(nvlink_bandwidth=450 * GB, nvlinks=18)
    assert g.edges["n0.gpu3", "n0.nvswitch0"]["links"] == 18
    assert g.edges["n0.nvswitch0", "n0.gpu3"]["bandwidth"] == 450 * GB


def test_simulator_routes_gpus_under_one_pcie_switch_over_nvswitch():
    # GPU-pcie-GPU and GPU-nvswitch-GPU are both 2 hops; the router prefers NVLink.
    from simulator import routing

    g = nvswitch(p2p=False)
    assert routing.Router(g).path("n0.gpu0", "n0.gpu1") == ["n0.gpu0", "n0.nvswitch0", "n0.gpu1"]

"""PCIe servers: sockets and QPI, NIC placement, peer-to-peer and GPUDirect flags."""

from __future__ import annotations

import pytest

from .helpers import cluster, hop_path, kinds


def two_sockets(**params):
    return cluster("pcie_tree", {"pcie_switches": 4, "sockets": 2, **params}, gpus=8).graph


def test_defaults_keep_the_single_socket_tree_and_its_names():
    g = cluster("pcie_tree", {"pcie_switches": 2}, gpus=4).graph
    assert kinds(g) == {"cpu": 1, "pcie_switch": 2, "gpu": 4, "nic": 1}
    assert set(g.successors("n0.cpu")) == {"n0.pcie0", "n0.pcie1", "n0.nic0"}
    assert set(g.successors("n0.pcie1")) == {"n0.cpu", "n0.gpu2", "n0.gpu3"}
    # 4 GPU links + 2 switch uplinks + 1 NIC link, two directed edges each.
    assert g.number_of_edges() == 2 * 7


def test_two_sockets_counts_and_one_qpi_link():
    g = two_sockets()
    assert kinds(g) == {"cpu": 2, "pcie_switch": 4, "gpu": 8, "nic": 1}
    # 8 GPU links + 4 uplinks + 1 NIC link + 1 QPI link.
    assert g.number_of_edges() == 2 * 14
    qpi = [(u, v) for u, v, d in g.edges(data=True) if d["link"] == "qpi"]
    assert sorted(qpi) == [("n0.cpu", "n0.cpu1"), ("n0.cpu1", "n0.cpu")]
    # Switches 0-1 on socket 0, 2-3 on socket 1.
    assert [next(iter(set(g.successors(f"n0.pcie{j}")) & {"n0.cpu", "n0.cpu1"})) for j in range(4)] == [
        "n0.cpu", "n0.cpu", "n0.cpu1", "n0.cpu1"
    ]


def test_gpu_to_gpu_across_sockets_crosses_qpi():
    g = two_sockets()
    path = hop_path(g, "n0.gpu0", "n0.gpu7")
    assert path == ["n0.gpu0", "n0.pcie0", "n0.cpu", "n0.cpu1", "n0.pcie3", "n0.gpu7"]
    assert [g.edges[e]["link"] for e in zip(path, path[1:])].count("qpi") == 1
    # Same socket, different switches: through the root complex, no QPI.
    assert "n0.cpu1" not in hop_path(g, "n0.gpu0", "n0.gpu3")


def test_gpu_host_is_its_own_sockets_cpu():
    g = two_sockets()
    assert [g.nodes[f"n0.gpu{i}"]["host"] for i in range(8)] == ["n0.cpu"] * 4 + ["n0.cpu1"] * 4
    assert [g.nodes[f"n0.gpu{i}"]["socket"] for i in range(8)] == [0] * 4 + [1] * 4


@pytest.mark.parametrize(("p2p", "gdr"), [(True, True), (False, True), (True, False), (False, False)])
def test_p2p_and_gdr_flags_are_set_on_every_gpu(p2p, gdr):
    g = two_sockets(p2p=p2p, gdr=gdr)
    gpus = [d for _, d in g.nodes(data=True) if d["kind"] == "gpu"]
    assert len(gpus) == 8
    assert all(d["p2p"] is p2p and d["gdr"] is gdr for d in gpus)


def test_nic_under_a_switch_is_reached_without_the_cpu():
    g = two_sockets(nic_placement="switch")
    assert set(g.successors("n0.nic0")) == {"n0.pcie0"}
    assert hop_path(g, "n0.gpu1", "n0.nic0") == ["n0.gpu1", "n0.pcie0", "n0.nic0"]
    # At the root complex instead: GPU -> switch -> CPU -> NIC.
    assert len(hop_path(two_sockets(), "n0.gpu1", "n0.nic0")) == 4


def test_several_nics_spread_evenly_over_switches_or_sockets():
    g = two_sockets(nics=2, nic_placement="switch")
    assert [set(g.successors(f"n0.nic{k}")) for k in range(2)] == [{"n0.pcie0"}, {"n0.pcie2"}]
    g = two_sockets(nics=8, nic_placement="switch")
    assert [next(iter(g.successors(f"n0.nic{k}"))) for k in range(8)] == [f"n0.pcie{k // 2}" for k in range(8)]
    g = two_sockets(nics=2, nic_placement="root")
    assert [set(g.successors(f"n0.nic{k}")) for k in range(2)] == [{"n0.cpu"}, {"n0.cpu1"}]
    assert [g.nodes[f"n0.nic{k}"]["rail"] for k in range(2)] == [0, 1]


def test_qpi_link_carries_its_configured_speed():
    g = two_sockets(qpi_bandwidth=20e9, qpi_latency=2e-7)
    assert g.edges["n0.cpu", "n0.cpu1"]["bandwidth"] == 20e9
    assert g.edges["n0.cpu1", "n0.cpu"]["latency"] == 2e-7


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"sockets": 3}, "sockets must be 1 or 2"),
        ({"nic_placement": "riser"}, "nic_placement"),
        ({"nics": 0}, "at least one NIC"),
        ({"pcie_switches": 3}, "evenly"),
    ],
)
def test_bad_parameters_are_refused(params, message):
    with pytest.raises(ValueError, match=message):
        two_sockets(**params)

"""The collective library's cost model against closed forms (simulator.collectives.cost and .backend).

Every expected time is written out from the backend file's own constants, so the
tests hold the formulas, not today's fitted values."""

from __future__ import annotations

import pytest

from simulator import load_scenario
from simulator.collectives.backend import get_backend, list_backends
from simulator.collectives.channels import nvlink_rings
from simulator.collectives.cost import Topology, plan, protocol_busbw
from simulator.engine import build
from simulator.errors import ScenarioError
from simulator.validation.run import collective_estimate

NCCL = get_backend("nccl")
PCIE_X16_GEN3 = 8e9 * 16 * 128 / 130 / 8 * 0.8  # the graph's PCIe gen3 x16 link, bytes/s


def scenario(cluster: dict, **collectives) -> object:
    return load_scenario({"cluster": cluster, "training": {"strategy": "auto", "collectives": collectives}})


def estimate(s, nbytes, collective="allreduce", strategy=None):
    return collective_estimate(s, collective, nbytes, strategy or s.training.strategy)


def launch(algorithm: str, protocol: str) -> float:
    return (NCCL.call_overhead_us + NCCL.base_latency_us[algorithm][protocol]) * 1e-6


def step(link: str, protocol: str, algorithm: str = "ring") -> float:
    """One pipeline step in a run: NCCL's latency for the link class + the run's
    per-step overhead (which NCCL's choice does not see)."""
    return (NCCL.step_latency_us[link][algorithm][protocol] + NCCL.step_overhead_us.get(protocol, 0.0)) * 1e-6


PCIE_4 = {"nodes": 1, "gpus_per_node": 4, "gpu": "V100-PCIe-16GB",
          "server": {"layout": "pcie_tree", "pcie_switches": 1, "sockets": 1}}


@pytest.mark.parametrize("protocol", ["Simple", "LL"])
def test_ring_on_uniform_links_pays_launch_step_latency_and_protocol_bytes(protocol):
    # 4 GPUs under one PCIe switch: every ring hop has its own GPU link each way.
    s = scenario(PCIE_4, protocol=protocol)
    size = 64e6
    bandwidth = PCIE_X16_GEN3 * NCCL.achievable["pcie"] * NCCL.protocols[protocol].wire_efficiency
    expected = launch("ring", protocol) + 6 * step("pci", protocol) + 2 * 3 / 4 * size / bandwidth
    e = estimate(s, size)
    assert (e.algorithm, e.protocol) == ("ring", protocol)
    assert e.time_s == pytest.approx(expected, rel=1e-6)


def test_ideal_backend_is_the_alpha_beta_closed_form():
    s = scenario(PCIE_4, backend="ideal")
    size, alpha = 64e6, 2 * 1e-6  # two PCIe hops of 1 us per ring step
    expected = 2 * 3 / 4 * size / PCIE_X16_GEN3 + 6 * alpha
    assert estimate(s, size, strategy="ring_allreduce").time_s == pytest.approx(expected, rel=1e-3)


def test_dgx1_builds_six_nvlink_rings_and_channels_split_bytes_evenly():
    s = scenario({"nodes": 1, "gpus_per_node": 8, "gpu": "V100-SXM2-16GB", "server": {"layout": "dgx1"}},
                 protocol="Simple")
    sim = build(s)
    graph, rings = sim.cluster.graph, sim.context.collectives.rings
    assert len(rings) == 6  # 24 links = 3 disjoint Hamiltonian cycles, each both ways
    used: dict = {}
    for ring in rings:
        assert sorted(ring) == sorted(sim.cluster.gpus)
        for u, v in zip(ring, ring[1:] + ring[:1]):
            assert graph.edges[u, v]["link"] == "nvlink"  # NVLink only, no PCIe/QPI hop
            used[u, v] = used.get((u, v), 0) + 1
    assert all(n <= graph.edges[e].get("links", 1) for e, n in used.items())
    # Each channel carries S/6 over one 25 GB/s link at NCCL's 20 GB/s: busbw 120 GB/s.
    size = 1e9
    per_link = 25e9 * NCCL.achievable["nvlink"]["Volta"]
    expected = launch("ring", "Simple") + 14 * step("nvlink", "Simple") + 2 * 7 / 8 * size / (6 * per_link)
    assert estimate(s, size, strategy="ring_allreduce").time_s == pytest.approx(expected, rel=1e-6)


def test_two_socket_ring_step_is_bounded_by_host_staging():
    # One GPU per socket: both ring hops (0 -> 1, 1 -> 0) cross QPI, so NCCL stages
    # them through host memory, each at the staging ceiling.
    s = scenario({"nodes": 1, "gpus_per_node": 2, "gpu": "V100-PCIe-16GB",
                  "server": {"layout": "pcie_tree", "pcie_switches": 2, "sockets": 2}}, protocol="Simple")
    size = 256e6
    staging = NCCL.host_staging_gbytes_s * 1e9
    assert staging < PCIE_X16_GEN3 * NCCL.achievable["pcie"]  # the ceiling is the host path, not the links
    expected = launch("ring", "Simple") + 2 * step("pci", "Simple") + size / staging
    assert estimate(s, size).time_s == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("level, staged", [("PXB", True), ("PHB", False), ("SYS", False)])
def test_p2p_level_lets_peer_copies_through_one_cpu_from_phb(level, staged):
    # Two GPUs, each under its own switch of one socket: the ring's hops go through the
    # CPU's root complex. Below PHB NCCL stages them in host memory; from PHB on they are
    # peer copies that only the PCIe links bound (each uplink carries one flow each way).
    s = scenario({"nodes": 1, "gpus_per_node": 2, "gpu": "V100-PCIe-16GB",
                  "server": {"layout": "pcie_tree", "pcie_switches": 2, "sockets": 1}},
                 protocol="Simple", p2p_level=level)
    size = 256e6
    links = PCIE_X16_GEN3 * NCCL.achievable["pcie"] * NCCL.protocols["Simple"].wire_efficiency
    rate = NCCL.host_staging_gbytes_s * 1e9 if staged else links
    expected = launch("ring", "Simple") + 2 * step("pci", "Simple") + size / rate
    assert estimate(s, size).time_s == pytest.approx(expected, rel=1e-6)


def test_p2p_level_crosses_the_socket_link_only_at_sys_and_never_without_p2p():
    two_sockets = {"nodes": 1, "gpus_per_node": 2, "server": {"layout": "pcie_tree", "pcie_switches": 2, "sockets": 2}}
    size = 256e6

    def time(gpu, level):
        return estimate(scenario({**two_sockets, "gpu": gpu}, protocol="Simple", p2p_level=level), size).time_s

    # V100 PCIe: P2P capable; one GPU per socket, so PHB still stages what SYS does not.
    assert time("V100-PCIe-16GB", "PHB") == time("V100-PCIe-16GB", "PXB")
    assert time("V100-PCIe-16GB", "SYS") < 0.5 * time("V100-PCIe-16GB", "PXB")
    # A GeForce card cannot copy peer to peer at all: every level stages.
    assert time("RTX-2080Ti", "SYS") == time("RTX-2080Ti", "PXB")


def test_bad_p2p_level_is_refused():
    with pytest.raises(ScenarioError, match="p2p_level"):
        scenario(PCIE_4, p2p_level="NODE")


def test_nccl_picks_ll_then_ll128_then_simple_on_nvlink_and_never_ll128_on_pcie():
    dgx1 = scenario({"nodes": 1, "gpus_per_node": 8, "gpu": "V100-SXM2-16GB", "server": {"layout": "dgx1"}})
    protocols = [estimate(dgx1, size).protocol for size in (4e3, 4e6, 1e9)]
    assert protocols == ["LL", "LL128", "Simple"]
    pcie = scenario(PCIE_4)
    assert {estimate(pcie, size).protocol for size in (4e3, 1e5, 4e6, 1e9)} <= {"LL", "Simple"}


def nvls_link_rate(choice: bool = False) -> float:
    """A Hopper GPU's NVSwitch link as NVLS drives it: NCCL's efficiency when it chooses
    (``choice``), the achieved one when it runs."""
    nvls = NCCL.nvls
    efficiency = (nvls.efficiency if choice else nvls.achieved)["Hopper"] * (nvls.channels - 1) / nvls.channels
    return 450e9 * NCCL.achievable["nvlink"]["Hopper"] * efficiency


def test_nvls_on_hopper_nvswitch_moves_each_buffer_once_each_way():
    s = scenario({"nodes": 1, "gpus_per_node": 8, "gpu": "H100-SXM5-80GB", "server": {"layout": "nvswitch"}})
    size = 4e9
    e = estimate(s, size)
    assert e.algorithm == "nvls"
    latency = (NCCL.call_overhead_us + NCCL.nvls.latency_us + NCCL.nvls.run_overhead_us) * 1e-6
    assert e.time_s == pytest.approx(latency + 7 / 8 * size / nvls_link_rate(), rel=1e-6)


def test_nvls_run_overhead_is_paid_by_the_run_but_not_seen_by_the_choice():
    topo = flat_topology(ranks=8, intra_class="nvlink", architecture="Hopper", switch_bw=450e9 * 0.82)
    slow = NCCL.model_copy(update={"nvls": NCCL.nvls.model_copy(update={"run_overhead_us": 40.0})})
    none = NCCL.model_copy(update={"nvls": NCCL.nvls.model_copy(update={"run_overhead_us": 0.0})})
    for size in (1e6, 1e8, 4e9):
        a, b = plan(slow, topo, "allreduce", size), plan(none, topo, "allreduce", size)
        assert (a.algorithm, a.protocol, a.estimate_s) == (b.algorithm, b.protocol, b.estimate_s)
        if a.algorithm == "nvls":
            assert a.latency_s - b.latency_s == pytest.approx(40e-6, rel=1e-9)
    assert plan(none, topo, "allreduce", 4e9).algorithm == "nvls"


def hopper_pair(nics: int):
    return scenario({"nodes": 2, "gpus_per_node": 8, "gpu": "H100-SXM5-80GB",
                     "server": {"layout": "nvswitch", "nics": nics}, "nic": {"link": "IB-NDR"}})


@pytest.mark.parametrize("nics", [4, 8])
def test_nvls_tree_across_hopper_nodes_runs_at_the_slower_of_nvls_and_the_node_tree(nics):
    # 2 nodes of 8 H100: NVLS in each node, a tree of two nodes over the NICs, at once.
    # Each node sends S and receives S through its NICs (half a ring's bytes): S / (NICs'
    # rate); each GPU's switch link carries 15/16 of S each way at NVLS's rate. With 4
    # NDR NICs the network binds, with 8 the switch links do.
    s = hopper_pair(nics)
    size = 2e9
    e1, e2 = estimate(s, size), estimate(s, 2 * size)
    assert (e1.algorithm, e2.algorithm) == ("nvls_tree", "nvls_tree")
    nic = 400e9 / 8 * 0.97 * NCCL.network_by_transport["rdma"]  # IB-NDR line rate x catalog efficiency
    algbw = min(nics * nic, nvls_link_rate() * 16 / 15)
    assert (algbw == nics * nic) == (nics == 4)
    assert e2.time_s - e1.time_s == pytest.approx(size / algbw, rel=1e-6)
    latency = e1.time_s - size / algbw
    nvls = NCCL.nvls
    floor = (NCCL.call_overhead_us + nvls.latency_us + nvls.run_overhead_us + 2 * nvls.tree_net_latency_us) * 1e-6
    fabric = build(s).context.collectives.topology.network_latency_s
    assert 0 < fabric < 5e-6
    # + the fabric's own latency, twice per tree step (Simple flushes), up and down
    assert latency == pytest.approx(floor + 2 * 2 * fabric, rel=1e-9)


def test_nvls_tree_only_across_hopper_nodes():
    one = scenario({"nodes": 1, "gpus_per_node": 8, "gpu": "H100-SXM5-80GB", "server": {"layout": "nvswitch"}})
    assert estimate(one, 2e9).algorithm == "nvls"
    a100 = scenario({"nodes": 2, "gpus_per_node": 8, "gpu": "A100-SXM4-80GB", "server": {"layout": "nvswitch"},
                     "nic": {"link": "IB-HDR"}})
    assert estimate(a100, 2e9).algorithm in ("ring", "tree")
    assert estimate(hopper_pair(8), 4e3).algorithm in ("ring", "tree")  # small: NCCL's latency wins


def test_multi_node_rings_leave_each_node_through_every_nic():
    # 2 DGX A100-style nodes with 8 NICs: 8 channels, one per rail.
    s = scenario({"nodes": 2, "gpus_per_node": 8, "gpu": "A100-SXM4-80GB", "server": {"layout": "nvswitch"},
                  "nic": {"link": "IB-HDR"}})
    sim = build(s)
    rings = sim.context.collectives.rings
    assert len(rings) == 8
    exits = {ring[7] for ring in rings}  # last GPU of node 0 in each ring
    assert len(exits) == 8


def test_auto_and_fastest_are_distinct_choices():
    dgx1 = {"nodes": 1, "gpus_per_node": 8, "gpu": "V100-SXM2-16GB", "server": {"layout": "dgx1"}}
    auto = estimate(scenario(dgx1), 1e6)
    fastest = estimate(scenario(dgx1), 1e6, strategy="fastest")
    assert auto.algorithm in ("ring", "tree") and auto.protocol in ("LL", "LL128", "Simple")
    assert fastest.algorithm in ("ring", "tree", "halving_doubling", "hierarchical")


def test_unknown_backend_is_refused_with_the_field_named():
    assert {"nccl", "gloo", "ideal"} <= set(list_backends())
    with pytest.raises(ScenarioError, match="training.collectives.backend.*unknown collective backend"):
        scenario(PCIE_4, backend="rccl-9")


def test_no_nvlink_ring_on_a_pcie_server():
    s = scenario(PCIE_4)
    sim = build(s)
    assert nvlink_rings(sim.cluster.graph, sim.cluster.gpus, 16) == []


A100_NODE = {"nodes": 1, "gpus_per_node": 8, "gpu": "A100-SXM4-80GB", "server": {"layout": "nvswitch"}}


def test_nvswitch_server_counts_nccl_channels_for_the_per_channel_ceilings():
    # One physical ring through the switch, but NCCL runs 24 channels on 8 A100s
    # ("24 coll channels"): LL128's ceiling is 24 x 20 GB/s, not one channel's 20.
    sim = build(scenario(A100_NODE))
    library = sim.context.collectives
    assert len(library.rings) == 1
    topo = library.topology
    assert topo.channels == NCCL.nvswitch_channels["Ampere"] == 24
    ll128 = protocol_busbw(NCCL, topo, "ring", "LL128")
    assert ll128 == pytest.approx(min(topo.ring_busbw * 0.92, 24 * 20e9), rel=1e-9)
    assert estimate(scenario(A100_NODE), 8e6).protocol == "LL128"  # mid sizes, as NCCL runs them
    described = library.describe()
    assert (described["channels"], len(described["rings"])) == (24, 1)


def flat_topology(**changes) -> Topology:
    base = dict(ranks=8, nodes=1, intra_class="nvlink", architecture="Ampere", channels=24, ring_busbw=200e9)
    return Topology(**{**base, **changes})


def test_tree_protocols_take_nccl_tree_factors():
    topo = flat_topology()
    tree = min(200e9 * 0.92, 24 * 24.0e9)  # busBw x .92, capped per channel (Ampere, one node)
    assert protocol_busbw(NCCL, topo, "tree", "LL") == pytest.approx(min(tree / 3.8, 87.7e9), rel=1e-5)
    assert protocol_busbw(NCCL, topo, "tree", "LL128") == pytest.approx(min(tree * 7 / 9, 24 * 20e9), rel=1e-5)
    two = flat_topology(nodes=2, ranks=16)
    tree2 = min(200e9 * 0.92, 24 * 23.6e9)
    assert protocol_busbw(NCCL, two, "tree", "LL128") == pytest.approx(min(tree2 * 120 / 128, 24 * 20e9), rel=1e-5)


def test_tree_correction_shapes_the_choice_only():
    # At 64 KiB (log2(65536 / 64) = 10) NCCL's tree estimate runs at 0.6 of its LL
    # bandwidth; the run itself is not corrected.
    topo = flat_topology(nodes=2, ranks=16, intra_class="nvlink")
    size = 65536.0
    p = plan(NCCL, topo, "allreduce", size, algorithm="tree", protocol="LL")
    busbw = protocol_busbw(NCCL, topo, "tree", "LL")
    uncorrected = size / (busbw * 0.5)
    estimate_latency = p.latency_s - 2 * (7 + 1) * NCCL.step_overhead_us.get("LL", 0.0) * 1e-6
    assert p.estimate_s == pytest.approx(estimate_latency + uncorrected / 0.6, rel=1e-9)


def test_step_overhead_is_paid_on_every_ring_step_but_not_in_the_choice():
    topo = flat_topology(ranks=4, channels=2, intra_class="pci")
    slow = NCCL.model_copy(update={"step_overhead_us": {"LL": 10.0, "LL128": 10.0, "Simple": 10.0}})
    none = NCCL.model_copy(update={"step_overhead_us": {}})
    for size in (1e3, 1e6, 1e9):
        a, b = plan(slow, topo, "allreduce", size), plan(none, topo, "allreduce", size)
        assert (a.algorithm, a.protocol, a.estimate_s) == (b.algorithm, b.protocol, b.estimate_s)
        assert a.latency_s - b.latency_s == pytest.approx(2 * 3 * 10e-6, rel=1e-9)  # 2(N-1) ring steps


def test_step_overhead_is_the_protocols_own():
    # NVLink, 8 ranks: each protocol's run pays its own per-step overhead, 14 ring steps.
    topo = flat_topology(ranks=8, channels=8, intra_class="nvlink")
    by_protocol = NCCL.model_copy(update={"step_overhead_us": {"LL": 1.0, "LL128": 3.0, "Simple": 5.0}})
    none = NCCL.model_copy(update={"step_overhead_us": {}})
    for protocol, overhead in (("LL", 1.0), ("LL128", 3.0), ("Simple", 5.0)):
        a = plan(by_protocol, topo, "allreduce", 1e6, algorithm="ring", protocol=protocol)
        b = plan(none, topo, "allreduce", 1e6, algorithm="ring", protocol=protocol)
        assert a.latency_s - b.latency_s == pytest.approx(14 * overhead * 1e-6, rel=1e-9)


def test_measured_host_staging_and_network_efficiency_override_the_fitted_figures():
    # The two-socket closed form with the user's own staging bandwidth in place of the
    # backend's fitted one.
    two_socket = {"nodes": 1, "gpus_per_node": 2, "gpu": "V100-PCIe-16GB",
                  "server": {"layout": "pcie_tree", "pcie_switches": 2, "sockets": 2}}
    size = 256e6
    s = scenario(two_socket, protocol="Simple", host_staging_gbytes_s=2.5)
    expected = launch("ring", "Simple") + 2 * step("pci", "Simple") + size / 2.5e9
    assert estimate(s, size).time_s == pytest.approx(expected, rel=1e-6)
    # Two nodes of one GPU over 25GbE: the ring's bandwidth term scales with the
    # achieved fraction of the NIC (below the host-staging ceiling at both).
    pair = {"nodes": 2, "gpus_per_node": 1, "gpu": "V100-PCIe-16GB", "nic": {"link": "25GbE"}}
    big, small = 2e9, 1e9
    slope = {eff: (estimate(scenario(pair, protocol="Simple", network_efficiency=eff), big).time_s
                   - estimate(scenario(pair, protocol="Simple", network_efficiency=eff), small).time_s)
             for eff in (0.4, 0.8)}
    assert slope[0.4] == pytest.approx(2 * slope[0.8], rel=1e-6)


@pytest.mark.parametrize("field,value", [("host_staging_gbytes_s", 0), ("network_efficiency", 1.5),
                                         ("network_efficiency", "fast")])
def test_bad_measured_figures_are_refused_with_the_field_named(field, value):
    with pytest.raises(ScenarioError, match=f"training.collectives.{field}"):
        scenario(PCIE_4, **{field: value})


def test_a_narrow_switch_link_carries_fewer_channels():
    # Two RTX 2080 Ti on an NVLink bridge (modelled as a 2-port switch at 50 GB/s, NCCL
    # reaching 40): 2 x 40 / 20 = 4 channels, not an 8-GPU server's 24.
    s = scenario({"nodes": 1, "gpus_per_node": 2, "gpu": "RTX-2080Ti",
                  "server": {"layout": "nvswitch", "nvlink_bandwidth_gbytes_s": 50}})
    library = build(s).context.collectives
    assert library.topology.switch_bw == pytest.approx(50e9 * NCCL.achievable["nvlink"]["Turing"], rel=1e-9)
    assert library.topology.channels == library.describe()["channels"] == 4

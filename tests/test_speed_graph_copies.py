"""The shortcuts that make a 65,536-GPU cluster cheap to build (issue #19) give exactly
what the slow ways give: servers stamped from one built server, the library's graph
copied straight into networkx's dicts, the library's network read off the cluster's
graph at scaled capacities instead of a scaled copy, and the collective library's ring
topology read from per-edge link kinds."""

from __future__ import annotations

from pathlib import Path

import pytest
import simpy

import topologies.cluster as cluster_module
from simulator import load_scenario
from simulator.build import _shared_cluster, build, forget_shared_clusters
from simulator.collectives.channels import achievable_scale, link_class
from simulator.hardware import fabric_params, server_params
from simulator.network import Network
from simulator.resolved import resolve
from topologies import build_cluster
from topologies.graph import copy_graph, same_graph

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = {
    "pcie, 2 switches": (None, ["cluster.nodes=5", "cluster.gpus_per_node=8", "cluster.server.pcie_switches=2",
                                "cluster.server.gpus_per_switch=null"]),
    "pcie, 2 sockets, 2 NICs, no p2p": (None, ["cluster.nodes=3", "cluster.gpus_per_node=4", "cluster.server.sockets=2",
                                               "cluster.server.nics=2", "cluster.server.p2p=false"]),
    "parameter servers, dedicated": (ROOT / "scenarios" / "ps_4x4_10gbe.yaml", ["cluster.nodes=4"]),
    "dgx1, 16x8": (ROOT / "scenarios" / "validation" / "training_systems" / "horovod-396-resnet101-8x8.yaml",
                   ["cluster.nodes=16"]),
    "nvswitch, leaf-spine": (None, ["cluster.nodes=4", "cluster.gpus_per_node=8", "cluster.server.layout=nvswitch",
                                    "cluster.gpu=A100-SXM4-80GB", "cluster.server.pcie_switches=null",
                                    "cluster.server.gpus_per_switch=null", "cluster.fabric.topology=leaf_spine",
                                    "cluster.fabric.nodes_per_leaf=2"]),
}


def _parameters(scenario) -> dict:
    c, ps = scenario.cluster, scenario.training.parameter_servers
    view = resolve(scenario)
    bandwidth, latency = view.pcie_bandwidth, view.pcie_latency
    return dict(nodes=c.nodes, gpus_per_node=c.gpus_per_node, server_layout=c.server.layout,
                server_params=server_params(scenario), nic_bandwidth=c.nic.resolved_bandwidth_gbps * 1e9 / 8,
                nic_latency=c.nic.resolved_latency_us * 1e-6, fabric=c.fabric.topology,
                fabric_params=fabric_params(scenario), dedicated_ps=2 if ps.placement == "dedicated" else 0,
                ps_nic_bandwidth=None, host_pcie_bandwidth=bandwidth, host_pcie_latency=latency)


@pytest.mark.parametrize("name", SCENARIOS)
def test_stamped_servers_are_the_built_ones(name, monkeypatch):
    scenario = load_scenario(*SCENARIOS[name])
    parameters = _parameters(scenario)
    assert cluster_module._stamp(parameters["server_layout"], parameters["gpus_per_node"],
                                 parameters["server_params"]) is not None  # the stamp is taken
    stamped = build_cluster(**parameters)
    monkeypatch.setattr(cluster_module, "_stamp", lambda *args: None)
    built = build_cluster(**parameters)
    assert (stamped.gpus, stamped.hosts, stamped.ps_hosts) == (built.gpus, built.hosts, built.ps_hosts)
    assert same_graph(stamped.graph, built.graph)
    assert not same_graph(stamped.graph, build_cluster(**{**parameters, "nic_bandwidth": 1.0}).graph)


@pytest.mark.parametrize("name", SCENARIOS)
def test_graph_copies_are_networkx_copies(name):
    forget_shared_clusters()
    scenario = load_scenario(*SCENARIOS[name])
    graph = _shared_cluster(**_parameters(scenario)).graph
    assert same_graph(copy_graph(graph), graph.copy())
    copied = copy_graph(graph)
    u, v = next(iter(graph.edges))
    copied.edges[u, v]["bandwidth"] = -1.0  # a copy's edge is its own, one dict for both ends
    assert graph.edges[u, v]["bandwidth"] != -1.0 and copied.pred[v][u]["bandwidth"] == -1.0
    backend = build(scenario).context.collectives
    if backend is not None:
        library = backend.backend
        scaled = achievable_scale(library, "Volta").graph(graph)
        assert same_graph(scaled, _slow_achievable_graph(graph, library, "Volta"))


def _slow_achievable_graph(graph, backend, architecture):
    """The library's scaled graph as it was written before the fast copy: networkx's
    copy, each edge scaled by its link class's fraction."""
    out = graph.copy()
    for _u, _v, data in out.edges(data=True):
        if data.get("link") is not None:
            data["bandwidth"] = data["bandwidth"] * backend.achievable_fraction(data["link"], architecture)
    return out


@pytest.mark.parametrize("name", SCENARIOS)
def test_scaled_networks_are_networks_over_the_scaled_copy(name):
    """A network over the cluster's graph with the library's bandwidth scale reads the
    capacities, and shows the graph, that one over the scaled copy did."""
    forget_shared_clusters()
    scenario = load_scenario(*SCENARIOS[name])
    library = build(scenario).context.collectives
    if library is None:
        pytest.skip("no collective library")
    graph = library.fabric.network.structure
    copied = _slow_achievable_graph(graph, library.backend, "Volta")
    env = simpy.Environment()
    scaled, plain = Network(env, graph, achievable_scale(library.backend, "Volta")), Network(env, copied)
    assert scaled.capacity.tobytes() == plain.capacity.tobytes()
    assert scaled.links.capacity_list == plain.links.capacity_list
    assert (scaled.latency.tobytes(), scaled.link_of, list(scaled.edges)) == (
        plain.latency.tobytes(), plain.link_of, list(plain.edges))
    assert same_graph(scaled.graph, copied) and scaled.structure is graph
    assert Network(env, graph, scaled.links.scale).links is scaled.links  # shared
    u, v = next(iter(graph.edges))
    assert scaled.capacity[scaled.edge_index[u, v]] == copied.edges[u, v]["bandwidth"]


@pytest.mark.parametrize("name", ["pcie, 2 switches", "dgx1, 16x8", "nvswitch, leaf-spine",
                                  "pcie, 2 sockets, 2 NICs, no p2p"])
def test_the_ring_topology_is_read_as_from_node_paths(name):
    """The library's topology as it was computed from node paths and graph views."""
    forget_shared_clusters()
    scenario = load_scenario(*SCENARIOS[name])
    library = build(scenario).context.collectives
    assert library is not None
    net, graph = library.fabric.network, library.fabric.network.graph
    pairs = tuple((r[i], r[(i + 1) % len(r)]) for r in library.rings for i in range(len(r)))
    paths = {p: [net.edges[e][0] for e in net.route(*p).edges] + [p[1]] for p in set(pairs)}
    classes = {link_class(graph, path) for path in paths.values()} - {"net"}
    latency = max((sum(net.latency[e] for e in net.route(*p).edges
                       if graph.edges[net.edges[e]].get("link") == "network") for p in paths), default=0.0)
    topology = library.topology
    assert topology.intra_class == ("nvlink" if classes == {"nvlink"} else "pci")
    assert topology.network_latency_s == latency and type(topology.network_latency_s) is type(latency)
    assert library._connection_rate(library._routes(pairs)) == (
        float("inf") if not library.backend.connection_gbytes_s
        or not any(link_class(graph, path) == "net" for path in paths.values())
        else library.backend.connection_gbytes_s * 1e9)


@pytest.fixture(autouse=True)
def _cold_afterwards():
    yield
    forget_shared_clusters()

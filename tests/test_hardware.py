"""Scenario-level hardware: layouts and fabrics from scenario files, and their physics."""

from __future__ import annotations

import dataclasses

import pytest
import simpy

from simulator import ScenarioError, load_scenario, simulate
from simulator.collectives.algorithms import ALLREDUCE_ALGORITHMS
from simulator.collectives.fabric import Fabric
from simulator.engine import build
from simulator.hardware import fabric_params, server_params
from topologies import SERVER_LAYOUTS, SERVER_LAYOUT_PARAMS, LayoutParams, NvSwitchParams, register_server_layout

GB = 1e9


def allreduce_time(scenario, nbytes: float, algorithm: str = "ring") -> float:
    sim = build(scenario)
    env = sim.env
    fabric = Fabric(env, sim.network, sim.context.nodes, detailed=True)
    env.process(ALLREDUCE_ALGORITHMS[algorithm](fabric, nbytes))
    env.run()
    return env.now


# The default scenario pins 2 switches x 2 GPUs; start each test from a plain server.
# These check the topology's physics, so collectives run on the plain flow model.
PLAIN = ["cluster.server.pcie_switches=null", "cluster.server.gpus_per_switch=null",
         "training.collectives.backend=ideal"]
PCIE_8 = PLAIN + ["cluster.nodes=1", "cluster.gpus_per_node=8", "cluster.server.pcie_switches=2"]


def test_p2p_off_slows_intra_node_ring_by_the_staging_factor():
    # With P2P each ring hop uses its own GPU link or one uplink direction: every flow
    # runs at the full PCIe rate. Staged through host memory, all 4 GPUs of a switch
    # push their flows through its one uplink each way: a quarter of the rate, 4x slower.
    on = allreduce_time(load_scenario(None, PCIE_8), 1e9)
    off = allreduce_time(load_scenario(None, PCIE_8 + ["cluster.server.p2p=false"]), 1e9)
    pcie = 126.03e9 / 8 * 0.8
    assert on == pytest.approx(2 * 7 / 8 * 1e9 / pcie, rel=0.01)
    assert off / on == pytest.approx(4.0, rel=0.01)


def test_p2p_defaults_to_the_gpus_catalog_entry_and_the_scenario_overrides_it():
    # GeForce RTX 3090s have no PCIe peer-to-peer (catalog pcie_p2p: false): staged by
    # default, the same time as p2p: false; p2p: true in the scenario puts it back.
    rtx = PCIE_8 + ["cluster.gpu=RTX-3090", "cluster.server.pcie_generation=3"]
    default = allreduce_time(load_scenario(None, rtx), 1e9)
    assert default == allreduce_time(load_scenario(None, rtx + ["cluster.server.p2p=false"]), 1e9)
    assert default / allreduce_time(load_scenario(None, rtx + ["cluster.server.p2p=true"]), 1e9) == pytest.approx(
        4.0, rel=0.01)


def test_oversubscription_slows_cross_rack_traffic_by_its_ratio():
    times = {}
    for ratio in (1, 4):
        s = load_scenario(None, PLAIN + ["cluster.nodes=8", "cluster.gpus_per_node=1", "cluster.server.pcie_switches=1",
                                 "cluster.nic.link=100GbE", "cluster.fabric.topology=leaf_spine",
                                 "cluster.fabric.nodes_per_leaf=4", "cluster.fabric.spines=2",
                                 f"cluster.fabric.oversubscription={ratio}"])
        sim = build(s)
        done = [sim.network.transfer(f"n{i}.gpu0", f"n{i + 4}.gpu0", 1e9) for i in range(4)]
        sim.env.run(simpy.AllOf(sim.env, done))
        times[ratio] = sim.env.now
    nic = 100e9 * 1448 / 1538 / 8
    assert times[1] == pytest.approx(1e9 / nic, rel=0.01)
    assert times[4] / times[1] == pytest.approx(4.0, rel=0.01)


def test_hierarchical_beats_flat_ring_on_nvlink_nodes_over_ethernet():
    base = PLAIN + ["cluster.nodes=4", "cluster.gpus_per_node=8", "cluster.gpu=V100-SXM2-16GB",
                    "cluster.server.layout=dgx1", "cluster.nic.link=10GbE", "cluster.server.nics=1"]
    ring = allreduce_time(load_scenario(None, base), 100e6, "ring")
    hier = allreduce_time(load_scenario(None, base), 100e6, "hierarchical")
    # One 10 GbE NIC per node: flat ring sends 2(31/32) S through it, hierarchical 2(3/4) S.
    assert hier < ring * 0.85
    r = simulate(load_scenario(None, base + ["training.strategy=hierarchical_allreduce"]), with_baseline=False)
    f = simulate(load_scenario(None, base + ["training.strategy=ring_allreduce"]), with_baseline=False)
    assert r.iteration_time_s < f.iteration_time_s


def test_nvswitch_server_keeps_gpu_traffic_on_nvlink():
    s = load_scenario(None, PLAIN + ["cluster.nodes=1", "cluster.gpus_per_node=8", "cluster.gpu=A100-SXM4-80GB",
                             "cluster.server.layout=nvswitch"])
    sim = build(s)
    route = sim.network.route("n0.gpu0", "n0.gpu1")
    assert [sim.network.graph.edges[sim.network.edges[e]]["link"] for e in route.edges] == ["nvlink", "nvlink"]
    # 8 GPUs ring over NVSwitch at 300 GB/s per GPU: 2 x 7/8 x 1 GB / 300 GB/s.
    assert allreduce_time(s, 1e9) == pytest.approx(2 * 7 / 8 * 1e9 / 300e9, rel=0.01)


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["cluster.server.layout=dgx1", "cluster.gpu=V100-SXM2-16GB", "cluster.server.pcie_switches=2"],
         "cluster.server.pcie_switches: not used by server layout dgx1"),
        (["cluster.server.layout=nvswitch", "cluster.gpu=V100-PCIe-16GB"], "needs NVLink"),
        (["cluster.nodes=2", "cluster.fabric.topology=leaf_spine"], "cluster.fabric.nodes_per_leaf: required"),
        (["cluster.fabric.spines=2"], "cluster.fabric.spines: not used by fabric single_switch"),
        (["cluster.server.layout=torus"], "unknown server layout 'torus'"),
    ],
)
def test_misplaced_hardware_settings_are_refused(overrides, message):
    with pytest.raises(ScenarioError, match=message):
        simulate(load_scenario(None, PLAIN + overrides), with_baseline=False)


@pytest.mark.parametrize("layout,gpu", [("nvswitch", "A100-SXM4-80GB"), ("pcie_tree", "V100-PCIe-16GB")])
def test_one_gpu_baseline_of_a_custom_server_builds(layout, gpu):
    # 4 PCIe switches and 4 NICs cannot hold one GPU evenly; the baseline drops them.
    r = simulate(load_scenario(None, PLAIN + [f"cluster.server.layout={layout}", f"cluster.gpu={gpu}",
                                              "cluster.gpus_per_node=8", "cluster.server.pcie_switches=4",
                                              "cluster.server.nics=4"]))
    assert 1.0 < r.speedup <= r.total_gpus


@pytest.fixture
def custom_layout():
    """A layout registered outside the package, declaring three parameters."""

    @dataclasses.dataclass(frozen=True, kw_only=True)
    class OneSwitchParams(LayoutParams):
        pcie_bandwidth: float
        pcie_latency: float
        nics: int = 2

    def one_switch(graph, prefix, gpus, **params):
        p = OneSwitchParams(**params)
        return SERVER_LAYOUTS["pcie_tree"](graph, prefix, gpus, pcie_bandwidth=p.pcie_bandwidth,
                                           pcie_latency=p.pcie_latency, nics=p.nics)

    register_server_layout("test_one_switch", params=OneSwitchParams)(one_switch)
    yield "test_one_switch"
    del SERVER_LAYOUTS["test_one_switch"], SERVER_LAYOUT_PARAMS["test_one_switch"]


def test_builders_get_every_declared_parameter_from_the_scenario():
    s = load_scenario(None, PLAIN + ["cluster.server.layout=nvswitch", "cluster.gpu=A100-SXM4-80GB",
                                     "cluster.server.nics=4"])
    params = server_params(s)
    assert set(params) == {f.name for f in dataclasses.fields(NvSwitchParams)}
    assert (params["nics"], params["nvlink_bandwidth"], params["pcie_switches"]) == (4, 300e9, None)
    assert fabric_params(s) == {"switch_latency": 0.5e-6}


def test_a_layout_registered_elsewhere_takes_the_fields_its_dataclass_declares(custom_layout):
    base = PLAIN + [f"cluster.server.layout={custom_layout}", "cluster.gpus_per_node=4"]
    assert server_params(load_scenario(None, base + ["cluster.server.nics=3"]))["nics"] == 3
    assert set(server_params(load_scenario(None, base))) == {"pcie_bandwidth", "pcie_latency", "nics"}
    with pytest.raises(ScenarioError, match=f"cluster.server.sockets: not used by server layout {custom_layout}"):
        server_params(load_scenario(None, base + ["cluster.server.sockets=2"]))
    r = simulate(load_scenario(None, base + ["cluster.nodes=2"]), with_baseline=False)
    assert r.total_gpus == 8

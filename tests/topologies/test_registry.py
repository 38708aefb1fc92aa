"""The registries: each layout and fabric with the dataclass declaring its parameters."""

from __future__ import annotations

import dataclasses

import pytest

from topologies import (
    FABRICS,
    FABRIC_PARAMS,
    SERVER_LAYOUTS,
    SERVER_LAYOUT_PARAMS,
    Dgx1Params,
    FabricParams,
    LayoutParams,
    LeafSpineParams,
    NvSwitchParams,
    PcieTreeParams,
    SingleSwitchParams,
    default_nics,
    register_fabric,
    register_server_layout,
)

from .helpers import cluster


@pytest.fixture
def scratch_names():
    """Names registered by a test, taken out of every table again afterwards."""
    names: list[str] = []
    yield names
    for name in names:
        for table in (SERVER_LAYOUTS, SERVER_LAYOUT_PARAMS, FABRICS, FABRIC_PARAMS):
            table.pop(name, None)


def test_every_built_in_layout_and_fabric_declares_its_parameters():
    assert {name: SERVER_LAYOUT_PARAMS[name] for name in ("pcie_tree", "dgx1", "nvswitch")} == {
        "pcie_tree": PcieTreeParams, "dgx1": Dgx1Params, "nvswitch": NvSwitchParams}
    assert {name: FABRIC_PARAMS[name] for name in ("single_switch", "leaf_spine", "fat_tree")} == {
        "single_switch": SingleSwitchParams, "leaf_spine": LeafSpineParams, "fat_tree": LeafSpineParams}
    assert set(SERVER_LAYOUT_PARAMS) == set(SERVER_LAYOUTS) and set(FABRIC_PARAMS) == set(FABRICS)
    for params in (*SERVER_LAYOUT_PARAMS.values(), *FABRIC_PARAMS.values()):
        assert dataclasses.is_dataclass(params) and params.__dataclass_params__.frozen
        assert issubclass(params, (LayoutParams, FabricParams))


def test_the_dataclass_says_what_each_builder_takes_and_its_defaults():
    assert [f.name for f in dataclasses.fields(Dgx1Params)] == [
        "pcie_bandwidth", "pcie_latency", "nvlink_bandwidth", "nvlink_latency", "qpi_bandwidth", "qpi_latency",
        "p2p", "gdr", "nics"]
    p = PcieTreeParams(pcie_bandwidth=1.0, pcie_latency=0.0)
    assert (p.pcie_switches, p.sockets, p.nics, p.nic_placement, p.p2p, p.gdr) == (1, 1, 1, "root", True, True)
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field .nics."):
        p.nics = 2
    q = LeafSpineParams(switch_latency=0.0, nodes_per_leaf=2)
    assert (q.spines, q.oversubscription, q.uplink_latency, q.rails) == (2, 1.0, 0.0, False)


def test_a_parameter_the_layout_or_fabric_does_not_declare_is_refused_by_name():
    with pytest.raises(TypeError, match="sockets"):
        cluster("dgx1", {"sockets": 2})
    with pytest.raises(TypeError, match="spines"):
        cluster("pcie_tree", {}, nodes=2, gpus=4, fabric_params={"switch_latency": 0.0, "spines": 2})
    with pytest.raises(TypeError, match="nodes_per_leaf"):  # required, not given
        cluster("pcie_tree", {}, nodes=2, gpus=4, fabric="leaf_spine")


@pytest.mark.parametrize(("layout", "params", "gpus", "nics"), [
    ("pcie_tree", {}, 8, 1),
    ("dgx1", {}, 8, 4),
    ("nvswitch", {"nvlink_bandwidth": 300e9}, 8, 8),
    ("nvswitch", {"nvlink_bandwidth": 300e9}, 4, 4),
])
def test_default_nics_is_what_the_layout_builds_when_nics_is_not_given(layout, params, gpus, nics):
    assert default_nics(layout, gpus) == SERVER_LAYOUT_PARAMS[layout].default_nics(gpus) == nics
    graph = cluster(layout, params, gpus=gpus).graph
    assert sum(1 for _, d in graph.nodes(data=True) if d["kind"] == "nic") == nics


def test_a_layout_registered_without_a_dataclass_takes_no_parameters(scratch_names):
    scratch_names.append("test_bare")
    register_server_layout("test_bare")(lambda graph, prefix, gpus: None)
    assert SERVER_LAYOUT_PARAMS["test_bare"] is LayoutParams and dataclasses.fields(LayoutParams) == ()
    with pytest.raises(LookupError, match="no nics"):
        default_nics("test_bare", 8)


def test_params_must_be_a_dataclass_of_the_right_kind():
    with pytest.raises(TypeError, match="LayoutParams dataclass"):
        register_server_layout("test_wrong", params=dict)
    with pytest.raises(TypeError, match="FabricParams dataclass"):
        register_fabric("test_wrong", params=PcieTreeParams)
    assert "test_wrong" not in SERVER_LAYOUTS and "test_wrong" not in FABRICS


def test_duplicate_registration_keeps_the_first_builder_and_its_parameters():
    builder = SERVER_LAYOUTS["pcie_tree"]
    with pytest.raises(ValueError, match="already registered"):
        register_server_layout("pcie_tree", params=Dgx1Params)(lambda *a, **k: None)
    assert SERVER_LAYOUTS["pcie_tree"] is builder and SERVER_LAYOUT_PARAMS["pcie_tree"] is PcieTreeParams

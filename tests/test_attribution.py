"""Lost speedup splits exactly into its causes, and each cause shows where expected."""

from __future__ import annotations

import pytest

from simulator import load_scenario, simulate

from .conftest import REPO_ROOT

SCENARIOS = REPO_ROOT / "scenarios"


def attribution(path, *overrides):
    r = simulate(load_scenario(path, list(overrides)))
    return r, r.attribution


@pytest.mark.parametrize("name", ["pcie_8gpu_server.yaml", "ps_4x4_10gbe.yaml", "ring_4x4_ib100.yaml"])
def test_causes_add_up_to_the_lost_speedup(name):
    r, a = attribution(SCENARIOS / name)
    assert a["lost_speedup"] == pytest.approx(r.total_gpus - r.speedup, rel=1e-9, abs=1e-9)
    assert sum(a["speedup"].values()) == pytest.approx(a["lost_speedup"], rel=1e-9, abs=1e-9)


def test_one_parameter_server_on_10gbe_is_blamed_on_the_server():
    _, a = attribution(SCENARIOS / "ps_4x4_10gbe.yaml", "training.parameter_servers.count=1")
    causes = a["speedup"]
    assert max(causes, key=causes.get) == "parameter_server"
    assert causes["parameter_server"] > 0.8 * a["lost_speedup"]


def test_no_overlap_on_a_pcie_server_is_blamed_on_pcie():
    _, a = attribution(SCENARIOS / "pcie_8gpu_server.yaml", "training.overlap=false")
    assert max(a["speedup"], key=a["speedup"].get) == "pcie_contention"


def test_a_slow_gpu_is_blamed_on_straggler_wait():
    # one GPU at a fifth of the speed: its compute (~0.8 s) outlasts the ring (0.26 s),
    # so the others mostly wait for it (at half speed VGG-16's compute, 0.31 s, still
    # hides behind this NIC-bound ring)
    _, a = attribution(SCENARIOS / "ring_4x4_ib100.yaml", "variability.gpu_speed_factors={7: 0.2}")
    assert max(a["speedup"], key=a["speedup"].get) == "straggler_wait"


def test_slow_ethernet_ring_is_blamed_on_nics():
    _, a = attribution(SCENARIOS / "ring_4x4_ib100.yaml", "cluster.nic.link=1GbE")
    assert max(a["speedup"], key=a["speedup"].get) == "nic_saturation"

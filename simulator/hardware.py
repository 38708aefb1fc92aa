"""Translate a scenario's cluster section into topology-builder arguments.

Scenario fields are in user units (GB/s, Gb/s, microseconds); builders take bytes/s
and seconds. Each layout and fabric accepts its own parameters: a field the chosen
builder does not take is refused if the user set it, so a misplaced setting never
goes silently unused.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from topologies import FABRICS, SERVER_LAYOUTS

from . import catalog
from .errors import ScenarioError
from .scenario import Scenario

GB = 1e9


def _accepted(builder: Callable[..., Any], candidates: Mapping[str, tuple[str, Any]], what: str) -> dict[str, Any]:
    """Keep the candidates ``builder`` takes; refuse a set field it does not."""
    accepted = inspect.signature(builder).parameters
    params = {}
    for name, (field, value) in candidates.items():
        if value is None:
            continue
        if name not in accepted:
            raise ScenarioError(f"{field}: not used by {what}")
        params[name] = value
    return params


def pcie_link(scenario: Scenario) -> tuple[float, float]:
    """(bandwidth bytes/s, latency s) of one x16 PCIe link in the scenario's servers."""
    server = scenario.cluster.server
    gpu = catalog.get_gpu(scenario.cluster.gpu)
    pcie = catalog.pcie_link_for_gen(server.pcie_generation or gpu.pcie_gen)
    latency_us = server.pcie_latency_us if server.pcie_latency_us is not None else pcie.latency_us
    return pcie.bandwidth_bytes_per_s, latency_us * 1e-6


def server_params(scenario: Scenario) -> dict[str, Any]:
    server = scenario.cluster.server
    gpu = catalog.get_gpu(scenario.cluster.gpu)
    pcie_bandwidth, pcie_latency = pcie_link(scenario)
    nvlink = server.nvlink_bandwidth_gbytes_s or gpu.nvlink_gbytes_s
    if server.layout == "dgx1" and nvlink is not None:
        nvlink /= 6  # the builder takes one of the six links of a V100
    uses_nvlink = "nvlink_bandwidth" in inspect.signature(SERVER_LAYOUTS[server.layout]).parameters
    if uses_nvlink and nvlink is None:
        raise ScenarioError(
            f"cluster.server.layout: {server.layout} needs NVLink, and {gpu.name} has none; "
            "set cluster.server.nvlink_bandwidth_gbytes_s or pick an SXM GPU"
        )
    prefix = "cluster.server."
    candidates = {
        "pcie_bandwidth": ("", pcie_bandwidth),
        "pcie_latency": ("", pcie_latency),
        "pcie_switches": (prefix + "pcie_switches", server.pcie_switches),
        "sockets": (prefix + "sockets", server.sockets),
        "qpi_bandwidth": (prefix + "qpi_bandwidth_gbytes_s", _scaled(server.qpi_bandwidth_gbytes_s, GB)),
        "p2p": ("", gpu.pcie_p2p if server.p2p is None else server.p2p),
        "gdr": ("", server.gpudirect_rdma),
        "nics": (prefix + "nics", server.nics),
        "nic_placement": (prefix + "nic_placement", server.nic_placement),
        "nvlink_bandwidth": (prefix + "nvlink_bandwidth_gbytes_s", _scaled(nvlink, GB) if uses_nvlink else None),
    }
    if server.layout == "pcie_tree" and server.pcie_switches is None:
        candidates["pcie_switches"] = ("", 1)
    return _accepted(SERVER_LAYOUTS[server.layout], candidates, f"server layout {server.layout}")


def fabric_params(scenario: Scenario) -> dict[str, Any]:
    fabric = scenario.cluster.fabric
    prefix = "cluster.fabric."
    candidates = {
        "switch_latency": ("", fabric.switch_latency_us * 1e-6),
        "nodes_per_leaf": (prefix + "nodes_per_leaf", fabric.nodes_per_leaf),
        "spines": (prefix + "spines", fabric.spines),
        "oversubscription": (prefix + "oversubscription", fabric.oversubscription),
        "rails": (prefix + "rails", fabric.rails),
    }
    builder = FABRICS[fabric.topology]
    if "nodes_per_leaf" in inspect.signature(builder).parameters and fabric.nodes_per_leaf is None:
        raise ScenarioError(f"cluster.fabric.nodes_per_leaf: required by fabric {fabric.topology}")
    return _accepted(builder, candidates, f"fabric {fabric.topology}")


def _scaled(value: float | None, factor: float) -> float | None:
    return None if value is None else value * factor

"""Translate a scenario's cluster section into topology-builder arguments.

Scenario fields are in user units (GB/s, Gb/s, microseconds); builders take bytes/s
and seconds (the GPU and its PCIe link come from the scenario's resolved view,
:mod:`simulator.resolved`). Each layout and fabric declares the parameters it takes in
a dataclass registered with it (:data:`topologies.SERVER_LAYOUT_PARAMS`, :data:`topologies.FABRIC_PARAMS`):
the scenario's fields fill that dataclass, a field it does not declare is refused if the
user set it (so a misplaced setting never goes silently unused), and the builder is
called with the dataclass's fields.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from topologies import FABRIC_PARAMS, SERVER_LAYOUT_PARAMS, FabricParams, LayoutParams

from .errors import ScenarioError
from .resolved import Resolved, resolved
from .scenario import Scenario

GB = 1e9


def _declared(
    params: type[LayoutParams] | type[FabricParams], candidates: Mapping[str, tuple[str, Any]], what: str
) -> dict[str, Any]:
    """The fields of ``params`` filled from ``candidates`` (parameter -> (scenario field,
    value); None: not set, the declared default holds). A set scenario field that
    ``params`` does not declare is refused; a candidate with no field name (derived, not
    set by the user) is left out; a required parameter left unset is refused."""
    declared = {f.name: f for f in dataclasses.fields(params)}
    for name, f in declared.items():
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            field, value = candidates.get(name, ("", None))
            if value is None:
                raise ScenarioError(f"{field}: required by {what}" if field
                                    else f"{what} requires {name}, which no scenario field sets")
    values = {}
    for name, (field, value) in candidates.items():
        if value is None:
            continue
        if name not in declared:
            if field:
                raise ScenarioError(f"{field}: not used by {what}")
            continue
        values[name] = value
    return dataclasses.asdict(params(**values))


def server_params(scenario: Scenario | Resolved) -> dict[str, Any]:
    view = resolved(scenario)
    server, gpu = view.scenario.cluster.server, view.gpu
    nvlink = server.nvlink_bandwidth_gbytes_s or gpu.nvlink_gbytes_s
    if server.layout == "dgx1" and nvlink is not None:
        nvlink /= 6  # the builder takes one of the six links of a V100
    params = SERVER_LAYOUT_PARAMS[server.layout]
    uses_nvlink = any(f.name == "nvlink_bandwidth" for f in dataclasses.fields(params))
    if uses_nvlink and nvlink is None:
        raise ScenarioError(
            f"cluster.server.layout: {server.layout} needs NVLink, and {gpu.name} has none; "
            "set cluster.server.nvlink_bandwidth_gbytes_s or pick an SXM GPU"
        )
    prefix = "cluster.server."
    candidates = {
        "pcie_bandwidth": ("", view.pcie_bandwidth),
        "pcie_latency": ("", view.pcie_latency),
        "pcie_switches": (prefix + "pcie_switches", server.pcie_switches),
        "sockets": (prefix + "sockets", server.sockets),
        "qpi_bandwidth": (prefix + "qpi_bandwidth_gbytes_s", _scaled(server.qpi_bandwidth_gbytes_s, GB)),
        "p2p": ("", gpu.pcie_p2p if server.p2p is None else server.p2p),
        "gdr": ("", server.gpudirect_rdma),
        "nics": (prefix + "nics", server.nics),
        "nic_placement": (prefix + "nic_placement", server.nic_placement),
        "nvlink_bandwidth": (prefix + "nvlink_bandwidth_gbytes_s", _scaled(nvlink, GB) if uses_nvlink else None),
    }
    return _declared(params, candidates, f"server layout {server.layout}")


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
    return _declared(FABRIC_PARAMS[fabric.topology], candidates, f"fabric {fabric.topology}")


def _scaled(value: float | None, factor: float) -> float | None:
    return None if value is None else value * factor

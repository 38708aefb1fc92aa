"""Topologies: functions that build annotated networkx graphs of GPU clusters.

A cluster is a :class:`networkx.DiGraph`. Every node has a ``kind`` (``gpu``,
``pcie_switch``, ``cpu``, ``nic``, ``nvswitch``, ``switch``, ``ps_host``) and every
physical link is two directed edges (full duplex), each with ``bandwidth`` in bytes/s,
``latency`` in seconds and a ``link`` kind (``pcie``, ``nvlink``, ``qpi`` between CPU
sockets, ``network``). GPU nodes say how their data may move: ``host`` (the CPU whose
memory they stage through), ``p2p`` (PCIe peer-to-peer allowed) and ``gdr`` (GPUDirect
RDMA with the NICs allowed); see :mod:`topologies.pcie`.

Builders are registered under the names scenario files use: server layouts (how the
GPUs of one node are wired) in :data:`SERVER_LAYOUTS`, fabrics (how nodes are joined)
in :data:`FABRICS`, each with a frozen dataclass declaring the parameters it takes
(:data:`SERVER_LAYOUT_PARAMS`, :data:`FABRIC_PARAMS`; see :mod:`topologies.registry`).
:func:`build_cluster` composes them. :mod:`topologies.draw`
(imported on demand: it loads matplotlib) draws a built cluster. This package knows nothing of
scenarios or simulation; it takes plain numbers.
"""

from .cluster import ClusterGraph, build_cluster
from .graph import add_duplex_link
from .registry import (
    FABRIC_PARAMS,
    FABRICS,
    SERVER_LAYOUT_PARAMS,
    SERVER_LAYOUTS,
    FabricParams,
    LayoutParams,
    default_nics,
    register_fabric,
    register_server_layout,
)

# Importing the builder modules registers them.
from . import fabric as _fabric  # noqa: F401,E402
from . import nvlink as _nvlink  # noqa: F401,E402
from . import pcie as _pcie  # noqa: F401,E402
from .fabric import LeafSpineParams, SingleSwitchParams  # noqa: E402
from .nvlink import Dgx1Params, NvSwitchParams  # noqa: E402
from .pcie import PcieTreeParams  # noqa: E402

__all__ = [
    "ClusterGraph",
    "Dgx1Params",
    "FABRICS",
    "FABRIC_PARAMS",
    "FabricParams",
    "LayoutParams",
    "LeafSpineParams",
    "NvSwitchParams",
    "PcieTreeParams",
    "SERVER_LAYOUTS",
    "SERVER_LAYOUT_PARAMS",
    "SingleSwitchParams",
    "add_duplex_link",
    "build_cluster",
    "default_nics",
    "register_fabric",
    "register_server_layout",
]

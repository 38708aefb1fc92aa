"""Hardware catalog: datasheet figures for GPUs and links, each with its source.

Used by the simulator for roofline compute estimates (:class:`GPUSpec`) and for link
bandwidths and latencies (:class:`LinkSpec`).  The figures are data, not code:
``simulator/data/catalog/gpus.yaml`` and ``links.yaml`` (each file's header states the
conventions behind its numbers), read once and validated by :mod:`simulator.catalog.gpus`
and :mod:`simulator.catalog.links`.
"""

from simulator.catalog.gpus import (
    GPUS,
    PRECISIONS,
    GPUSpec,
    UnsupportedPrecision,
    get_gpu,
    list_gpus,
    match_device_name,
)
from simulator.catalog.links import (
    LINKS,
    TCP_ETHERNET_EFFICIENCY,
    LinkSpec,
    get_link,
    list_links,
    pcie_link_for_gen,
)

__all__ = [
    "GPUS",
    "LINKS",
    "PRECISIONS",
    "TCP_ETHERNET_EFFICIENCY",
    "GPUSpec",
    "LinkSpec",
    "UnsupportedPrecision",
    "get_gpu",
    "get_link",
    "list_gpus",
    "list_links",
    "match_device_name",
    "pcie_link_for_gen",
]

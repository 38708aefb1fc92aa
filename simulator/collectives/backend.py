"""A collective library's figures, as a backend file states them: the data model and loading.

Every number the cost model uses (launch and per-step latencies per protocol and link
class, protocol wire efficiencies and bandwidth ceilings, channel counts, achievable
link fractions, host staging, NVLS) lives in a backend file,
``simulator/data/backends/*.yaml``, one per library, every figure with its source. This
module holds the pydantic model a file validates into (:class:`Backend`), the lookup of
a backend by name, and the replacement of fitted figures by ones a user measured. It
knows nothing of graphs or of how the figures are combined: the ring search is in
:mod:`simulator.collectives.channels`, the latency/bandwidth estimate and the choice of
algorithm and protocol in :mod:`simulator.collectives.cost`.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from ..catalog.datafile import SAFE_LOADER

PROTOCOLS = ("LL", "LL128", "Simple")
#: NCCL_P2P_LEVEL values the model knows (``Backend.p2p_level``).
P2PLevel = Literal["PXB", "PHB", "SYS"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProtocolSpec(_Frozen):
    wire_efficiency: float = Field(gt=0, le=1, description="Payload fraction of the bytes on the wire.")


class NvlsSpec(_Frozen):
    efficiency: dict[str, float]  # the library's own figure, on which it chooses
    achieved: dict[str, float] = Field(default_factory=dict)  # what runs reach, if measured otherwise
    channels: int = Field(ge=2)
    latency_us: float = Field(ge=0)
    # What an NVLS call costs a run beyond ``latency_us`` (the library's own figure, on
    # which it chooses; the run pays both), microseconds.
    run_overhead_us: float = Field(0.0, ge=0)
    # NVLS tree (several nodes): NVLS inside each node, a tree of nodes over the NICs.
    tree_net_latency_us: float | None = Field(None, ge=0)
    tree_per_channel_gbytes_s: dict[str, list[float]] = Field(default_factory=dict)


class Backend(_Frozen):
    """One collective library's cost model (a file in ``simulator/data/backends``)."""

    name: str
    description: str
    source: str
    algorithms: list[str]
    protocols: dict[str, ProtocolSpec]
    base_latency_us: dict[str, dict[str, float]] = Field(default_factory=dict)
    step_latency_us: dict[str, dict[str, dict[str, float]]] = Field(default_factory=dict)
    net_overhead_us: float = 0.0
    ring_plateau_factor: dict[str, float] = Field(default_factory=dict)
    ll_max_busbw_gbytes_s: dict[str, float | dict[str, float]] = Field(default_factory=dict)
    ll128_per_channel_gbytes_s: dict[str, float] = Field(default_factory=dict)
    tree_bandwidth_factor: float = 1.0
    tree_per_channel_gbytes_s: dict[str, list[float]] = Field(default_factory=dict)
    # Tree with LL / LL128: busBw x this (one node, several nodes) instead of the wire
    # efficiency, LL128 capped per channel by node count (GB/s).
    tree_protocol_factor: dict[str, list[float]] = Field(default_factory=dict)
    tree_ll128_per_channel_gbytes_s: dict[str, list[float]] = Field(default_factory=dict)
    # The library's size-dependent correction of tree bandwidth in its estimate (choice
    # only), per protocol, indexed by log2(bytes / 64).
    tree_correction_factor: dict[str, list[float]] = Field(default_factory=dict)
    max_channels: int = Field(1, ge=1)
    achievable: dict[str, float | dict[str, float]] = Field(default_factory=dict)
    # The network's achievable fraction by the NIC's transport (the catalog link's
    # ``transport``: rdma, socket), in place of ``achievable["network"]``, which stays
    # the figure for a NIC given by bandwidth alone.
    network_by_transport: dict[str, float] = Field(default_factory=dict)
    host_staging_gbytes_s: float | None = Field(None, gt=0)
    # How far apart two GPUs may be and still copy peer to peer (NCCL_P2P_LEVEL): PXB,
    # through PCIe switches only (a hop through a CPU is staged in host memory); PHB,
    # also through one CPU's root complex; SYS, also across the socket link. Only GPUs
    # that can do P2P at all (catalog ``pcie_p2p``, ``cluster.server.p2p``) use it.
    p2p_level: P2PLevel = "PXB"
    # The most one channel's connection across the network moves (None: no limit): a
    # single TCP stream where the transport opens one socket per connection (NCCL's
    # socket transport before 2.4.8) and the network caps a flow (a cloud's per-flow
    # limit). Set per scenario: ``training.collectives.net_connection_gbps``.
    connection_gbytes_s: float | None = Field(None, gt=0)
    # How much slower a rank computes while the library's collective runs on its device
    # (its kernels hold SMs and memory bandwidth): fitted; 1 = no interference.
    compute_interference: float = Field(1.0, ge=1.0)
    call_overhead_us: float = Field(0.0, ge=0)
    # What a pipeline step costs in a run beyond the library's own latency table (which
    # it chooses by), per protocol; not part of the choice.
    step_overhead_us: dict[str, float] = Field(default_factory=dict)
    # NCCL's channel count where its search repeats one ring shape (NVSwitch servers:
    # every GPU pair one switch away), by GPU architecture; fewer where the GPU's switch
    # link carries fewer channels of ``nvswitch_channel_gbytes_s`` (two per such share).
    nvswitch_channels: dict[str, int] = Field(default_factory=dict)
    nvswitch_channel_gbytes_s: float = Field(20.0, gt=0)
    nvls: NvlsSpec | None = None
    # Libraries that reduce in host memory (MPI, gloo with GPU tensors): every rank copies
    # its buffer to its CPU, the ring runs between the hosts, the CPU sums what arrives
    # (reading two buffers, writing one, at ``host_reduce_gbytes_s``), the result is
    # copied back to the GPU.
    host_memory: bool = False
    host_reduce_gbytes_s: float = Field(10.0, gt=0)

    @property
    def models_steps(self) -> bool:
        """Whether steps pay the backend's latency table (else their route latency)."""
        return bool(self.step_latency_us)

    def achievable_fraction(self, link: str, architecture: str) -> float:
        value = self.achievable.get(link, 1.0)
        if isinstance(value, dict):
            return value.get(architecture, 1.0)
        return value


def with_measured(backend: Backend, host_staging_gbytes_s: float | None = None,
                  network_efficiency: float | None = None, net_connection_gbps: float | None = None,
                  compute_interference: float | None = None, transport: str = "",
                  p2p_level: P2PLevel | None = None) -> Backend:
    """``backend`` with the figures a user measured on their machine in place of its
    fitted ones (unchanged where a figure is None), and its network fraction for the
    NICs' ``transport`` (rdma, socket; "" or one the backend does not list: its
    default) where none was measured."""
    update: dict[str, object] = {}
    if network_efficiency is None and transport in backend.network_by_transport:
        network_efficiency = backend.network_by_transport[transport]
    if compute_interference is not None:
        update["compute_interference"] = compute_interference
    if net_connection_gbps is not None:
        update["connection_gbytes_s"] = net_connection_gbps / 8
    if host_staging_gbytes_s is not None:
        update["host_staging_gbytes_s"] = host_staging_gbytes_s
    if p2p_level is not None:
        update["p2p_level"] = p2p_level
    if network_efficiency is not None:
        update["achievable"] = {**backend.achievable, "network": network_efficiency}
    return backend.model_copy(update=update) if update else backend


def list_backends() -> list[str]:
    folder = resources.files("simulator") / "data" / "backends"
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


@cache
def get_backend(name: str) -> Backend:
    """The backend called ``name``; ``KeyError`` listing the known ones if absent."""
    if name not in list_backends():
        raise KeyError(f"unknown collective backend {name!r}; known: {', '.join(list_backends())}")
    text = (resources.files("simulator") / "data" / "backends" / f"{name}.yaml").read_text(encoding="utf-8")
    return Backend.model_validate(yaml.load(text, Loader=SAFE_LOADER))  # plain data, no tags

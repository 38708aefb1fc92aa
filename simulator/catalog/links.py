"""Link datasheet figures: PCIe, Ethernet, InfiniBand and NVLink.

Each :class:`LinkSpec` gives one direction of one link:

* ``line_rate_gbps`` is the data rate after line encoding, in Gb/s (10^9 bit/s).  For
  PCIe that is ``GT/s x lanes x 128/130``; for Ethernet and InfiniBand it is the
  nominal data rate (10GbE = 10.3125 GBd with 64b/66b = 10 Gb/s; IB FDR 4x =
  4 x 14.0625 Gb/s x 64/66 = 54.55 Gb/s, which is why "56 Gb/s FDR" is not used).
* ``efficiency`` is the fraction of the line rate a bulk transfer achieves.  Its
  provenance is given per entry; where it comes from protocol framing it is computed
  here, otherwise it is a typical measured value remembered from public benchmarks.
* ``latency_us`` is the typical one-way latency of a small message over one hop, as
  stated in each entry's ``notes`` (hardware path only for PCIe/NVLink, user-to-user
  including the kernel TCP stack for Ethernet, verbs RDMA for InfiniBand).

NVLink entries are *one* link (brick); a GPU's total is in
:attr:`simulator.catalog.gpus.GPUSpec.nvlink_gbytes_s`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

_KINDS = frozenset({"pcie", "ethernet", "infiniband", "nvlink"})


@dataclass(frozen=True)
class LinkSpec:
    """One direction of one link type."""

    name: str
    kind: str
    line_rate_gbps: float
    efficiency: float
    latency_us: float
    source: str
    notes: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("LinkSpec needs a name")
        if self.kind not in _KINDS:
            raise ValueError(
                f"link {self.name!r}: kind must be one of {sorted(_KINDS)}, "
                f"got {self.kind!r}"
            )
        if not self.line_rate_gbps > 0:
            raise ValueError(f"link {self.name!r}: line_rate_gbps must be positive")
        if not 0 < self.efficiency <= 1:
            raise ValueError(
                f"link {self.name!r}: efficiency must be in (0, 1], got {self.efficiency!r}"
            )
        if not self.latency_us > 0:
            raise ValueError(f"link {self.name!r}: latency_us must be positive")
        if not self.source.strip():
            raise ValueError(f"link {self.name!r}: every entry needs a source")

    @property
    def effective_gbps(self) -> float:
        """Achievable bulk data rate in Gb/s (line rate x efficiency)."""
        return self.line_rate_gbps * self.efficiency

    @property
    def bandwidth_bytes_per_s(self) -> float:
        """Achievable bulk data rate in bytes/s."""
        return self.effective_gbps * 1e9 / 8

    def transfer_time_s(self, nbytes: float) -> float:
        """Latency plus serialisation time of ``nbytes`` over this link alone."""
        if nbytes < 0:
            raise ValueError(f"link {self.name!r}: cannot transfer {nbytes!r} bytes")
        return self.latency_us * 1e-6 + nbytes / self.bandwidth_bytes_per_s


# --- line-rate arithmetic -------------------------------------------------------------

_PCIE_GT_S = {3: 8.0, 4: 16.0, 5: 32.0}
_PCIE_ENCODING = 128 / 130
_ENC_64B66B = 64 / 66

# TCP/IPv4 with timestamps over standard 1500-byte-MTU Ethernet: 1448 payload bytes per
# 1538 bytes on the wire (1500 + 14 header + 4 FCS + 8 preamble/SFD + 12 inter-frame gap).
TCP_ETHERNET_EFFICIENCY = 1448 / 1538

_PCIE_EFFICIENCY = 0.80
_IB_RDMA_EFFICIENCY = 0.97
_NVLINK_EFFICIENCY = 0.90


def _pcie(gen: int, latency_us: float = 1.0) -> LinkSpec:
    return LinkSpec(
        name=f"pcie{gen}x16",
        kind="pcie",
        line_rate_gbps=_PCIE_GT_S[gen] * 16 * _PCIE_ENCODING,
        efficiency=_PCIE_EFFICIENCY,
        latency_us=latency_us,
        source=f"PCI Express Base Specification {gen}.0: {_PCIE_GT_S[gen]:g} GT/s per "
        "lane, 128b/130b encoding, x16",
        notes="Line rate = GT/s x 16 x 128/130 (verified by search against published "
        "PCIe rate tables: 15.75 / 31.5 / 63 GB/s for gen3/4/5 x16). Efficiency 0.80 is "
        "from memory of CUDA bandwidthTest with pinned host memory (about 12-13 GB/s "
        "on gen3 x16, about 25 GB/s on gen4); TLP/DLLP framing and flow control cost the "
        "rest. Latency ~1 us is the one-way hardware transaction path through the root "
        "complex; it excludes CUDA API/launch overhead (several us per cudaMemcpy).",
    )


def _ethernet(name: str, gbps: float, latency_us: float, signalling: str) -> LinkSpec:
    return LinkSpec(
        name=name,
        kind="ethernet",
        line_rate_gbps=gbps,
        efficiency=TCP_ETHERNET_EFFICIENCY,
        latency_us=latency_us,
        source=f"IEEE 802.3 ({signalling}); TCP goodput from frame overhead at MTU 1500",
        notes="Efficiency = 1448/1538 = 0.9415: TCP/IPv4 with timestamps at MTU 1500, "
        "counting preamble and inter-frame gap (verified by search: published goodput "
        "tables give 94.15%, and iperf on 1GbE reports ~941 Mb/s). It is a framing "
        "upper bound; a single TCP stream at 40/100 Gb/s usually needs several streams "
        "or jumbo frames to reach it. Latency is one-way user-to-user for a small "
        "message through the kernel TCP stack on both hosts and one switch with "
        "default interrupt coalescing; typical value from memory, not a measurement.",
    )


# RoCE v2 at a 4096-byte RDMA MTU: payload / (payload + BTH 12 + UDP 8 + IPv4 20 +
# Ethernet 14 + FCS 4 + ICRC 4 + preamble and inter-frame gap 20).
_ROCE_EFFICIENCY = 4096 / (4096 + 12 + 8 + 20 + 14 + 4 + 4 + 20)


def _roce(name: str, gbps: float, signalling: str) -> LinkSpec:
    return LinkSpec(
        name=name,
        kind="ethernet",
        line_rate_gbps=gbps,
        efficiency=_ROCE_EFFICIENCY,
        latency_us=2.0,
        source=f"IEEE 802.3 ({signalling}); InfiniBand Trade Association, RoCE v2 (Annex A17) headers",
        notes="RDMA over Converged Ethernet: the verbs transport NCCL and MPI use on "
        "InfiniBand, carried in UDP/IP frames, so no kernel TCP stack on the data path. "
        "Efficiency = 4096 / 4178 = 0.980 from the RoCE v2 headers at a 4096-byte RDMA "
        "MTU (Ethernet MTU 4200+). Latency 2 us is one-way verbs small-message latency "
        "through one switch, from memory of perftest ib_write_lat over RoCE (IB EDR "
        "gives ~1.1 us; an Ethernet switch adds some), not a measurement.",
    )


def _infiniband(name: str, lane_gbps: float, latency_us: float, speed: str) -> LinkSpec:
    return LinkSpec(
        name=name,
        kind="infiniband",
        line_rate_gbps=4 * lane_gbps,
        efficiency=_IB_RDMA_EFFICIENCY,
        latency_us=latency_us,
        source=f"InfiniBand Trade Association, InfiniBand Architecture Specification "
        f"Vol. 2 ({speed} 4x link data rate)",
        notes="4x link data rate after encoding (verified by search: FDR 14.0625 Gb/s "
        "per lane with 64b/66b = 54.55 Gb/s 4x; EDR 25.78125 Gb/s per lane = 100; HDR "
        "200; NDR 400). Efficiency 0.97 is from memory of perftest ib_write_bw results "
        "with 4 KiB IB MTU (header bound is ~0.99; FDR HCAs on PCIe gen3 x8 are often "
        "host-limited below this). Latency is one-way verbs RDMA small-message latency "
        "through one switch, from memory of perftest ib_write_lat figures.",
    )


def _nvlink(name: str, gbytes_per_dir: float, generation: str, detail: str) -> LinkSpec:
    return LinkSpec(
        name=name,
        kind="nvlink",
        line_rate_gbps=gbytes_per_dir * 8,
        efficiency=_NVLINK_EFFICIENCY,
        latency_us=1.5,
        source=f"NVIDIA {generation} documentation ({detail})",
        notes="ONE link, one direction; multiply by the number of links between a GPU "
        "pair. Per-link rate derived from NVIDIA's per-GPU totals (from memory of NVIDIA "
        "datasheets). Efficiency 0.90 and latency ~1.5 us (GPU-to-GPU P2P write) are "
        "approximate, from memory of CUDA p2pBandwidthLatencyTest results; measured "
        "efficiency ranges roughly 0.85-0.97 by generation.",
    )


_SPECS: tuple[LinkSpec, ...] = (
    _pcie(3),
    _pcie(4),
    _pcie(5),
    _ethernet("1GbE", 1.0, 50.0, "1000BASE-T/-X, 1.25 GBd 8b/10b"),
    _ethernet("10GbE", 10.0, 25.0, "10GBASE-R, 10.3125 GBd 64b/66b"),
    _ethernet("25GbE", 25.0, 20.0, "25GBASE-R, 25.78125 GBd 64b/66b"),
    _ethernet("40GbE", 40.0, 20.0, "40GBASE-R4, 4 x 10.3125 GBd 64b/66b"),
    _ethernet("100GbE", 100.0, 15.0, "100GBASE-R4, 4 x 25.78125 GBd 64b/66b"),
    _roce("25GbE-RoCE", 25.0, "25GBASE-R"),
    _roce("40GbE-RoCE", 40.0, "40GBASE-R4"),
    _roce("100GbE-RoCE", 100.0, "100GBASE-R4"),
    _roce("200GbE-RoCE", 200.0, "200GBASE-R4"),
    _infiniband("IB-FDR", 14.0625 * _ENC_64B66B, 1.3, "FDR"),
    _infiniband("IB-EDR", 25.78125 * _ENC_64B66B, 1.1, "EDR"),
    _infiniband("IB-HDR", 50.0, 1.0, "HDR"),
    _infiniband("IB-NDR", 100.0, 1.0, "NDR"),
    _nvlink("nvlink1", 20.0, "NVLink 1.0 (Tesla P100)", "4 links, 160 GB/s bidirectional"),
    _nvlink("nvlink2", 25.0, "NVLink 2.0 (Tesla V100)", "6 links, 300 GB/s bidirectional"),
    _nvlink("nvlink3", 25.0, "NVLink 3.0 (A100)", "12 links, 600 GB/s bidirectional"),
    _nvlink("nvlink4", 25.0, "NVLink 4.0 (H100)", "18 links, 900 GB/s bidirectional"),
)

LINKS: Mapping[str, LinkSpec] = MappingProxyType({spec.name: spec for spec in _SPECS})


def get_link(name: str) -> LinkSpec:
    """The catalog entry for ``name``; ``KeyError`` listing known names if absent."""
    try:
        return LINKS[name]
    except KeyError:
        raise KeyError(
            f"unknown link {name!r}; known links: {', '.join(list_links())}"
        ) from None


def list_links() -> list[str]:
    """Names of every catalogued link, sorted."""
    return sorted(LINKS)


def pcie_link_for_gen(gen: int) -> LinkSpec:
    """The x16 PCIe link of generation ``gen`` (3, 4 or 5): ``LINKS[f"pcie{gen}x16"]``."""
    return get_link(f"pcie{gen}x16")

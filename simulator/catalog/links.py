"""Link datasheet figures: PCIe, Ethernet, InfiniBand and NVLink.

The figures live in ``simulator/data/catalog/links.yaml``, whose header states the
conventions (``line_rate_gbps`` after line encoding, ``efficiency`` of a bulk transfer,
one-way small-message ``latency_us``). Links of one family (PCIe, TCP over Ethernet,
RoCE, InfiniBand, NVLink) share their efficiency and notes there. Each entry is
validated when the file is read, by the pydantic models below and then as a
:class:`LinkSpec` (one direction of one link).

NVLink entries are *one* link (brick); a GPU's total is in
:attr:`simulator.catalog.gpus.GPUSpec.nvlink_gbytes_s`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.dataclasses import dataclass

from simulator.catalog.datafile import CatalogFileError, catalog_path, entries_by_name, read_catalog_file

_KINDS = frozenset({"pcie", "ethernet", "infiniband", "nvlink"})
TRANSPORTS = frozenset({"", "rdma", "socket"})


# strict: a figure written as a string in the data file is an error, not a conversion.
@dataclass(frozen=True, config=ConfigDict(strict=True, extra="forbid"))
class LinkSpec:
    """One direction of one link type."""

    name: str
    kind: str
    line_rate_gbps: float
    efficiency: float
    latency_us: float
    source: str
    notes: str = ""
    # How a collective library moves bytes over a NIC of this link: "rdma" (verbs:
    # InfiniBand, RoCE), "socket" (the kernel TCP stack); "" for links inside a server.
    transport: str = ""

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
        if self.transport not in TRANSPORTS:
            raise ValueError(
                f"link {self.name!r}: transport must be one of {sorted(TRANSPORTS)}, got {self.transport!r}"
            )

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


# --- the data file ----------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class LinkFamily(_Strict):
    """What the links of one family share (``families:`` in ``data/catalog/links.yaml``)."""

    kind: str
    efficiency: float
    latency_us: float | None = None
    notes: str = ""
    transport: str = ""


class _LinkEntry(_Strict):
    """One entry of ``links:``: its own figures over its family's."""

    name: str
    family: str | None = None
    line_rate_gbps: float
    source: str
    kind: str | None = None
    efficiency: float | None = None
    latency_us: float | None = None
    notes: str | None = None


class _LinkFile(_Strict):
    families: dict[str, LinkFamily]
    links: list[_LinkEntry]


def _row(entry: _LinkEntry, families: Mapping[str, LinkFamily]) -> dict[str, Any]:
    """The entry's fields over its family's: the keyword arguments of its LinkSpec."""
    if entry.family is not None and entry.family not in families:
        raise CatalogFileError(
            f"{catalog_path('links')}: link {entry.name!r}: unknown family {entry.family!r}; "
            f"known: {', '.join(sorted(families))}"
        )
    shared = families[entry.family].model_dump(exclude_none=True) if entry.family else {}
    return {**shared, **entry.model_dump(exclude={"family"}, exclude_none=True)}


@functools.cache
def _load() -> tuple[Mapping[str, LinkFamily], Mapping[str, LinkSpec]]:
    data = read_catalog_file("links", _LinkFile)
    rows = [_row(entry, data.families) for entry in data.links]
    return MappingProxyType(data.families), entries_by_name("links", rows, LinkSpec)


def load_links() -> Mapping[str, LinkSpec]:
    """Every catalogued link by name, read once from ``data/catalog/links.yaml``."""
    return _load()[1]


def link_families() -> Mapping[str, LinkFamily]:
    """The link families of ``data/catalog/links.yaml`` (shared efficiency and notes)."""
    return _load()[0]


LINKS: Mapping[str, LinkSpec] = load_links()

# TCP/IPv4 with timestamps over standard 1500-byte-MTU Ethernet: 1448 payload bytes per
# 1538 bytes on the wire (the data file's ``ethernet-tcp`` family).
TCP_ETHERNET_EFFICIENCY = link_families()["ethernet-tcp"].efficiency


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

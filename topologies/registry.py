"""Name -> builder registries for server layouts and fabrics, with a duplicate check,
and the parameters each one declares.

Each layout and fabric declares the parameters it takes in a small frozen dataclass
(keyword-only fields: name, type, default; a field without a default is required),
registered with it: ``@register_server_layout("pcie_tree", params=PcieTreeParams)``.
That dataclass is the one place saying which parameters a builder takes and what
their defaults are; the builder builds it from the keyword arguments it is called
with (``PcieTreeParams(**params)``), so an unknown one is refused there too.

A builder registered without ``params`` declares no parameters (the empty base
:class:`LayoutParams` / :class:`FabricParams` stands in): the simulator calls it with
none (``fn(graph, prefix, gpus)`` / ``fn(graph, nic_links)``; values it derives itself,
such as the PCIe link speed, go only to builders declaring them) and refuses any
scenario field set for it (``... not used by server layout X``). Nothing reads a
builder's Python signature.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


@dataclasses.dataclass(frozen=True, kw_only=True)
class LayoutParams:
    """The parameters a server layout takes; the base declares none (subclass it)."""

    @classmethod
    def default_nics(cls, gpus: int) -> int:
        """NICs a server of this layout has with ``gpus`` GPUs when ``nics`` is not
        given: the declared default of its ``nics`` field, None meaning one per GPU."""
        for field in dataclasses.fields(cls):
            if field.name == "nics":
                if field.default is dataclasses.MISSING:
                    raise LookupError(f"{cls.__name__}.nics has no default")
                return gpus if field.default is None else int(field.default)
        raise LookupError(f"{cls.__name__} declares no nics parameter")


@dataclasses.dataclass(frozen=True, kw_only=True)
class FabricParams:
    """The parameters a fabric takes; the base declares none (subclass it)."""


SERVER_LAYOUTS: dict[str, Callable[..., Any]] = {}
FABRICS: dict[str, Callable[..., Any]] = {}
#: name -> the dataclass declaring that layout's / fabric's parameters.
SERVER_LAYOUT_PARAMS: dict[str, type[LayoutParams]] = {}
FABRIC_PARAMS: dict[str, type[FabricParams]] = {}

P = TypeVar("P", LayoutParams, FabricParams)


def _register(
    table: dict[str, Callable[..., Any]],
    params_table: dict[str, type[P]],
    what: str,
    name: str,
    params: type[P],
    base: type[P],
) -> Callable[[F], F]:
    if not (isinstance(params, type) and issubclass(params, base) and dataclasses.is_dataclass(params)):
        raise TypeError(f"{what} {name!r}: params must be a {base.__name__} dataclass, got {params!r}")

    def decorator(builder: F) -> F:
        if name in table:
            raise ValueError(f"{what} {name!r} is already registered (by {table[name].__module__})")
        table[name] = builder
        params_table[name] = params
        return builder

    return decorator


def register_server_layout(name: str, params: type[LayoutParams] = LayoutParams) -> Callable[[F], F]:
    """Register a builder ``fn(graph, node_prefix, gpus, **params) -> ServerPorts``
    whose keyword parameters are the fields of ``params`` (a :class:`LayoutParams`
    dataclass; default: none)."""
    return _register(SERVER_LAYOUTS, SERVER_LAYOUT_PARAMS, "server layout", name, params, LayoutParams)


def register_fabric(name: str, params: type[FabricParams] = FabricParams) -> Callable[[F], F]:
    """Register a builder ``fn(graph, nic_links, **params) -> None`` whose keyword
    parameters are the fields of ``params`` (a :class:`FabricParams` dataclass;
    default: none); ``nic_links`` holds one ``(nic, bandwidth, latency)`` per NIC to
    cable to the fabric."""
    return _register(FABRICS, FABRIC_PARAMS, "fabric", name, params, FabricParams)


def default_nics(layout: str, gpus: int) -> int:
    """NICs a server of ``layout`` has by default with ``gpus`` GPUs (its declared
    ``nics`` default; pcie_tree 1, dgx1 4, nvswitch one per GPU)."""
    return SERVER_LAYOUT_PARAMS[layout].default_nics(gpus)

"""Name -> builder registries for server layouts and fabrics, with a duplicate check."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

SERVER_LAYOUTS: dict[str, Callable[..., Any]] = {}
FABRICS: dict[str, Callable[..., Any]] = {}


def _register(table: dict[str, Callable[..., Any]], what: str, name: str) -> Callable[[F], F]:
    def decorator(builder: F) -> F:
        if name in table:
            raise ValueError(f"{what} {name!r} is already registered (by {table[name].__module__})")
        table[name] = builder
        return builder

    return decorator


def register_server_layout(name: str) -> Callable[[F], F]:
    """Register a builder ``fn(graph, node_prefix, gpus, **params) -> ServerPorts``."""
    return _register(SERVER_LAYOUTS, "server layout", name)


def register_fabric(name: str) -> Callable[[F], F]:
    """Register a builder ``fn(graph, nic_links, **params) -> None``; ``nic_links`` holds
    one ``(nic, bandwidth, latency)`` per NIC to cable to the fabric."""
    return _register(FABRICS, "fabric", name)

"""How a parameter-server job splits each gradient bucket over its servers."""

from __future__ import annotations

from collections.abc import Sequence


def shard_assignment(bucket_bytes: Sequence[float], servers: int, policy: str) -> list[list[tuple[int, float]]]:
    """Per bucket, the (server, fraction of the bucket) pieces it is split into."""
    if policy == "even":
        return [[(j, 1.0 / servers) for j in range(servers)] for _ in bucket_bytes]
    if policy == "round_robin":
        return [[(b % servers, 1.0)] for b in range(len(bucket_bytes))]
    if policy == "size_balanced":
        load = [0.0] * servers
        owner = [0] * len(bucket_bytes)
        for b in sorted(range(len(bucket_bytes)), key=lambda b: (-bucket_bytes[b], b)):
            owner[b] = min(range(servers), key=lambda j: (load[j], j))
            load[owner[b]] += bucket_bytes[b]
        return [[(owner[b], 1.0)] for b in range(len(bucket_bytes))]
    raise ValueError(f"unknown sharding policy {policy!r}")

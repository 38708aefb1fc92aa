"""Compute efficiency and copy bandwidth of the device.

* **matmul**: square fp32 ``n x n @ n x n`` (2n^3 FLOPs) over a range of n;
* **conv**: 3x3 stride-1 convolutions, C in = C out channels on a 28x28 map, batch 8,
  over a range of C (2 x 9 C^2 x 28^2 x 8 FLOPs);
* **memory**: ``dst.copy_(src)`` of growing sizes (read + write bytes);
* **host copies** (CUDA only): host-to-device and device-to-host, pinned and
  pageable host memory, 4 KB to 256 MB.

The fits (:mod:`calibration.fit`) turn the first two into ``t = overhead + flops /
peak``: how efficiency falls for small work.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from simulator.profile import CopySample, MemorySample, Timing, WorkSample

from .timing import Clock

CONV_MAP = 28
CONV_BATCH = 8


def probe_work(
    matmul_sizes: list[int], conv_channels: list[int], memory_mib: list[int], *, device: torch.device,
    warmup: int, repeats: int, on_step: Callable[[str], None], work: list[WorkSample], memory: list[MemorySample],
) -> None:
    """Append matmul/conv throughput samples to ``work`` and copy samples to ``memory``."""
    clock = Clock(device)
    for n in matmul_sizes:
        on_step(f"matmul {n}x{n}")
        a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
        times = clock.repeat(lambda: a @ b, warmup=warmup, repeats=repeats)
        work.append(WorkSample(op="matmul", shape=f"{n}x{n}x{n}", flops=2 * n**3, timing=Timing(times_s=times)))
    for c in conv_channels:
        on_step(f"conv 3x3 {c}->{c}")
        x = torch.randn(CONV_BATCH, c, CONV_MAP, CONV_MAP, device=device)
        w = torch.randn(c, c, 3, 3, device=device)
        times = clock.repeat(lambda: F.conv2d(x, w, padding=1), warmup=warmup, repeats=repeats)
        flops = 2 * 9 * c * c * CONV_MAP * CONV_MAP * CONV_BATCH
        shape = f"{CONV_BATCH}x{c}x{CONV_MAP}x{CONV_MAP} k3"
        work.append(WorkSample(op="conv", shape=shape, flops=flops, timing=Timing(times_s=times)))
    for mib in memory_mib:
        on_step(f"device copy {mib} MiB")
        src = torch.empty(mib * 2**18, device=device).fill_(1.0)
        dst = torch.empty_like(src)
        times = clock.repeat(lambda: dst.copy_(src), warmup=warmup, repeats=repeats)
        memory.append(MemorySample(bytes=mib * 2**20, timing=Timing(times_s=times)))


def probe_host_copies(
    sizes: list[int], *, device: torch.device, warmup: int, repeats: int,
    on_step: Callable[[str], None], out: list[CopySample],
) -> None:
    """Host<->device copy times (CUDA only), pinned and pageable."""
    clock = Clock(device)
    for pinned in (True, False):
        for nbytes in sizes:
            host = torch.empty(nbytes // 4, dtype=torch.float32, pin_memory=pinned)
            dev = torch.empty(nbytes // 4, dtype=torch.float32, device=device)
            kind = "pinned" if pinned else "pageable"
            on_step(f"h2d {kind} {nbytes} B")
            h2d = clock.repeat(lambda: dev.copy_(host, non_blocking=pinned), warmup=warmup, repeats=repeats)
            out.append(CopySample(direction="h2d", pinned=pinned, bytes=nbytes, timing=Timing(times_s=h2d)))
            on_step(f"d2h {kind} {nbytes} B")
            d2h = clock.repeat(lambda: host.copy_(dev, non_blocking=pinned), warmup=warmup, repeats=repeats)
            out.append(CopySample(direction="d2h", pinned=pinned, bytes=nbytes, timing=Timing(times_s=d2h)))

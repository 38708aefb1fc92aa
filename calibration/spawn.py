"""Run one function in N local processes joined on 127.0.0.1 and read their messages.

Both the collective probe and the measured-run harness start N processes with torch's
``spawn`` start method, give each ``(rank, world, port, *args, queue)``, and read
``(kind, payload)`` messages from the shared queue: ``"error"`` from any rank stops
everything; a process that dies without a word does too. Whatever stops the reading
(the caller breaking out, an error, Ctrl-C), the processes are joined or terminated.
"""

from __future__ import annotations

import queue as queue_module
import socket
from collections.abc import Callable, Iterator
from typing import Any

import torch.multiprocessing as mp


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawned_messages(
    target: Callable[..., None], nprocs: int, args: tuple[Any, ...], *, what: str, join_timeout_s: float = 10.0
) -> Iterator[tuple[str, Any]]:
    """Start ``target(rank, nprocs, port, *args, queue)`` in ``nprocs`` processes and
    yield their messages until the caller stops; ``what`` names them in errors."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    port = free_port()
    procs = [ctx.Process(target=target, args=(r, nprocs, port, *args, out), daemon=True) for r in range(nprocs)]
    for p in procs:
        p.start()
    try:
        while True:
            try:
                kind, payload = out.get(timeout=1.0)
            except queue_module.Empty:
                if any(p.exitcode not in (None, 0) for p in procs):
                    raise RuntimeError(f"a {what} process died") from None
                continue
            if kind == "error":
                raise RuntimeError(f"{what} failed: {payload}")
            yield kind, payload
    finally:
        for p in procs:
            p.join(timeout=join_timeout_s if p.is_alive() else 0)
            if p.is_alive():
                p.terminate()
                p.join()

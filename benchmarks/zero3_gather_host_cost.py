"""What DeepSpeed 0.3-0.5's per-tensor ZeRO-3 gather costs the host per rank of the group.

The defaults of ``training.parallelism.zero3_gather_view_us`` and ``zero3_gather_copy_us``
come from here. Before each parameter tensor's all-gather, DeepSpeed's
``_allgather_param`` built the output as one ``narrow`` view per rank in a Python loop
that also compared the loop index with ``get_rank(group)``; the GPU was idle meanwhile
(the 0.3 releases synchronized the device first). Then the list form of
``torch.distributed.all_gather`` ran the NCCL kernel into a flat buffer and copied each
rank's piece out of it with one ``copy_`` per rank. This script times, on this host's CPU
with the installed torch (the ``probe`` extra):

- the view loop, per rank (a one-process gloo group stands in for the data-parallel one);
- the dispatch of one ``copy_`` of a tiny tensor (no CUDA here: the CUDA launch itself is
  not measured; the simulator's default adds 4 us for it, from published figures: 80
  broadcast kernels in 260 us, 3.3 us each, in CUDA.jl's "Graphs" documentation, and
  "about 4-6 us" per launch measured on an RTX 5070 Ti).

Medians over ``--repeats`` runs at each group size.

    python benchmarks/zero3_gather_host_cost.py [--repeats 25] [--ranks 768 1536 2240]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

CUDA_LAUNCH_US = 4.0  # cited above; not measurable without a GPU


def view_loop_us(torch, dist, group, ranks: int, piece: int = 1024) -> float:
    """Per-rank seconds x 1e6 of building the list of per-rank views, as the 0.3 gather did."""
    flat = torch.zeros(ranks * piece, dtype=torch.float16)
    own = torch.zeros(piece, dtype=torch.float16)
    start = time.perf_counter()
    views = []
    for i in range(ranks):
        views.append(flat.narrow(0, piece * i, piece))
        if i == dist.get_rank(group=group):
            views[i].copy_(own)
    return (time.perf_counter() - start) / ranks * 1e6


def copy_dispatch_us(torch, ranks: int) -> float:
    """Per-rank seconds x 1e6 of one ``copy_`` of a 2-element tensor (dispatch, not bytes)."""
    pieces = [torch.zeros(2, dtype=torch.float16) for _ in range(ranks)]
    source = torch.zeros(2, dtype=torch.float16)
    start = time.perf_counter()
    for piece in pieces:
        piece.copy_(source, non_blocking=True)
    return (time.perf_counter() - start) / ranks * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=25)
    parser.add_argument("--ranks", type=int, nargs="+", default=[768, 1536, 2240])
    args = parser.parse_args(argv)
    try:
        import torch
        import torch.distributed as dist
    except ImportError:
        print("needs torch: pip install -e '.[probe]'", file=sys.stderr)
        return 2
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29531")
    dist.init_process_group("gloo", rank=0, world_size=1)
    try:
        group = dist.new_group([0])
        torch.set_num_threads(1)
        print(f"torch {torch.__version__}; per rank of the group, medians of {args.repeats}")
        print(f"{'ranks':>6} {'view loop us':>13} {'copy_ dispatch us':>18} {'copy + launch us':>17}")
        for ranks in args.ranks:
            views = statistics.median(view_loop_us(torch, dist, group, ranks) for _ in range(args.repeats))
            copies = statistics.median(copy_dispatch_us(torch, ranks) for _ in range(args.repeats))
            print(f"{ranks:>6} {views:>13.2f} {copies:>18.2f} {copies + CUDA_LAUNCH_US:>17.2f}")
    finally:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())

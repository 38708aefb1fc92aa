"""Pipeline schedules as the order of work on each stage.

Every stage runs a list of operations ``(kind, chunk, micro_batch)``, kind ``"F"``
(forward) or ``"B"`` (backward), in order; an operation starts when the stage is free
and its input has arrived (the activation from the previous stage, or the gradient
from the next). The bubble is not a formula here: it is what the dependencies leave.

* **GPipe** (Huang et al., 2019): all forwards, then all backwards (last first).
* **1F1B** (PipeDream-flush, Narayanan et al., 2021): stage ``s`` runs
  ``min(p - s - 1, m)`` warm-up forwards, then alternates one forward and one
  backward, then drains the backwards. Stage ``s`` holds at most ``p - s``
  micro-batches of activations.
* **Interleaved 1F1B** (Megatron-LM, Narayanan et al., SC'21): each GPU holds ``v``
  model chunks (chunk ``c`` of stage ``s`` is virtual stage ``c p + s``); micro-batches
  go through in groups of ``p``; warm-up ``2 (p - s - 1) + (v - 1) p`` forwards, as in
  Megatron-LM's ``forward_backward_pipelining_with_interleaving``.
"""

from __future__ import annotations

Op = tuple[str, int, int]  # ("F" | "B", chunk, micro_batch)


def gpipe(stage: int, stages: int, micro_batches: int) -> list[Op]:
    return [("F", 0, i) for i in range(micro_batches)] + [("B", 0, i) for i in reversed(range(micro_batches))]


def one_f_one_b(stage: int, stages: int, micro_batches: int) -> list[Op]:
    warmup = min(stages - stage - 1, micro_batches)
    ops: list[Op] = [("F", 0, i) for i in range(warmup)]
    forward, backward = warmup, 0
    while forward < micro_batches:
        ops.append(("F", 0, forward))
        forward += 1
        ops.append(("B", 0, backward))
        backward += 1
    ops += [("B", 0, i) for i in range(backward, micro_batches)]
    return ops


def _chunk_and_micro_batch(k: int, stages: int, chunks: int, forward: bool) -> tuple[int, int]:
    """The k-th forward (or backward) of a GPU in the interleaved order."""
    group, within = divmod(k, stages * chunks)
    chunk = within // stages
    if not forward:
        chunk = chunks - 1 - chunk
    return chunk, group * stages + within % stages


def interleaved(stage: int, stages: int, micro_batches: int, chunks: int) -> list[Op]:
    total = micro_batches * chunks
    warmup = min((stages - stage - 1) * 2 + (chunks - 1) * stages, total)
    ops: list[Op] = []
    for k in range(warmup):
        c, i = _chunk_and_micro_batch(k, stages, chunks, True)
        ops.append(("F", c, i))
    backward = 0
    for k in range(warmup, total):
        c, i = _chunk_and_micro_batch(k, stages, chunks, True)
        ops.append(("F", c, i))
        c, i = _chunk_and_micro_batch(backward, stages, chunks, False)
        ops.append(("B", c, i))
        backward += 1
    for k in range(backward, total):
        c, i = _chunk_and_micro_batch(k, stages, chunks, False)
        ops.append(("B", c, i))
    return ops


def stage_ops(schedule: str, stage: int, stages: int, micro_batches: int, chunks: int = 1) -> list[Op]:
    if schedule == "gpipe":
        return gpipe(stage, stages, micro_batches)
    if schedule == "1f1b":
        return one_f_one_b(stage, stages, micro_batches)
    if schedule == "interleaved":
        return interleaved(stage, stages, micro_batches, chunks)
    raise ValueError(f"unknown pipeline schedule {schedule!r}")


def in_flight(ops: list[Op]) -> int:
    """Most micro-batch chunks whose activations a stage holds at once (forward done,
    backward not yet)."""
    held = peak = 0
    for kind, _, _ in ops:
        held += 1 if kind == "F" else -1
        peak = max(peak, held)
    return peak

"""Per-layer forward and backward times of a zoo model, and its optimizer step.

Method (recorded in every profile as ``ModelProfile.method``): one forward pass
without autograd captures every step's inputs at the batch size. Then each layer is
timed on its own, in training mode:

* **forward**: the module called on its captured inputs (detached copies that require
  grad, so autograd records the graph as it does in training; the model input does not
  require grad, as in training);
* **backward**: ``torch.autograd.grad`` of that output, with a random output gradient,
  with respect to the layer's inputs and parameters: exactly the gradients training
  computes for this layer (the first layer computes no input gradient).

Every layer is warmed up, then timed ``repeats`` times in round-robin rounds over all
layers (round 1 times every layer once, then round 2, ...), so a transient disturbance
(another process waking on a 2-core machine) spoils one repeat of many layers, which
the median discards, rather than every repeat of a few.
Timing layers in isolation leaves out what flows between them (allocator reuse, cache
warmth), so the whole model's forward + backward is timed too and stored next to the
layers; the probe reports the ratio of the layer sum to it.

The optimizer step is SGD with momentum 0.9 (the scenario default ``momentum``) over
all parameters, timed after one backward filled the gradients.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from simulator.profile import LayerSample, ModelProfile, Timing, WholeModelSample
from simulator.zoo import get_model

from .models import build
from .timing import Clock

METHOD = (
    "each zoo layer timed alone on inputs captured from a full forward: forward = module call with autograd "
    "recording; backward = torch.autograd.grad w.r.t. the layer's inputs (not the model input) and parameters "
    "with a random output gradient; warm-up then repeats, median fitted"
)


def probe_model(
    name: str,
    batches: list[int],
    *,
    device: torch.device,
    warmup: int,
    repeats: int,
    on_step: Callable[[str], None] = lambda label: None,
    collected: list[LayerSample] | None = None,
) -> ModelProfile:
    """Time every layer of ``name`` at each batch size.

    ``collected`` receives samples as they are taken, so an interrupted probe keeps them.
    """
    torch.manual_seed(0)
    program = build(name).to(device).train()
    input_shape = get_model(name).input_shape
    clock = Clock(device)
    samples = collected if collected is not None else []
    whole: list[WholeModelSample] = []
    for batch in batches:
        x = torch.randn(batch, *input_shape, device=device)
        captured = program.step_inputs(x)
        timers = [_LayerTimer(step.module, args, step.inputs, clock) for step, args in zip(program.steps, captured)]
        on_step(f"{name} batch {batch}: warm-up")
        for _ in range(warmup):
            for timer in timers:
                timer.once()
        times = [[] for _ in timers]
        for r in range(repeats):
            on_step(f"{name} batch {batch}: layers, round {r + 1}/{repeats}")
            for timer, kept in zip(timers, times):
                kept.append(timer.once())
        for step, kept in zip(program.steps, times):
            fwd, bwd = zip(*kept)
            samples.append(LayerSample(layer=step.name, phase="forward", batch=batch, timing=Timing(times_s=list(fwd))))
            samples.append(LayerSample(layer=step.name, phase="backward", batch=batch, timing=Timing(times_s=list(bwd))))
        del timers
        del captured
        on_step(f"{name} batch {batch}: whole model")
        whole.append(WholeModelSample(batch=batch, timing=Timing(times_s=_time_whole(program, x, clock, warmup, repeats))))

    on_step(f"{name}: optimizer step")
    optimizer = torch.optim.SGD(program.parameters(), lr=0.01, momentum=0.9)
    program(torch.randn(batches[0], *input_shape, device=device)).sum().backward()
    step_times = clock.repeat(optimizer.step, warmup=warmup, repeats=repeats)
    return ModelProfile(
        model=name, method=METHOD, batches=list(batches), samples=list(samples),
        optimizer_step=Timing(times_s=step_times), whole_model=whole,
    )


class _LayerTimer:
    """Times one layer's forward and backward on its captured inputs."""

    def __init__(self, module, args, sources, clock: Clock):
        self.module, self.clock = module, clock
        self.inputs = [a.detach().requires_grad_(src >= 0) for a, src in zip(args, sources)]
        self.wrt = [t for t in self.inputs if t.requires_grad] + [p for p in module.parameters() if p.requires_grad]
        with torch.no_grad():
            self.grad_out = torch.randn_like(module(*self.inputs))

    def once(self) -> tuple[float, float]:
        t_f, out = self.clock.region(lambda: self.module(*self.inputs))
        t_b, _ = self.clock.region(lambda: torch.autograd.grad(out, self.wrt, self.grad_out))
        return t_f, t_b


def _time_whole(program, x, clock: Clock, warmup: int, repeats: int) -> list[float]:
    params = [p for p in program.parameters()]

    def iteration() -> None:
        out = program(x)
        torch.autograd.grad(out.sum(), params)

    return clock.repeat(iteration, warmup=warmup, repeats=repeats)

"""Synthetic profiles with known parameters (no torch needed)."""

from __future__ import annotations

import numpy as np

from simulator.profile import (
    CollectiveSample,
    Collectives,
    Efficiency,
    Environment,
    LayerSample,
    MemorySample,
    ModelProfile,
    Profile,
    Provenance,
    ThreadTimings,
    Timing,
    TrainingSteps,
    WorkSample,
)
from simulator.zoo import get_model

ALPHA_S, BETA = 40e-6, 2.5e9  # allreduce: 40 us + bytes / 2.5 GB/s
SIZES = [4096 * 2**k for k in range(0, 17, 2)]  # 4 KB .. 256 MB


def layer_params(index: int) -> tuple[float, float, float, float]:
    """Known (a_fwd, b_fwd, a_bwd, b_bwd) of layer ``index``, seconds and seconds/sample."""
    return 1e-5 * (1 + index % 3), 2e-4 * (1 + index % 5), 2e-5, 4e-4 * (1 + index % 4)


def layer_samples(model: str = "alexnet", batches=(1, 2, 4, 8), factor: float = 1.0) -> list[LayerSample]:
    """Every layer's forward and backward time at each batch: ``factor`` x the known
    linear law of :func:`layer_params` (three equal repeats)."""
    samples = []
    for i, layer in enumerate(get_model(model).layers):
        af, bf, ab, bb = layer_params(i)
        for batch in batches:
            samples.append(LayerSample(layer=layer.name, phase="forward", batch=batch,
                                       timing=Timing(times_s=[factor * (af + bf * batch)] * 3)))
            samples.append(LayerSample(layer=layer.name, phase="backward", batch=batch,
                                       timing=Timing(times_s=[factor * (ab + bb * batch)] * 3)))
    return samples


def thread_sweep(factor: float, optimizer_s: float, *, model: str = "alexnet", batches=(1, 2, 4, 8),
                 steps: TrainingSteps | None = None) -> ThreadTimings:
    """Layers timed at 1 thread x 2 processes, ``factor`` x slower than :func:`profile`'s."""
    return ThreadTimings(threads=1, processes=2, samples=layer_samples(model, batches, factor),
                         optimizer_step=Timing(times_s=[optimizer_s]), training_step=steps)


def profile(catalog_gpu: str | None = None, model: str = "alexnet", batches=(1, 2, 4, 8)) -> Profile:
    layers = layer_samples(model, batches)
    collective = []
    for n in SIZES:
        t = ALPHA_S + n / BETA
        collective.append(CollectiveSample(collective="allreduce", world_size=2, bytes=n, timing=Timing(times_s=[t]),
                                           algbw_bytes_per_s=n / t, busbw_bytes_per_s=n / t))
    work = [WorkSample(op="matmul", shape=f"{n}", flops=2 * n**3, timing=Timing(times_s=[5e-6 + 2 * n**3 / 1e11]))
            for n in (64, 256, 1024)]
    return Profile(
        environment=Environment(
            device_kind="cuda" if catalog_gpu else "cpu", device_name="synthetic", catalog_gpu=catalog_gpu,
            torch="0", cpu="synthetic", cpu_count=2, torch_threads=2, hostname="test", platform="test",
            python="3.11", date_utc="2026-01-01T00:00:00+00:00",
        ),
        provenance=Provenance(command="synthetic", quick=True, wall_s=0, complete=True),
        models=[ModelProfile(model=model, method="synthetic", batches=list(batches), samples=layers,
                             optimizer_step=Timing(times_s=[0.003]))],
        efficiency=Efficiency(samples=work, memory=[MemorySample(bytes=2**26, timing=Timing(times_s=[0.01]))]),
        collectives=Collectives(backend="gloo", samples=collective),
    )


def noisy(values: np.ndarray, rel: float, seed: int = 0) -> np.ndarray:
    """``values`` times (1 + uniform(-rel, rel)) noise, reproducibly."""
    return values * (1 + np.random.default_rng(seed).uniform(-rel, rel, len(values)))

"""Sweep test helpers: a private result cache per test and small, fast sweeps."""

from __future__ import annotations

import pytest

SMALL_BASE = {
    "name": "tiny",
    "cluster": {"nodes": 2, "gpus_per_node": 2, "nic": {"link": "10GbE"}},
    "workload": {"model": "resnet50", "batch_per_gpu": 32},
    "simulation": {"iterations": 1, "warmup_iterations": 0},
}


def small_sweep(**axes_and_more) -> dict:
    """A sweep over the tiny base scenario; keyword args are top-level sweep keys."""
    return {"name": "t", "base": SMALL_BASE, **axes_and_more}


def two_hundred_runs() -> dict:
    """5 x 4 x 5 grid points x 2 replications = 200 runs."""
    return small_sweep(
        axes={
            "grid": {
                "cluster.nodes": [1, 2, 3, 4, 5],
                "cluster.nic.link": ["1GbE", "10GbE", "25GbE", "IB-EDR"],
                "workload.batch_per_gpu": [8, 16, 32, 64, 128],
            }
        },
        replications=2,
    )


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Every test gets its own result cache, so none sees another's results."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("CLUSTERSIM_CACHE_DIR", str(cache))
    return cache

"""How far this machine's own timings of one thing drift apart: the noise floor a
prediction is held against in ``clustersim selfcheck``.

The probe times whole training steps of every model it covers (one process, fresh, as
a job's rank: the profile's ``training_step``); a one-process run of the selfcheck
times the very same step again minutes later. Their difference is no model's error:
it is what the machine does between two timings (load, frequency, neighbours on a
shared host). On a quiet machine it is a few percent; on a shared 2-core VM we have
seen the same ResNet-34 step timed 0.23 s by the probe and 0.42 s by the run. A
prediction error below this floor cannot be told from noise, so the report prints it
beside the errors."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from typing import Any


def probe_step_s(profile: Any, model: str, batch: int, threads: int | None) -> float | None:
    """The profile's median whole-step time of ``model`` at ``batch`` in one process of
    ``threads`` threads, or None if the probe did not time it."""
    default_threads = profile.environment.torch_threads or threads or 1
    for entry in profile.models:
        if entry.model != model:
            continue
        timings = entry.at_threads(threads or default_threads, default_threads)
        steps = None if timings is None else timings.training_step
        if steps is None or steps.processes != 1:
            return None
        return next((float(s.timing.median_s) for s in steps.samples if s.batch == batch), None)
    return None


def attach_probe_steps(rows: Iterable[Any], profile_path: str) -> None:
    """Set ``row.probe_step_s`` on every one-process row the probe timed too."""
    from simulator.errors import ClusterSimError
    from simulator.profile import load_profile

    try:
        profile = load_profile(profile_path)
    except ClusterSimError:
        return
    for row in rows:
        if row.procs == 1 and row.median_iteration_s is not None:
            row.probe_step_s = probe_step_s(profile, row.model, row.batch, row.threads)


def drift(rows: Iterable[Any]) -> list[float]:
    """|run - probe| / probe (percent) of the rows timed by both."""
    return [abs(r.median_iteration_s - r.probe_step_s) / r.probe_step_s * 100
            for r in rows if r.probe_step_s and r.median_iteration_s is not None]


def summary(rows: Iterable[Any]) -> dict[str, float | int | None]:
    found = drift(rows)
    return {"noise_n": len(found), "noise_median_pct": statistics.median(found) if found else None,
            "noise_max_pct": max(found) if found else None}

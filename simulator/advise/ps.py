"""``advise ps``: the fewest parameter servers at which the servers' NICs stop being the
bottleneck: the closed form ``k >= N*S / (B_ps * T)``, confirmed by simulating k-1, k
and k+1.
"""

from __future__ import annotations

import math
from typing import Any

from ..engine import build, simulate
from ..errors import ScenarioError
from ..results import SimResult
from ..scenario import Scenario
from .answers import PSAdvice
from .common import quick, resource_label, with_


def _sim_summary(result: SimResult) -> dict[str, Any]:
    b = result.bottleneck
    return {"throughput_samples_per_s": result.throughput_samples_per_s, "iteration_time_s": result.iteration_time_s,
            "scaling_efficiency": result.scaling_efficiency,
            "bottleneck": f"{resource_label(b.resource, b.kind)} {b.utilization:.0%}", "bottleneck_kind": b.kind}


def advise_ps(scenario: Scenario) -> PSAdvice:
    """The fewest parameter servers whose NICs keep up (closed form, then simulated)."""
    c, ps = scenario.cluster, scenario.training.parameter_servers
    if scenario.training.strategy != "parameter_server":
        scenario = with_(scenario, **{"training.strategy": "parameter_server"})
    if c.total_gpus < 2:
        raise ScenarioError("cluster: advise ps needs at least 2 GPUs")
    sim = build(scenario)
    S = float(sim.costs.gradient_bytes.sum())
    backward = float(sim.costs.backward_s.sum())
    local = ps.local_aggregation and c.gpus_per_node > 1
    workers = c.nodes if local else c.total_gpus
    per_node = 1 if local else c.gpus_per_node
    nic = sim.resolved.nic_bandwidth
    b_ps = sim.resolved.ps_nic_bandwidth or nic
    worker_nic_s = per_node * S / nic
    window = max(backward, worker_nic_s)
    k = max(1, math.ceil(workers * S / (b_ps * window) - 1e-9))
    ks = sorted({max(1, k - 1), k, k + 1} | {1})
    simulated = {j: _sim_summary(simulate(quick(with_(scenario, **{"training.parameter_servers.count": j})),
                                          with_baseline=False)) for j in ks}
    best = max(r["throughput_samples_per_s"] for r in simulated.values())
    knee = min(j for j, r in simulated.items() if r["throughput_samples_per_s"] >= 0.98 * best)
    at_k, above = simulated[k]["throughput_samples_per_s"], simulated[k + 1]["throughput_samples_per_s"]
    compute_bound = abs(above - at_k) / at_k < 0.01 and simulated[k]["bottleneck_kind"] == "gpu"
    return PSAdvice(scenario.name, workers, S, b_ps, nic, backward, worker_nic_s, window, k, simulated, knee,
                    compute_bound)

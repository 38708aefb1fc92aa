"""Golden results: what the simulator predicts today, stored so that speed work can be
proven not to change a single bit of it.

``tests/test_golden_results.py`` recomputes every case below and compares the JSON
text with the stored file. When the *model* changes on purpose (a new cost, a
re-fitted parameter), regenerate the stored files and review the diff:

    python tests/golden/regenerate.py            # every golden file
    python tests/golden/regenerate.py --only scenarios   # or: probes, validation

What is stored:

* ``scenarios.json`` - ``simulate()`` of every example scenario (``scenarios/*.yaml``
  and the scenario files under ``scenarios/validation/``), with the one-GPU baseline;
* ``probes.json`` - small scenarios that exercise every engine path the example files
  leave out (leaf-spine ECMP, multi-NIC rails, host staging, NVLink, every allreduce
  algorithm, parameter-server options on the detailed path, variability, replications);
* ``validation.json`` - the predicted value of every case of the dev validation set
  (``scenarios/validation/published_cases.csv``), as ``clustersim validate`` computes it.

Left out of the comparison: ``version`` (changes with every release) and
``simulated_events`` (how many SimPy events the engine processed: a measure of the
engine's own work, which speed work is meant to reduce; every simulated time and byte
count is still compared).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Fields that are not predictions (see the module docstring).
UNCOMPARED = ("version", "simulated_events")

BASE = ["cluster.server.gpus_per_switch=null"]
SMALL_RING = BASE + [
    "cluster.nodes=2", "cluster.gpus_per_node=4", "workload.model=resnet50", "simulation.iterations=2",
    "simulation.warmup_iterations=1",
]
SMALL_PS = SMALL_RING + ["training.strategy=parameter_server", "training.parameter_servers.count=2"]
# Detailed parameter-server runs follow every request: a model with few tensors keeps them quick.
TINY_PS = SMALL_PS + ["workload.model=alexnet", "simulation.warmup_iterations=0"]
LEAF_SPINE = [
    "cluster.fabric.topology=leaf_spine", "cluster.fabric.nodes_per_leaf=2", "cluster.fabric.spines=2",
    "cluster.fabric.oversubscription=4",
]

# name -> (overrides, with_baseline). Every probe runs from the default scenario.
PROBES: dict[str, tuple[list[str], bool]] = {
    "ring-fast": (SMALL_RING, True),
    "ring-detailed": (SMALL_RING + ["simulation.mode=detailed"], False),
    "tree-fast": (SMALL_RING + ["training.strategy=tree_allreduce"], False),
    "tree-detailed": (SMALL_RING + ["training.strategy=tree_allreduce", "simulation.mode=detailed"], False),
    "hd-fast": (SMALL_RING + ["training.strategy=halving_doubling_allreduce"], False),
    "hierarchical-detailed": (
        SMALL_RING + ["training.strategy=hierarchical_allreduce", "simulation.mode=detailed"], False),
    "auto-8x8": (BASE + ["cluster.nodes=8", "cluster.gpus_per_node=8", "training.strategy=auto",
                  "simulation.iterations=1", "simulation.warmup_iterations=0"], True),
    "fastest-4x4": (BASE + ["cluster.nodes=4", "cluster.gpus_per_node=4", "training.strategy=fastest",
                     "simulation.iterations=1", "simulation.warmup_iterations=0"], False),
    "ideal-backend-detailed": (SMALL_RING + ["training.collectives.backend=ideal", "simulation.mode=detailed"],
                               False),
    "gloo-horovod": (SMALL_RING + ["training.collectives.backend=gloo", "training.framework=horovod"], False),
    "leaf-spine-ring": (BASE + ["cluster.nodes=8", "cluster.gpus_per_node=4", "simulation.iterations=1",
                         "simulation.warmup_iterations=0"] + LEAF_SPINE, False),
    "leaf-spine-ps-fast": (BASE + ["cluster.nodes=8", "cluster.gpus_per_node=4", "simulation.iterations=1",
                            "simulation.warmup_iterations=0", "training.strategy=parameter_server",
                            "training.parameter_servers.count=4", "training.parameter_servers.placement=dedicated"]
                           + LEAF_SPINE, True),
    "leaf-spine-ps-detailed": (BASE + ["cluster.nodes=4", "cluster.gpus_per_node=2", "simulation.iterations=1",
                                "simulation.warmup_iterations=0", "training.strategy=parameter_server",
                                "training.parameter_servers.count=2", "simulation.mode=detailed",
                                "training.parameter_servers.placement=dedicated"] + LEAF_SPINE, False),
    "dgx1-2nodes": (BASE + ["cluster.nodes=2", "cluster.gpus_per_node=8", "cluster.gpu=V100-SXM2-16GB",
                     "cluster.server.layout=dgx1", "cluster.server.pcie_switches=null", "simulation.iterations=1",
                     "simulation.warmup_iterations=0"],
                    True),
    "dgx1-detailed": (BASE + ["cluster.nodes=2", "cluster.gpus_per_node=8", "cluster.gpu=V100-SXM2-16GB",
                       "cluster.server.layout=dgx1", "cluster.server.pcie_switches=null", "simulation.iterations=1",
                       "simulation.warmup_iterations=0", "simulation.mode=detailed"], False),
    "nvswitch-rails": (BASE + ["cluster.nodes=2", "cluster.gpus_per_node=8", "cluster.gpu=A100-SXM4-80GB",
                        "cluster.server.layout=nvswitch", "cluster.server.pcie_switches=null",
                        "simulation.iterations=1", "simulation.warmup_iterations=0",
                        "cluster.fabric.topology=leaf_spine", "cluster.fabric.nodes_per_leaf=1",
                        "cluster.fabric.rails=true"], False),
    "no-p2p-staging-detailed": (BASE + ["cluster.nodes=1", "cluster.gpus_per_node=4", "cluster.gpu=RTX-2080Ti",
                                 "cluster.server.p2p=false", "simulation.iterations=1",
                                 "simulation.warmup_iterations=0", "simulation.mode=detailed"], True),
    "no-gdr-2nodes": (SMALL_RING + ["cluster.server.gpudirect_rdma=false"], False),
    "ps-fast": (SMALL_PS, True),
    "ps-detailed": (SMALL_PS + ["simulation.mode=detailed"], False),
    "ps-round-robin-costs": (SMALL_PS + ["training.parameter_servers.sharding=round_robin",
                                         "training.parameter_servers.rpc_us=50",
                                         "training.parameter_servers.tensor_us=5",
                                         "training.parameter_servers.cores=16"], False),
    "ps-size-balanced-detailed": (TINY_PS + ["training.parameter_servers.sharding=size_balanced",
                                              "training.parameter_servers.rpc_us=20",
                                              "simulation.mode=detailed"], False),
    "ps-local-aggregation": (SMALL_PS + ["training.parameter_servers.local_aggregation=true"], False),
    "ps-local-aggregation-detailed": (TINY_PS + ["training.parameter_servers.local_aggregation=true",
                                                  "simulation.mode=detailed"], False),
    "ps-asp-detailed": (TINY_PS + ["training.parameter_servers.sync=asp", "simulation.mode=detailed"], False),
    "ps-ssp-detailed": (TINY_PS + ["training.parameter_servers.sync=ssp", "training.parameter_servers.staleness=1",
                                    "simulation.iterations=4", "simulation.mode=detailed"], False),
    "ps-uneven-colocated-detailed": (TINY_PS + ["training.parameter_servers.count=3", "simulation.mode=detailed"],
                                     False),
    "ps-tf-framework": (SMALL_PS + ["training.framework=tensorflow_ps", "training.parameter_servers.count=2"],
                        True),
    "jitter-stragglers": (SMALL_RING + ["variability.jitter.distribution=lognormal", "variability.jitter.cv=0.1",
                                        "variability.stragglers.probability=0.2"], True),
    "slow-gpu-ps": (TINY_PS + ["variability.gpu_speed_factors={3: 0.5}"], False),
    "iteration-cv": (SMALL_RING + ["variability.iteration_cv=0.05"], True),
    "iteration-cv-detailed": (SMALL_RING + ["variability.iteration_cv=0.05", "simulation.mode=detailed"], False),
    "replications": (SMALL_RING + ["variability.jitter.distribution=normal", "variability.jitter.cv=0.05",
                                   "simulation.replications=3"], False),
    "no-overlap-real-data": (SMALL_RING + ["training.overlap=false", "workload.data=real",
                                           "training.launch_overhead_us=30"], True),
    "bert-fp16-horovod": (BASE + ["cluster.nodes=2", "cluster.gpus_per_node=4", "workload.model=bert_large",
                           "workload.precision=fp16", "cluster.gpu=V100-SXM2-32GB", "training.fusion=horovod",
                           "simulation.iterations=1", "simulation.warmup_iterations=1"], False),
}


def example_scenarios() -> list[Path]:
    """Every scenario file a user is shown: scenarios/*.yaml and scenarios/validation/**."""
    files = sorted((ROOT / "scenarios").glob("*.yaml"))
    files += sorted((ROOT / "scenarios" / "validation").glob("*.yaml"))
    return files


def result_text(result) -> str:
    """A result as stable JSON text, without the fields that are not predictions."""
    data = result.to_dict()
    for key in UNCOMPARED:
        data.pop(key, None)
    return json.dumps(data, sort_keys=True, indent=1)


def scenario_results() -> dict[str, str]:
    from simulator import load_scenario, simulate

    return {str(p.relative_to(ROOT)): result_text(simulate(load_scenario(p))) for p in example_scenarios()}


def probe_result(name: str) -> str:
    from simulator import load_scenario, simulate

    overrides, with_baseline = PROBES[name]
    return result_text(simulate(load_scenario(None, overrides), with_baseline=with_baseline))


def probe_results() -> dict[str, str]:
    return {name: probe_result(name) for name in PROBES}


def _number(x: float) -> float | str:
    return repr(float(x)) if isinstance(x, float) and not math.isfinite(x) else x


def validation_predictions(df=None) -> dict[str, dict]:
    """Per case of the dev validation set: predicted value and reference (or error).
    ``df``: ``validate``'s table of ``published_cases.csv``, if already made."""
    from simulator.validation import validate

    if df is None:
        df = validate(ROOT / "scenarios" / "validation" / "published_cases.csv")
    out = {}
    for row in df.itertuples():
        out[row.case_id] = {
            "predicted": _number(float(row.predicted)),
            "reference": _number(float(row.reference)),
            "error": None if not isinstance(row.error, str) else row.error,
        }
    return out


GENERATORS = {"scenarios": scenario_results, "probes": probe_results, "validation": validation_predictions}


def write(kind: str) -> Path:
    path = GOLDEN / f"{kind}.json"
    path.write_text(json.dumps(GENERATORS[kind](), sort_keys=True, indent=1) + "\n", encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description="Regenerate the stored golden results.")
    parser.add_argument("--only", choices=sorted(GENERATORS), action="append")
    args = parser.parse_args()
    for kind in args.only or sorted(GENERATORS):
        print(write(kind))


if __name__ == "__main__":
    main()

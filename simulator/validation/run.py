"""Simulate measured cases: row -> scenario -> prediction.

Mapping of the columns onto a scenario:

- ``intra_node``: ``pcie`` -> ``pcie_tree`` (one PCIe switch per 4 GPUs when there are
  more than 4), ``nvlink`` -> ``dgx1`` (the 8-GPU V100/P100 SXM2 hybrid cube mesh; any
  other NVLink server needs a ``scenario`` file), ``nvswitch`` -> ``nvswitch``.
- ``network_gbps`` is per node and is split evenly over the layout's NICs (pcie_tree: 1,
  dgx1: 4, nvswitch: one per GPU); the latency is the catalog's for that network kind
  (ethernet 20 us, RoCE 2 us, InfiniBand 1.1 us, Aries 1.5 us). An empty ``network_gbps`` on a
  multi-node case uses the network's typical figure (ethernet 10 Gb/s, InfiniBand EDR
  100 Gb/s, Aries 80 Gb/s; empty network: ethernet) and says so in the case's note.
- ``strategy``/``num_ps``/``ps_placement`` -> ``training``; PS count defaults to one
  per worker node, placement to colocated (MXNet's and TensorFlow's usual launch).
- ``framework`` (free text) -> the ``training.framework`` preset it names
  (:func:`framework_preset`), which sets that stack's bucketing, fusion, overlap and
  parameter-server pattern. A parameter-server row without a preset gets MXNet's dist
  kvstore behaviour (sum a machine's GPUs, push once per node: ``local_aggregation``).
  A framework text saying "allreduce on CPU" (Horovod built without NCCL) runs the
  ``mpi`` collective backend: copies to host memory, MPI ring between hosts, CPU sums.
- GeForce RTX 2080 Ti / 3090 on PCIe: no peer-to-peer, from the GPU catalog's
  ``pcie_p2p`` (the scenario default; copies are staged through host memory).
- Simulation: fast mode, 2 measured iterations after 1 warmup.

**Compute calibration.** ``baseline_throughput_samples_per_s`` (the measured one-GPU
throughput of the same model, GPU, batch and framework) becomes the scenario's
``workload.measured_throughput_samples_per_s``: every per-layer forward/backward time
and the optimizer step are multiplied by one factor where the costs are made (before
gradient buckets are timed), chosen so the simulated one-GPU throughput equals the
measured one exactly. Scaling the time of
every layer (rather than the efficiencies, which are capped at 1 and leave the fixed
per-layer overhead alone) keeps the relative layer profile of the roofline model, so
gradients still become ready in the right proportions during backward, and it makes a
one-GPU case reproduce its baseline by construction. What remains to be predicted is
the scaling: communication, its overlap with backward and contention. A row whose
one-GPU run took another batch (``baseline_batch_per_gpu``: strong scaling, the global
batch split over the GPUs) sets ``workload.measured_throughput_batch``: the factor is
fitted at that batch and the roofline carries it to the row's batch.

**Collectives** (``metric = collective_time_s``) are simulated alone on an idle copy of
the cluster: ``allreduce`` with the strategy's algorithm (ring, tree, hierarchical,
halving-doubling; ``auto`` = the fastest), ``allgather`` and ``reduce_scatter`` as N-1
ring steps of S/N, ``broadcast`` as a pipelined chain moving S over every hop at once
(root -> 1 -> ... -> N-1; one latency per hop, pipeline fill ignored).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import pandas as pd

from topologies import default_nics

from ..collectives.algorithms import ALLREDUCE_ALGORITHMS
from ..collectives.library import CollectiveLibrary
from ..engine import build, run
from ..errors import ClusterSimError
from ..input_paths import resolve_input_path
from ..loading import load_scenario
from ..results import SimResult, collect
from ..scenario import Scenario
from ..sync import SYNC_STRATEGIES, Allreduce
from .cases import NETWORK_KINDS, CaseError, MeasuredCase, read_cases
from .framework_text import (
    conv_algorithm_for_text,
    fork_gradients_for_text,
    graph_compiler_for_text,
    host_sync_layers_for_text,
    kernel_fusion_for_text,
    optimizer_for_text,
    optimizer_kernels_for_text,
    preset_for_text,
    workload_for_text,
)

LAYOUTS = {"pcie": "pcie_tree", "nvlink": "dgx1", "nvswitch": "nvswitch"}

def allreduce_algorithm(strategy: str) -> str:
    """The collective algorithm a row's strategy runs an allreduce with, as the strategy
    registry declares it (:data:`simulator.sync.SYNC_STRATEGIES`): a fixed-algorithm
    allreduce its ``algorithm``; ``auto`` (the library's choice) and anything else
    ``auto``. A parameter-server system's measured collective is run as a ring."""
    if strategy == "parameter_server":
        return "ring"
    cls = SYNC_STRATEGIES.get(strategy)
    if isinstance(cls, type) and issubclass(cls, Allreduce) and cls.choose is Allreduce.choose:
        return cls.algorithm
    return "auto"


SIMULATION = {"iterations": 2, "warmup_iterations": 1, "mode": "fast"}
# GeForce Turing/Ampere cards: the driver disables PCIe peer-to-peer (P2P only over an
# NVLink bridge), so GPU-to-GPU copies on a PCIe server are staged through host memory.


@dataclasses.dataclass
class Prediction:
    predicted: float
    reference: float  # trivial "one-GPU throughput x GPUs" in the metric's unit (NaN if none)
    measured_efficiency: float  # measured scaling efficiency where the row gives it (else NaN)
    note: str = ""


def framework_preset(case: MeasuredCase) -> str | None:
    """The ``training.framework`` preset a row's free-text ``framework`` names, or None
    (:func:`preset_for_text`)."""
    return preset_for_text(case.framework, case.strategy)


def case_scenario(case: MeasuredCase, base_dir: Path | None = None,
                  overrides: Sequence[str] = ()) -> tuple[Scenario, str]:
    """The scenario a row describes, and a note on any assumption made."""
    if case.scenario is not None:
        path = Path(case.scenario)
        if base_dir is not None:  # under the CSV's folder (or a shipped one) unless outside paths are allowed
            path = resolve_input_path(case.scenario, base_dir, source=f"case {case.case_id}", field="scenario")
        overrides = [f"simulation.{k}={v}" for k, v in SIMULATION.items()] + list(overrides)
        return load_scenario(path, overrides, root=base_dir), ""
    notes = []
    layout = LAYOUTS[case.intra_node]
    server: dict[str, Any] = {"layout": layout}
    if layout == "pcie_tree" and case.gpus_per_node > 4 and case.gpus_per_node % 4 == 0:
        server["pcie_switches"] = case.gpus_per_node // 4
    nic: dict[str, Any] = {"link": None}
    network = case.network
    gbps = case.network_gbps
    if case.nodes > 1 and gbps is None:
        network = network or "ethernet"
        # a network without a typical figure is refused when the row is read
        gbps = cast(float, NETWORK_KINDS[network].typical_gbps)
        notes.append(f"network bandwidth not given: simulated {network} at its typical {gbps:g} Gb/s")
    gbps = gbps or 100.0
    nic["bandwidth_gbps"] = gbps / default_nics(layout, case.gpus_per_node)
    kind = NETWORK_KINDS[network or "ethernet"]
    nic["latency_us"] = kind.latency_us
    if kind.transport:
        nic["transport"] = kind.transport
    workload: dict[str, Any] = {"precision": case.precision,
                                **workload_for_text(case.framework, case.model or "", case.precision)}
    if case.model:
        workload["model"] = case.model
    if case.batch_per_gpu:
        workload["batch_per_gpu"] = case.batch_per_gpu
    training: dict[str, Any] = {"strategy": case.strategy}
    preset = framework_preset(case)
    if preset is not None:
        training["framework"] = preset
    if "allreduce on cpu" in (case.framework or "").lower():  # Horovod without NCCL: MPI in host memory
        training["collectives"] = {"backend": "mpi"}
    if case.strategy == "parameter_server":
        training["parameter_servers"] = {
            "count": case.num_ps or case.nodes,
            "placement": case.ps_placement or "colocated",
        }
        if preset is None:  # MXNet's dist kvstore, the most common PS stack of the sources
            training["parameter_servers"]["local_aggregation"] = True
        if case.num_ps is None:
            notes.append(f"PS count not given: one per node ({case.nodes})")
    data = {
        "name": case.case_id,
        "cluster": {
            "nodes": case.nodes, "gpus_per_node": case.gpus_per_node, "gpu": case.gpu,
            "server": server, "nic": nic,
        },
        "workload": workload,
        "training": training,
        "simulation": dict(SIMULATION),
    }
    return load_scenario(data, list(overrides)), "; ".join(notes)


def _with_measured_throughput(scenario: Scenario, samples_per_s: float, batch: int | None) -> Scenario:
    data = scenario.model_dump()
    data["workload"]["measured_throughput_samples_per_s"] = samples_per_s
    data["workload"]["measured_throughput_batch"] = batch
    return Scenario.model_validate(data)


def _run(scenario: Scenario) -> SimResult:
    sim = build(scenario)
    run(sim)
    return collect(sim, None)


def _training(case: MeasuredCase, scenario: Scenario) -> tuple[float, float, float, int]:
    """(throughput, iteration time, one-GPU throughput, GPUs) of a training case."""
    if case.baseline_throughput_samples_per_s is not None:
        scenario = _with_measured_throughput(scenario, case.baseline_throughput_samples_per_s,
                                             case.baseline_batch_per_gpu)
    one = _run(scenario.single_gpu()).throughput_samples_per_s
    result = _run(scenario) if scenario.cluster.total_gpus > 1 else None
    if case.baseline_throughput_samples_per_s is not None and result is not None:
        # The reference "one-GPU x GPUs" uses the measured one-GPU throughput; the
        # simulated one differs from it only where the one-GPU job synchronizes too
        # (parameter servers).
        return result.throughput_samples_per_s, result.iteration_time_s, case.baseline_throughput_samples_per_s, \
            scenario.cluster.total_gpus
    if result is None:
        thr = one
        it = scenario.workload.batch_per_gpu / one
    else:
        thr, it = result.throughput_samples_per_s, result.iteration_time_s
    return thr, it, one, scenario.cluster.total_gpus


@dataclasses.dataclass(frozen=True)
class CollectiveEstimate:
    """One collective call alone on an idle copy of the cluster."""

    time_s: float
    algorithm: str = ""
    protocol: str = ""
    channels: int = 0


def collective_estimates(scenario: Scenario, calls: Sequence[tuple[str, float]], strategy: str) -> list[CollectiveEstimate]:
    """:func:`collective_estimate` of several ``(collective, nbytes)`` calls on one
    cluster, built once: the calls run one after another on the idle network."""
    n = scenario.cluster.total_gpus
    if n < 2:
        return [CollectiveEstimate(0.0) for _ in calls]
    if scenario.training.strategy == "parameter_server":  # the cluster's graph, run as an allreduce job
        data = scenario.model_dump()
        data["training"]["strategy"] = "ring_allreduce"
        scenario = Scenario.model_validate(data)
    sim = build(scenario)
    # set where the scenario has a collective backend, as an all-reduce job does (assumed, as before)
    library = cast(CollectiveLibrary, sim.context.collectives)

    def one(collective: str, nbytes: float, algorithm: str) -> CollectiveEstimate:
        library.plans_used.clear()
        start = sim.env.now
        sim.env.process(library.run(collective, nbytes, algorithm))
        sim.env.run()
        used = next(iter(library.plans_used.values()), None)
        if used is None:  # a plain flow program (no cost model)
            return CollectiveEstimate(float(sim.env.now - start), algorithm, "", 1)
        return CollectiveEstimate(float(sim.env.now - start), used.algorithm, used.protocol, used.channels)

    out = []
    for collective, nbytes in calls:
        if collective == "allreduce" and strategy == "fastest":
            options = []
            for name in ALLREDUCE_ALGORITHMS:
                try:
                    options.append(one(collective, nbytes, name))
                except ValueError:
                    continue
            out.append(min(options, key=lambda e: e.time_s))
        else:
            out.append(one(collective, nbytes, allreduce_algorithm(strategy) if collective == "allreduce" else "auto"))
    return out


def collective_estimate(scenario: Scenario, collective: str, nbytes: float, strategy: str) -> CollectiveEstimate:
    """Time of one collective of ``nbytes`` alone on an idle copy of the cluster, run by
    the scenario's collective library (``training.collectives``), and how it ran."""
    return collective_estimates(scenario, [(collective, nbytes)], strategy)[0]


def collective_time(scenario: Scenario, collective: str, nbytes: float, strategy: str) -> float:
    """Time of one collective of ``nbytes`` alone on an idle copy of the cluster."""
    return collective_estimate(scenario, collective, nbytes, strategy).time_s


def predict_case(case: MeasuredCase, base_dir: Path | None = None, overrides: Sequence[str] = ()) -> Prediction:
    """Simulate one case; raises :class:`ClusterSimError` (or ValueError) if it cannot run."""
    if case.transformer:  # LLM training: shapes and parallelism (simulator.validation.llm_cases)
        from .llm_cases import predict_llm_case

        predicted, reference, note = predict_llm_case(case, list(overrides))
        return Prediction(predicted, reference, math.nan, note)
    scenario, note = case_scenario(case, base_dir, overrides)
    n = scenario.cluster.total_gpus
    if case.metric == "collective_time_s":
        # a collective_time_s case has both (MeasuredCase checks it)
        t = collective_time(scenario, cast(str, case.collective), cast(float, case.message_bytes),
                            scenario.training.strategy)
        return Prediction(t, math.nan, math.nan, note)
    thr, it, one, n = _training(case, scenario)
    base = case.baseline_throughput_samples_per_s
    if case.metric == "throughput_samples_per_s":
        eff = case.value / (base * n) if base else math.nan
        return Prediction(thr, one * n, eff, note)
    if case.metric == "iteration_time_s":
        eff = (scenario.workload.batch_per_gpu / case.value) / base if base else math.nan
        return Prediction(it, scenario.workload.batch_per_gpu / one, eff, note)
    if case.metric == "speedup":
        return Prediction(thr / one, float(n), case.value / n, note)
    return Prediction(thr / one / n, 1.0, case.value, note)  # scaling_efficiency


RESULT_COLUMNS = [
    "case_id", "source", "metric", "total_gpus", "measured", "predicted", "rel_error",
    "reference", "reference_rel_error", "measured_efficiency", "note", "error",
]


def validate(cases: str | Path | list[MeasuredCase], base_dir: str | Path | None = None,
             overrides: Sequence[str] = (), on_case: Callable[[int, int], None] | None = None) -> pd.DataFrame:
    """Simulate every case; one DataFrame row per case (bad rows included, with ``error``).

    ``cases`` is a measured-runs CSV (scenario paths are relative to it) or a list of
    cases; ``overrides`` (dotted ``path=value``, as ``--set``) apply to every case's
    scenario. Columns: case_id, source, metric, total_gpus, measured, predicted,
    rel_error = (predicted - measured) / measured, reference and reference_rel_error
    (the trivial predictor "one-GPU throughput x GPUs", in the metric's unit),
    measured_efficiency (where the row allows computing it), note, error.
    ``on_case(done, total)`` reports progress: once before the first case, then after each.
    """
    errors: list[CaseError] = []
    base: Path | None
    if isinstance(cases, (str, Path)):
        base = Path(cases).resolve().parent if base_dir is None else Path(base_dir)
        cases, errors = read_cases(cases)
    else:
        base = Path(base_dir) if base_dir is not None else None
    rows = []
    if on_case is not None:
        on_case(0, len(cases))
    for case in cases:
        row: dict[str, Any] = {
            "case_id": case.case_id, "source": case.source, "metric": case.metric,
            "total_gpus": case.total_gpus, "measured": case.value, "predicted": math.nan,
            "rel_error": math.nan, "reference": math.nan, "reference_rel_error": math.nan,
            "measured_efficiency": math.nan, "note": "", "error": None,
        }
        try:
            p = predict_case(case, base, overrides)
        except (ClusterSimError, ValueError, KeyError) as exc:
            row["error"] = str(exc)
        else:
            row.update(
                predicted=p.predicted,
                rel_error=(p.predicted - case.value) / case.value,
                reference=p.reference,
                reference_rel_error=(p.reference - case.value) / case.value,
                measured_efficiency=p.measured_efficiency,
                note=p.note,
            )
        rows.append(row)
        if on_case is not None:
            on_case(len(rows), len(cases))
    for err in errors:
        rows.append({**dict.fromkeys(RESULT_COLUMNS, math.nan), "case_id": err.case_id, "source": "",
                     "metric": "", "note": f"line {err.line}", "error": f"line {err.line}: {err.message}"})
    df = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    df["total_gpus"] = df["total_gpus"].astype("Int64")
    return df.astype({c: float for c in ("measured", "predicted", "rel_error", "reference",
                                          "reference_rel_error", "measured_efficiency")})


__all__ = ["CollectiveEstimate", "Prediction", "case_scenario", "collective_estimate", "collective_estimates", "collective_time", "predict_case", "validate",
           # re-exported from framework_text, where the runner and the benchmark scripts read a row's text
           "conv_algorithm_for_text", "fork_gradients_for_text", "graph_compiler_for_text", "host_sync_layers_for_text",
           "kernel_fusion_for_text", "optimizer_for_text",
           "optimizer_kernels_for_text", "preset_for_text", "workload_for_text"]

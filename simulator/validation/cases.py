"""Measured-runs files: one measured point per CSV row, validated row by row.

Columns (a stable, documented format; extra columns are refused, missing optional
columns are empty):

``case_id`` (unique), ``source``, ``model`` (zoo name; empty for collective cases),
``gpu`` (catalog name), ``nodes``, ``gpus_per_node``, ``intra_node`` (pcie | nvlink |
nvswitch), ``network_gbps`` (per node; empty for one node or unknown), ``network``
(ethernet | roce | infiniband | aries | loopback | empty; roce: RDMA over Ethernet), ``strategy`` (parameter_server |
ring_allreduce | hierarchical_allreduce | tree_allreduce | halving_doubling_allreduce |
auto), ``num_ps``, ``ps_placement`` (dedicated | colocated; PS rows only),
``batch_per_gpu``, ``precision`` (fp32 | fp16 | amp | tf32 | bf16), ``metric``
(throughput_samples_per_s (whole job) | iteration_time_s | speedup |
scaling_efficiency | collective_time_s), ``value``,
``baseline_throughput_samples_per_s`` (optional measured one-GPU throughput of the same
model, GPU, batch and framework: compute time is calibrated from it),
``baseline_batch_per_gpu`` (optional: the batch of that one-GPU run when it is not
``batch_per_gpu``, as in strong scaling where one GPU took the whole global batch),
``scenario`` (optional path to a full scenario file, relative to the CSV; it replaces
the cluster/workload/training columns), ``framework``, ``notes``, and for collective
cases ``collective`` (allreduce | broadcast | allgather | reduce_scatter) and
``message_bytes``.

**Transformer-parallel rows** (LLM training, :mod:`simulator.validation.llm_cases`)
describe the model by its shapes and the job by its parallelism instead of
``batch_per_gpu``: ``citation``, ``params_b`` (as stated), ``layers``, ``hidden``,
``heads``, ``kv_heads``, ``ffn_hidden``, ``vocab``, ``seq_len``, ``tp``, ``pp``, ``dp``,
``cp``, ``ep``, ``virtual_stages``, ``micro_batch``, ``global_batch``,
``sequence_parallel``, ``zero_stage``, ``fsdp`` (full_shard | shard_grad_op |
hybrid_shard), ``recompute`` (none | selective | full), ``flash_attention`` (fused
attention kernels; false for runs before they existed), ``tflops_counting`` (model |
with_recompute: what a ``tflops_per_gpu`` figure counts), ``tp_comm_overlap`` and
``overlap_param_gather`` (Megatron's --tp-comm-overlap and --overlap-param-gather),
``cpu_offload`` (parameters or optimizer states kept in CPU memory: not modelled, such
rows are reported as not simulated); their metrics add
``tokens_per_s`` (whole job), ``tokens_per_s_per_gpu``, ``tflops_per_gpu`` (as the source
counts them: the notes say whether recomputation is counted) and ``mfu``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..catalog import get_link
from ..errors import ScenarioError, excerpt

Metric = Literal["throughput_samples_per_s", "iteration_time_s", "speedup", "scaling_efficiency", "collective_time_s",
                 "tokens_per_s", "tokens_per_s_per_gpu", "tflops_per_gpu", "mfu"]
LLM_METRICS = ("tokens_per_s", "tokens_per_s_per_gpu", "tflops_per_gpu", "mfu")

DATA_PARALLEL_COLUMNS = (
    "case_id", "source", "model", "gpu", "nodes", "gpus_per_node", "intra_node", "network_gbps", "network",
    "strategy", "num_ps", "ps_placement", "batch_per_gpu", "precision", "metric", "value",
    "baseline_throughput_samples_per_s", "baseline_batch_per_gpu", "scenario", "framework", "notes", "collective",
    "message_bytes",
)
TRANSFORMER_COLUMNS = (
    "citation", "params_b", "layers", "hidden", "heads", "kv_heads", "ffn_hidden", "vocab", "seq_len", "tp", "pp",
    "dp", "cp", "ep", "virtual_stages", "micro_batch", "global_batch", "sequence_parallel", "zero_stage", "fsdp",
    "recompute", "flash_attention", "tflops_counting", "tp_comm_overlap", "overlap_param_gather", "cpu_offload",
)
COLUMNS = DATA_PARALLEL_COLUMNS + TRANSFORMER_COLUMNS
REQUIRED_COLUMNS = ("case_id", "source", "metric", "value")


@dataclass(frozen=True)
class NetworkKind:
    """What a row's ``network`` name stands for where the row gives no link."""

    latency_us: float  # one-way small-message latency of one node-to-node hop
    typical_gbps: float | None  # per node, assumed where a multi-node row gives no bandwidth
    source: str
    transport: str | None = None  # how libraries drive it (rdma, socket); None: not one of those


#: The one place that says what a ``network`` name means (data-parallel and transformer
#: rows read the same table). Catalog links where the catalog has the fabric; the
#: Ethernet default is 10GbE's rate (the commonest of the older sources) with the TCP
#: latency the catalog gives 25/40GbE; Aries, Omni-Path and EFA are typical published
#: figures of those fabrics.
NETWORK_KINDS: dict[str, NetworkKind] = {
    "ethernet": NetworkKind(get_link("25GbE").latency_us, get_link("10GbE").line_rate_gbps,
                            "link catalog: 10GbE rate, 25GbE TCP latency", get_link("25GbE").transport),
    "roce": NetworkKind(get_link("25GbE-RoCE").latency_us, get_link("25GbE-RoCE").line_rate_gbps,
                        "link catalog: 25GbE-RoCE", get_link("25GbE-RoCE").transport),
    "infiniband": NetworkKind(get_link("IB-EDR").latency_us, get_link("IB-EDR").line_rate_gbps,
                              "link catalog: IB-EDR", get_link("IB-EDR").transport),
    "aries": NetworkKind(1.5, 80.0, "Cray XC Aries: ~1.5 us MPI latency, ~10 GB/s injection per node"),
    "loopback": NetworkKind(1.0, 100.0, "one host: no network hop"),
    "omnipath": NetworkKind(1.0, None, "Intel Omni-Path 100: ~1 us MPI latency"),
    "efa": NetworkKind(10.0, None, "AWS EFA (SRD): ~10 us small-message latency"),
}
#: Input limits of a measured-runs file (the shipped ones are a few hundred rows).
MAX_CSV_BYTES = 16 * 2**20
MAX_FIELD_CHARS = 4096


class MeasuredCase(BaseModel):
    """One measured point (one CSV row)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    case_id: str = Field(min_length=1, description="Unique identifier of the case.")
    source: str = Field(min_length=1, description="Where the measurement comes from (short label).")
    model: str | None = Field(None, description="Zoo model name; empty for collective cases.")
    gpu: str | None = Field(None, description="Catalog GPU name.")
    nodes: int = Field(1, ge=1, le=16_384)
    gpus_per_node: int = Field(1, ge=1, le=64)
    intra_node: Literal["pcie", "nvlink", "nvswitch"] = "pcie"
    network_gbps: float | None = Field(None, gt=0, description="Per-node network bandwidth, Gb/s.")
    network: Literal["ethernet", "roce", "infiniband", "aries", "loopback", "omnipath", "efa"] | None = None
    strategy: Literal[
        "parameter_server", "ring_allreduce", "hierarchical_allreduce", "tree_allreduce",
        "halving_doubling_allreduce", "auto", "device_reduce",
    ] = "ring_allreduce"
    num_ps: int | None = Field(None, ge=1, le=4_096)
    ps_placement: Literal["dedicated", "colocated"] | None = None
    batch_per_gpu: int | None = Field(None, ge=1, le=1_048_576)
    precision: Literal["fp32", "fp16", "amp", "tf32", "bf16", "fp8"] = "fp32"
    metric: Metric
    value: float = Field(gt=0, description="The measured value, in the metric's unit.")
    baseline_throughput_samples_per_s: float | None = Field(None, ge=1e-3, le=1e12)
    baseline_batch_per_gpu: int | None = Field(None, ge=1, le=1_048_576)
    scenario: str | None = None
    framework: str | None = None
    notes: str | None = None
    collective: Literal["allreduce", "broadcast", "allgather", "reduce_scatter"] | None = None
    message_bytes: float | None = Field(None, gt=0, le=2.0**50)
    citation: str | None = None
    params_b: float | None = Field(None, gt=0, le=1e5)
    layers: int | None = Field(None, ge=1, le=10_000)
    hidden: int | None = Field(None, ge=1, le=1_048_576)
    heads: int | None = Field(None, ge=1, le=65_536)
    kv_heads: int | None = Field(None, ge=1, le=65_536)
    ffn_hidden: int | None = Field(None, ge=1, le=4_194_304)
    vocab: int | None = Field(None, ge=1, le=16_777_216)
    seq_len: int | None = Field(None, ge=1, le=1_048_576)
    tp: int | None = Field(None, ge=1, le=1_024)
    pp: int | None = Field(None, ge=1, le=1_024)
    dp: int | None = Field(None, ge=1, le=1_048_576)
    cp: int | None = Field(None, ge=1, le=1_024)
    ep: int | None = Field(None, ge=1, le=1_024)
    virtual_stages: int | None = Field(None, ge=1, le=1_024)
    micro_batch: int | None = Field(None, ge=1, le=1_048_576)
    global_batch: int | None = Field(None, ge=1, le=67_108_864)
    sequence_parallel: bool | None = None
    zero_stage: int | None = Field(None, ge=0, le=3)
    fsdp: Literal["full_shard", "shard_grad_op", "hybrid_shard"] | None = None
    recompute: Literal["none", "selective", "full"] | None = None
    flash_attention: bool | None = None
    tp_comm_overlap: bool | None = None
    overlap_param_gather: bool | None = None
    cpu_offload: bool | None = None
    tflops_counting: Literal["model", "with_recompute"] | None = Field(
        None, description="What a tflops_per_gpu figure counts: model FLOPs, or with the recomputed forward "
        "(Megatron-LM's 2021 formula)")

    @property
    def transformer(self) -> bool:
        """A transformer-parallel row (shapes and parallelism instead of a zoo model's batch)."""
        return self.layers is not None

    @property
    def total_gpus(self) -> int:
        return self.nodes * self.gpus_per_node

    @model_validator(mode="after")
    def _consistent(self) -> MeasuredCase:
        if self.metric == "collective_time_s":
            if self.collective is None or self.message_bytes is None:
                raise ValueError("collective_time_s cases need 'collective' and 'message_bytes'")
            if self.model:
                raise ValueError("collective cases leave 'model' empty")
        else:
            if self.collective is not None or self.message_bytes is not None:
                raise ValueError("'collective' and 'message_bytes' belong to collective_time_s cases only")
            if self.scenario is None and not self.model:
                raise ValueError("'model' is required (or a 'scenario' file)")
            if self.transformer:
                missing = [f for f in ("hidden", "heads", "ffn_hidden", "vocab", "seq_len") if getattr(self, f) is None]
                if missing:
                    raise ValueError(f"a transformer row needs {', '.join(missing)}")
            elif self.metric in LLM_METRICS:
                raise ValueError(f"{self.metric} is a transformer row's metric (give layers, hidden, heads, ...)")
            elif self.scenario is None and self.batch_per_gpu is None:
                raise ValueError("'batch_per_gpu' is required (or a 'scenario' file)")
        if self.scenario is None and not self.gpu:
            raise ValueError("'gpu' is required (or a 'scenario' file)")
        if (self.scenario is None and not self.transformer and self.nodes > 1 and self.network_gbps is None
                and self.network is not None and NETWORK_KINDS[self.network].typical_gbps is None):
            raise ValueError(f"'network_gbps' is required for network {self.network!r} (no typical figure)")
        if self.baseline_batch_per_gpu is not None and self.baseline_throughput_samples_per_s is None:
            raise ValueError("'baseline_batch_per_gpu' is the batch of baseline_throughput_samples_per_s, "
                             "which is empty")
        if self.ps_placement is not None and self.strategy != "parameter_server":
            raise ValueError("'ps_placement' is for parameter_server rows only")
        if self.metric in ("speedup", "scaling_efficiency") and self.total_gpus < 2 and self.scenario is None:
            raise ValueError(f"{self.metric} needs more than one GPU")
        return self


def measured_case_schema() -> dict[str, Any]:
    """JSON Schema of one row of a measured-runs file."""
    return MeasuredCase.model_json_schema()


@dataclass(frozen=True)
class CaseError:
    """A row that could not be read: where and why."""

    case_id: str
    line: int
    message: str


def _clean(row: dict[str, str | None]) -> dict[str, Any]:
    out = {}
    for key, value in row.items():
        value = (value or "").strip()
        if value != "":
            out[key] = value
    return out


def _format_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"])
        msg = " ".join(err["msg"].removeprefix("Value error, ").split())
        if err["type"] not in ("missing", "extra_forbidden") and isinstance(err.get("input"), str):
            msg += f" (got {excerpt(err['input'])})"
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def read_cases(path: str | Path) -> tuple[list[MeasuredCase], list[CaseError]]:
    """Read a measured-runs CSV: the valid cases, and one error per bad row.

    Raises :class:`ScenarioError` only when the file as a whole is unusable (missing,
    unreadable, no header, unknown or missing required columns).
    """
    from ..safe_input import read_text_file

    path = Path(path)
    text = read_text_file(path, limit=MAX_CSV_BYTES)
    if "\0" in text:
        raise ScenarioError(f"{path}: contains a NUL byte (not a CSV text file)")
    reader = csv.DictReader(text.splitlines())
    try:
        return _read_rows(path, reader)
    except csv.Error as exc:
        raise ScenarioError(f"{path}: line {reader.line_num}: malformed CSV: {exc}") from None


def _read_rows(path: Path, reader: csv.DictReader[str]) -> tuple[list[MeasuredCase], list[CaseError]]:
    header = reader.fieldnames or []
    if not header:
        raise ScenarioError(f"{path}: empty file (expected a CSV header: {', '.join(REQUIRED_COLUMNS)}, ...)")
    unknown = [c for c in header if c not in COLUMNS]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if unknown or missing:
        what = []
        if unknown:
            what.append("unknown columns " + ", ".join(excerpt(c) for c in unknown[:10]))
        if missing:
            what.append("missing columns " + ", ".join(repr(c) for c in missing))
        raise ScenarioError(f"{path}: {'; '.join(what)} (columns: {', '.join(COLUMNS)})")
    cases: list[MeasuredCase] = []
    errors: list[CaseError] = []
    seen: set[str] = set()
    for i, row in enumerate(reader):
        line = i + 2
        if None in row:  # more cells than header columns
            errors.append(CaseError(str(row.get("case_id") or f"line {line}"), line, "more cells than columns"))
            continue
        data = _clean(row)
        case_id = data.get("case_id", f"line {line}")
        long = next((k for k, v in data.items() if len(v) > MAX_FIELD_CHARS), None)
        if long is not None:
            errors.append(CaseError(excerpt(case_id), line, f"{long}: longer than {MAX_FIELD_CHARS:,} characters"))
            continue
        try:
            case = MeasuredCase.model_validate(data)
        except ValidationError as exc:
            errors.append(CaseError(case_id, line, _format_error(exc)))
            continue
        if case.case_id in seen:
            errors.append(CaseError(case_id, line, f"duplicate case_id {case.case_id!r}"))
            continue
        seen.add(case.case_id)
        cases.append(case)
    return cases, errors

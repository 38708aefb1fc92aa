"""``clustersim collectives``: a predicted nccl-tests report, optionally beside a measured one.

For each collective and each message size (``min`` to ``max``, multiplied by ``factor``,
as nccl-tests' ``-b``/``-e``/``-f``), one row with nccl-tests' columns:

- ``size_bytes``: the message size as nccl-tests counts it (for allgather and
  reduce_scatter, the full buffer: n x the per-rank piece);
- ``count``: fp32 elements (``size_bytes // 4``), ``type`` ``float``;
- ``redop``: ``sum`` (allreduce, reduce_scatter) or ``none`` (allgather, broadcast);
- ``time_us``: the predicted time of one collective on an idle cluster;
- ``algbw_gbs`` = size / time, ``busbw_gbs`` = algbw x the nccl-tests bus factor
  (:data:`simulator.profile.BUS_FACTORS`; n = total GPUs), both in 1e9 bytes/s;
- ``algo``, ``proto``, ``channels``: what the prediction chose, where the model says
  (blank otherwise);
- with a calibration profile or saved nccl-tests output (``--nccl-tests``, read by
  :mod:`simulator.nccl_tests`: its out-of-place times): ``meas_time_us`` (the profile's
  median of the repeats), ``meas_busbw_gbs`` and ``rel_error`` = (predicted - measured) /
  measured time, for the sizes measured at the scenario's world size (nothing is
  interpolated: blank elsewhere); :func:`error_summary` gives the median and largest
  |rel_error| per collective and size class.

Unlike nccl-tests, sizes are not rounded down to whole elements per rank.
:func:`report` returns a DataFrame, :func:`format_report` renders it as text and
:data:`collectives` is the click command (registered by :mod:`simulator.cli`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path
from typing import Any

import click
import pandas as pd

from .collective_fit import CollectiveFitResult, fit_collective_fields, with_fields
from .errors import CalibrationError, ClusterSimError, ScenarioError
from .loading import DEFAULT_SCENARIO_NAME, load_scenario
from .nccl_tests import check_runs, nccl_tests_samples, read_nccl_tests, run_meta
from .profile import BUS_FACTORS, Profile, load_profile
from .scenario import Scenario

OPS = ("allreduce", "allgather", "reduce_scatter", "broadcast")
ALIASES = {"all_gather": "allgather", "reducescatter": "reduce_scatter", "all_reduce": "allreduce"}
#: our op name -> the name a calibration profile stores it under
PROFILE_NAMES = {"allreduce": "allreduce", "allgather": "all_gather", "reduce_scatter": "reduce_scatter",
                 "broadcast": "broadcast"}
REDOPS = {"allreduce": "sum", "reduce_scatter": "sum", "allgather": "none", "broadcast": "none"}
ELEMENT_BYTES = 4  # fp32
COLUMNS = [
    "op", "size_bytes", "count", "type", "redop", "time_us", "algbw_gbs", "busbw_gbs",
    "algo", "proto", "channels", "meas_time_us", "meas_busbw_gbs", "rel_error",
]
OPTIONAL_COLUMNS = ("algo", "proto", "channels")
MEASURED_COLUMNS = ("meas_time_us", "meas_busbw_gbs", "rel_error")
_SUFFIXES = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}


@dataclasses.dataclass(frozen=True)
class Predicted:
    """One predicted collective; ``algo``/``proto``/``channels`` are None where the
    model does not choose them."""

    time_s: float
    algo: str | None = None
    proto: str | None = None
    channels: int | None = None


def _predict(scenario: Scenario, op: str, nbytes: int) -> Predicted:
    """The one place a collective's time is predicted (swap the model here)."""
    from .validation.run import collective_estimate

    strategy = scenario.training.strategy
    try:
        e = collective_estimate(scenario, op, nbytes, strategy)
        return Predicted(e.time_s, e.algorithm or None, e.protocol or None, e.channels or None)
    except ValueError as exc:
        raise ScenarioError(f"training.strategy: {strategy} cannot run {op} of {nbytes} bytes: {exc}") from None


# -- input -----------------------------------------------------------------------------


def parse_size(text: str, option: str = "size") -> int:
    """Bytes from ``8``, ``64K``, ``1M``, ``1G`` (binary suffixes, as nccl-tests)."""
    match = re.fullmatch(r"\s*(\d+)\s*([kKmMgG]?)\s*", str(text))
    if not match:
        raise ScenarioError(f"{option}: expected a byte count such as 8, 64K, 1M or 1G, got {text!r}")
    value = int(match.group(1)) * _SUFFIXES[match.group(2).upper()]
    if value < 1:
        raise ScenarioError(f"{option}: must be at least 1 byte, got {text!r}")
    return value


def size_list(min_bytes: int, max_bytes: int, factor: int) -> list[int]:
    """min, min x factor, ... up to max inclusive (nccl-tests -b/-e/-f)."""
    if min_bytes < 1:
        raise ScenarioError(f"--min-bytes: must be at least 1 byte, got {min_bytes}")
    if min_bytes > max_bytes:
        raise ScenarioError(f"--min-bytes {min_bytes} is larger than --max-bytes {max_bytes}")
    if factor <= 1:
        raise ScenarioError(f"--factor: must be an integer > 1, got {factor}")
    sizes, size = [], min_bytes
    while size <= max_bytes:
        sizes.append(size)
        size *= factor
    return sizes


def parse_factor(text: str) -> int:
    try:
        factor = int(str(text).strip())
    except ValueError:
        raise ScenarioError(f"--factor: expected an integer > 1, got {text!r}") from None
    if factor <= 1:
        raise ScenarioError(f"--factor: must be an integer > 1, got {text!r}")
    return factor


def parse_ops(text: str) -> list[str]:
    """Comma-separated collective names, in the order given, without repeats."""
    ops: list[str] = []
    for raw in str(text).split(","):
        name = raw.strip().lower()
        name = ALIASES.get(name, name)
        if name not in OPS:
            raise ScenarioError(f"--op: unknown collective {raw.strip()!r} (choose from {', '.join(OPS)})")
        if name not in ops:
            ops.append(name)
    return ops


def measured_samples(profile: Profile, world_size: int, nodes: int, source: str) -> dict[tuple[str, int], float]:
    """(op, bytes) -> measured median time of the profile's collectives at ``world_size``
    (a sample from the scenario's node count preferred where several exist)."""
    coll = profile.collectives
    if coll is None or not coll.samples:
        raise CalibrationError(f"{source}: collectives: the profile measured no collectives")
    sizes = sorted({s.world_size for s in coll.samples})
    if world_size not in sizes:
        raise CalibrationError(
            f"{source}: collectives: measured at world size {', '.join(map(str, sizes))}, "
            f"the scenario has {world_size} GPUs"
        )
    ours = {v: k for k, v in PROFILE_NAMES.items()}
    found: dict[tuple[str, int], tuple[bool, float]] = {}
    for s in coll.samples:
        if s.world_size != world_size or s.collective not in ours:
            continue
        key = (ours[s.collective], s.bytes)
        same_nodes = s.nodes == nodes
        if key not in found or (same_nodes and not found[key][0]):
            found[key] = (same_nodes, s.timing.median_s)
    return {key: t for key, (_, t) in found.items()}


def fit_lines(fitted: CollectiveFitResult) -> str:
    """The report's lines on a ``--fit``: what was fitted, how far it moved the error."""
    values = ", ".join(f"training.collectives.{k} = {v:.4g}" for k, v in fitted.fitted.items()) or "nothing"
    lines = [f"# fitted to the measured times (in-sample): {values}; mean |log(predicted / measured)| "
             f"{fitted.before:.3f} -> {fitted.after:.3f}"]
    lines += [f"# not fitted: {k}: {why}" for k, why in fitted.inapplicable.items()]
    if fitted.fitted:
        lines.append("# reuse: " + " ".join(f"--set {o}" for o in fitted.overrides()))
    return "\n".join(lines)


# -- the table -------------------------------------------------------------------------


def bus_factor(op: str, n: int) -> float:
    return BUS_FACTORS[PROFILE_NAMES[op]](n)


def report(
    scenario: Scenario,
    ops: list[str] | tuple[str, ...] = OPS,
    sizes: list[int] | None = None,
    measured: dict[tuple[str, int], float] | None = None,
) -> pd.DataFrame:
    """One row per (op, size), columns :data:`COLUMNS`; measured columns are NaN where
    ``measured`` (op, bytes) -> seconds has no entry (all NaN without it)."""
    n = scenario.cluster.total_gpus
    if n < 2:
        raise ScenarioError(f"cluster: collectives need at least 2 GPUs, the scenario has {n}")
    sizes = sizes if sizes is not None else size_list(8, 1024**3, 2)
    measured = measured or {}
    rows = []
    for op in ops:
        factor = bus_factor(op, n)
        for nbytes in sizes:
            pred = _predict(scenario, op, nbytes)
            algbw = nbytes / pred.time_s / 1e9 if pred.time_s > 0 else math.nan
            meas = measured.get((op, nbytes)) or None  # a zero time would divide by zero: not measured
            meas_algbw = nbytes / meas / 1e9 if meas else math.nan
            rows.append({
                "op": op, "size_bytes": nbytes, "count": nbytes // ELEMENT_BYTES, "type": "float",
                "redop": REDOPS[op], "time_us": pred.time_s * 1e6, "algbw_gbs": algbw, "busbw_gbs": algbw * factor,
                "algo": pred.algo, "proto": pred.proto, "channels": pred.channels,
                "meas_time_us": meas * 1e6 if meas else math.nan,
                "meas_busbw_gbs": meas_algbw * factor,
                "rel_error": (pred.time_s - meas) / meas if meas else math.nan,
            })
    return pd.DataFrame(rows, columns=COLUMNS)


def _time(us: float) -> str:
    """nccl-tests' time precision: fewer decimals as the time grows."""
    if us >= 10000:
        return f"{us:.0f}"
    return f"{us:.1f}" if us >= 100 else f"{us:.2f}"


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def format_report(df: pd.DataFrame, title: str = "") -> str:
    """nccl-tests-style text: one block per collective ending with its average bus
    bandwidth; optional and measured columns only where some row has them."""
    optional = [c for c in OPTIONAL_COLUMNS if not df[c].map(_blank).all()]
    with_meas = not df["meas_time_us"].isna().all()
    spec = [("size", "(B)", 12), ("count", "(elements)", 12), ("type", "", 6), ("redop", "", 6),
            ("time", "(us)", 9), ("algbw", "(GB/s)", 7), ("busbw", "(GB/s)", 7)]
    spec += [(c, "", 9 if c == "algo" else 8) for c in optional]  # "nvls_tree"
    if with_meas:
        spec += [("meas time", "(us)", 10), ("meas busbw", "(GB/s)", 10), ("error", "(%)", 8)]

    def line(cells: list[str], lead: str = " ") -> str:
        return lead + "".join(f"{c:>{w + 1}}" for c, (_, _, w) in zip(cells, spec)).rstrip()

    out = [f"# {title}"] if title else []
    for op, block in df.groupby("op", sort=False):
        out += ["#", f"# Collective: {op}", line([s[0] for s in spec], "#"), line([s[1] for s in spec], "#")]
        for r in block.itertuples(index=False):
            cells = [str(r.size_bytes), str(r.count), r.type, r.redop, _time(r.time_us),
                     f"{r.algbw_gbs:.2f}", f"{r.busbw_gbs:.2f}"]
            cells += ["" if _blank(getattr(r, c)) else str(getattr(r, c)) for c in optional]
            if with_meas:
                if _blank(r.meas_time_us):
                    cells += ["", "", ""]
                else:
                    cells += [_time(r.meas_time_us), f"{r.meas_busbw_gbs:.2f}", f"{r.rel_error * 100:+.1f}"]
            out.append(line(cells))
        out.append(f"# Avg bus bandwidth    : {block['busbw_gbs'].mean():g}")
        measured = block.dropna(subset=["meas_time_us"])
        if with_meas and len(measured):
            out.append(
                f"# Avg bus bandwidth on the {len(measured)} measured sizes: predicted "
                f"{measured['busbw_gbs'].mean():g}, measured {measured['meas_busbw_gbs'].mean():g}"
            )
            summary = error_summary(block)[str(op)]
            classes = ", ".join(f"{name} {c['median_abs_error_pct']:.1f}% ({c['n']})"
                                for name, c in summary["by_size"].items())
            out.append(f"# Time error |predicted / measured - 1|: median {summary['median_abs_error_pct']:.1f}%, "
                       f"max {summary['max_abs_error_pct']:.1f}%; by size: {classes}")
    return "\n".join(out)


#: The size classes accuracy is reported in (as benchmarks/accuracy_collectives.py).
SIZE_CLASSES = (("< 1 MB", 0, 1e6), ("1-64 MB", 1e6, 64e6), ("> 64 MB", 64e6, math.inf))


def error_summary(df: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per collective, over the rows with a measurement: how many, the median and max
    |predicted / measured - 1| of the time in %, and the median per size class (classes
    without a measured size left out)."""
    out: dict[str, dict[str, Any]] = {}
    for op, block in df.dropna(subset=["rel_error"]).groupby("op", sort=False):
        err = block["rel_error"].abs() * 100
        by_size = {}
        for name, lo, hi in SIZE_CLASSES:
            part = err[(block["size_bytes"] >= lo) & (block["size_bytes"] < hi)]
            if len(part):
                by_size[name] = {"n": int(len(part)), "median_abs_error_pct": float(part.median())}
        out[str(op)] = {"n": int(len(err)), "median_abs_error_pct": float(err.median()),
                        "max_abs_error_pct": float(err.max()), "by_size": by_size}
    return out


def to_json_dict(df: pd.DataFrame, **meta: Any) -> dict[str, Any]:
    """``{**meta, rows: [...]}`` with NaN as null (for ``--json``)."""
    rows = [{k: (None if _blank(v) else v) for k, v in row.items()} for row in df.to_dict(orient="records")]
    return {**meta, "rows": rows}


# -- the command -----------------------------------------------------------------------


@click.command()
@click.argument("scenario", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--set", "overrides", multiple=True, metavar="PATH=VALUE", help="Override a field, e.g. cluster.nodes=4.")
@click.option("--op", "ops", default=",".join(OPS), show_default=True, metavar="OPS",
              help="Comma-separated collectives.")
@click.option("--min-bytes", "-b", default=None, metavar="SIZE",
              help="Smallest size (K/M/G suffixes).  [default: 8, or the sizes --nccl-tests measured]")
@click.option("--max-bytes", "-e", default=None, metavar="SIZE",
              help="Largest size (K/M/G suffixes).  [default: 1G, or the sizes --nccl-tests measured]")
@click.option("--factor", "-f", default=None, metavar="N",
              help="Size multiplier between rows.  [default: 2, or the sizes --nccl-tests measured]")
@click.option("--profile", "profile_path", metavar="PROFILE.json",
              help="Calibration profile: add its measured collectives at the same world size.")
@click.option("--nccl-tests", "nccl_tests", multiple=True, metavar="[OP=]FILE",
              help="Saved nccl-tests output (all_reduce_perf ...): its out-of-place times beside the prediction, at "
              "the sizes and collectives it measured. Repeat for several collectives; OP= names the collective "
              "where neither the file nor its name says.")
@click.option("--fit", "fit", is_flag=True,
              help="Fit training.collectives.host_staging_gbytes_s and network_efficiency (where they move a "
              "prediction) to the measured times, and predict with the fitted values.")
@click.option("--json", "json_out", metavar="FILE", help="Write the rows as JSON to FILE ('-' for stdout).")
@click.option("--plot", "plot_out", metavar="FILE.png", help="Also draw busbw against size, predicted and measured.")
@click.pass_context
def collectives(ctx: click.Context, scenario: Path | None, overrides: tuple[str, ...], ops: str,
                min_bytes: str | None, max_bytes: str | None, factor: str | None, profile_path: str | None,
                nccl_tests: tuple[str, ...], fit: bool, json_out: str | None, plot_out: str | None) -> None:
    """Predicted nccl-tests table (size, count, time, algbw, busbw) of SCENARIO's collectives."""
    op_list = parse_ops(ops)
    runs = [read_nccl_tests(spec) for spec in nccl_tests]
    loaded = load_scenario(scenario, overrides)
    n = loaded.cluster.total_gpus
    measured: dict[tuple[str, int], float] = {}
    if profile_path:
        measured.update(measured_samples(load_profile(profile_path), n, loaded.cluster.nodes, profile_path))
    if runs:
        for warning in check_runs(runs, loaded):
            click.echo(f"warning: {warning}", err=True)
        measured.update(nccl_tests_samples(runs))
    if runs and ctx.get_parameter_source("ops") == click.core.ParameterSource.DEFAULT:
        op_list = list(dict.fromkeys(run.op for run in runs))
    if runs and min_bytes is None and max_bytes is None and factor is None:
        sizes = sorted({size for (op, size) in measured if op in op_list})
    else:
        sizes = size_list(parse_size(min_bytes or "8", "--min-bytes"), parse_size(max_bytes or "1G", "--max-bytes"),
                          parse_factor(factor or "2"))
    source = str(scenario) if scenario else DEFAULT_SCENARIO_NAME
    if fit and not measured:
        raise ScenarioError("--fit: needs measured times (--nccl-tests FILE or --profile PROFILE.json)")
    fitted = None
    try:
        if fit:
            shown = {k: v for k, v in measured.items() if k[0] in op_list}
            if not shown:
                raise ScenarioError(f"--fit: nothing measured for {', '.join(op_list)} (measured: "
                                    f"{', '.join(sorted({op for op, _ in measured}))})")
            fitted = fit_collective_fields(loaded, shown)
            loaded = with_fields(loaded, fitted.fitted)
        df = report(loaded, op_list, sizes, measured or None)
    except ScenarioError as exc:  # name the scenario file
        raise ScenarioError(f"{source}: {exc}") from None
    meta = {"scenario": loaded.name, "source": source, "total_gpus": n, "strategy": loaded.training.strategy,
            "profile": profile_path, "nccl_tests": [run_meta(run) for run in runs], "accuracy": error_summary(df),
            "fit": None if fitted is None else {
                "fitted": fitted.fitted, "not_fitted": fitted.inapplicable,
                "mean_abs_log_error_before": fitted.before, "mean_abs_log_error_after": fitted.after}}
    if plot_out:
        from .collectives_plot import collectives_plot

        try:
            collectives_plot(df, f"{loaded.name}: {n} GPUs").savefig(plot_out)
        except OSError as exc:
            raise ClusterSimError(f"--plot {plot_out}: cannot write: {exc}") from None
    text = json.dumps(to_json_dict(df, **meta), indent=2)
    if json_out == "-":
        click.echo(text)
        return
    if json_out:
        try:
            Path(json_out).write_text(text + "\n")
        except OSError as exc:
            raise ClusterSimError(f"--json {json_out}: cannot write: {exc}") from None
    title = (f"clustersim collectives - {loaded.name} ({source}): {n} GPUs "
             f"({loaded.cluster.nodes} x {loaded.cluster.gpus_per_node} {loaded.cluster.gpu}), "
             f"{loaded.training.strategy}, predicted")
    sources = ([profile_path] if profile_path else []) + [run.path for run in runs]
    if sources:
        title += f"; measured: {', '.join(sources)}"
    if fitted is not None:
        title += "\n" + fit_lines(fitted)
    click.echo(format_report(df, title))

"""``clustersim selfcheck``: probe this machine, run real DDP jobs, predict each from the
profile alone, and print the error.

The closed loop the simulator promises, on the user's own machine:

1. **probe** (:mod:`calibration.probe`) the models of the matrix at its batch sizes,
   with the thread sweep, the interference measurement and whole training iterations in
   fresh processes (:mod:`calibration.steps`) on a CPU, and allreduce from 4 KB to 64 MB
   (DDP's 25 MiB buckets fall inside), unless ``--profile`` names one;
2. **measure** every run of the matrix (models x processes x batches) with the
   measured-run harness (:mod:`calibration.measure`: torch DDP, gloo on the CPU, NCCL on
   GPUs), recording the load average before and after each run;
3. **predict** each run from the profile alone (the row's scenario names the profile;
   :func:`simulator.validation.predict_case`), and print measured, predicted and
   relative error per run with the summary (median and max absolute error), as
   ``clustersim validate`` does.

A progress bar (rich) names the run; Ctrl-C keeps what finished (printed, and written
with ``--json``) and exits 130. The runs are appended to ``OUTPUT_DIR/runs.csv`` with
their scenarios in ``OUTPUT_DIR/runs/``, so ``clustersim validate OUTPUT_DIR/runs.csv``
repeats the predictions.

The quick form (the default: resnet18, alexnet, resnet34, resnet50; 1 and 2
processes; batches 1 and 2; 2 warm-up + 4 timed iterations) is sized to finish in under
5 minutes on a quiet 2-core machine. ``--full`` is the matrix of
``benchmarks/closed_loop.py`` (batches 2 and 8, 3 + 8 iterations, more probe repeats).
Timings on a loaded machine drift (3-4x at load 2-4 on 2 cores): read the load columns.

Nothing here imports torch until a probe or a run starts, so ``--help`` is instant and
the plumbing can be tested with stubs (``probe_fn``, ``measure_fn``, ``predict_fn``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import os
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from . import noise_floor

INTERRUPTED_EXIT = 130

QUICK_MODELS = ("resnet18", "alexnet", "resnet34", "resnet50")


@dataclass(frozen=True)
class SelfcheckConfig:
    """The matrix and how each run is timed."""

    models: tuple[str, ...] = QUICK_MODELS
    procs: tuple[int, ...] = (1, 2)
    batches: tuple[int, ...] = (1, 2)
    iterations: int = 4
    warmup: int = 2
    device: str | None = None  # "cpu" | "cuda"; None = cuda when enough GPUs
    probe_repeats: int = 3
    full: bool = False

    @classmethod
    def full_matrix(cls, **overrides: Any) -> SelfcheckConfig:
        base = cls(batches=(2, 8), iterations=8, warmup=3, probe_repeats=5, full=True)
        return dataclasses.replace(base, **{k: v for k, v in overrides.items() if v is not None})

    def runs(self) -> list[tuple[str, int, int]]:
        return [(m, p, b) for m in self.models for p in self.procs for b in self.batches]


@dataclass
class RunRow:
    """One run of the matrix: measured, predicted and how it went."""

    model: str
    procs: int
    batch: int
    measured: float | None = None  # samples/s, all processes
    predicted: float | None = None
    threads: int | None = None
    median_iteration_s: float | None = None
    load_before: float | None = None
    load_after: float | None = None
    case_id: str | None = None
    error: str | None = None
    probe_step_s: float | None = None  # the probe's own timing of this step (one process)

    @property
    def rel_error(self) -> float | None:
        if self.measured is None or self.predicted is None or self.measured <= 0:
            return None
        return (self.predicted - self.measured) / self.measured

    @property
    def label(self) -> str:
        return f"{self.model} {self.procs} proc{'s' if self.procs > 1 else ''}, batch {self.batch}"

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "rel_error": self.rel_error}


@dataclass
class SelfcheckReport:
    profile: str
    rows: list[RunRow] = field(default_factory=list)
    interrupted_during: str | None = None
    profile_notes: list[str] = field(default_factory=list)  # what the profile lacks and is estimated

    def summary(self) -> dict[str, Any]:
        ape = [abs(r.rel_error) * 100 for r in self.rows if r.rel_error is not None]
        return {
            "n": len(ape),
            "failed": sum(r.error is not None for r in self.rows),
            "median_ape": statistics.median(ape) if ape else None,
            "max_ape": max(ape) if ape else None,
            "mean_ape": statistics.fmean(ape) if ape else None,
            **noise_floor.summary(self.rows),
        }

    def to_json_dict(self) -> dict[str, Any]:
        return {"profile": self.profile, "interrupted_during": self.interrupted_during,
                "profile_estimated": self.profile_notes, "runs": [r.to_dict() for r in self.rows],
                "summary": self.summary()}


def load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


# -- the three steps (replaceable by stubs in tests) ----------------------------------


def default_probe(config: SelfcheckConfig, output: Path, show_progress: bool, echo: Callable[[str], None]) -> Path:
    """The probe the matrix needs, written to ``output``; KeyboardInterrupt propagates
    after the partial profile is written."""
    from . import probe as probe_module

    kb, mb = 1024, 1024 * 1024
    probe_config = dataclasses.replace(
        probe_module.QUICK, models=list(config.models), batches=sorted(set(config.batches)),
        repeats=config.probe_repeats, max_procs=max(2, max(config.procs)), device=config.device,
        collective_sizes=probe_module._sizes(4 * kb, 64 * mb, 4), collective_repeats=5,
        spread_iterations=10 if config.full else 5, quick=not config.full,
        notes="clustersim selfcheck",
    )
    command = "clustersim selfcheck (probe)"
    profile = probe_module.run_probe(probe_config, output, command, show_progress=show_progress, echo=echo)
    if profile is not None and profile.provenance.interrupted_during is not None:
        raise KeyboardInterrupt
    return output


def default_measure(config: SelfcheckConfig, model: str, procs: int, batch: int):
    from .measure import MeasureConfig, run_measurement

    return run_measurement(MeasureConfig(model=model, procs=procs, batch=batch, iterations=config.iterations,
                                         warmup=config.warmup, device=config.device))


def default_predict(measurement, profile: Path, csv_path: Path, command: str,
                    load_before: float | None) -> tuple[str, float]:
    """Append the run as a measured case (scenario naming the profile) and predict it."""
    from simulator.input_paths import allowing_outside_paths
    from simulator.validation import predict_case

    from .measure import append_case

    case = append_case(measurement, csv_path, profile, command, load_before=load_before)
    with allowing_outside_paths():  # the scenario and profile are selfcheck's own files (--profile may lie anywhere)
        return case.case_id, float(predict_case(case, csv_path.parent).predicted)


# -- the loop --------------------------------------------------------------------------


def run_selfcheck(
    config: SelfcheckConfig,
    output_dir: Path,
    *,
    profile: Path | None = None,
    show_progress: bool = True,
    echo: Callable[[str], None] = print,
    probe_fn: Callable[..., Path] | None = None,
    measure_fn: Callable[..., Any] | None = None,
    predict_fn: Callable[..., tuple[str, float]] | None = None,
    on_row: Callable[[RunRow], None] | None = None,
) -> SelfcheckReport:
    """Probe (unless ``profile``), measure every run, predict each. Ctrl-C (a
    KeyboardInterrupt anywhere) stops it and returns what finished, with
    ``interrupted_during`` set. The three steps default to :func:`default_probe`,
    :func:`default_measure` and :func:`default_predict` (looked up when called)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    probe_fn = probe_fn or default_probe
    measure_fn = measure_fn or default_measure
    predict_fn = predict_fn or default_predict

    output_dir.mkdir(parents=True, exist_ok=True)
    csv_path = output_dir / "runs.csv"
    profile_path = profile or output_dir / "profile.json"
    report = SelfcheckReport(profile=str(profile_path))
    runs = config.runs()
    command = "clustersim selfcheck" + (" --full" if config.full else "")
    if profile is None:
        echo(f"probing this machine ({', '.join(config.models)}; batches "
             f"{', '.join(map(str, sorted(set(config.batches))))}) -> {profile_path}")
        try:
            probe_fn(config, profile_path, show_progress, echo)
        except KeyboardInterrupt:
            report.interrupted_during = "probe"
            return report
    report.profile_notes = _estimated(profile_path)
    with Progress(TextColumn("[bold]{task.description:<40}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), disable=not show_progress, transient=False) as bar:
        task = bar.add_task("runs", total=len(runs))
        for model, procs, batch in runs:
            row = RunRow(model, procs, batch)
            bar.update(task, description=row.label)
            if not show_progress:
                echo(f"measuring {row.label}")
            try:
                row.load_before = load_average()
                measurement = measure_fn(config, model, procs, batch)
                row.load_after = load_average()
                row.measured = float(measurement.throughput_samples_per_s)
                row.threads = getattr(measurement, "threads", None)
                row.median_iteration_s = float(measurement.median_s)
                row.case_id, row.predicted = predict_fn(measurement, profile_path, csv_path, command, row.load_before)
            except KeyboardInterrupt:
                report.interrupted_during = row.label
                if row.measured is not None:  # measured but not predicted: keep the measurement
                    report.rows.append(row)
                break
            except Exception as exc:  # noqa: BLE001 - one failed run does not stop the others
                row.error = " ".join(str(exc).split())[:500] or type(exc).__name__
            report.rows.append(row)
            if on_row is not None:
                on_row(row)
            bar.update(task, advance=1)
    noise_floor.attach_probe_steps(report.rows, report.profile)
    return report


def _estimated(profile: Path) -> list[str]:
    from simulator.errors import ClusterSimError
    from simulator.profile import estimated_fields, load_profile

    try:
        return estimated_fields(load_profile(profile))
    except ClusterSimError as exc:
        return [f"profile unreadable: {exc}"]


# -- output ----------------------------------------------------------------------------


def _fmt(x: float | None, spec: str = ".4g") -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def format_report(report: SelfcheckReport) -> str:
    """Per run: measured, predicted, error and the load average; then the summary."""
    width = max([len("run")] + [len(r.label) for r in report.rows])
    lines = [f"{'run':<{width}}  {'threads':>7}  {'measured':>10}  {'predicted':>10}  {'rel.err':>8}  "
             f"{'load before/after':>17}"]
    for r in report.rows:
        load = f"{_fmt(r.load_before, '.2f')}/{_fmt(r.load_after, '.2f')}"
        if r.error is not None:
            lines.append(f"{r.label:<{width}}  {_fmt(r.threads, 'd'):>7}  {_fmt(r.measured):>10}  {'-':>10}  {'-':>8}  "
                         f"{load:>17}  error: {r.error}")
            continue
        err = "-" if r.rel_error is None else f"{r.rel_error * 100:+.1f}%"
        lines.append(f"{r.label:<{width}}  {_fmt(r.threads, 'd'):>7}  {_fmt(r.measured):>10}  "
                     f"{_fmt(r.predicted):>10}  {err:>8}  {load:>17}")
    s = report.summary()
    lines.append("")
    lines.append("throughput in samples/s (all processes); rel.err = (predicted - measured) / measured")
    if s["n"]:
        lines.append(f"runs: {s['n']} predicted, {s['failed']} failed; absolute error: median "
                     f"{s['median_ape']:.1f}%, max {s['max_ape']:.1f}%")
    else:
        lines.append(f"runs: none predicted, {s['failed']} failed")
    if s["noise_n"]:
        lines.append(f"machine noise: the same one-process step timed by the probe and by the run differs by "
                     f"median {s['noise_median_pct']:.1f}%, max {s['noise_max_pct']:.1f}% ({s['noise_n']} runs); "
                     "errors within that cannot be told from noise")
    if report.profile_notes:
        lines.append("estimated, not measured by the profile: " + "; ".join(report.profile_notes))
    if report.interrupted_during:
        lines.append(f"interrupted during {report.interrupted_during}: the runs above are what finished")
    return "\n".join(lines)


def write_json(report: SelfcheckReport, target: str, out=None) -> None:
    """Write the report as JSON to ``target`` (a path, or ``-`` for standard output)."""
    text = json.dumps(report.to_json_dict(), indent=1) + "\n"
    if target == "-":
        (out or sys.stdout).write(text)
    else:
        from simulator.errors import write_atomic

        write_atomic(Path(target), text, "--json")


def default_output_dir() -> Path:
    return Path(f"selfcheck-{dt.datetime.now().strftime('%Y%m%dT%H%M%S')}")


def _ints(text: str, option: str) -> list[int]:
    import click

    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {text!r}", param_hint=option) from None
    if not values or any(v < 1 for v in values):
        raise click.BadParameter(f"expected positive integers, got {text!r}", param_hint=option)
    return values


@click.command("selfcheck")
@click.option("--full", is_flag=True, help="The larger matrix of benchmarks/closed_loop.py (batches 2, 8; more "
              "iterations and probe repeats). Default: the quick form, under 5 minutes on 2 quiet cores.")
@click.option("--profile", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Predict from this profile instead of probing first.")
@click.option("--models", help="Comma-separated models (default: resnet18,alexnet,resnet34,resnet50).")
@click.option("--procs", help="Comma-separated process counts (default: 1,2).")
@click.option("--batches", help="Comma-separated batches per process (default: 1,2; --full 2,8).")
@click.option("--iterations", type=click.IntRange(1), help="Timed iterations per run.")
@click.option("--warmup", type=click.IntRange(0), help="Untimed iterations first.")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), help="Device (default: cuda when enough GPUs).")
@click.option("-o", "--output-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the profile, runs.csv and scenarios (default: ./selfcheck-<time>).")
@click.option("--json", "json_out", metavar="FILE|-", help="Also write the report as JSON (- for standard output).")
@click.option("--no-progress", is_flag=True, help="Do not draw the progress bar.")
def command(full: bool, profile: Path | None, models: str | None, procs: str | None, batches: str | None,
              iterations: int | None, warmup: int | None, device: str | None, output_dir: Path | None,
              json_out: str | None, no_progress: bool) -> None:
    """Probe this machine, run real DDP jobs, and compare each with its prediction.

    Prints measured, predicted and relative error per run, the median and max error,
    and the load average around each run. Ctrl-C keeps what finished (exit 130).
    """
    from simulator.errors import ClusterSimError
    from simulator.loading import did_you_mean

    from . import models as torch_models

    sc = sys.modules[__name__]
    model_list = tuple(models.split(",")) if models else None
    for name in model_list or ():
        if name not in torch_models.MODELS:
            hint = did_you_mean(name, list(torch_models.MODELS))
            raise ClusterSimError(f"--models: no torch definition of {name!r}{hint}; "
                                  f"measurable: {', '.join(torch_models.MODELS)}")
    overrides = dict(models=model_list, procs=tuple(_ints(procs, "--procs")) if procs else None,
                     batches=tuple(_ints(batches, "--batches")) if batches else None, iterations=iterations,
                     warmup=warmup, device=device)
    if full:
        config = sc.SelfcheckConfig.full_matrix(**overrides)
    else:
        config = dataclasses.replace(sc.SelfcheckConfig(), **{k: v for k, v in overrides.items() if v is not None})
    out_dir = output_dir or sc.default_output_dir()
    json_stdout = json_out == "-"
    echo = (lambda text: click.echo(text, err=True)) if json_stdout else click.echo
    report = sc.run_selfcheck(config, out_dir, profile=profile, show_progress=not no_progress, echo=echo)
    echo(sc.format_report(report))
    if json_out is not None:
        sc.write_json(report, json_out)
    if report.interrupted_during is not None:
        sys.exit(INTERRUPTED_EXIT)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``selfcheck`` as a command line (the click command of :mod:`calibration.cli`);
    returns the exit status (0, 2 on a user error, 130 when interrupted)."""
    try:
        command.main(list(argv) if argv is not None else None, prog_name="clustersim selfcheck",
                       standalone_mode=False)
    except SystemExit as exc:
        return int(exc.code or 0)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return 2
    except Exception as exc:  # noqa: BLE001 - user errors (ClusterSimError) as one line
        from simulator.errors import ClusterSimError

        if isinstance(exc, ClusterSimError):
            click.echo("error: " + " ".join(str(exc).split()), err=True)
            return 2
        raise
    return 0


__all__ = ["RunRow", "SelfcheckConfig", "SelfcheckReport", "format_report", "main", "run_selfcheck", "write_json"]

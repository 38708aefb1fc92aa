"""``clustersim sweep`` and ``clustersim plot``: sweeps and figures from the command line.

Registered on the main group by :mod:`simulator.cli.app`; user errors raise
:class:`ClusterSimError` subclasses, which the CLI prints as one line (exit 2).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..engine import simulate
from ..errors import ClusterSimError, check_output_path, excerpt, figure_format, save_figure
from ..loading import did_you_mean, load_scenario
from ..sweep import EXECUTORS, read_results, run_sweep

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure


@click.command()
@click.argument("sweep_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Results table: FILE.parquet or FILE.csv (written as runs finish).")
@click.option("--executor", type=click.Choice(sorted(EXECUTORS)), default="local", show_default=True,
              help="Where runs execute.")
@click.option("-j", "--workers", type=click.IntRange(min=1), help="Worker processes (local; default: every core).")
@click.option("--scheduler", metavar="ADDRESS", help="dask scheduler tcp://HOST:PORT (or ray address).")
@click.option("--resume", is_flag=True, help="Keep the runs already in OUTPUT; run only the rest.")
@click.option("--no-cache", is_flag=True, help="Neither read nor write the result cache.")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), help="Result cache directory.")
@click.option("--batch-size", type=click.IntRange(min=1), help="Runs per executor task (default: automatic).")
@click.option("--progress/--no-progress", default=None,
              help="Progress on stderr: a bar on a terminal, else a line per 10% (default: on).")
def sweep(
    sweep_file: Path, output: Path, executor: str, workers: int | None, scheduler: str | None, resume: bool,
    no_cache: bool, cache_dir: Path | None, batch_size: int | None, progress: bool | None,
) -> None:
    """Run every scenario of SWEEP_FILE and write one row per run to OUTPUT."""
    cache = False if no_cache else (cache_dir or True)
    check_output_path(output, "-o")
    try:
        frame = run_sweep(
            sweep_file, output, executor=executor, workers=workers, scheduler=scheduler, resume=resume,
            cache=cache, progress=progress, batch_size=batch_size,
        )
    except KeyboardInterrupt as exc:
        kept = getattr(exc, "sweep", None)
        if kept is not None and kept.written:
            click.echo(f"interrupted: {kept.kept} finished run(s) kept in {output}; --resume continues", err=True)
        else:
            click.echo(f"interrupted before any run was written: {output} unchanged", err=True)
        raise
    s = frame.attrs["sweep"]
    click.echo(
        f"{s.runs} runs: {s.simulated} simulated, {s.cached} from cache, {s.resumed} resumed, "
        f"{s.failed} failed -> {output}"
    )


def _parse_where(items: tuple[str, ...]) -> list[tuple[str, str]]:
    out = []
    for item in items:
        col, sep, value = item.partition("=")
        if not sep or not col:
            raise ClusterSimError(f"--where {item!r}: expected column=value")
        out.append((col, value))
    return out


@click.command()
@click.argument("kind", type=click.Choice(["speedup", "breakdown", "utilization", "heatmap", "timeline"]))
@click.argument("source", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Image file (.png, .svg, .pdf).")
@click.option("--x", "x", help="heatmap/speedup: column on the x axis (speedup default: total_gpus).")
@click.option("--y", "y", help="heatmap: column on the y axis.")
@click.option("--value", default="throughput_samples_per_s", show_default=True, help="heatmap: metric shown.")
@click.option("--hue", multiple=True, help="speedup: one line per value of this column (repeatable).")
@click.option("--facet", help="speedup: one panel per value of this column.")
@click.option("--average", is_flag=True,
              help="speedup: average rows that differ only in columns not on the plot (default: refuse, naming them).")
@click.option("--agg", type=click.Choice(["mean", "median", "min", "max"]),
              help="heatmap: combine rows that share a cell this way (default: refuse, naming the varying columns).")
@click.option("--by", multiple=True, help="breakdown/utilization: columns that label configurations.")
@click.option("--where", multiple=True, metavar="COLUMN=VALUE", help="Keep only matching rows (repeatable).")
@click.option("--set", "overrides", multiple=True, metavar="PATH=VALUE", help="timeline: scenario override.")
@click.option("--iteration", type=int, help="timeline: which iteration (default: first measured).")
def plot(
    kind: str, source: Path, output: Path, x: str | None, y: str | None, value: str, hue: tuple[str, ...],
    facet: str | None, average: bool, agg: str | None,
    by: tuple[str, ...], where: tuple[str, ...], overrides: tuple[str, ...], iteration: int | None,
) -> None:
    """Plot KIND from SOURCE: a results table (from `clustersim sweep`), or for
    `timeline` a scenario file, simulated with its timeline recorded."""
    figure_format(output, "-o")  # before any work: a bad suffix or folder is refused at once
    shape = {"facet": facet, "average": average, "agg": agg}
    figure = _figure(kind, source, x, y, value, hue, by, where, overrides, iteration, shape)
    save_figure(figure, output, "-o")
    click.echo(f"wrote {output}")


def _figure(kind: str, source: Path, x: str | None, y: str | None, value: str, hue: tuple[str, ...],
            by: tuple[str, ...], where: tuple[str, ...], overrides: tuple[str, ...], iteration: int | None,
            shape: dict[str, Any]) -> Figure:
    from .. import plots  # matplotlib is only loaded to draw

    if kind == "timeline":
        return plots.timeline_plot(simulate(load_scenario(source, overrides), record_timeline=True), iteration)
    else:
        frame = read_results(source)
        for col, wanted in _parse_where(where):
            if col not in frame:
                raise ClusterSimError(f"--where {excerpt(col)}: no such column in {source}"
                                      f"{did_you_mean(col, map(str, frame.columns))}")
            frame = frame[frame[col].astype(str) == wanted]
        try:
            return _table_figure(kind, frame, x, y, value, hue, by, shape)
        except KeyError as exc:  # a column the table does not have
            raise ClusterSimError(f"{source}: no column {excerpt(exc.args[0] if exc.args else '')} "
                                  f"(plot {kind} needs it; is this a `clustersim sweep` table?)") from None
        except ClusterSimError as exc:
            if str(exc).startswith(str(source)):
                raise
            raise ClusterSimError(f"{source}: {exc}") from None


def _table_figure(kind: str, frame: pd.DataFrame, x: str | None, y: str | None, value: str, hue: tuple[str, ...],
                  by: tuple[str, ...], shape: dict[str, Any]) -> Figure:
    from .. import plots

    if kind == "heatmap":
        if not (x and y):
            raise ClusterSimError("plot heatmap needs --x and --y (sweep axes, e.g. cluster.nodes)")
        return plots.sweep_heatmap(frame, x, y, value, agg=shape["agg"])
    if kind == "speedup":
        return plots.speedup_plot(frame, x or "total_gpus", list(hue) or None, average=shape["average"],
                                  facet=shape["facet"])
    if kind == "breakdown":
        return plots.breakdown_plot(frame, list(by) or None)
    return plots.utilization_heatmap(frame, list(by) or None)

"""``clustersim validate``: simulate every case of a measured-runs file and compare.

Registered on the main group by :mod:`simulator.cli.app`. A file that cannot be read at
all exits 2 with one message; bad rows and cases that cannot run are reported per
case (``error``) while the others run.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..errors import check_output_path, figure_format, save_figure, strict_json, write_atomic
from ..safe_input import read_text_file
from ..sweep.progress import ProgressCallback
from ..validation import validate as run_validation
from ..validation.cases import MAX_CSV_BYTES
from ..validation.report import format_summary, format_table, to_json_dict, validation_plot

if TYPE_CHECKING:
    import pandas as pd


@click.command()
@click.argument("cases_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write {cases: [...], summary: {...}} to FILE ('-' for stdout).")
@click.option("--plot", "plot_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Draw predicted against measured (log scales, y = x) to FILE.png.")
@click.option("--progress/--no-progress", "show_progress", default=True,
              help="Progress on stderr: a bar on a terminal, else a line per 10%.")
def validate(cases_file: Path, json_out: Path | None, plot_out: Path | None, show_progress: bool) -> None:
    """Simulate every case of CASES_FILE (measured-runs CSV) and print the errors."""
    read_text_file(cases_file, limit=MAX_CSV_BYTES)  # a regular, readable file, or one error line
    check_output_path(json_out, "--json")
    if plot_out is not None:
        figure_format(plot_out, "--plot")  # before any case runs
    progress = ProgressCallback(None if show_progress else False, "validate", "cases")
    try:
        df = run_validation(cases_file, on_case=progress)
    finally:
        progress.close()
    text = strict_json(to_json_dict(df), indent=2) if json_out is not None else ""
    if json_out is not None and str(json_out) == "-":
        click.echo(text)
    else:
        console = Console()
        if console.is_terminal:  # a table like every other command's; plain columns for pipes and files
            print_cases(console, df)
        else:
            click.echo(format_table(df))
            click.echo()
            click.echo(format_summary(df))
        if json_out is not None:
            write_atomic(json_out, text + "\n", "--json")
    if plot_out is not None:
        save_figure(validation_plot(df), plot_out, "--plot")


def _number(x: float | None) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4g}"


def _error_style(rel_error: float) -> str:
    e = abs(rel_error)
    return "green" if e <= 0.10 else "yellow" if e <= 0.25 else "red"


def print_cases(console: Console, df: pd.DataFrame) -> None:
    """The cases as a rich table (the figures of :func:`format_table`), the cases that could
    not run below it (long messages would squeeze the table), then the summary."""
    table = Table(title=f"measured vs predicted: {len(df)} cases", caption="rel. err = predicted / measured - 1",
                  box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("case", overflow="fold")
    table.add_column("metric", overflow="fold")
    for name in ("measured", "predicted", "rel. err"):
        table.add_column(name, justify="right", no_wrap=True)
    errors = []
    for r in df.itertuples(index=False):
        # Text, not markup: case ids and error messages come from the user's file.
        case, metric = Text(str(r.case_id)), Text("" if not isinstance(r.metric, str) else r.metric)
        if isinstance(r.error, str):
            table.add_row(case, metric, _number(r.measured), "-", Text("error", style="red"))
            errors.append(Text.assemble((str(r.case_id), "bold"), ": ", (r.error, "red")))
        else:
            table.add_row(case, metric, _number(r.measured), _number(r.predicted),
                          Text(f"{r.rel_error * 100:+.1f}%", style=_error_style(r.rel_error)))
    console.print(table)
    for line in errors:
        console.print(line)
    console.print(format_summary(df), markup=False, highlight=False)

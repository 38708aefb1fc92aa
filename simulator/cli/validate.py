"""``clustersim validate``: simulate every case of a measured-runs file and compare.

Registered on the main group by :mod:`simulator.cli.app`. A file that cannot be read at
all exits 2 with one message; bad rows and cases that cannot run are reported per
case (``error``) while the others run.
"""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import check_output_path, figure_format, save_figure, strict_json, write_atomic
from ..safe_input import read_text_file
from ..sweep.progress import ProgressCallback
from ..validation import validate as run_validation
from ..validation.cases import MAX_CSV_BYTES
from ..validation.report import format_summary, format_table, to_json_dict, validation_plot


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
        click.echo(format_table(df))
        click.echo()
        click.echo(format_summary(df))
        if json_out is not None:
            write_atomic(json_out, text + "\n", "--json")
    if plot_out is not None:
        save_figure(validation_plot(df), plot_out, "--plot")

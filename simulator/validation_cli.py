"""``clustersim validate``: simulate every case of a measured-runs file and compare.

Registered on the main group by :mod:`simulator.cli`. A file that cannot be read at
all exits 2 with one message; bad rows and cases that cannot run are reported per
case (``error``) while the others run.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from .errors import ScenarioError
from .validation import validate as run_validation
from .validation.report import format_summary, format_table, to_json_dict, validation_plot


@click.command()
@click.argument("cases_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write {cases: [...], summary: {...}} to FILE ('-' for stdout).")
@click.option("--plot", "plot_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Draw predicted against measured (log scales, y = x) to FILE.png.")
def validate(cases_file: Path, json_out: Path | None, plot_out: Path | None) -> None:
    """Simulate every case of CASES_FILE (measured-runs CSV) and print the errors."""
    if not cases_file.is_file():
        raise ScenarioError(f"{cases_file}: no such file")
    df = run_validation(cases_file)
    if json_out is not None and str(json_out) == "-":
        click.echo(json.dumps(to_json_dict(df), indent=2))
    else:
        click.echo(format_table(df))
        click.echo()
        click.echo(format_summary(df))
        if json_out is not None:
            json_out.write_text(json.dumps(to_json_dict(df), indent=2) + "\n", encoding="utf-8")
    if plot_out is not None:
        validation_plot(df, str(plot_out))

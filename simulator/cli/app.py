"""The ``clustersim`` command group: every command registered, and :func:`main`.

Each command group lives in a module of its own (:mod:`.simulate`, :mod:`.reference`,
:mod:`.sweep`, :mod:`.advise`, :mod:`.validate`; ``collectives`` in
:mod:`simulator.collectives_report`); commands that optional packages publish under the
``clustersim.commands`` entry-point group are added last. Every user error (bad file,
unknown key, impossible value, unknown name) is printed by :func:`.runner.run_group` as
one ``error:`` paragraph naming the file and field, with exit code 2 and no traceback.
"""

from __future__ import annotations

import os
from importlib.metadata import entry_points

import click

from ..collectives_report import collectives
from ..errors import ClusterSimError
from ..scenario import ALLOW_LARGE_ENV
from .advise import advise
from .reference import list_, schema
from .runner import run_group
from .simulate import simulate, topology
from .sweep import plot, sweep
from .validate import validate


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="clustersim")
@click.option("--allow-large", is_flag=True,
              help=f"Lift the safeguard limits on counts (nodes, GPUs, iterations, sweep runs...); "
                   f"same as {ALLOW_LARGE_ENV}=1.")
def cli(allow_large: bool) -> None:
    """Simulate data-parallel deep-learning training on GPU clusters."""
    if allow_large:
        os.environ[ALLOW_LARGE_ENV] = "1"  # inherited by sweep worker processes


def _register_plugin_commands() -> None:
    """Add commands that optional packages publish under the ``clustersim.commands``
    entry-point group (``calibration`` does, for ``probe`` and ``calibrate``), so the
    simulator never imports them. A command whose extra is not installed is replaced by
    one that says which extra to install."""
    for entry in entry_points(group="clustersim.commands"):
        if entry.name in cli.commands:
            continue
        try:
            command = entry.load()
        except ImportError as exc:
            command = _missing_extra_command(entry.name, exc)
        cli.add_command(command, entry.name)


def _missing_extra_command(name: str, exc: ImportError) -> click.Command:
    @click.command(name=name, context_settings={"ignore_unknown_options": True})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def unavailable(args: tuple[str, ...]) -> None:
        raise ClusterSimError(f"`clustersim {name}` needs an optional extra that is not installed ({exc})")

    return unavailable


for _command in (simulate, topology, schema, list_, sweep, plot, advise, validate, collectives):
    cli.add_command(_command)
_register_plugin_commands()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: user errors exit 2 with one message, no traceback."""
    run_group(cli, argv, "clustersim")

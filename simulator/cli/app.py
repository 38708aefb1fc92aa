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
import sys
from importlib import import_module

import click

from .._version import __version__
from ..errors import ClusterSimError
from ..gc_policy import freeze_at_exit, loading_modules

# simulator.scenario.ALLOW_LARGE_ENV, spelled out: importing the schema costs a third
# of a second that `clustersim --version` should not pay (tests/test_speed_startup.py).
ALLOW_LARGE_ENV = "CLUSTERSIM_ALLOW_LARGE"

# Command name -> (module, attribute). A command's module is imported when the command
# is looked up, so each call pays only for its own imports (rich, pandas, the engine).
COMMANDS = {
    "simulate": (".simulate", "simulate"),
    "topology": (".simulate", "topology"),
    "schema": (".reference", "schema"),
    "list": (".reference", "list_"),
    "sweep": (".sweep", "sweep"),
    "plot": (".sweep", "plot"),
    "advise": (".advise", "advise"),
    "validate": (".validate", "validate"),
    "collectives": ("..collectives_report", "collectives"),
    "import-model": (".import_model", "import_model"),
    "accelerate": (".accelerate", "accelerate"),
}
PLUGIN_GROUP = "clustersim.commands"


class LazyGroup(click.Group):
    """A click group whose commands (:data:`COMMANDS`, then the plugins under the
    ``clustersim.commands`` entry-point group) load on first lookup."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        from importlib.metadata import entry_points  # 0.1 s to import: only when listing

        plugins = {entry.name for entry in entry_points(group=PLUGIN_GROUP)}
        return sorted(set(self.commands) | set(COMMANDS) | plugins)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:
            with loading_modules():  # (simulator.gc_policy)
                if cmd_name in COMMANDS:
                    module, attribute = COMMANDS[cmd_name]
                    self.add_command(getattr(import_module(module, __package__), attribute), cmd_name)
                else:
                    _register_plugin_command(cmd_name)
        return self.commands.get(cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, package_name="clustersim")  # no metadata lookup: start-up time
@click.option("--allow-large", is_flag=True,
              help=f"Lift the safeguard limits on counts (nodes, GPUs, iterations, sweep runs...); "
                   f"same as {ALLOW_LARGE_ENV}=1.")
@click.option("--allow-outside-paths", is_flag=True,
              help="Let input files name files outside their folder (calibration:, a sweep's base:, a CSV's "
                   "scenario column); same as CLUSTERSIM_ALLOW_OUTSIDE_PATHS=1.")
def cli(allow_large: bool, allow_outside_paths: bool) -> None:
    """Simulate data-parallel deep-learning training on GPU clusters."""
    if allow_large:
        os.environ[ALLOW_LARGE_ENV] = "1"  # inherited by sweep worker processes
    if allow_outside_paths:
        os.environ["CLUSTERSIM_ALLOW_OUTSIDE_PATHS"] = "1"  # simulator.input_paths; inherited by workers


def _register_plugin_command(name: str) -> None:
    """Add the command ``name`` that an optional package publishes under the
    ``clustersim.commands`` entry-point group (``calibration`` does, for ``probe`` and
    ``calibrate``), so the simulator never imports them. A command whose extra is not
    installed is replaced by one that says which extra to install."""
    from importlib.metadata import entry_points

    for entry in entry_points(group=PLUGIN_GROUP):
        if entry.name != name or entry.name in cli.commands:
            continue
        try:
            command = entry.load()
        except ImportError as exc:
            command = _missing_extra_command(entry.name, exc)
        cli.add_command(command, entry.name)


def load_commands() -> None:
    """Load every command now (before forking workers, say)."""
    for name in cli.list_commands(click.Context(cli)):
        cli.get_command(click.Context(cli), name)


def _missing_extra_command(name: str, exc: ImportError) -> click.Command:
    @click.command(name=name, context_settings={"ignore_unknown_options": True})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def unavailable(args: tuple[str, ...]) -> None:
        raise ClusterSimError(f"`clustersim {name}` needs an optional extra that is not installed ({exc})")

    return unavailable


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: user errors exit 2 with one message, no traceback.

    Run as the console script (no ``argv``: the process ends with the command), it also
    sets what only a whole process may (:func:`_own_process`)."""
    if argv is None:
        _own_process()
    args = sys.argv[1:] if argv is None else list(argv)
    if args == ["--version"]:  # nothing can fail: answered before the error funnel loads the schema
        cli.main(args, prog_name="clustersim")
    with loading_modules():  # the schema, numpy and networkx (simulator.gc_policy)
        from .runner import run_group

    run_group(cli, argv, "clustersim")
    if argv is None:
        _end_process()


def _end_process() -> None:
    """The console script's command is done: its exit handlers run and the process ends
    without the interpreter's teardown, which only frees, one by one, every object of
    the modules and the finished run (a fiftieth of `clustersim simulate`). Not where
    another thread still runs or the output cannot be flushed (a closed pipe): those
    end as Python ends them."""
    import atexit
    import threading

    if threading.active_count() > 1:
        return
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return
    atexit._run_exitfuncs()  # (what the interpreter would run before its teardown)
    os._exit(0)


def _own_process() -> None:
    """OpenBLAS without a thread pool unless asked for (OPENBLAS_NUM_THREADS set): the
    simulator makes no BLAS call (no matrix product, no linear algebra), yet numpy's
    OpenBLAS starts a thread per core when numpy loads, which spins a core at start-up
    (set before numpy loads; inherited by sweep workers). And the collector's exit rule
    (:func:`simulator.gc_policy.freeze_at_exit`)."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    freeze_at_exit()

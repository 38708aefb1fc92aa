"""``clustersim accelerate``: compile the engine core (:mod:`simulator.compiled`)."""

from __future__ import annotations

import click

from .. import compiled
from ..errors import ClusterSimError


@click.command()
@click.option("--status", is_flag=True, help="Only say which engine runs (compiled or the sources) and why.")
@click.option("--remove", is_flag=True, help="Delete every compiled build (the sources run again).")
def accelerate(status: bool, remove: bool) -> None:
    """Compile the engine core with mypyc (pip install 'clustersim[fast]'; needs a C
    compiler): the same results, two to three times the events per second on the
    detailed path.

    The build goes to ~/.cache/clustersim/compiled ($XDG_CACHE_HOME/clustersim/compiled
    where that is set, or $CLUSTERSIM_COMPILED_DIR), keyed
    by the sources: after any change to them the sources run until it is run again.
    CLUSTERSIM_PURE_PYTHON=1 runs the sources even where a build matches.
    """
    if remove:
        click.echo(f"removed {compiled.remove()} compiled build(s) from {compiled.cache_root()}")
        return
    if not status:
        try:
            folder = compiled.build(say=click.echo)
        except compiled.CompileError as exc:
            raise ClusterSimError(f"clustersim accelerate: {exc}") from None
        click.echo(f"compiled engine core written to {folder}")
    click.echo(f"engine: {compiled.enable()}")

"""``clustersim advise batch|ps|gpus``: configuration guidelines from the command line.

Registered on the main group by :mod:`simulator.cli`. Each command prints its formula
with the scenario's numbers, the simulated confirmation and the next bottleneck, or
the same as JSON with ``--json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from .advise import advise_batch, advise_gpus, advise_ps
from .loading import load_scenario

_scenario_arg = click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
_set_opt = click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                        help="Override a scenario field (dotted path), e.g. cluster.nodes=4.")
_json_opt = click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")


def _emit(answer, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(answer.to_dict(), indent=2, sort_keys=True, default=str))
    else:
        click.echo("\n".join(answer.lines()))


@click.group()
def advise() -> None:
    """Configuration guidelines: batch and conv algorithms, parameter servers, GPU count."""


@advise.command("batch")
@_scenario_arg
@_set_opt
@_json_opt
@click.option("--memory-gib", type=click.FloatRange(min=0, min_open=True),
              help="Pretend the GPU has this much memory (what-if).")
@click.option("--max-batch", type=click.IntRange(min=1), help="Largest batch to try.")
def batch(scenario: Path, overrides: tuple[str, ...], as_json: bool, memory_gib: float | None,
          max_batch: int | None) -> None:
    """The per-GPU batch and conv algorithms that fit in memory with the best throughput."""
    _emit(advise_batch(load_scenario(scenario, overrides), memory_gib=memory_gib, max_batch=max_batch), as_json)


@advise.command("ps")
@_scenario_arg
@_set_opt
@_json_opt
def ps(scenario: Path, overrides: tuple[str, ...], as_json: bool) -> None:
    """The fewest parameter servers at which their NICs stop being the bottleneck."""
    _emit(advise_ps(load_scenario(scenario, overrides)), as_json)


@advise.command("gpus")
@_scenario_arg
@_set_opt
@_json_opt
@click.option("--target-efficiency", type=click.FloatRange(0, 1, min_open=True), default=0.8, show_default=True)
@click.option("--max-gpus", type=click.IntRange(min=1), default=4096, show_default=True)
def gpus(scenario: Path, overrides: tuple[str, ...], as_json: bool, target_efficiency: float, max_gpus: int) -> None:
    """The largest GPU count keeping scaling efficiency at or above the target."""
    _emit(advise_gpus(load_scenario(scenario, overrides), target_efficiency=target_efficiency, max_gpus=max_gpus),
          as_json)

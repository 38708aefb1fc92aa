"""``clustersim advise batch|ps|gpus|accumulation|parallelism``: configuration guidelines from the command line.

Registered on the main group by :mod:`simulator.cli.app`. Each command prints its formula
with the scenario's numbers, the simulated confirmation and the next bottleneck; with
``--json FILE`` (``-`` for stdout, as ``simulate --json``) it also writes the same as
strict JSON: a number that is not finite is written as ``null``, never ``NaN``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import click

from ..advise.accumulation import advise_accumulation
from ..advise.batch import advise_batch
from ..advise.gpus import advise_gpus
from ..advise.ps import advise_ps
from ..errors import check_output_path, strict_json, write_atomic
from ..loading import load_scenario
from ..sweep.progress import ProgressCallback

_scenario_arg = click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
_set_opt = click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                        help="Override a scenario field (dotted path), e.g. cluster.nodes=4.")
_json_opt = click.option("--json", "json_out", metavar="FILE",
                         help="Write the answer as JSON to FILE ('-' for stdout, instead of the report).")

_progress_opt = click.option("--progress/--no-progress", "show_progress", default=True,
                             help="Progress on stderr: a bar on a terminal, else a line per 10%.")


def finite(data: Any) -> Any:
    """``data`` with every NaN or infinite float replaced by None (JSON ``null``)."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: finite(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [finite(v) for v in data]
    return data


def _emit(answer: Any, json_out: str | None) -> None:
    if json_out is not None:
        text = strict_json(finite(answer.to_dict()), indent=2, sort_keys=True, default=str)
        if json_out == "-":
            click.echo(text)
            return
        write_atomic(json_out, text + "\n", "--json")
    click.echo("\n".join(answer.lines()))


@click.group()
def advise() -> None:
    """Configuration guidelines: batch and conv algorithms, parameter servers, GPU count, accumulation."""


@advise.command("batch")
@_scenario_arg
@_set_opt
@_json_opt
@click.option("--memory-gib", type=click.FloatRange(min=0, min_open=True),
              help="Pretend the GPU has this much memory (what-if).")
@click.option("--max-batch", type=click.IntRange(min=1), help="Largest batch to try.")
def batch(scenario: Path, overrides: tuple[str, ...], json_out: str | None, memory_gib: float | None,
          max_batch: int | None) -> None:
    """The per-GPU batch and conv algorithms that fit in memory with the best throughput."""
    check_output_path(json_out, "--json")  # before any work
    _emit(advise_batch(load_scenario(scenario, overrides), memory_gib=memory_gib, max_batch=max_batch), json_out)


@advise.command("ps")
@_scenario_arg
@_set_opt
@_json_opt
def ps(scenario: Path, overrides: tuple[str, ...], json_out: str | None) -> None:
    """The fewest parameter servers at which their NICs stop being the bottleneck."""
    check_output_path(json_out, "--json")
    _emit(advise_ps(load_scenario(scenario, overrides)), json_out)


@advise.command("gpus")
@_scenario_arg
@_set_opt
@_json_opt
@click.option("--target-efficiency", type=click.FloatRange(0, 1, min_open=True), default=0.8, show_default=True)
@click.option("--max-gpus", type=click.IntRange(min=1), default=4096, show_default=True)
@_progress_opt
def gpus(scenario: Path, overrides: tuple[str, ...], json_out: str | None, target_efficiency: float, max_gpus: int,
         show_progress: bool) -> None:
    """The largest GPU count keeping scaling efficiency at or above the target."""
    check_output_path(json_out, "--json")
    loaded = load_scenario(scenario, overrides)
    progress = ProgressCallback(None if show_progress else False, "advise gpus", "GPU counts")
    try:
        answer = advise_gpus(loaded, target_efficiency=target_efficiency, max_gpus=max_gpus, on_step=progress)
    finally:
        progress.close()
    _emit(answer, json_out)


@advise.command("accumulation")
@_scenario_arg
@_set_opt
@_json_opt
@click.option("--target-efficiency", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.9,
              show_default=True)
@click.option("--max-steps", type=click.IntRange(1, 4096), default=4096, show_default=True)
def accumulation(scenario: Path, overrides: tuple[str, ...], json_out: str | None, target_efficiency: float,
                 max_steps: int) -> None:
    """The fewest gradient-accumulation micro-batches reaching the target scaling efficiency."""
    check_output_path(json_out, "--json")
    _emit(advise_accumulation(load_scenario(scenario, overrides), target_efficiency=target_efficiency,
                              max_steps=max_steps), json_out)


@advise.command("parallelism")
@_scenario_arg
@_set_opt
@_json_opt
@click.option("--simulate", "simulate_n", type=click.IntRange(1, 64), default=6, show_default=True,
              help="How many of the layouts with the smallest bound to simulate.")
def parallelism(scenario: Path, overrides: tuple[str, ...], json_out: str | None, simulate_n: int) -> None:
    """The fastest tensor/pipeline/micro-batch/recompute/ZeRO layout of a transformer job that fits."""
    from ..llm.search import advise_parallelism

    check_output_path(json_out, "--json")
    _emit(advise_parallelism(load_scenario(scenario, overrides), simulate=simulate_n), json_out)

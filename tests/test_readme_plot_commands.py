"""The README's `clustersim plot` commands work as written on the sweep the README runs
before them (scenarios/sweeps/ring_vs_ps.yaml): a new user copying them gets a figure,
not the refusal to average over columns the command leaves off the plot."""

from __future__ import annotations

import shlex

import pytest

from .conftest import REPO_ROOT
from .test_cli import run_main


def _readme_plot_commands() -> list[list[str]]:
    commands = []
    for line in (REPO_ROOT / "README.md").read_text().splitlines():
        text = line.strip().split("  #")[0].strip()
        if text.startswith("clustersim plot ") and "results.parquet" in text and "|" not in text:
            commands.append(shlex.split(text)[1:])
    return commands


COMMANDS = _readme_plot_commands()


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    from simulator import run_sweep

    path = tmp_path_factory.mktemp("readme") / "results.parquet"
    run_sweep(REPO_ROOT / "scenarios" / "sweeps" / "ring_vs_ps.yaml", path, executor="serial", cache=False,
              progress=False)
    return path


def test_the_readme_has_plot_commands_on_the_sweep_results():
    assert len(COMMANDS) >= 3  # speedup (twice) and heatmap


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c[:2]) + f" #{i}" for i, c in enumerate(COMMANDS)])
def test_a_readme_plot_command_draws_its_figure(command, results, tmp_path, capsys):
    args = [str(results) if a == "results.parquet" else a for a in command]
    output = args.index("-o") + 1
    args[output] = str(tmp_path / args[output])
    code, out, err = run_main(capsys, *args)
    assert code == 0, err
    assert (tmp_path / command[output]).stat().st_size > 10_000

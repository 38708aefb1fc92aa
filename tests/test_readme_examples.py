"""The README's examples work as written: its `clustersim plot` commands on the sweep
the README runs before them (scenarios/sweeps/ring_vs_ps.yaml) draw their figure instead
of refusing to average over columns the command leaves off the plot, and each of its
Python examples runs."""

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


def _readme_python_blocks() -> list[str]:
    blocks, current = [], None
    for line in (REPO_ROOT / "README.md").read_text().splitlines():
        if line.strip() == "```python":
            current = []
        elif line.strip() == "```" and current is not None:
            blocks.append("\n".join(current))
            current = None
        elif current is not None:
            current.append(line)
    return blocks


@pytest.mark.parametrize("index", range(len(_readme_python_blocks())))
def test_a_readme_python_example_runs_as_written(index, tmp_path):
    """Each ```python block of the README, run from a folder where its relative paths
    (scenarios/...) resolve, exits 0 (what it writes stays in that folder)."""
    import subprocess
    import sys

    (tmp_path / "scenarios").symlink_to(REPO_ROOT / "scenarios")
    code = _readme_python_blocks()[index]
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]

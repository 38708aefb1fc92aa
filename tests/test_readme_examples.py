"""The README's examples work as written: its `clustersim plot` commands on the sweep
the README runs before them (scenarios/sweeps/ring_vs_ps.yaml) draw their figure instead
of refusing to average over columns the command leaves off the plot, each of its
Python examples runs, and each `$ clustersim ...` example prints what the README shows."""

from __future__ import annotations

import re
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


# A `$ clustersim ...` example is a fenced block whose lines starting with
# "$ clustersim" are commands; the lines after each, up to the next command, are its
# output. The README's figures drift silently when the model changes (the collectives
# and advise examples had), so each command is re-run, in-process from the repository
# root, and its output compared line by line (trailing blank lines ignored).
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)


def _readme_shell_examples() -> list[tuple[str, str]]:
    """(command, expected output) of every ``$ clustersim`` line of the README."""
    examples = []
    for block in FENCE.findall((REPO_ROOT / "README.md").read_text()):
        command, output = None, []
        for line in block.splitlines() + ["$ "]:
            if line.startswith("$ "):
                if command is not None:
                    examples.append((command, "\n".join(output).rstrip()))
                command = line[2:] if line.startswith("$ clustersim ") else None
                output = []
            elif command is not None:
                output.append(line)
    return examples


SHELL_EXAMPLES = _readme_shell_examples()


def test_the_readme_has_shell_examples_to_check():
    commands = [c.split()[:2] for c, _ in SHELL_EXAMPLES]
    assert ["clustersim", "collectives"] in commands and ["clustersim", "advise"] in commands


@pytest.mark.parametrize("command, expected", SHELL_EXAMPLES, ids=[c for c, _ in SHELL_EXAMPLES])
def test_a_readme_shell_example_prints_what_the_readme_shows(command, expected, capsys, monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    code, out, err = run_main(capsys, *shlex.split(command)[1:])
    assert code == 0, err
    assert out.rstrip().splitlines() == expected.splitlines(), (
        f"README example drifted: re-run `{command}` and paste its output into README.md")

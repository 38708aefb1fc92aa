"""The console script's shortcuts (issue 19, an 8-GPU `clustersim simulate` <= 0.6 s) keep
what a user sees: the whole report and exit code 0 when the process ends without the
interpreter's teardown, and the same error when a result cannot be written as JSON."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from simulator.cli.simulate import json_text
from simulator.errors import SimulationError

from .conftest import REPO_ROOT
from .test_cli import run_main

SCENARIO = str(REPO_ROOT / "scenarios" / "pcie_8gpu_server.yaml")


def test_the_console_script_prints_the_whole_report_and_exits_0(capsys):
    proc = subprocess.run([sys.executable, "-m", "simulator.cli", "simulate", SCENARIO], capture_output=True,
                          text=True, env={"COLUMNS": "80", "PATH": ""}, cwd=REPO_ROOT)
    code, out, _ = run_main(capsys, "simulate", SCENARIO)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert code == 0 and proc.stdout == out
    assert proc.stdout.endswith("every number is a roofline/network estimate\n")


def test_exit_handlers_still_run_at_the_end():
    code = ("import atexit, sys\n"
            "atexit.register(lambda: print('handler ran', file=sys.stderr))\n"
            "sys.argv = ['clustersim', 'simulate', '-q', " + repr(SCENARIO) + "]\n"
            "from simulator.cli import main\n"
            "main()\n"
            "print('not reached: the process ended in main')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "handler ran\n")


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_result_that_is_not_finite_is_the_same_error_whether_written_or_not(bad):
    data = {"b": 1.0, "a": {"x": [0.5, bad]}}
    with pytest.raises(SimulationError) as written:
        json_text(data, needed=True)
    with pytest.raises(SimulationError) as checked:
        json_text(data, needed=False)
    assert str(checked.value) == str(written.value)


def test_the_json_text_is_only_made_when_needed():
    data = {"b": 1.0, "a": [1, 2]}
    assert json_text(data, needed=False) == ""
    assert json_text(data, needed=True) == '{\n  "a": [\n    1,\n    2\n  ],\n  "b": 1.0\n}'

"""Start-up pays only for what a command uses (issue 19, item 5).

Not timed (speed is measured by ``benchmarks/engine_speed.py --must-hold``): these check
which modules load. ``clustersim --version`` loads neither the schema nor any
scientific package; ``import simulator`` loads the public names on first use; a
simulation does not load pandas, pyarrow, torch, dask or matplotlib; every command is
still there, loaded when looked up.
"""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest

HEAVY = ("pandas", "pyarrow", "torch", "dask", "matplotlib", "scipy")


def loaded_after(code: str) -> set[str]:
    """Top-level modules (and simulator's own) loaded by ``code`` in a fresh interpreter."""
    probe = (f"import sys, json\n{code}\n"
             "print(json.dumps(sorted(m for m in sys.modules if '.' not in m or m.startswith('simulator'))))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_version_loads_no_schema_and_no_scientific_package():
    code = ("from simulator.cli.app import main\n"
            "try:\n    main(['--version'])\nexcept SystemExit:\n    pass")
    loaded = loaded_after(code)
    assert not loaded & {*HEAVY, "numpy", "networkx", "pydantic", "rich", "yaml", "simpy"}
    assert not {"simulator.scenario", "simulator.engine", "simulator.loading"} & loaded


def test_import_simulator_loads_its_names_on_first_use():
    assert "simulator.engine" not in loaded_after("import simulator")
    loaded = loaded_after("from simulator import load_scenario, simulate")
    assert {"simulator.engine", "simulator.loading"} <= loaded
    assert not loaded & set(HEAVY)


def test_a_simulation_loads_no_dataframe_or_plotting_package():
    code = ("from simulator import load_scenario, simulate\n"
            "simulate(load_scenario(None, ['cluster.nodes=2', 'cluster.gpus_per_node=4', "
            "'cluster.server.gpus_per_switch=null']))")
    loaded = loaded_after(code)
    assert not loaded & set(HEAVY)
    assert "simulator.calibrated" not in loaded  # only with a calibration profile


def test_every_command_is_listed_and_loads_when_looked_up():
    from simulator.cli.app import COMMANDS, cli

    ctx = click.Context(cli)
    names = cli.list_commands(ctx)
    assert set(COMMANDS) <= set(names)
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        assert isinstance(command, click.Command) and command.name == name
    assert cli.get_command(ctx, "no-such-command") is None


def test_the_large_run_switch_is_spelled_as_the_schema_spells_it():
    from simulator.cli.app import ALLOW_LARGE_ENV
    from simulator.scenario import ALLOW_LARGE_ENV as schema_spelling

    assert ALLOW_LARGE_ENV == schema_spelling


@pytest.mark.parametrize("args", [["--version"], ["--help"]])
def test_the_console_script_answers(args):
    out = subprocess.run([sys.executable, "-m", "simulator.cli", *args], capture_output=True, text=True)
    assert out.returncode == 0
    assert ("version" in out.stdout) if args == ["--version"] else ("simulate" in out.stdout)


def test_modules_load_with_collection_off_and_join_the_oldest_generation():
    import gc

    from simulator.gc_policy import loading_modules

    assert gc.isenabled() and gc.get_freeze_count() == 0
    with loading_modules():
        assert not gc.isenabled()
        made = [[i] for i in range(100)]  # few objects: promoted all the same
    assert gc.isenabled() and gc.get_freeze_count() == 0
    assert id(made) in {id(o) for o in gc.get_objects(generation=2)}


@pytest.mark.parametrize("preset", [None, "4"])
def test_the_console_script_keeps_blas_single_threaded_unless_told(preset):
    """Set before numpy loads (the simulator makes no BLAS call); a user's setting wins;
    what is alive at exit is frozen (the interpreter's last collection skips it)."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if preset:
        env["OPENBLAS_NUM_THREADS"] = preset
    probe = ("import atexit, gc, os, sys\nfrom simulator.cli import app\nsys.argv = ['clustersim', '--version']\n"
             "atexit.register(lambda: print(os.environ['OPENBLAS_NUM_THREADS'], gc.get_freeze_count() > 0))\n"
             "app.main()")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env)
    # (the probe's exit handler, registered before main's, runs after its freeze)
    assert out.stdout.split()[-2:] == [preset or "1", "True"]

"""Paths inside input files stay inside their folder (issue 18, path containment).

``calibration:``, a sweep's ``base:`` and a measured-runs CSV's ``scenario`` column
resolve against the folder of the file naming them and must lie under the folder of the
file given on the command line or a shipped data folder, unless outside paths are
allowed (``clustersim --allow-outside-paths``). Errors quote the path, never the file."""

from __future__ import annotations

import json
import os
import shutil

import pandas as pd
import pytest

from simulator.cli.runner import MAX_WORD, one_line
from simulator.errors import ScenarioError
from simulator.input_paths import ALLOW_OUTSIDE_ENV, resolve_input_path, shipped_folders
from simulator.loading import load_scenario
from simulator.sweep.expand import expand
from simulator.sweep.spec import load_sweep
from simulator.validation import validate

from .conftest import REPO_ROOT
from .test_bad_input import assert_one_error
from .test_cli import run_main

PROFILE = REPO_ROOT / "calibration" / "profiles" / "cpu-amd-epyc-2core.json"
SECRET = "hunter2-" + "s3cr3t" * 40
#: A scenario small enough to simulate in well under a second.
TINY = ("cluster: {nodes: 1, gpus_per_node: 1, server: {pcie_switches: null, gpus_per_switch: null}}\n"
        "workload: {model: resnet18, batch_per_gpu: 2}\nsimulation: {iterations: 1, warmup_iterations: 0}\n")


@pytest.fixture(autouse=True)
def contained(monkeypatch):
    """Containment on (and restored after a test that passes --allow-outside-paths)."""
    monkeypatch.delenv(ALLOW_OUTSIDE_ENV, raising=False)


@pytest.fixture
def tree(tmp_path):
    """tmp/secret.txt and tmp/secret.json (outside), tmp/sub/ (the input files' folder)."""
    (tmp_path / "secret.txt").write_text(f"password: {SECRET}\n")
    (tmp_path / "secret.json").write_text(json.dumps({"environment": {"catalog_gpu": SECRET}}))
    (tmp_path / "sub").mkdir()
    return tmp_path


def _write(path, text):
    path.write_text(text)
    return str(path)


# -- calibration: ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink", "dotdot via subfolder"])
def test_a_calibration_path_outside_the_folder_is_refused(capsys, tree, kind):
    if kind == "symlink":
        os.symlink(tree / "secret.json", tree / "sub" / "link.json")
    value = {"dotdot": "../secret.json", "absolute": str(tree / "secret.json"), "symlink": "link.json",
             "dotdot via subfolder": "x/../../secret.json"}[kind]
    scenario = _write(tree / "sub" / "s.yaml", f"calibration: {value}\n")
    code, out, err = run_main(capsys, "simulate", scenario, "-q")
    assert_one_error(code, out, err, f"{scenario}: calibration: ", "outside", "--allow-outside-paths")
    assert "hunter2" not in err and "s3cr3t" not in err


def test_calibration_inside_the_folder_and_the_shipped_profile_are_accepted(tree):
    shutil.copy(PROFILE, tree / "sub" / "p.json")
    (tree / "sub" / "deeper").mkdir()
    for value in ("p.json", str(tree / "sub" / "p.json"), "deeper/../p.json", str(PROFILE)):
        path = _write(tree / "sub" / "s.yaml", f"calibration: {value}\n{TINY}")
        assert load_scenario(path).calibration.endswith("p.json") or load_scenario(path).calibration == str(PROFILE)


def test_the_shipped_measured_run_scenarios_keep_their_shipped_profile():
    shipped = {os.path.realpath(p) for p in (REPO_ROOT / "calibration" / "profiles").glob("*.json")}
    paths = sorted((REPO_ROOT / "scenarios" / "validation" / "measured_here").glob("*.yaml"))
    assert len(paths) >= 32
    for path in paths:  # each run's profile was probed on that day's machine, just before it
        assert "calibration: ../../../calibration/profiles/" in path.read_text()
        profile = os.path.realpath(load_scenario(path).calibration)
        assert profile in shipped
        day_profile = "cpu-intel-xeon-2core.json" if "20261202T" in path.name else "cpu-amd-epyc-2core.json"
        assert profile == os.path.realpath(PROFILE.with_name(day_profile))


def test_allow_outside_paths_flag_and_environment(capsys, tree, monkeypatch):
    shutil.copy(PROFILE, tree / "p.json")
    scenario = _write(tree / "sub" / "s.yaml", f"calibration: ../p.json\n{TINY}")
    with pytest.raises(ScenarioError, match="outside"):
        load_scenario(scenario)
    code, out, err = run_main(capsys, "--allow-outside-paths", "simulate", scenario, "-q")
    assert code == 0, err
    monkeypatch.setenv(ALLOW_OUTSIDE_ENV, "1")
    assert load_scenario(scenario).calibration == str(tree / "sub" / ".." / "p.json")


def test_paths_typed_by_the_user_are_not_restricted(tree, monkeypatch):
    """--set and in-memory dicts are the user's own input: relative to the working directory."""
    shutil.copy(PROFILE, tree / "p.json")
    monkeypatch.chdir(tree / "sub")
    scenario = _write(tree / "sub" / "s.yaml", TINY)
    assert load_scenario(scenario, ["calibration=../p.json"]).calibration == "../p.json"
    assert load_scenario({"calibration": str(tree / "p.json")}).calibration == str(tree / "p.json")


def test_an_outside_path_that_does_not_exist_is_refused_before_any_read(tree):
    scenario = _write(tree / "sub" / "s.yaml", "calibration: /nonexistent/x.json\n")
    with pytest.raises(ScenarioError, match="is an absolute path outside"):
        load_scenario(scenario)


# -- a sweep's base: (and the calibration it brings) ---------------------------------------


def test_a_sweep_base_outside_the_folder_is_refused(capsys, tree):
    (tree / "base.yaml").write_text(f"cluster: {{gpu: {SECRET}}}\n")
    for base in ("../base.yaml", "../secret.txt", str(tree / "secret.txt")):
        sweep = _write(tree / "sub" / "sw.yaml", f"base: {base}\n")
        code, out, err = run_main(capsys, "sweep", sweep, "-o", str(tree / "o.parquet"), "--no-progress")
        assert_one_error(code, out, err, f"{sweep}: base: ", "outside")
        assert "hunter2" not in err and "s3cr3t" not in err
        assert not (tree / "o.parquet").exists()


def test_a_sweep_base_outside_is_read_with_the_flag(tree, monkeypatch):
    (tree / "base.yaml").write_text(TINY)
    sweep = _write(tree / "sub" / "sw.yaml", "base: ../base.yaml\n")
    with pytest.raises(ScenarioError, match="base: '../base.yaml' is a path outside"):
        expand(*load_sweep(sweep))
    monkeypatch.setenv(ALLOW_OUTSIDE_ENV, "1")
    assert [r.scenario.workload.model for r in expand(*load_sweep(sweep))] == ["resnet18"]


def test_the_shipped_sweeps_still_expand():
    for path in sorted((REPO_ROOT / "scenarios" / "sweeps").glob("*.yaml")):
        runs = expand(*load_sweep(path))
        assert runs and all(r.error is None for r in runs), path


def test_a_base_files_calibration_resolves_against_the_base_within_the_sweep_folder(tree):
    (tree / "sub" / "bases").mkdir()
    shutil.copy(PROFILE, tree / "sub" / "p.json")
    _write(tree / "sub" / "bases" / "b.yaml", f"calibration: ../p.json\n{TINY}")
    sweep = _write(tree / "sub" / "sw.yaml", "base: bases/b.yaml\n")
    (run,) = expand(*load_sweep(sweep))
    assert os.path.realpath(run.scenario.calibration) == os.path.realpath(tree / "sub" / "p.json")
    _write(tree / "sub" / "bases" / "b.yaml", f"calibration: ../../secret.json\n{TINY}")
    with pytest.raises(ScenarioError, match=r"sw.yaml: base: .*b.yaml: calibration: '../../secret.json' is a path"):
        expand(*load_sweep(sweep))


@pytest.mark.parametrize("where", ["set", "axis", "inline base"])
def test_a_calibration_set_by_the_sweep_file_is_contained(tree, where):
    text = {"set": "set: [calibration=../secret.json]\n",
            "axis": "axes:\n  grid:\n    calibration: [../secret.json]\n",
            "inline base": "base: {calibration: ../secret.json}\n"}[where]
    sweep = _write(tree / "sub" / "sw.yaml", text)
    with pytest.raises(ScenarioError, match="calibration: '../secret.json' is a path outside") as info:
        expand(*load_sweep(sweep))
    assert "hunter2" not in str(info.value)


# -- the measured-runs CSV's scenario column ----------------------------------------------

HEADER = "case_id,source,metric,value,scenario\n"


def test_a_csv_scenario_outside_the_folder_is_a_case_error(capsys, tree):
    (tree / "base.yaml").write_text(f"cluster: {{gpu: {SECRET}}}\n")
    _write(tree / "sub" / "inside.yaml", TINY)
    csv = _write(tree / "sub" / "runs.csv", HEADER + "out,t,iteration_time_s,1.0,../base.yaml\n"
                 f"abs,t,iteration_time_s,1.0,{tree / 'secret.txt'}\nin,t,iteration_time_s,1.0,inside.yaml\n")
    df = validate(csv).set_index("case_id")
    assert "scenario: '../base.yaml' is a path outside" in df.loc["out", "error"]
    assert "is an absolute path outside" in df.loc["abs", "error"]
    assert pd.isna(df.loc["in", "error"]) and df.loc["in", "predicted"] > 0
    code, out, err = run_main(capsys, "validate", csv, "--no-progress")
    assert "hunter2" not in out + err and "s3cr3t" not in out + err


def test_a_csv_scenarios_calibration_may_lie_anywhere_under_the_csv_folder(tree):
    """clustersim measure / selfcheck layout: runs.csv, runs/<case>.yaml, profile.json."""
    shutil.copy(PROFILE, tree / "sub" / "profile.json")
    (tree / "sub" / "runs").mkdir()
    _write(tree / "sub" / "runs" / "c.yaml", f"calibration: ../profile.json\n{TINY}")
    _write(tree / "sub" / "runs" / "d.yaml", f"calibration: ../../secret.json\n{TINY}")
    csv = _write(tree / "sub" / "runs.csv", HEADER + "c,t,iteration_time_s,1.0,runs/c.yaml\n"
                 "d,t,iteration_time_s,1.0,runs/d.yaml\n")
    df = validate(csv).set_index("case_id")
    assert pd.isna(df.loc["c", "error"]) and df.loc["c", "predicted"] > 0
    assert "calibration: '../../secret.json' is a path outside" in df.loc["d", "error"]


def test_the_shipped_validation_csvs_name_only_contained_scenarios():
    for csv in (REPO_ROOT / "scenarios" / "validation").rglob("*.csv"):
        from simulator.validation import read_cases

        cases, _ = read_cases(csv)
        for case in cases:
            if case.scenario is not None:
                resolve_input_path(case.scenario, csv.parent, source=str(csv), field="scenario")


# -- the resolver and the error line ------------------------------------------------------


def test_shipped_folders_exist_in_a_checkout():
    assert os.path.realpath(REPO_ROOT / "scenarios") in shipped_folders()
    assert os.path.realpath(REPO_ROOT / "calibration" / "profiles") in shipped_folders()


@pytest.mark.parametrize("value", ["", "  ", "a\0b.json", 3, None])
def test_unusable_paths_are_one_error(tmp_path, value):
    with pytest.raises(ScenarioError, match="not a usable file path"):
        resolve_input_path(value, tmp_path, source="f.yaml", field="calibration")


def test_a_sibling_folder_sharing_a_prefix_is_outside(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub2").mkdir()
    with pytest.raises(ScenarioError, match="outside"):
        resolve_input_path("../sub2/x.json", tmp_path / "sub", source="f.yaml", field="calibration")


def test_the_error_line_is_short_printable_and_one_line():
    line = one_line(f"f.yaml: x: got {SECRET}\x1b[31m\nred\x07 end")
    assert "\x1b" not in line and "\\x1b" in line and "\n" not in line and "\\x07" in line
    assert max(len(word) for word in line.split()) <= MAX_WORD and line.endswith("end")
    assert SECRET not in line

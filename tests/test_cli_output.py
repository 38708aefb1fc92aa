"""What a user sees on the terminal (#17 items 4, 5, 8): one `--json FILE|-` convention
with strict JSON, progress on long commands when stderr is not a terminal, Ctrl-C of
the probe exiting 130, "did you mean" hints, and tables readable at 80 columns."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tomllib
from types import SimpleNamespace

import pytest
import yaml

from simulator.loading import did_you_mean, load_scenario
from simulator.sweep.progress import ProgressCallback, make_progress

from .conftest import REPO_ROOT
from .test_cli import run_main

PS = str(REPO_ROOT / "scenarios" / "ps_4x4_10gbe.yaml")
RING = str(REPO_ROOT / "scenarios" / "ring_4x4_ib100.yaml")


# -- item 4: advise --json FILE | - , strict JSON ---------------------------------------

class _Answer:
    def to_dict(self):
        return {"k": 2, "efficiency": math.nan, "rows": [{"speedup": math.inf}], "per_k": {1: -math.inf}}

    def lines(self):
        return ["the report"]


def test_advise_json_dash_is_stdout_and_strict(capsys, monkeypatch):
    from simulator.cli import advise as advise_cli

    monkeypatch.setattr(advise_cli, "advise_ps", lambda scenario: _Answer())
    code, out, err = run_main(capsys, "advise", "ps", PS, "--json", "-")
    assert code == 0, err
    data = json.loads(out, parse_constant=lambda name: pytest.fail(f"{name} in JSON"))
    assert data == {"k": 2, "efficiency": None, "rows": [{"speedup": None}], "per_k": {"1": None}}
    assert "the report" not in out


def test_advise_json_file_is_written_and_the_report_printed(capsys, monkeypatch, tmp_path):
    from simulator.cli import advise as advise_cli

    monkeypatch.setattr(advise_cli, "advise_ps", lambda scenario: _Answer())
    target = tmp_path / "ps.json"
    code, out, _ = run_main(capsys, "advise", "ps", PS, "--json", str(target))
    assert code == 0 and "the report" in out
    assert json.loads(target.read_text())["efficiency"] is None


def test_advise_ps_json_for_real_is_strict(capsys):
    code, out, _ = run_main(capsys, "advise", "ps", PS, "--json", "-")
    assert code == 0
    assert json.loads(out, parse_constant=lambda name: pytest.fail(name))["k_closed_form"] == 4


def test_advise_json_to_a_missing_folder_is_refused_before_any_work(capsys, monkeypatch, tmp_path):
    from simulator.cli import advise as advise_cli

    monkeypatch.setattr(advise_cli, "advise_gpus", lambda *a, **k: pytest.fail("ran"))
    code, _, err = run_main(capsys, "advise", "gpus", RING, "--json", str(tmp_path / "no" / "x.json"))
    assert code == 2 and "--json" in err and "no such directory" in err


def test_plot_output_without_a_suffix_is_refused_naming_the_formats(capsys, tmp_path):
    code, out, err = run_main(capsys, "plot", "speedup", str(tmp_path / "r.csv"), "-o", str(tmp_path / "name"))
    assert code == 2 and "(no suffix)" in err and ".png" in err and "wrote" not in out
    assert not list(tmp_path.iterdir())


# -- item 5: progress, one library, Ctrl-C ----------------------------------------------

def test_progress_off_a_terminal_is_a_line_per_ten_percent(capsys):
    bar = make_progress(None, 200, "sweep")  # pytest's stderr is not a terminal
    for i in range(200):
        bar.advance(1, failed=int(i == 5))
    bar.close()
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 10
    assert lines[0].startswith("sweep: 10% (20/200 runs, 1 failed)") and "ETA" in lines[0]
    assert lines[-1].startswith("sweep: 100% (200/200 runs, 1 failed)")
    assert make_progress(False, 200).__class__.__name__ == "_Silent"


def test_progress_callback_reports_a_total_known_late(capsys):
    report = ProgressCallback(None, "validate", "cases")
    report(0, 3)
    report(1, 3)
    report(3, 3)
    report.close()
    err = capsys.readouterr().err
    assert "validate: 33% (1/3 cases)" in err and "validate: 100% (3/3 cases)" in err


def test_one_progress_library(capsys):
    dependencies = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert not [d for d in dependencies if d.startswith("tqdm")] and any(d.startswith("rich") for d in dependencies)
    sources = [path for folder in ("simulator", "calibration") for path in (REPO_ROOT / folder).rglob("*.py")]
    assert len(sources) > 30  # the packages' modules were found
    for path in sources:
        assert "tqdm" not in path.read_text(), path


def test_sweep_off_a_terminal_prints_progress_lines(capsys, tmp_path):
    sweep = tmp_path / "s.yaml"
    sweep.write_text(yaml.safe_dump({"set": ["simulation.iterations=1", "simulation.warmup_iterations=0"],
                                     "axes": {"grid": {"cluster.nodes": [1, 2]}}}))
    code, _, err = run_main(capsys, "sweep", str(sweep), "-o", str(tmp_path / "r.csv"), "--executor", "serial",
                            "--no-cache")
    assert code == 0
    assert "sweep: 50% (1/2 runs)" in err and "sweep: 100% (2/2 runs)" in err
    code, _, err = run_main(capsys, "sweep", str(sweep), "-o", str(tmp_path / "q.csv"), "--executor", "serial",
                            "--no-cache", "--no-progress")
    assert code == 0 and "%" not in err


def test_validate_off_a_terminal_prints_progress_lines(capsys, tmp_path):
    rows = (REPO_ROOT / "scenarios" / "validation" / "published_cases.csv").read_text().splitlines(keepends=True)
    cases = tmp_path / "cases.csv"
    cases.write_text("".join(rows[:3]))
    code, out, err = run_main(capsys, "validate", str(cases))
    assert code == 0
    assert "validate: 50% (1/2 cases)" in err and "validate: 100% (2/2 cases)" in err
    assert "validate:" not in out


def test_advise_gpus_off_a_terminal_prints_progress_lines(capsys):
    code, out, err = run_main(capsys, "advise", "gpus", RING, "--max-gpus", "8", "--set", "simulation.iterations=1")
    assert code == 0 and "largest GPU count" in out
    assert "advise gpus: 100% (2/2 GPU counts)" in err


def test_interrupted_probe_exits_130_and_keeps_the_profile(capsys, monkeypatch, tmp_path):
    """The probe catches Ctrl-C itself to write what it measured; its exit status still
    says it was interrupted (130), like every other command (torch is faked)."""
    import calibration

    written = []

    def run_probe(config, output, command, *, show_progress, echo):
        written.append(output)
        echo(f"wrote {output} (interrupted during collectives; kept what was measured)")
        return SimpleNamespace(provenance=SimpleNamespace(complete=False, interrupted_during="collectives"))

    fake = SimpleNamespace(preset=lambda quick, **kw: SimpleNamespace(), run_probe=run_probe)
    monkeypatch.setitem(sys.modules, "calibration.probe", fake)
    monkeypatch.setattr(calibration, "probe", fake, raising=False)
    code, out, err = run_main(capsys, "probe", "--quick", "-o", str(tmp_path / "p.json"))
    assert code == 130 and written and "interrupted" in err and "kept what was measured" in out


# -- item 8: readable terminal output ---------------------------------------------------

@pytest.mark.parametrize("override,hint", [
    ("cluster.gpu=V100-PCIe-16G", "(did you mean 'V100-PCIe-16GB'"),
    ("cluster.gpus_per_nod=2", "cluster.gpus_per_nod: unknown key (did you mean 'gpus_per_node'?)"),
    ("training.collectives.backend=NCCL", "(did you mean 'nccl'?)"),
    ("cluster.nic.link=ib-edr", "(did you mean 'IB-EDR'?)"),
    ("training.strategy=ring", "(did you mean 'ring_allreduce'?)"),
    ("training.framework=pytorch", "(did you mean 'pytorch_ddp'?)"),
    ("workload.precison=fp16", "(did you mean 'precision'?)"),
])
def test_misspelt_names_and_keys_get_a_did_you_mean(capsys, override, hint):
    code, _, err = run_main(capsys, "simulate", "-q", "--set", override)
    assert code == 2 and hint in err and len(err.splitlines()) == 1


def test_misspelt_sweep_key_gets_a_did_you_mean(capsys, tmp_path):
    sweep = tmp_path / "s.yaml"
    sweep.write_text("axes:\n  grid:\n    cluster.nodes: [1]\n  zipp: {}\n")
    code, _, err = run_main(capsys, "sweep", str(sweep), "-o", str(tmp_path / "r.csv"))
    assert code == 2 and "axes.zipp: unknown key (did you mean 'zip'?)" in err


def test_did_you_mean_stays_quiet_when_nothing_is_close():
    assert did_you_mean("TPU", ["A100-SXM4-80GB", "V100-PCIe-16GB"]) == ""
    assert did_you_mean(None, ["a"]) == ""
    load_scenario(None)  # the hints never touch valid input


def test_report_title_is_one_line_and_the_bottleneck_names_its_kind_once(capsys, monkeypatch):
    from simulator.advise import resource_label

    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = run_main(capsys, "simulate")
    assert code == 0
    assert out.splitlines()[0].endswith("(<default scenario>)")
    assert resource_label("gpu compute (every GPU)", "gpu") == "gpu compute (every GPU)"
    assert resource_label("n0.nic0->switch0", "network") == "n0.nic0->switch0 (network)"


def test_list_topologies_has_no_sphinx_markup(capsys):
    code, out, _ = run_main(capsys, "list", "topologies")
    assert code == 0 and "``" not in out and ":data:" not in out and "DGX1_NVLINKS" in out


def test_list_models_fits_80_columns_without_cutting_names(capsys, monkeypatch):
    from simulator import zoo

    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = run_main(capsys, "list", "models")
    assert code == 0 and max(len(line) for line in out.splitlines()) <= 80
    first_column = {line.split()[0] for line in out.splitlines() if line.strip()}
    assert set(zoo.list_models()) <= first_column


def test_ctrl_c_while_the_commands_import_exits_130_without_a_traceback():
    """A Ctrl-C on a cold start lands while ``simulator.cli.app`` (click, pydantic, the
    schema) is still importing, before the error funnel exists: one line, exit 130. The
    interrupt is raised deterministically by an import hook on that module."""
    code = (
        "import sys\n"
        "class Interrupt:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'simulator.cli.app':\n"
        "            raise KeyboardInterrupt\n"
        "sys.meta_path.insert(0, Interrupt())\n"
        "from simulator.cli import main\n"
        "main(['list', 'gpus'])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 130
    assert done.stderr.strip() == "aborted" and "Traceback" not in done.stderr

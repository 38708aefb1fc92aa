"""The command line: outputs, JSON, and exit code 2 with one message on bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from simulator.cli import main

from .conftest import REPO_ROOT


def run_main(capsys, *args: str) -> tuple[int, str, str]:
    """Run the CLI in-process: (exit code, stdout, stderr)."""
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    out, err = capsys.readouterr()
    return code, out, err


def test_simulate_default_prints_the_headline_figures(capsys):
    code, out, _ = run_main(capsys, "simulate")
    assert code == 0
    for needle in ("iteration time", "throughput", "speedup over 1 GPU", "scaling efficiency", "bottleneck:"):
        assert needle in out


def test_json_to_stdout_has_the_documented_keys(capsys):
    code, out, _ = run_main(capsys, "simulate", str(REPO_ROOT / "scenarios" / "ring_4x4_ib100.yaml"), "--json", "-")
    assert code == 0
    data = json.loads(out)
    for key in ("iteration_time_s", "throughput_samples_per_s", "speedup", "scaling_efficiency", "breakdown",
                "bottleneck"):
        assert key in data
    assert data["total_gpus"] == 16
    assert data["throughput_samples_per_s"] == pytest.approx(16 * 32 / data["iteration_time_s"])


def test_json_file_is_byte_identical_across_runs(capsys, tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    for path in (a, b):
        assert run_main(capsys, "simulate", "--set", "cluster.nodes=3", "--json", str(path), "-q")[0] == 0
    assert a.read_bytes() == b.read_bytes()


def test_schema_is_json_schema(capsys):
    code, out, _ = run_main(capsys, "schema")
    assert code == 0
    schema = json.loads(out)
    assert {"name", "description", "cluster", "workload", "training", "variability", "simulation"} <= set(
        schema["properties"]
    )
    assert schema["additionalProperties"] is False


@pytest.mark.parametrize("what,needle", [("gpus", "H100-SXM5-80GB"), ("models", "bert_large"), ("links", "IB-EDR"),
                                         ("topologies", "pcie_tree"), ("strategies", "parameter_server")])
def test_list(capsys, what, needle):
    code, out, _ = run_main(capsys, "list", what)
    assert code == 0 and needle in out


@pytest.mark.parametrize(
    "args,needle",
    [
        (["simulate", "missing.yaml"], "missing.yaml: no such file"),
        (["simulate", "--set", "cluster.nodes=0"], "cluster.nodes"),
        (["simulate", "--set", "cluster.gpu=TPU"], "cluster.gpu: unknown GPU 'TPU'"),
        (["simulate", "--set", "bogus"], "expected dotted.path=value"),
        (["list", "cats"], "Invalid value"),
        *[(["simulate", "--set", f"training.collectives.compute_interference={v}"],
           "training.collectives.compute_interference") for v in ("0.5", "inf", "nan", "11")],
        *[(["simulate", "--set", f"training.collectives.net_connection_gbps={v}"],
           "training.collectives.net_connection_gbps") for v in ("0", "-5", "inf", "nan")],
    ],
)
def test_user_errors_exit_2_with_one_message(capsys, args, needle):
    code, out, err = run_main(capsys, *args)
    assert code == 2
    assert needle in err
    assert "Traceback" not in err + out


def test_installed_console_script_reports_errors_without_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("workload:\n  batch_per_gpu: -3\n")
    proc = subprocess.run([sys.executable, "-m", "simulator.cli", "simulate", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        f"error: {bad}: workload.batch_per_gpu: Input should be greater than or equal to 1 (got -3)"
    )


def test_topology_draws_a_png(capsys, tmp_path):
    png = tmp_path / "cluster.png"
    scenario = str(REPO_ROOT / "scenarios" / "pcie_8gpu_server.yaml")
    code, out, _ = run_main(capsys, "topology", scenario, "--png", str(png))
    assert code == 0
    # One CPU, 2 PCIe switches, 8 GPUs, 1 NIC; 8 GPU links + 2 uplinks + 1 NIC link.
    assert "12 nodes, 11 links" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000

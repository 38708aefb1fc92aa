"""``clustersim collectives``: the nccl-tests-style report, its numbers and its errors."""

from __future__ import annotations

import json

import pytest
import yaml

from simulator import collectives_report as cr
from simulator.cli import main
from simulator.loading import load_scenario
from simulator.profile import load_profile
from simulator.scenario import TrainingSpec

from .conftest import REPO_ROOT

RING_4X4 = str(REPO_ROOT / "scenarios" / "ring_4x4_ib100.yaml")
# the profile with every collective, 4 KB-256 MB
PROFILE = str(REPO_ROOT / "calibration" / "profiles" / "cpu-amd-epyc-2core-collectives.json")
TWO_GPUS = ["--set", "cluster.nodes=1", "--set", "cluster.gpus_per_node=2", "--set", "cluster.server.gpus_per_switch=2"]


def run_main(capsys, *args: str) -> tuple[int, str, str]:
    """Run the CLI in-process: (exit code, stdout, stderr)."""
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    out, err = capsys.readouterr()
    return code, out, err


def json_rows(capsys, *args: str) -> list[dict]:
    code, out, err = run_main(capsys, "collectives", *args, "--json", "-")
    assert code == 0, err
    return json.loads(out)["rows"]


@pytest.fixture
def uniform_ring(tmp_path):
    """4 nodes x 1 GPU on a 10 Gb/s NIC: a ring whose every hop is one 1.25 GB/s link."""
    training: dict = {"strategy": "ring_allreduce"}
    if "collectives" in TrainingSpec.model_fields:  # a collective-library cost model: the flow model alone
        training["collectives"] = {"backend": "ideal"}
    path = tmp_path / "ring4.yaml"
    path.write_text(yaml.safe_dump({
        "name": "uniform-ring",
        "cluster": {"nodes": 4, "gpus_per_node": 1, "nic": {"link": None, "bandwidth_gbps": 10, "latency_us": 1}},
        "training": training,
    }))
    return str(path)


def test_sizes_follow_nccl_tests_b_e_f():
    assert cr.size_list(8, cr.parse_size("1K"), 2) == [8, 16, 32, 64, 128, 256, 512, 1024]
    assert cr.size_list(8, 1000, 2) == [8, 16, 32, 64, 128, 256, 512]
    assert cr.size_list(1024, 1024, 4) == [1024]
    assert [cr.parse_size(s) for s in ("8", "64K", "64k", "1M", "1G", "3g")] == [
        8, 65536, 65536, 1048576, 1073741824, 3 * 1073741824]


def test_cli_rows_are_op_by_size(capsys):
    rows = json_rows(capsys, RING_4X4, "-b", "8", "-e", "1K", "-f", "2", "--op", "allreduce,broadcast")
    assert [(r["op"], r["size_bytes"]) for r in rows] == [
        (op, s) for op in ("allreduce", "broadcast") for s in (8, 16, 32, 64, 128, 256, 512, 1024)]
    assert [r["count"] for r in rows[:3]] == [2, 4, 8]


def test_two_gpus_busbw_equals_algbw_for_allreduce(capsys):
    rows = json_rows(capsys, RING_4X4, *TWO_GPUS, "-b", "1K", "-e", "16M", "-f", "16")
    allreduce = [r for r in rows if r["op"] == "allreduce"]
    assert len(allreduce) == 4
    for r in allreduce:
        assert r["busbw_gbs"] == pytest.approx(r["algbw_gbs"], rel=1e-12)
    for r in rows:
        assert r["algbw_gbs"] == pytest.approx(r["size_bytes"] / (r["time_us"] * 1e-6) / 1e9)
        expected = {"allreduce": 1.0, "allgather": 0.5, "reduce_scatter": 0.5, "broadcast": 1.0}[r["op"]]
        assert r["busbw_gbs"] == pytest.approx(expected * r["algbw_gbs"])


def test_bus_factor_and_redop_per_op_on_16_gpus(capsys):
    rows = json_rows(capsys, RING_4X4, "-b", "1M", "-e", "1M")
    by_op = {r["op"]: r for r in rows}
    assert set(by_op) == set(cr.OPS)
    factors = {"allreduce": 2 * 15 / 16, "allgather": 15 / 16, "reduce_scatter": 15 / 16, "broadcast": 1.0}
    for op, factor in factors.items():
        r = by_op[op]
        assert r["busbw_gbs"] / r["algbw_gbs"] == pytest.approx(factor)
        assert r["type"] == "float" and r["count"] == 262144
    assert {op: r["redop"] for op, r in by_op.items()} == {
        "allreduce": "sum", "allgather": "none", "reduce_scatter": "sum", "broadcast": "none"}


def test_uniform_ring_allreduce_is_2_n_minus_1_over_n_s_over_b(capsys, uniform_ring):
    size, n, link = 1 << 30, 4, 10e9 / 8
    rows = json_rows(capsys, uniform_ring, "-b", "1G", "-e", "1G")
    by_op = {r["op"]: r for r in rows}
    assert by_op["allreduce"]["time_us"] * 1e-6 == pytest.approx(2 * (n - 1) / n * size / link, rel=0.01)
    # busbw is what it is made for: the link's bandwidth, whatever the collective.
    for op in cr.OPS:
        assert by_op[op]["busbw_gbs"] == pytest.approx(link / 1e9, rel=0.01), op


def test_text_report_has_nccl_tests_columns_and_average(capsys):
    code, out, _ = run_main(capsys, "collectives", RING_4X4, "--op", "allreduce", "-b", "8", "-e", "64")
    assert code == 0
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("#") and "size" in line)
    # nccl-tests' columns, then how the collective library ran each size.
    assert header.split()[1:] == ["size", "count", "type", "redop", "time", "algbw", "busbw", "algo", "proto",
                                  "channels"]
    data = [line.split() for line in lines if not line.startswith("#")]
    assert [row[0] for row in data] == ["8", "16", "32", "64"]
    assert data[0][1:4] == ["2", "float", "sum"]
    busbw = [float(row[6]) for row in data]
    avg = next(line for line in lines if line.startswith("# Avg bus bandwidth"))
    assert float(avg.split(":")[1]) == pytest.approx(sum(busbw) / len(busbw), abs=0.01)


def test_json_file_is_byte_identical_across_runs(capsys, tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    for path in (a, b):
        code, out, _ = run_main(capsys, "collectives", RING_4X4, "-e", "1M", "-f", "8", "--json", str(path))
        assert code == 0 and "Avg bus bandwidth" in out
    assert a.read_bytes() == b.read_bytes()
    assert json.loads(a.read_text())["total_gpus"] == 16


def test_profile_adds_measured_columns_and_relative_error(capsys):
    profile = load_profile(PROFILE)
    medians = {(s.collective, s.bytes): s.timing.median_s for s in profile.collectives.samples}
    rows = json_rows(capsys, RING_4X4, *TWO_GPUS, "--profile", PROFILE, "-b", "2K", "-e", "64M", "-f", "4",
                     "--op", "allreduce,allgather")
    by_key = {(r["op"], r["size_bytes"]): r for r in rows}
    blank = by_key[("allreduce", 2048)]  # the profile starts at 4 KiB: nothing interpolated
    assert blank["meas_time_us"] is None and blank["rel_error"] is None and blank["meas_busbw_gbs"] is None
    r = by_key[("allreduce", 8192)]
    meas = medians[("allreduce", 8192)]
    assert r["meas_time_us"] == pytest.approx(meas * 1e6)
    assert r["rel_error"] == pytest.approx((r["time_us"] * 1e-6 - meas) / meas)
    assert r["meas_busbw_gbs"] == pytest.approx(8192 / meas / 1e9)  # 2 GPUs: factor 1
    g = by_key[("allgather", 8388608)]  # the profile calls it all_gather
    meas = medians[("all_gather", 8388608)]
    assert g["rel_error"] == pytest.approx((g["time_us"] * 1e-6 - meas) / meas)
    assert g["meas_busbw_gbs"] == pytest.approx(8388608 / meas / 1e9 / 2)
    assert sum(row["meas_time_us"] is not None for row in rows) == 14

    code, out, _ = run_main(capsys, "collectives", RING_4X4, *TWO_GPUS, "--profile", PROFILE, "-b", "8K", "-e", "8K",
                            "--op", "allreduce")
    assert code == 0
    assert "meas time" in out and "meas busbw" in out and "error" in out
    row = next(line.split() for line in out.splitlines() if not line.startswith("#"))
    # size count type redop time algbw busbw algo proto channels | meas time, busbw, error %
    assert float(row[12]) == pytest.approx(100 * (float(row[4]) - float(row[10])) / float(row[10]), abs=0.2)


def test_optional_algo_columns_appear_when_the_model_fills_them(monkeypatch):
    scenario = load_scenario(RING_4X4)
    monkeypatch.setattr(cr, "_predict", lambda s, op, nbytes: cr.Predicted(1e-5))
    plain = cr.report(scenario, ["allreduce"], [1024])
    assert "algo" not in cr.format_report(plain)
    monkeypatch.setattr(cr, "_predict", lambda s, op, nbytes: cr.Predicted(1e-5, "ring", "simple", 2))
    filled = cr.report(scenario, ["allreduce"], [1024])
    assert (filled.loc[0, "algo"], filled.loc[0, "proto"], filled.loc[0, "channels"]) == ("ring", "simple", 2)
    text = cr.format_report(filled)
    assert "algo" in text and "proto" in text and "channels" in text
    assert next(line for line in text.splitlines() if not line.startswith("#")).split()[-3:] == ["ring", "simple", "2"]


@pytest.mark.parametrize(
    "args,needle",
    [
        (["missing.yaml"], "missing.yaml: no such file"),
        ([RING_4X4, "-b", "1X"], "--min-bytes"),
        ([RING_4X4, "-e", "-5"], "--max-bytes"),
        ([RING_4X4, "-b", "0"], "--min-bytes"),
        ([RING_4X4, "-b", "1M", "-e", "1K"], "--min-bytes 1048576 is larger than --max-bytes 1024"),
        ([RING_4X4, "-f", "1"], "--factor"),
        ([RING_4X4, "-f", "0.5"], "--factor"),
        ([RING_4X4, "--op", "allreduce,alltoall"], "--op: unknown collective 'alltoall'"),
        ([RING_4X4, "--profile", "nope.json"], "nope.json: no such calibration profile"),
        ([RING_4X4, "--profile", PROFILE], "collectives: measured at world size 2, the scenario has 16 GPUs"),
        ([RING_4X4, "--set", "cluster.nodes=1", "--set", "cluster.gpus_per_node=1",
          "--set", "cluster.server.gpus_per_switch=1"], "ring_4x4_ib100.yaml: cluster: collectives need at least 2"),
        ([RING_4X4, "--set", "cluster.nodes=0"], "cluster.nodes"),
    ],
)
def test_bad_input_exits_2_with_one_line(capsys, args, needle):
    code, out, err = run_main(capsys, "collectives", *args)
    assert code == 2
    assert needle in err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err + out


def test_corrupt_profile_names_the_file(capsys, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "clustersim-profile", "schema_version": 1, "environ')
    code, _, err = run_main(capsys, "collectives", RING_4X4, *TWO_GPUS, "--profile", str(bad))
    assert code == 2 and "bad.json" in err and len(err.strip().splitlines()) == 1

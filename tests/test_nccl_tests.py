"""Reading nccl-tests output (simulator.nccl_tests) and `clustersim collectives --nccl-tests`."""

from __future__ import annotations

import json

import pytest

from simulator.errors import ScenarioError
from simulator.nccl_tests import parse_nccl_tests, read_nccl_tests, split_op_prefix

from .conftest import REPO_ROOT
from .test_cli import run_main

# nccl-tests >= 2.10 layout (root column, #wrong), two hosts of two GPUs, mpirun --tag-output prefixes.
NEW = """\
[1,0]<stdout>:# nThread 1 nGpus 1 minBytes 1024 maxBytes 4194304 step: 32(factor) warmup iters: 5 iters: 20
[1,0]<stdout>:# nccl-tests version 2.13.8 nccl-headers=21805 nccl-library=21805
[1,0]<stdout>:# Collective test starting: all_gather_perf
[1,0]<stdout>:#  Rank  0 Group  0 Pid  11 on      nodeA device  0 [0x07] NVIDIA A100-SXM4-80GB
[1,0]<stdout>:#  Rank  1 Group  0 Pid  12 on      nodeA device  1 [0x0b] NVIDIA A100-SXM4-80GB
[1,0]<stdout>:#  Rank  2 Group  0 Pid  13 on      nodeB device  0 [0x07] NVIDIA A100-SXM4-80GB
[1,0]<stdout>:#  Rank  3 Group  0 Pid  14 on      nodeB device  1 [0x0b] NVIDIA A100-SXM4-80GB
[1,0]<stdout>:#                                                   out-of-place                       in-place
[1,0]<stdout>:#       size  count  type  redop  root  time  algbw  busbw #wrong  time  algbw  busbw #wrong
[1,0]<stdout>:#        (B)  (elements)  (us)  (GB/s)  (GB/s)  (us)  (GB/s)  (GB/s)
[1,0]<stdout>:        1024  64  float  none  -1  30.50  0.03  0.03  0  29.00  0.04  0.03  0
[1,0]<stdout>:nodeA:11:11 [0] NCCL INFO comm 0x5 rank 0 nranks 4 - Init COMPLETE
[1,0]<stdout>:       32768  2048  float  none  -1  41.00  0.80  0.60  0  40.00  0.82  0.61  0
[1,0]<stdout>:     1048576  65536  float  none  -1  250.0  4.19  3.15  N/A  245.0  4.28  3.21  N/A
[1,0]<stdout>:# Avg bus bandwidth    : 1.26
"""

# nccl-tests before 2.10: no root column, an "error" column; no collective line.
OLD = """\
# nThread 1 nGpus 2 minBytes 8 maxBytes 8192 step: 2(factor) warmup iters: 5 iters: 20 validation: 1
#
# Using devices
#   Rank  0 Pid 1821213 on host-1 device  0 [0x00] Tesla V100-SXM2-16GB
#   Rank  1 Pid 1821213 on host-1 device  1 [0x00] Tesla V100-SXM2-16GB
#
#                                                     out-of-place                       in-place
#       size         count    type   redop     time   algbw   busbw  error     time   algbw   busbw  error
#        (B)    (elements)                     (us)  (GB/s)  (GB/s)            (us)  (GB/s)  (GB/s)
           0             0   float     sum     0.10    0.00    0.00  0e+00     0.10    0.00    0.00  0e+00
        4096          1024   float     sum    12.00    0.34    0.34  0e+00    11.00    0.37    0.37  0e+00
        4096          1024   float     sum    14.00    0.29    0.29  0e+00    13.00    0.32    0.32  0e+00
        4096          1024   float     sum    19.00    0.22    0.22  0e+00    15.00    0.27    0.27  0e+00
        8192          2048   float     sum    16.00    0.51    0.51  0e+00    15.00    0.55    0.55  0e+00
"""


def test_a_new_format_run_gives_its_collective_ranks_hosts_and_out_of_place_times():
    run = parse_nccl_tests(NEW, "out.txt")
    assert run.op == "allgather"  # from "Collective test starting: all_gather_perf"
    assert (run.world_size, run.nodes) == (4, 2)
    assert set(run.devices) == {"NVIDIA A100-SXM4-80GB"}
    assert run.versions == ("nccl-tests version 2.13.8 nccl-headers=21805 nccl-library=21805",)
    assert run.times_s == pytest.approx({1024: 30.5e-6, 32768: 41e-6, 1048576: 250e-6})
    assert run.in_place_times_s == pytest.approx({1024: 29e-6, 32768: 40e-6, 1048576: 245e-6})


def test_an_old_format_run_is_laid_out_by_its_header_and_repeated_sizes_take_the_median():
    run = parse_nccl_tests(OLD, "all_reduce_perf.log")
    assert run.op == "allreduce"  # from the file name
    assert (run.world_size, run.nodes) == (2, 1)
    # the 0-byte row is dropped; 4096 measured three times (12, 14, 19 us): the median
    assert run.times_s == pytest.approx({4096: 14e-6, 8192: 16e-6})
    assert run.in_place_times_s[4096] == pytest.approx(13e-6)


@pytest.mark.parametrize("spec, expected", [
    ("allreduce=a.txt", ("allreduce", "a.txt")),
    ("all_gather=dir/x=y.txt", ("allgather", "dir/x=y.txt")),
    ("reducescatter=r.txt", ("reduce_scatter", "r.txt")),
    ("dir/x=y.txt", (None, "dir/x=y.txt")),  # not a collective before '=': all of it is the path
])
def test_an_op_prefix_names_the_collective(spec, expected):
    assert split_op_prefix(spec) == expected


def test_the_op_prefix_overrides_what_the_file_says():
    assert parse_nccl_tests(NEW, "out.txt", op="reduce_scatter").op == "reduce_scatter"


@pytest.mark.parametrize("name, expected", [
    ("reduce_scatter_perf.txt", "reduce_scatter"), ("broadcast_perf_8gpu.out", "broadcast"),
    ("run-all_reduce_perf.txt", "allreduce"), ("allgather.txt", "allgather"),
])
def test_the_file_name_names_the_collective_when_the_output_does_not(name, expected):
    assert parse_nccl_tests(OLD, name).op == expected


@pytest.mark.parametrize("text, source, message", [
    (OLD, "results.txt", "cannot tell which collective"),
    (OLD, "alltoall_perf.txt", "alltoall is not a collective the simulator models"),
    (OLD, "reduce_perf.txt", "reduce is not a collective the simulator models"),
    ("just some text\n", "all_reduce_perf.txt", "no nccl-tests table rows"),
    ("        4096   1024  float  sum  12.0  0.3  0.3  0\n", "all_reduce_perf.txt", "before nccl-tests' header"),
    (OLD.replace("  12.00  ", "  abc  "), "all_reduce_perf.txt", "is not a positive number"),
    (OLD.replace("#   Rank  1 Pid", "#   Rank  5 Pid"), "all_reduce_perf.txt", "is the output complete"),
])
def test_bad_output_is_one_error_naming_the_file(text, source, message):
    with pytest.raises(ScenarioError, match=message) as info:
        parse_nccl_tests(text, source)
    assert source in str(info.value)


def test_an_unmodelled_op_prefix_is_refused():
    with pytest.raises(ScenarioError, match="alltoall is not a collective"):
        split_op_prefix("alltoall=x.txt")


def test_reading_a_missing_file_is_one_error():
    with pytest.raises(ScenarioError, match="no such file"):
        read_nccl_tests("allreduce=/nonexistent/out.txt")


# -- the command ------------------------------------------------------------------------

SCENARIO = REPO_ROOT / "scenarios/validation/collectives/systems/kalavai-4090-4gpu.yaml"
SHIPPED = REPO_ROOT / "scenarios/validation/collectives/nccl_tests/kalavai-4090-4gpu-all_reduce_perf.txt"


def test_the_command_puts_every_measured_size_beside_its_prediction(capsys):
    code, out, err = run_main(capsys, "collectives", str(SCENARIO), "--nccl-tests", str(SHIPPED), "--json", "-")
    assert code == 0, err
    data = json.loads(out)
    measured = read_nccl_tests(str(SHIPPED))
    rows = data["rows"]
    assert [r["size_bytes"] for r in rows] == sorted(measured.times_s)  # the sizes the run measured
    assert {r["op"] for r in rows} == {"allreduce"}
    for r in rows:
        meas = measured.times_s[r["size_bytes"]]
        assert r["meas_time_us"] == pytest.approx(meas * 1e6)
        assert r["rel_error"] == pytest.approx((r["time_us"] * 1e-6 - meas) / meas)
        # nccl-tests' busbw for allreduce on n = 4: size / time x 2 (n - 1) / n
        assert r["meas_busbw_gbs"] == pytest.approx(r["size_bytes"] / meas / 1e9 * 1.5)
    errors = sorted(abs(r["rel_error"]) * 100 for r in rows)
    summary = data["accuracy"]["allreduce"]
    assert summary["n"] == len(rows) == 22
    assert summary["median_abs_error_pct"] == pytest.approx((errors[10] + errors[11]) / 2)
    assert summary["max_abs_error_pct"] == pytest.approx(errors[-1])
    small = sorted(abs(r["rel_error"]) * 100 for r in rows if r["size_bytes"] < 1e6)
    assert summary["by_size"]["< 1 MB"]["n"] == len(small) == 10
    assert data["nccl_tests"][0]["world_size"] is None  # the shipped file lists no ranks
    assert "lists no '# Rank' lines" in err


def test_the_text_report_prints_the_error_summary(capsys):
    code, out, err = run_main(capsys, "collectives", str(SCENARIO), "--nccl-tests", str(SHIPPED),
                              "-b", "1K", "-e", "1G", "-f", "32")
    assert code == 0, err
    assert "meas time" in out and "# Time error |predicted / measured - 1|: median" in out
    assert len([line for line in out.splitlines() if line and not line.startswith("#")]) == 5


def test_a_run_on_another_world_size_is_refused_naming_the_file(capsys, tmp_path):
    path = tmp_path / "all_gather_perf.txt"
    path.write_text(NEW)  # 4 ranks on 2 hosts; the scenario has 4 GPUs on 1 node
    code, out, err = run_main(capsys, "collectives", str(SCENARIO), "--nccl-tests", str(path))
    assert code == 2
    assert str(path) in err and "4 ranks on 2 host(s)" in err and "Traceback" not in err
    code, out, err = run_main(capsys, "collectives", str(SCENARIO), "--set", "cluster.nodes=2",
                              "--set", "cluster.gpus_per_node=2", "--nccl-tests", str(path), "--json", "-")
    assert code == 0, err
    assert [r["op"] for r in json.loads(out)["rows"]] == ["allgather"] * 3


def test_an_unreadable_file_exits_2_with_one_line(capsys, tmp_path):
    code, out, err = run_main(capsys, "collectives", str(SCENARIO), "--nccl-tests", str(tmp_path / "missing.txt"))
    assert code == 2 and "missing.txt" in err and "Traceback" not in err


# -- fitting the measured figures (simulator.collective_fit) ---------------------------

def _measured_at(scenario, values, calls):
    from simulator.collective_fit import predicted_times, with_fields

    return dict(zip(calls, predicted_times(with_fields(scenario, values), calls)))


def test_the_fit_recovers_the_host_staging_bandwidth_that_made_the_times():
    from simulator.collective_fit import fit_collective_fields
    from simulator.loading import load_scenario

    scenario = load_scenario(SCENARIO)
    calls = [("allreduce", 2**k) for k in range(10, 31, 4)]
    result = fit_collective_fields(scenario, _measured_at(scenario, {"host_staging_gbytes_s": 3.0}, calls))
    assert result.fitted["host_staging_gbytes_s"] == pytest.approx(3.0, rel=0.01)
    assert "network_efficiency" in result.inapplicable  # one node: nothing crosses the network
    assert result.after < 0.002 < result.before
    staging = result.fitted["host_staging_gbytes_s"]
    assert result.overrides() == [f"training.collectives.host_staging_gbytes_s={staging:.4g}"]


def test_the_fit_recovers_the_network_efficiency_of_a_two_node_run():
    from simulator.collective_fit import fit_collective_fields
    from simulator.loading import load_scenario

    scenario = load_scenario(REPO_ROOT / "scenarios/validation/collectives/systems/ndmv4-a100-2x1.yaml")
    calls = [("allreduce", 2**k) for k in range(16, 31, 2)]
    result = fit_collective_fields(scenario, _measured_at(scenario, {"network_efficiency": 0.5}, calls))
    assert result.fitted == {"network_efficiency": pytest.approx(0.5, rel=0.01)}
    assert "host_staging_gbytes_s" in result.inapplicable  # one GPU per node: no hop through host memory


def test_fit_on_the_command_line_reports_the_values_and_predicts_with_them(capsys):
    code, out, err = run_main(capsys, "collectives", str(SCENARIO), "--nccl-tests", str(SHIPPED), "--fit",
                              "--json", "-")
    assert code == 0, err
    data = json.loads(out)
    fit = data["fit"]
    assert set(fit["fitted"]) == {"host_staging_gbytes_s"} and "network_efficiency" in fit["not_fitted"]
    assert fit["mean_abs_log_error_after"] < fit["mean_abs_log_error_before"]
    # the rows are predicted with the fitted figure: the largest size is within 2% of the measurement
    assert abs(data["rows"][-1]["rel_error"]) < 0.02
    code, out, err = run_main(capsys, "collectives", str(SCENARIO), "--fit")
    assert code == 2 and "--fit: needs measured times" in err
    code, out, err = run_main(capsys, "collectives", str(SCENARIO), "--nccl-tests", str(SHIPPED), "--fit",
                              "--op", "broadcast")
    assert code == 2 and "--fit: nothing measured for broadcast (measured: allreduce)" in err


def test_plot_draws_predicted_and_measured_busbw(capsys, tmp_path):
    code, out, err = run_main(capsys, "collectives", str(SCENARIO), "--nccl-tests", str(SHIPPED),
                              "--plot", str(tmp_path / "c.png"))
    assert code == 0, err
    assert (tmp_path / "c.png").stat().st_size > 10_000
    code, out, err = run_main(capsys, "collectives", str(SCENARIO), "--op", "allreduce", "-e", "1K",
                              "--plot", str(tmp_path / "missing" / "c.png"))
    assert code == 2 and "--plot" in err and "Traceback" not in err


def test_the_plot_has_a_line_per_prediction_and_points_where_measured():
    from simulator.collectives_plot import collectives_plot
    from simulator.collectives_report import report
    from simulator.loading import load_scenario

    run = read_nccl_tests(str(SHIPPED))
    scenario = load_scenario(SCENARIO)
    sizes = sorted(run.times_s)[::4]
    measured = {("allreduce", s): run.times_s[s] for s in sizes}
    table = report(scenario, ["allreduce"], sizes, measured)
    fig = collectives_plot(table, extra={"other": table})
    (ax,) = fig.axes
    assert [line.get_label() for line in ax.get_lines()] == ["predicted", "other"]
    assert len(ax.collections[0].get_offsets()) == len(sizes)  # the measured points
    assert "median" in ax.get_title()

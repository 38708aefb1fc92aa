"""`clustersim sweep` and `clustersim plot`: outputs, exit codes, Ctrl-C then --resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import yaml
from pandas.testing import assert_frame_equal

from simulator import run_sweep
from simulator.cli import main
from simulator.sweep import read_results

from .conftest import small_sweep, two_hundred_runs


def clustersim(*args: str) -> int:
    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def write_sweep(tmp_path, sweep: dict, name: str = "s.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(sweep, sort_keys=False))  # axis order is run order
    return path


def test_sweep_writes_the_table_and_plot_reads_it(tmp_path, capsys):
    sweep = write_sweep(tmp_path, small_sweep(axes={"grid": {"cluster.nodes": [1, 2, 4]}}))
    out = tmp_path / "r.parquet"
    assert clustersim("sweep", str(sweep), "-o", str(out), "--executor", "serial") == 0
    assert "3 runs: 3 simulated, 0 from cache, 0 resumed, 0 failed" in capsys.readouterr().out
    assert list(read_results(out)["cluster.nodes"]) == [1, 2, 4]
    assert clustersim("sweep", str(sweep), "-o", str(out), "--resume") == 0
    assert "0 simulated, 0 from cache, 3 resumed" in capsys.readouterr().out
    for kind, extra in [("speedup", []), ("breakdown", []), ("utilization", []),
                        ("heatmap", ["--x", "cluster.nodes", "--y", "workload.model"])]:
        png = tmp_path / f"{kind}.png"
        assert clustersim("plot", kind, str(out), "-o", str(png), *extra) == 0
        assert png.read_bytes()[:4] == b"\x89PNG"
    png = tmp_path / "timeline.png"
    assert clustersim("plot", "timeline", str(sweep.parent / "base.yaml"), "-o", str(png)) == 2  # no such file
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(small_sweep()["base"]))
    assert clustersim("plot", "timeline", str(tmp_path / "base.yaml"), "-o", str(png)) == 0


def test_bad_sweep_file_exits_2_naming_file_and_field(tmp_path, capsys):
    sweep = write_sweep(tmp_path, {"axes": {"grid": {"cluster.nodez": [1]}}}, "bad.yaml")
    assert clustersim("sweep", str(sweep), "-o", str(tmp_path / "r.csv")) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {sweep}: axes: cluster.nodez: unknown scenario field") and "Traceback" not in err
    assert clustersim("plot", "heatmap", str(tmp_path / "r.csv"), "-o", str(tmp_path / "x.png"),
                      "--x", "a", "--y", "b") == 2
    assert "no such file" in capsys.readouterr().err


def test_ctrl_c_keeps_finished_runs_and_resume_completes_the_same_table(tmp_path):
    sweep = write_sweep(tmp_path, two_hundred_runs())
    out = tmp_path / "r.parquet"
    journal = tmp_path / "r.parquet.partial.jsonl"
    cmd = [sys.executable, "-m", "simulator.cli", "sweep", str(sweep), "-o", str(out), "--no-cache",
           "-j", "2", "--batch-size", "1", "--no-progress"]
    # faulthandler: should the sweep hang after Ctrl-C, SIGABRT dumps every thread's stack
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONFAULTHANDLER": "1"})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if journal.exists() and journal.read_text().count("\n") >= 20:
            proc.send_signal(signal.SIGINT)
            break
        time.sleep(0.005)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:  # seen once in a full-suite run (2026-12-02), not reproduced since
        proc.send_signal(signal.SIGABRT)
        _, err = proc.communicate(timeout=30)
        pytest.fail(f"the sweep did not exit within 60 s of Ctrl-C; its threads:\n{err}")
    if proc.returncode == 130:  # interrupted (it may rarely have finished first)
        assert f"finished run(s) kept in {out}; --resume continues" in err
        kept = read_results(out)
        assert 20 <= len(kept) < 200 and (kept["status"] == "ok").all()
    else:
        assert proc.returncode == 0, err
    env = {**os.environ}
    done = subprocess.run([*cmd[:-1], "--resume"], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    reference = run_sweep(two_hundred_runs(), tmp_path / "ref.parquet", cache=False, workers=2, progress=False)
    assert_frame_equal(read_results(out), read_results(tmp_path / "ref.parquet"))
    assert len(reference) == 200


def test_ctrl_c_before_any_run_is_written_says_so(tmp_path, capsys, monkeypatch):
    """A Ctrl-C while the sweep is still being expanded writes nothing, and the message
    does not claim that finished runs were kept."""
    import simulator.sweep.runner as runner_module

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner_module, "expand", interrupted)
    sweep = write_sweep(tmp_path, small_sweep())
    out = tmp_path / "r.csv"
    assert clustersim("sweep", str(sweep), "-o", str(out), "--executor", "serial") == 130
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [f"interrupted before any run was written: {out} unchanged", "", "aborted"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.yaml"]  # no table, journal or lock


def test_ctrl_c_while_the_executor_starts_keeps_the_runs_already_known(tmp_path, capsys, monkeypatch):
    """Rows that need no worker (from the cache) are in the table even when Ctrl-C comes
    while the workers start; the message counts them."""
    import simulator.sweep.runner as runner_module

    sweep = write_sweep(tmp_path, small_sweep(axes={"grid": {"cluster.nodes": [1, 2, 4]}}))
    out = tmp_path / "r.csv"
    assert clustersim("sweep", str(sweep), "-o", str(tmp_path / "first.csv"), "--executor", "serial") == 0
    bigger = write_sweep(tmp_path, small_sweep(axes={"grid": {"cluster.nodes": [1, 2, 4, 8]}}), "s2.yaml")
    capsys.readouterr()

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner_module, "get_executor", interrupted)
    assert clustersim("sweep", str(bigger), "-o", str(out)) == 130
    assert capsys.readouterr().err.startswith(f"interrupted: 3 finished run(s) kept in {out}; --resume continues")
    assert list(read_results(out)["cluster.nodes"]) == [1, 2, 4]
    assert not out.with_name("r.csv.partial.jsonl").exists() and not out.with_name("r.csv.lock").exists()

"""Ctrl-C stops a sweep at once (issue 18): the terminal sends SIGINT to the whole process
group; the sweep keeps what finished, drops the runs in flight, leaves no worker running
and prints no traceback, with the process pool and with dask's LocalCluster alike.

Before the fix, a pool sweep waited at exit for every batch already handed to a worker
to finish (minutes for long runs: the "Ctrl-C hang"), and each dask worker died of the
SIGINT itself with a page of tracebacks. Here the runs in flight are endless (2 x 1,000
iterations of 64 GPUs on the detailed path, no work budget: the better part of an hour),
so a sweep that waits for them never exits and the test fails at its deadline; the
deadline only catches that hang, nothing here measures time."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from simulator.sweep import read_results
from simulator.sweep.store import OutputLock

from ..test_sweep_kill import DEADLINE_S, _journal_rows, _stat, _wait_for
from .conftest import SMALL_BASE

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc; process groups")

#: Two endless runs (1,000 iterations) and two short ones (1 iteration) of a detailed
#: 64-GPU cluster; with batches of one run on 3 workers the endless ones are taken
#: first (heaviest first), so once both short rows are written both endless runs are
#: in flight.
ENDLESS_SWEEP = {
    "name": "endless",
    "base": {**SMALL_BASE, "cluster": {"nodes": 16, "gpus_per_node": 4, "nic": {"link": "10GbE"}},
             "simulation": {"iterations": 1, "warmup_iterations": 0, "mode": "detailed"}},
    "axes": {"grid": {"simulation.iterations": [1000, 1]}},
    "replications": 2,
}
EXIT_DEADLINE_S = 120  # for the interrupted sweep to exit: the runs in flight need far longer


def _default_sigint() -> None:
    """The child takes Ctrl-C as a terminal's program does, even when the test run
    itself was started in the background (a shell without job control starts
    background jobs with SIGINT ignored, and children inherit that)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _session(sid: int) -> list[int]:
    """Live processes of session ``sid`` (the sweep started one: its workers are in it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = (entry / "stat").read_text().rpartition(")")[2].split()
                if fields[0] not in ("Z", "X") and int(fields[3]) == sid:
                    found.append(int(entry.name))
    return found


@pytest.mark.parametrize("executor", ["local", "dask"])
def test_ctrl_c_keeps_finished_runs_and_drops_the_runs_in_flight(tmp_path, executor):
    if executor == "dask":
        pytest.importorskip("distributed")
    sweep = tmp_path / "endless.json"
    sweep.write_text(json.dumps(ENDLESS_SWEEP))
    out = tmp_path / "r.csv"
    env = {**os.environ, "CLUSTERSIM_CACHE_DIR": str(tmp_path / "cache"), "CLUSTERSIM_MAX_EVENTS": "0"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulator.cli", "sweep", str(sweep), "-o", str(out), "--executor", executor,
         "-j", "3", "--no-cache", "--batch-size", "1", "--no-progress"],
        env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=_default_sigint,
    )
    try:
        def short_runs_done():
            if proc.poll() is not None:
                pytest.fail(f"the sweep ended early ({proc.returncode}): {proc.stderr.read()[-2000:]}")
            return _journal_rows(out) >= 2

        _wait_for(short_runs_done, DEADLINE_S, "both short runs to be written")
        assert len(_session(proc.pid)) > 2  # the sweep and its workers, two of them in the endless runs
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the whole group
        try:
            _, err = proc.communicate(timeout=EXIT_DEADLINE_S)
        except subprocess.TimeoutExpired:
            pytest.fail("Ctrl-C did not stop the sweep: it waits for the runs in flight")
        assert proc.returncode == 130, err
        assert "Traceback" not in err and "distributed" not in err, err
        assert err.strip().splitlines() == [f"interrupted: 2 finished run(s) kept in {out}; --resume continues",
                                            "", "aborted"], err
        _wait_for(lambda: not any(_stat(pid) for pid in _session(proc.pid)), 30, "the workers to be gone")
        table = read_results(out)
        assert list(table["simulation.iterations"]) == [1, 1] and (table["status"] == "ok").all()
        assert sorted(p.name for p in tmp_path.iterdir()) == ["endless.json", "r.csv"]  # no journal, lock, temp
        with OutputLock(out):  # nothing holds the output: --resume may start
            pass
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # the group this test started, workers included
        proc.communicate(timeout=60)


#: Runs a small sweep with a Ctrl-C arriving exactly while the pool forks its first
#: worker (an at-fork hook signals the process, as a terminal's Ctrl-C can at that instant).
CTRL_C_DURING_FORK = """
import os, signal, sys
from simulator.cli import main

fired = []

def ctrl_c_now():
    if not fired:
        fired.append(True)
        os.kill(os.getpid(), signal.SIGINT)

os.register_at_fork(before=ctrl_c_now)
main(sys.argv[1:])
"""


def test_ctrl_c_while_the_pool_forks_its_workers_stops_the_sweep(tmp_path):
    """A Ctrl-C during the fork of a pool worker used to be raised inside an at-fork
    handler (logging's), where Python prints "Exception ignored ... KeyboardInterrupt"
    and drops it: the sweep then ran to its end, exit 0, as if Ctrl-C had not been
    pressed. The pool now forks with SIGINT blocked, and the Ctrl-C is raised after."""
    from .conftest import small_sweep

    sweep = tmp_path / "s.json"
    sweep.write_text(json.dumps(small_sweep(axes={"grid": {"cluster.nodes": [1, 2, 4, 8]}})))
    out = tmp_path / "r.csv"
    env = {**os.environ, "CLUSTERSIM_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run(
        [sys.executable, "-c", CTRL_C_DURING_FORK, "sweep", str(sweep), "-o", str(out), "-j", "2", "--no-cache",
         "--no-progress"],
        env=env, capture_output=True, text=True, timeout=EXIT_DEADLINE_S, start_new_session=True,
        preexec_fn=_default_sigint,
    )
    assert proc.returncode == 130, proc.stderr
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"interrupted: 0 finished run(s) kept in {out}; --resume continues", "", "aborted"]
    assert len(read_results(out)) == 0

"""A killed sweep leaves nothing running, and one output takes one sweep at a time
(issue 18): ``kill -9`` of the sweep's own process stops its pool workers within a few
seconds, and a second sweep on the same output is refused (exit 2, one line) instead of
running the same runs into the same journal.

The sweeps here are real ``clustersim sweep`` processes, long enough that
they are still running when the test acts on them (a minute of work); every wait polls with a generous
deadline, so a loaded machine makes the tests slower, not flaky. Each test kills the
process group it started when it ends."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from simulator.errors import ClusterSimError
from simulator.sweep.store import OutputLock

from .sweep.conftest import SMALL_BASE

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc; POSIX locks")

#: 2 points x 32 replications of a detailed 16-GPU run (about 2 s each): a minute of
#: work on 2 workers, killed after seconds; batches of one run, so rows come early.
LONG_SWEEP = {
    "name": "long",
    "base": {**SMALL_BASE, "cluster": {"nodes": 8, "gpus_per_node": 2, "nic": {"link": "10GbE"}},
             "simulation": {"iterations": 20, "warmup_iterations": 0, "mode": "detailed"}},
    "axes": {"grid": {"workload.batch_per_gpu": [32, 48]}},
    "replications": 32,
}
DEADLINE_S = 120  # for a sweep to start writing rows (imports and a first batch, under load)
WORKERS_GONE_S = 30  # workers poll their parent every 0.5 s: gone in about a second


def _wait_for(predicate, timeout: float, what: str):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a live process; None when it is gone (or a zombie)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    state, ppid = text.rpartition(")")[2].split()[:2]
    return None if state in ("Z", "X") else (state, int(ppid))


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            info = _stat(int(entry.name))
            if info is not None and info[1] == pid:
                found.append(int(entry.name))
    return found


def _workers(pid: int) -> list[int]:
    """The pool workers of sweep process ``pid``: its forked children (same command line)."""
    try:
        own = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    workers = []
    for child in _children(pid):
        with contextlib.suppress(OSError):
            if Path(f"/proc/{child}/cmdline").read_bytes() == own:
                workers.append(child)
    return workers


def _journal_rows(out: Path) -> int:
    journal = out.with_name(out.name + ".partial.jsonl")
    try:
        return journal.read_text().count("\n")
    except OSError:
        return 0


def _sweep_command(sweep: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "simulator.cli", "sweep", str(sweep), "-o", str(out), "-j", "2", "--no-cache",
            "--batch-size", "1", "--no-progress", *extra]


@pytest.fixture
def long_sweep(tmp_path):
    """Start the long sweep in a new session; yields (process, output); kills its group after."""
    sweep = tmp_path / "long.json"
    sweep.write_text(json.dumps(LONG_SWEEP))
    out = tmp_path / "r.csv"
    env = {**os.environ, "CLUSTERSIM_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.Popen(_sweep_command(sweep, out), env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        yield proc, sweep, out
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # the group this test started, workers included
        proc.communicate(timeout=60)


def _running(proc, out: Path) -> list[int]:
    """Wait until the sweep has pool workers and has journaled a row; its workers."""
    def ready():
        if proc.poll() is not None:
            pytest.fail(f"the sweep ended early ({proc.returncode}): {proc.stderr.read().decode()[-2000:]}")
        workers = _workers(proc.pid)
        return workers if workers and _journal_rows(out) > 0 else None

    return _wait_for(ready, DEADLINE_S, "the sweep to start its workers and write a row")


def test_killing_only_the_sweep_process_stops_its_workers(long_sweep):
    proc, _, out = long_sweep
    workers = _running(proc, out)
    os.kill(proc.pid, signal.SIGKILL)  # the parent only, as `kill -9 PID` would
    proc.wait(timeout=60)
    started = time.monotonic()
    _wait_for(lambda: not any(_stat(w) for w in workers), WORKERS_GONE_S, f"workers {workers} to exit")
    gone_after = time.monotonic() - started
    assert gone_after < WORKERS_GONE_S
    with OutputLock(out):  # nothing holds the output any more: a --resume may start
        pass
    assert _journal_rows(out) > 0  # what finished is kept for --resume


def test_a_second_sweep_on_the_same_output_is_refused(long_sweep, tmp_path):
    proc, sweep, out = long_sweep
    _running(proc, out)
    env = {**os.environ, "CLUSTERSIM_CACHE_DIR": str(tmp_path / "cache")}
    for extra in ((), ("--resume",)):
        before = _journal_rows(out)
        second = subprocess.run(_sweep_command(sweep, out, *extra), env=env, capture_output=True, text=True,
                                timeout=DEADLINE_S)
        assert second.returncode == 2, second.stderr[-2000:]
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in second.stderr, second.stderr
        assert lines[0].startswith(f"error: {out}: another sweep is running on this output (process {proc.pid})")
        assert _journal_rows(out) >= before  # the journal of the first was not truncated
    os.kill(proc.pid, signal.SIGKILL)  # the first dies: its output is free at once (its workers hold no copy)
    proc.wait(timeout=60)
    with OutputLock(out):
        pass


def test_a_finished_sweep_removes_its_lock(tmp_path):
    from simulator.sweep import run_sweep

    from .sweep.conftest import small_sweep

    out = tmp_path / "r.csv"
    run_sweep(small_sweep(), out, executor="serial", cache=False, progress=False)
    assert out.exists() and not out.with_name("r.csv.lock").exists()


def test_the_lock_goes_with_the_process_that_holds_it(tmp_path):
    out = tmp_path / "r.parquet"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom simulator.sweep.store import OutputLock\n"
         f"lock = OutputLock({str(out)!r}); lock.acquire(); print('held', flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ClusterSimError, match=rf"another sweep is running on this output \(process {holder.pid}\)"):
            OutputLock(out).acquire()
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=60)
        assert out.with_name("r.parquet.lock").exists()  # left behind by the kill, but not locked
        lock = OutputLock(out)
        lock.acquire()
        assert out.with_name("r.parquet.lock").read_text() == f"{os.getpid()}\n"
        lock.release()
        assert not out.with_name("r.parquet.lock").exists()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=60)


def test_two_sweeps_in_one_process_on_one_output_are_refused(tmp_path):
    first, second = OutputLock(tmp_path / "r.csv"), OutputLock(tmp_path / "r.csv")
    with first:
        with pytest.raises(ClusterSimError, match="another sweep is running on this output"):
            second.acquire()
    with second:
        pass

"""``kill -9`` of a dask sweep that started its own LocalCluster leaves nothing running
(issue 18), as for the local pool (``tests/test_sweep_kill.py``).

The LocalCluster's nannies live in the sweep process; its worker processes (and
multiprocessing's resource tracker) are the sweep's children. Today distributed makes each
worker exit when a pipe to its parent closes; this test holds that guarantee against
upgrades of distributed or a change of how the executor starts its cluster. Every wait
polls with a generous deadline, so a loaded machine makes it slower, not flaky."""

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

from simulator.sweep.store import OutputLock

from ..test_sweep_kill import DEADLINE_S, LONG_SWEEP, _journal_rows, _stat, _wait_for

pytest.importorskip("distributed")
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")

GONE_S = 15  # distributed's workers exit at once when their parent dies (about 0.2 s measured)


def _descendants(root: int) -> list[int]:
    """Every live process below ``root`` (children, grandchildren...)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            info = _stat(int(entry.name))
            if info is not None:
                children.setdefault(info[1], []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _spawned_workers(pids: list[int]) -> list[int]:
    workers = []
    for pid in pids:
        with contextlib.suppress(OSError):
            if b"multiprocessing.spawn" in Path(f"/proc/{pid}/cmdline").read_bytes():
                workers.append(pid)
    return workers


def test_killing_a_dask_sweep_stops_its_localcluster_workers(tmp_path):
    sweep = tmp_path / "long.json"
    sweep.write_text(json.dumps(LONG_SWEEP))
    out = tmp_path / "r.csv"
    env = {**os.environ, "CLUSTERSIM_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulator.cli", "sweep", str(sweep), "-o", str(out), "--executor", "dask", "-j", "2",
         "--no-cache", "--batch-size", "1", "--no-progress"],
        env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        def ready():
            if proc.poll() is not None:
                pytest.fail(f"the sweep ended early ({proc.returncode}): {proc.stderr.read().decode()[-2000:]}")
            below = _descendants(proc.pid)
            return below if len(_spawned_workers(below)) == 2 and _journal_rows(out) > 0 else None

        _wait_for(ready, DEADLINE_S, "the dask workers to start and a row to be written")
        below = _descendants(proc.pid)  # again: nothing started between the check and now is missed
        os.kill(proc.pid, signal.SIGKILL)  # the sweep only, as `kill -9 PID` would
        proc.wait(timeout=60)
        started = time.monotonic()
        _wait_for(lambda: not any(_stat(pid) for pid in below), GONE_S, f"processes {below} to exit")
        assert time.monotonic() - started < GONE_S
        with OutputLock(out):  # nothing holds the output any more: a --resume may start
            pass
        assert _journal_rows(out) > 0  # what finished is kept for --resume
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # the group this test started, workers included
        proc.communicate(timeout=60)

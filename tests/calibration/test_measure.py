"""`clustersim measure` for real on the CPU: 2 gloo DDP processes, alexnet at batch 2,
2 warm-up + 3 timed iterations. The row must read back and validate to a finite
prediction; no accuracy assertion (the machine is shared and noisy)."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

pytest.importorskip("torch")

from simulator.validation import read_cases, validate  # noqa: E402


def _measure(out, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "calibration", "measure", "--model", "alexnet", "--procs", "2", "--batch", "2",
         "--warmup", "2", "--iterations", "3", "-o", str(out), *extra],
        capture_output=True, text=True, timeout=120,
    )


def test_measure_appends_a_row_that_validates(tmp_path):
    out = tmp_path / "runs.csv"
    done = _measure(out)
    assert done.returncode == 0, done.stderr[-2000:]
    cases, errors = read_cases(out)
    assert errors == [] and len(cases) == 1
    case = cases[0]
    assert case.source.startswith("measured here ") and case.source.endswith("(clustersim measure)")
    assert case.metric == "throughput_samples_per_s" and case.value > 0
    assert (case.model, case.gpus_per_node, case.nodes, case.batch_per_gpu) == ("alexnet", 2, 1, 2)
    assert (case.network, case.intra_node, case.strategy) == ("loopback", "pcie", "ring_allreduce")
    scenario = out.parent / case.scenario
    assert scenario.exists() and "calibration: " in scenario.read_text()

    df = validate(out)
    assert len(df) == 1 and df["error"].isna().all(), df["error"].tolist()
    assert math.isfinite(df["predicted"].iloc[0]) and df["predicted"].iloc[0] > 0
    assert math.isfinite(df["rel_error"].iloc[0])


def test_measure_rejects_a_model_without_torch_definition(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "calibration", "measure", "--model", "bert-large", "-o", str(tmp_path / "x.csv")],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2 and done.stderr.startswith("error: ") and "Traceback" not in done.stderr
    assert not (tmp_path / "x.csv").exists()

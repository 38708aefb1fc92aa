"""The figures the fast benchmark scripts recorded (benchmarks/results/*.json, which the
README's tables are rendered from) are what those scripts give with the model as it is now.

test_readme_tables.py checks the README against the JSON; this checks the JSON against the
model, so a model change cannot leave a README table quoting the model before it. Only
the scripts that run in seconds are rerun here; the cross-validations (minutes to an hour)
and measured_allreduce_dgx1.py (half a minute) are rerun by hand when the model changes.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
FAST_SCRIPTS = ("kepler_vs_maxwell", "small_batch_dispatch", "fork_gradients_torch7", "optimizer_step_tf_bert",
                "untimed_layers", "collective_spread", "accumulation_timm1659", "heldout_lambda_non_xla")
#: scripts whose results file is not named after the script
RESULT_NAMES = {"heldout_lambda_non_xla": "heldout_lambda"}
#: the team's shared dev set beside the checkout (benchmarks/accuracy_single_gpu.py's DEFAULT_CSV), which a
#: clone on its own lacks; the scripts that read it are skipped there
SHARED_CSV = ROOT / ".." / "shared" / "measured" / "published_cases.csv"
READS_SHARED = {"fork_gradients_torch7", "optimizer_step_tf_bert"}


def same_figures(new: Any, recorded: Any) -> bool:
    """Equal, floats to 1e-9 relative: the last bit of a sum differs between numpy/pandas
    builds (seen: 2.3961572913104005e-05 against ...002e-05), never a figure's digits."""
    if isinstance(new, float) or isinstance(recorded, float):
        return (isinstance(new, (int, float)) and isinstance(recorded, (int, float))
                and math.isclose(new, recorded, rel_tol=1e-9, abs_tol=1e-15))
    if isinstance(new, dict):
        return isinstance(recorded, dict) and new.keys() == recorded.keys() and all(
            same_figures(new[k], recorded[k]) for k in new)
    if isinstance(new, list):
        return isinstance(recorded, list) and len(new) == len(recorded) and all(
            same_figures(a, b) for a, b in zip(new, recorded))
    return bool(new == recorded)


def test_same_figures_ignores_the_last_bit_only():
    assert same_figures({"a": [2.3961572913104005e-05, "x", 3]}, {"a": [2.3961572913104002e-05, "x", 3]})
    assert not same_figures({"a": [2.39616e-05]}, {"a": [2.39615e-05]})  # a digit that shows
    assert not same_figures({"a": 1.0}, {"a": 1.0, "b": 2})
    assert not same_figures([1.0, 2.0], [1.0])


@pytest.mark.parametrize("name", FAST_SCRIPTS)
def test_recorded_benchmark_figures_are_the_models_figures_now(name, tmp_path):
    if name in READS_SHARED and not SHARED_CSV.exists():
        pytest.skip(f"{name} reads the shared dev set, not beside this checkout ({SHARED_CSV})")
    out = tmp_path / f"{name}.json"
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / f"{name}.py"), "--json", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    result = RESULT_NAMES.get(name, name)
    recorded = json.loads((ROOT / "benchmarks" / "results" / f"{result}.json").read_text())
    assert same_figures(json.loads(out.read_text()), recorded), (
        f"stale: run python benchmarks/{name}.py --json benchmarks/results/{result}.json, "
        "then python benchmarks/readme_tables.py")

"""The figures the fast benchmark scripts recorded (benchmarks/results/*.json, which the
README's tables are rendered from) are what those scripts give with the model as it is now.

test_readme_tables.py checks the README against the JSON; this checks the JSON against the
model, so a model change cannot leave a README table quoting the model before it. Only
the scripts that run in seconds are rerun here; the cross-validations (minutes to an hour)
and measured_allreduce_dgx1.py (half a minute) are rerun by hand when the model changes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
    assert json.loads(out.read_text()) == recorded, (
        f"stale: run python benchmarks/{name}.py --json benchmarks/results/{result}.json, "
        "then python benchmarks/readme_tables.py")

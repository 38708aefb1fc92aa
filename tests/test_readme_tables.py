"""Every accuracy table in README.md is what benchmarks/readme_tables.py renders from
the figures the benchmark scripts wrote (benchmarks/results/*.json)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_accuracy_tables_match_the_benchmark_results():
    spec = importlib.util.spec_from_file_location("readme_tables", ROOT / "benchmarks" / "readme_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert module.render(readme) == readme, "stale: run python benchmarks/readme_tables.py"

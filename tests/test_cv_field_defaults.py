"""The training cross-validation varies some parameters as a scenario field's shipped
default (benchmarks/accuracy_training.py ``field_defaults``): rows whose framework preset
or scenario file sets the field keep their value, and the default comes back after."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from simulator import load_scenario

REPO_ROOT = Path(__file__).resolve().parents[1]


def _accuracy_training(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO_ROOT / "benchmarks"))  # it imports its sibling loso.py
    path = REPO_ROOT / "benchmarks" / "accuracy_training.py"
    spec = importlib.util.spec_from_file_location("accuracy_training", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_varied_default_leaves_presets_and_explicit_values_alone(monkeypatch):
    module = _accuracy_training(monkeypatch)
    xla = ["workload.graph_compiler=xla"]
    shipped = load_scenario(None, xla).training.xla_release_points
    with module.field_defaults({"training.xla_release_points": 3}):
        assert load_scenario(None, xla).training.xla_release_points == 3
        assert load_scenario(None, xla + ["training.framework=horovod"]).training.xla_release_points == 1
        assert load_scenario(None, xla + ["training.xla_release_points=5"]).training.xla_release_points == 5
    assert load_scenario(None, xla).training.xla_release_points == shipped == 2

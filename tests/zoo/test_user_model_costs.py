"""A user's model registered again under its name is simulated afresh: the per-process
cost and baseline caches hold only the zoo's own models (and scenarios reading no file)."""

from __future__ import annotations

from simulator import zoo
from simulator.engine import simulate
from simulator.loading import load_scenario


def _mlp(width: int) -> list[dict]:
    return [{"name": "fc1", "kind": "linear", "out_features": width},
            {"name": "act", "kind": "gelu"},
            {"name": "fc2", "kind": "linear", "out_features": 10}]


def test_registering_again_changes_the_result():
    zoo.register_model("cache_probe_mlp", _mlp(256), input_shape=(784,))
    small = simulate(load_scenario(None, ["workload.model=cache_probe_mlp"]))
    zoo.register_model("cache_probe_mlp", _mlp(8192), input_shape=(784,), replace=True)
    large = simulate(load_scenario(None, ["workload.model=cache_probe_mlp"]))
    # 32x the hidden width: more FLOPs per sample and more gradient bytes
    assert large.iteration_time_s > small.iteration_time_s
    assert large.breakdown["compute_s"] > small.breakdown["compute_s"]
